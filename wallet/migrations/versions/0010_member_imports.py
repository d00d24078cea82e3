"""member imports: a brand's CSV of existing members, booked by the workers

The file and the job's progress (member_imports), the outbox kind of its
chunks (member.import), where a card came from (memberships.source) and the
index of the portal's search by the start of a name.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import wallet.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

KINDS = ('card.changed', 'webhook', 'notification')
NEW_KINDS = (*KINDS, 'member.import')


def upgrade() -> None:
    op.create_table('member_imports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('brand_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('existing', sa.Integer(), nullable=False),
    sa.Column('points_booked', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done')", name=op.f('ck_member_imports_status')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_member_imports_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_member_imports_club_id_clubs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_member_imports_staff_user_id_staff_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_imports'))
    )
    with op.batch_alter_table('member_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_imports_brand_id'), ['brand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_imports_club_id'), ['club_id'], unique=False)

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_memberships_club_name', ['club_id', 'name'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', sa.column('kind').in_(NEW_KINDS))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind = 'member.import'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', sa.column('kind').in_(KINDS))

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_club_name')
        batch_op.drop_column('source')

    with op.batch_alter_table('member_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_imports_club_id'))
        batch_op.drop_index(batch_op.f('ix_member_imports_brand_id'))

    op.drop_table('member_imports')
