"""ledger entries' indexes of mostly-null columns: non-null values only

A purchase's entry has no refund_of_id, no dedupe_key and usually no
receipt_id, yet each wrote an entry (and its WAL) to the index of each. Every
query of them names a value (a refund's purchase through the foreign key's
checks, a dedupe key, a club's receipt), which a null never matches, and a
null never clashed in their unique indexes: partial, on the non-null values,
they answer the same queries and keep the same uniqueness.

Revision ID: 0021
Revises: 0020
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def _not_null(column: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(f"{column} IS NOT NULL"), "postgresql_where": sa.text(f"{column} IS NOT NULL")}


def upgrade() -> None:
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_refund_of_id')
        batch_op.drop_constraint('uq_ledger_transactions_dedupe_key', type_='unique')
        batch_op.drop_constraint('uq_ledger_transactions_club_receipt', type_='unique')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_refund_of_id', ['refund_of_id'], unique=False,
                              **_not_null('refund_of_id'))
        batch_op.create_index('uq_ledger_transactions_dedupe_key', ['dedupe_key'], unique=True,
                              **_not_null('dedupe_key'))
        batch_op.create_index('uq_ledger_transactions_club_receipt', ['club_id', 'receipt_id'], unique=True,
                              **_not_null('receipt_id'))


def downgrade() -> None:
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('uq_ledger_transactions_club_receipt')
        batch_op.drop_index('uq_ledger_transactions_dedupe_key')
        batch_op.drop_index('ix_ledger_transactions_refund_of_id')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_refund_of_id', ['refund_of_id'], unique=False)
        batch_op.create_unique_constraint('uq_ledger_transactions_dedupe_key', ['dedupe_key'])
        batch_op.create_unique_constraint('uq_ledger_transactions_club_receipt', ['club_id', 'receipt_id'])
