"""google wallet and android wallet apps

What Google holds of each club (LoyaltyClass) and card (LoyaltyObject), how
many notifying updates a card had today, and the save/delete callbacks
Google sent, one row per nonce. Device registrations remember the wallet app
that made them (Apple Wallet, or an Android app speaking Apple's protocol),
whose push tokens may be longer than APNs'.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import wallet.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_classes',
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('class_id', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('synced_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_google_classes_club_id_clubs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('club_id', name=op.f('pk_google_classes')),
    sa.UniqueConstraint('class_id', name=op.f('uq_google_classes_class_id'))
    )
    op.create_table('google_objects',
    sa.Column('membership_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=False),
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('inserted_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('sent_figures', sa.String(length=64), nullable=True),
    sa.Column('sent_message', sa.String(length=64), nullable=True),
    sa.Column('notify_day', sa.Date(), nullable=True),
    sa.Column('notify_count', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('installed', sa.Boolean(), nullable=False),
    sa.Column('installed_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_at', wallet.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_google_objects_club_id_clubs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_google_objects_membership_id_memberships'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('membership_id', name=op.f('pk_google_objects')),
    sa.UniqueConstraint('object_id', name=op.f('uq_google_objects_object_id'))
    )
    with op.batch_alter_table('google_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_objects_club_id'), ['club_id'], unique=False)

    op.create_table('google_wallet_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('nonce', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.Enum('save', 'del', name='event_type', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('membership_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_google_wallet_events_club_id_clubs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_google_wallet_events_membership_id_memberships'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_wallet_events')),
    sa.UniqueConstraint('nonce', name=op.f('uq_google_wallet_events_nonce'))
    )
    with op.batch_alter_table('google_wallet_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_wallet_events_club_id'), ['club_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_google_wallet_events_membership_id'), ['membership_id'], unique=False)

    with op.batch_alter_table('apple_registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app', sa.Enum('apple', 'walletpasses', 'walletunion', 'walletunion_hms', name='app', native_enum=False, create_constraint=True, length=16), server_default='apple', nullable=False))
        batch_op.alter_column('push_token',
               existing_type=sa.VARCHAR(length=200),
               type_=sa.String(length=255),
               existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('apple_registrations', schema=None) as batch_op:
        batch_op.alter_column('push_token',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=200),
               existing_nullable=False)
        # SQLite rebuilds the table: the column's CHECK must go with it.
        batch_op.drop_constraint(batch_op.f('ck_apple_registrations_app'), type_='check')
        batch_op.drop_column('app')

    with op.batch_alter_table('google_wallet_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_wallet_events_membership_id'))
        batch_op.drop_index(batch_op.f('ix_google_wallet_events_club_id'))

    op.drop_table('google_wallet_events')
    with op.batch_alter_table('google_objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_objects_club_id'))

    op.drop_table('google_objects')
    op.drop_table('google_classes')
