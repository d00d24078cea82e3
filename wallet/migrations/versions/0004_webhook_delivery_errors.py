"""webhook delivery errors from a fixed vocabulary

Deliveries recorded the socket's error text ("ConnectError: [Errno 111]
Connection refused"), which a brand reads through the API and could use to
map which ports of a host answer. Old rows are reworded into the fixed
vocabulary and the column only takes its values from now on.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

VOCABULARY = ('refused: private address', 'refused: invalid URL', 'DNS lookup failed', 'connection failed',
              'timed out', 'TLS error', 'invalid HTTP response')


def upgrade() -> None:
    deliveries = sa.table('webhook_deliveries', sa.column('error', sa.Text()))
    known = deliveries.c.error.in_(VOCABULARY)
    for pattern, word in (('%Timeout%', 'timed out'), ('%SSL%', 'TLS error'), ('%Protocol%', 'invalid HTTP response')):
        op.execute(deliveries.update().where(deliveries.c.error.like(pattern), ~known).values(error=word))
    op.execute(deliveries.update().where(deliveries.c.error.is_not(None), ~known).values(error='connection failed'))
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('error', existing_type=sa.Text(), type_=sa.String(length=32), existing_nullable=True)
        batch_op.create_check_constraint('delivery_error', sa.column('error').in_(VOCABULARY))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('delivery_error', type_='check')
        batch_op.alter_column('error', existing_type=sa.String(length=32), type_=sa.Text(), existing_nullable=True)
