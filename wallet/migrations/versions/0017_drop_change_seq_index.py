"""memberships: no index on change_seq

No query looks a membership up by its change tag (a device's changed cards
are found through its registrations, then filtered), and a card change that
writes an indexed column cannot be a HOT update on PostgreSQL: with the
index, every purchase added an entry to each of the table's indexes.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_change_seq')


def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_change_seq', ['change_seq'], unique=False)
