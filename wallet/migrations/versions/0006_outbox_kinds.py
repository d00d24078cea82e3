"""outbox kinds: the database refuses a kind no handler was written for

The kinds are wallet.loyalty.outbox.OutboxKind; a migration that adds one
replaces this constraint with the longer list. card.changed rows stop
carrying a payload (nothing read it); old rows keep theirs, which the
workers ignore.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

KINDS = ('card.changed', 'webhook', 'notification')


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_check_constraint('kind', sa.column('kind').in_(KINDS))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('kind', type_='check')
