"""per-membership profiles; customers joined to memberships only on proof

What a brand was told (name, email, phone, birthday, locale) moves from the
shared customer record onto each of its memberships: every membership keeps
a copy of the record it pointed at, so no brand loses anything it was told,
and from now on no brand sees or changes another's copy. The old customer
links were made from unproven emails and phones, so they are dropped, and
the shared records with them: a membership is tied to a customer again when
the person proves the email or phone (wallet.loyalty.identity). Points,
ledger rows, registrations and cards belong to memberships and are not
touched.

On SQLite the memberships table is rebuilt (batch mode) with foreign keys
off for the migration (see migrations/env.py), so rebuilding it cascades
into nothing.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wallet.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")


def _copied(column: str) -> str:
    return f"(SELECT c.{column} FROM customers c WHERE c.id = memberships.customer_id)"


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("birthday", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))

    op.execute(
        "UPDATE memberships SET "
        f"email = {_copied('email')}, phone = {_copied('phone')}, birthday = {_copied('birthday')}, "
        f"locale = COALESCE({_copied('locale')}, 'en'), "
        f"name = CASE WHEN name = '' THEN COALESCE({_copied('name')}, '') ELSE name END"
    )
    op.execute("UPDATE memberships SET locale = 'en' WHERE locale IS NULL")

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.alter_column("locale", existing_type=sa.String(length=8), nullable=False)
        batch_op.drop_constraint("uq_memberships_club_customer", type_="unique")
        batch_op.drop_constraint("fk_memberships_customer_id_customers", type_="foreignkey")
        batch_op.alter_column("customer_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                              nullable=True)
    op.execute("UPDATE memberships SET customer_id = NULL")
    op.execute("DELETE FROM customers")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint("uq_customers_email", type_="unique")
        batch_op.drop_constraint("uq_customers_phone", type_="unique")
        for column in ("email", "phone", "name", "birthday", "locale"):
            batch_op.drop_column(column)
        batch_op.add_column(sa.Column("last_sign_in_at", wallet.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f("fk_memberships_customer_id_customers"), "customers",
                                    ["customer_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index(batch_op.f("ix_memberships_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_memberships_phone"), ["phone"], unique=False)
    op.create_index("uq_memberships_club_email_active", "memberships", ["club_id", "email"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("uq_memberships_club_phone_active", "memberships", ["club_id", "phone"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)

    op.create_table(
        "customer_identifiers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.Enum("email", "phone", name="kind", native_enum=False, create_constraint=True,
                                  length=8), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("verified_at", wallet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_customer_identifiers_customer_id_customers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identifiers")),
        sa.UniqueConstraint("kind", "value", name="uq_customer_identifiers_kind_value"),
    )
    with op.batch_alter_table("customer_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_identifiers_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "sign_in_challenges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.Enum("email", "phone", name="kind", native_enum=False, create_constraint=True,
                                  length=8), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", wallet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", wallet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", wallet.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_challenges")),
    )
    with op.batch_alter_table("sign_in_challenges", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_challenges_target", ["kind", "target", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_in_challenges_secret_hash"), ["secret_hash"], unique=False)


def downgrade() -> None:
    raise RuntimeError(
        "0005 cannot be undone: the old schema shared one customer record across brands, and rebuilding it "
        "would join brands' data again. Restore the backup taken before upgrading instead."
    )
