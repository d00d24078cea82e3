"""point lots: a member's earliest open expiry and pending release by index

Every booking's lock reads when the member's first open lot expires or is
released (wallet.loyalty.ledger.figures); these partial indexes give it the
first entry of the member's own open lots.

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.create_index('ix_point_lots_member_expiry', ['membership_id', 'expires_at'], unique=False,
                              sqlite_where=sa.text('exhausted IS 0'), postgresql_where=sa.text('exhausted IS false'))
        batch_op.create_index('ix_point_lots_member_pending', ['membership_id', 'spendable_at'], unique=False,
                              sqlite_where=sa.text('exhausted IS 0 AND released IS 0'),
                              postgresql_where=sa.text('exhausted IS false AND released IS false'))


def downgrade() -> None:
    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.drop_index('ix_point_lots_member_pending')
        batch_op.drop_index('ix_point_lots_member_expiry')
