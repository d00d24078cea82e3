"""point lots' release index: pending lots only

The schedule finds the lots whose pending window ended among the lots not
yet released (``released IS false AND spendable_at <= ?``); the index on
(released, spendable_at) also held every released lot, and most lots are
released when they are opened (a club without a return window), so every
such credit wrote an index entry (and its WAL) that no query reads. Partial,
on the pending lots' spendable_at, it serves the same query.

Revision ID: 0020
Revises: 0019
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.drop_index('ix_point_lots_release')
        batch_op.create_index('ix_point_lots_release', ['spendable_at'], unique=False,
                              sqlite_where=sa.text('released IS 0'), postgresql_where=sa.text('released IS false'))


def downgrade() -> None:
    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.drop_index('ix_point_lots_release')
        batch_op.create_index('ix_point_lots_release', ['released', 'spendable_at'], unique=False)
