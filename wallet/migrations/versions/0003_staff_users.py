"""staff users: the people who sign in to a brand's portal

The brand owner's password moves from brands to the brand's first staff
user (role owner).

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import wallet.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('brand_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('owner', 'manager', 'cashier', name='staff_role', native_enum=False,
                              create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_staff_users_brand_id_brands'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_users_brand_id'), ['brand_id'], unique=False)
    op.execute(
        "INSERT INTO staff_users (brand_id, email, name, password_hash, role, created_at) "
        "SELECT id, email, '', password_hash, 'owner', created_at FROM brands WHERE password_hash IS NOT NULL"
    )
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.drop_column('password_hash')


def downgrade() -> None:
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
    op.execute(
        "UPDATE brands SET password_hash = (SELECT s.password_hash FROM staff_users s "
        "WHERE s.brand_id = brands.id AND s.role = 'owner' ORDER BY s.id LIMIT 1)"
    )
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_users_brand_id'))
    op.drop_table('staff_users')
