"""clubs: card style (store card or iOS 27 poster), poster artwork, featured actions

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clubs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_style", sa.String(length=16), server_default="store_card",
                                      nullable=False))
        batch_op.add_column(sa.Column("artwork_png", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("featured_actions", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("clubs", schema=None) as batch_op:
        batch_op.drop_column("featured_actions")
        batch_op.drop_column("artwork_png")
        batch_op.drop_column("card_style")
