"""ledger_transactions and memberships: no index on club_id alone

Each table has indexes that begin with club_id (ledger_transactions:
(club_id, created_at) and the receipt's (club_id, receipt_id);
memberships: (club_id, card_number), (club_id, name), (club_id,
created_at) and the active email's and phone's), and PostgreSQL and
SQLite use a leading column of a composite index as they would the
column's own: every query by club, and the foreign keys' cascades from
clubs, still find their rows by index. The single-column ones only cost
an index entry on every row written: a purchase's ledger entry wrote one.

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_club_id')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_club_id')


def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_club_id', ['club_id'], unique=False)
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_club_id', ['club_id'], unique=False)
