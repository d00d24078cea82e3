"""google_objects: the card's skinny save link, stored

The worker that inserts a card's LoyaltyObject signs its skinny save link
and stores it here, with what it was made for; an answer that shows the
card reads it. Each web process kept a few thousand signed links, so in a
club of more cards nearly every purchase's answer signed its link anew (an
RSA signature, a fifth of the purchase's CPU). Rows inserted before get
their link at the card's next sync, and meanwhile are signed as before.

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('google_objects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('save_link', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('save_link_for', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('google_objects', schema=None) as batch_op:
        batch_op.drop_column('save_link_for')
        batch_op.drop_column('save_link')
