"""memberships by club in id order; outbox pending rows by card

A club message (and a campaign, the CSV export) walks a club's members a
page at a time in id order (``club_id = ? AND id > ?``). With no index of
them in that order every page read the whole club to keep the next 500 ids:
0.1 to 0.25 s a page at 300,000 members, a message's time growing with the
square of its size. On (club_id, id) a page reads only its own rows.

A claim takes the other pending rows of the cards it picked; with no index
of pending rows by card it walked every pending row once per picked row.

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

PENDING = sa.text('done_at IS NULL')


def upgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_club_by_id', ['club_id', 'id'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending_cards', ['membership_id'], unique=False,
                              sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending_cards')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_club_by_id')
