"""club numbers and nps

The members' survey answers (nps_answers, one per member per quarter), the
log of cards added to and removed from phones' wallets (card_events, begun
with the cards on phones now), and the indexes the club's numbers read over
a period: the ledger and the memberships by club and time.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import wallet.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('membership_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet', sa.Enum('apple', 'walletpasses', 'walletunion', 'walletunion_hms', 'google', name='wallet', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('installed', sa.Boolean(), nullable=False),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_card_events_club_id_clubs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_card_events_membership_id_memberships'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_events'))
    )
    with op.batch_alter_table('card_events', schema=None) as batch_op:
        batch_op.create_index('ix_card_events_club_created', ['club_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_card_events_membership_id'), ['membership_id'], unique=False)
    # The cards on phones now, as installed when first registered or saved.
    op.execute(
        "INSERT INTO card_events (club_id, membership_id, wallet, installed, created_at) "
        "SELECT m.club_id, r.membership_id, r.app, TRUE, MIN(r.created_at) FROM apple_registrations r "
        "JOIN memberships m ON m.id = r.membership_id GROUP BY m.club_id, r.membership_id, r.app"
    )
    op.execute(
        "INSERT INTO card_events (club_id, membership_id, wallet, installed, created_at) "
        "SELECT club_id, membership_id, 'google', TRUE, COALESCE(installed_at, inserted_at, CURRENT_TIMESTAMP) "
        "FROM google_objects WHERE installed = TRUE"
    )

    op.create_table('nps_answers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('club_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('membership_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('tier', sa.String(length=64), nullable=True),
    sa.Column('created_at', wallet.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 0 AND 10', name=op.f('ck_nps_answers_score')),
    sa.ForeignKeyConstraint(['club_id'], ['clubs.id'], name=op.f('fk_nps_answers_club_id_clubs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_nps_answers_membership_id_memberships'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_answers')),
    sa.UniqueConstraint('membership_id', 'period', name='uq_nps_answers_membership_period')
    )
    with op.batch_alter_table('nps_answers', schema=None) as batch_op:
        batch_op.create_index('ix_nps_answers_club_created', ['club_id', 'created_at'], unique=False)

    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_club_created', ['club_id', 'created_at'], unique=False)

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_club_created', ['club_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_club_created')

    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_club_created')

    with op.batch_alter_table('nps_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_nps_answers_club_created')

    op.drop_table('nps_answers')
    with op.batch_alter_table('card_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_events_membership_id'))
        batch_op.drop_index('ix_card_events_club_created')

    op.drop_table('card_events')
