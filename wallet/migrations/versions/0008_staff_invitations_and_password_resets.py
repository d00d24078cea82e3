"""staff invitations and password resets

An owner invites people by a single-use link with a role; a staff user who
forgot their password gets a single-use link by email. Only SHA-256
digests of the links' tokens are stored.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import wallet.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('password_resets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_password_resets_staff_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash'))
    )
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_staff_user_id'), ['staff_user_id'], unique=False)

    op.create_table('staff_invites',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('brand_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.Enum('owner', 'manager', 'cashier', name='staff_role', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_staff_invites_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['staff_users.id'], name=op.f('fk_staff_invites_invited_by_id_staff_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_invites')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_invites_token_hash'))
    )
    with op.batch_alter_table('staff_invites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_invites_brand_id'), ['brand_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_invites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_invites_brand_id'))

    op.drop_table('staff_invites')
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_staff_user_id'))

    op.drop_table('password_resets')
