"""club message pages: the outbox kind club.message

A club message is put on its members' cards a page at a time by outbox rows
of kind club.message (wallet.loyalty.messages), as a campaign's pages are.

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

KINDS = ('card.changed', 'webhook', 'notification', 'member.import', 'campaign.send')
NEW_KINDS = (*KINDS, 'club.message')


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', sa.column('kind').in_(NEW_KINDS))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind = 'club.message'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', sa.column('kind').in_(KINDS))
