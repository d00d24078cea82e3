"""Tables of the loyalty core."""

from __future__ import annotations

import enum
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wallet.db import Base, utcnow
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.outbox import OutboxKind, OutboxPayload

# BigInteger primary keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Brand(Base):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Where the service writes to the brand; logins are StaffUser rows.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    clubs: Mapped[list[Club]] = relationship(back_populates="brand")
    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="brand")


class ApiKey(Base):
    """A brand's API key. Only a SHA-256 of the key is stored: keys are 32
    random bytes, so a slow password hash would add nothing but latency."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="default")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship(back_populates="api_keys")


class Club(Base):
    """A loyalty club: its card design and its program rules.

    ``design_version`` grows whenever anything the pass artwork depends on
    changes (logo, strip, colours); renderers cache per (club id, design
    version). ``program`` holds the current rules as data; the ledger records
    what each rule produced, so changing rules never rewrites history.
    """

    __tablename__ = "clubs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="other")
    logo_text: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # ISO 3166-1 alpha-2: members' phone numbers written without "+" are read
    # in this country (see loyalty.contacts).
    country: Mapped[str | None] = mapped_column(String(2))
    foreground_color: Mapped[str] = mapped_column(String(7), default="#FFFFFF")
    background_color: Mapped[str] = mapped_column(String(7), default="#1F2937")
    label_color: Mapped[str] = mapped_column(String(7), default="#D1D5DB")
    barcode_format: Mapped[str] = mapped_column(String(16), default="qr")
    # Loaded only when read: a purchase or a pass fetch loads the club but
    # not its pictures (pass artwork is rendered once per design_version).
    logo_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, deferred_group="artwork")
    strip_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, deferred_group="artwork")
    icon_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, deferred_group="artwork")
    # The card's style: "store_card", or "poster" (a large artwork behind the
    # fields; phones that cannot show it show the store card).
    card_style: Mapped[str] = mapped_column(String(16), default="store_card", server_default="store_card")
    artwork_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, deferred_group="artwork")
    # [{"type", "url"}], at most two links shown under the card.
    featured_actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    design_version: Mapped[int] = mapped_column(Integer, default=1)
    terms: Mapped[str] = mapped_column(Text, default="")
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(500))
    # [{"name", "latitude", "longitude", "relevant_text"}], at most 10.
    locations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    program: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The languages the card is written in, some of locales.LOCALES in their
    # order: the pass carries their .lproj strings, Google's class and object
    # their translations, and the first is the card's language for a member
    # whose own language is not among them.
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(LOCALES))
    # The latest club-wide message, shown in the pass's news field.
    message: Mapped[str | None] = mapped_column(Text)
    message_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="clubs")


class IdentifierKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


def _kind_column() -> Enum:
    return Enum(IdentifierKind, name="kind", native_enum=False, create_constraint=True, length=8,
                values_callable=lambda kinds: [k.value for k in kinds])


class Customer(Base):
    """A person across clubs: the bank-app view of every card they hold.

    It knows nothing a brand told us; it holds only the emails and phones
    the person proved (``CustomerIdentifier``), and memberships point at it
    once their profile carries one of those (see ``loyalty.identity``)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]


class CustomerIdentifier(Base):
    """An email or phone a customer proved control of. One person each."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_customer_identifiers_kind_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[IdentifierKind] = mapped_column(_kind_column())
    # Canonical: lowercased email or E.164 phone (loyalty.contacts).
    value: Mapped[str] = mapped_column(String(320))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignInChallenge(Base):
    """A sign-in link or code on its way to an email or phone. Only a hash
    of the secret is kept; ``used_at`` spends it (also when a newer one
    replaces it or the attempts run out)."""

    __tablename__ = "sign_in_challenges"
    __table_args__ = (Index("ix_sign_in_challenges_target", "kind", "target", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[IdentifierKind] = mapped_column(_kind_column())
    target: Mapped[str] = mapped_column(String(320))
    # SHA-256 hex of a link's token; argon2 of a code.
    secret_hash: Mapped[str] = mapped_column(String(255), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


ACTIVE = text("status = 'active'")


class Membership(Base):
    """One card in one club, with the profile that club's brand was given.

    The profile (name, email, phone, birthday, locale) is the brand's
    alone: another brand enrolling the same email gets a membership of its
    own. Within a club an email or a phone belongs to one active membership
    (partial unique indexes, so two tills at once cannot make two, and an
    ended card does not block joining again). ``customer_id`` is set only
    once the person proved the profile's email or phone (loyalty.identity).

    ``version`` grows on every change the card shows; ``change_seq`` tags
    the transaction that made that change for Apple's passesUpdatedSince
    (its transaction id on PostgreSQL, a counter on SQLite: see
    ``wallet.loyalty.cards``); ``card_modified_at`` is the pass's Last-Modified and
    strictly increases, one second at least, with every version.
    No column a card change writes is indexed (``change_seq`` is read only
    for a device's own cards, found through its registrations): on
    PostgreSQL the change is then a HOT update, which adds no entry to the
    table's many indexes.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("club_id", "card_number", name="uq_memberships_club_card_number"),
        Index("uq_memberships_club_email_active", "club_id", "email", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("uq_memberships_club_phone_active", "club_id", "phone", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        # The portal's search by the start of a name (wallet.web.portal.members).
        Index("ix_memberships_club_name", "club_id", "name"),
        # Members joined over a period (wallet.loyalty.numbers).
        Index("ix_memberships_club_created", "club_id", "created_at"),
        # A club's members a page at a time in id order (a club message).
        Index("ix_memberships_club_by_id", "club_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of its own: those above begin with it (migration 0018).
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    card_number: Mapped[str] = mapped_column(String(32))
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    auth_token: Mapped[str] = mapped_column(String(64))
    # Secret part of the member's apple_pass_url / card page URL.
    download_token: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Canonical forms (loyalty.contacts): lowercased email, E.164 phone.
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    birthday: Mapped[date | None]
    # The language of the card and of what we send the member (en, ru).
    locale: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | ended
    ended_at: Mapped[datetime | None]
    # Derived figures kept for fast reads; the ledger is the truth and tests
    # check these against it.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    cash_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    stamps: Mapped[int] = mapped_column(Integer, default=0)
    tier: Mapped[str | None] = mapped_column(String(64))
    expiring_points: Mapped[int] = mapped_column(BigInteger, default=0)
    expiring_on: Mapped[date | None]
    # Next tier review (downgrades happen only then); see loyalty.schedule.
    tier_review_at: Mapped[datetime | None]
    # A message for this member's card only (a club message sent to one tier);
    # the card shows whichever of it and club.message is newer.
    message: Mapped[str | None] = mapped_column(Text)
    message_at: Mapped[datetime | None]
    referral_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("memberships.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    card_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where the card was made: "join_page", "api", "import" (a brand's CSV
    # of its existing members), "demo"; empty for cards made before this
    # was recorded. See loyalty.numbers for how sources are counted.
    source: Mapped[str | None] = mapped_column(String(16))

    club: Mapped[Club] = relationship()
    customer: Mapped[Customer | None] = relationship()


class ChangeCounter(Base):
    """One row per named counter. Taking the next value locks the row until
    commit, so values are handed out in commit order; only SQLite's single
    writer uses it (see cards.py)."""

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


PENDING = text("done_at IS NULL")


class OutboxEvent(Base):
    """Work that must happen after a commit: a card to re-render and push, a
    webhook to deliver, a message to send (``kind``, see loyalty/outbox.py).
    Written in the same transaction as the change, kept until a worker has
    done it (``done_at``); a worker leases rows by setting ``locked_until`` so
    a dead worker's rows come back after the lease."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "done_at", "available_at"),
        # A claim's other pending rows of the cards it picked (wallet.jobs.outbox).
        Index("ix_outbox_pending_cards", "membership_id", sqlite_where=PENDING, postgresql_where=PENDING),
        # The kinds are a closed set the database keeps. Read back as a plain
        # string, so a worker older than a kind leaves its rows for a newer one.
        CheckConstraint("kind IN (" + ", ".join(f"'{kind.value}'" for kind in OutboxKind) + ")", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    membership_id: Mapped[int | None] = mapped_column(
        ForeignKey("memberships.id", ondelete="CASCADE"), index=True
    )
    club_id: Mapped[int | None] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]

    @classmethod
    def carrying(cls, payload: OutboxPayload, *, membership_id: int | None = None, club_id: int | None = None,
                 brand_id: int | None = None) -> OutboxEvent:
        """A new row of the payload's kind."""
        return cls(kind=payload.kind, payload=payload.to_json(), membership_id=membership_id, club_id=club_id,
                   brand_id=brand_id)


class StaffRole(enum.Enum):
    """What a person may do for a brand: the owner everything, a manager the
    clubs, members and messages, a cashier the till only."""

    OWNER = "owner"
    MANAGER = "manager"
    CASHIER = "cashier"


def _staff_role() -> Enum:
    return Enum(StaffRole, name="staff_role", native_enum=False, create_constraint=True, length=16,
                values_callable=lambda roles: [r.value for r in roles], validate_strings=True)


class StaffUser(Base):
    """A person who signs in to a brand's portal. The brand's owner is its
    first staff user; one email signs in to one brand."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[StaffRole] = mapped_column(_staff_role())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()


class StaffInvite(Base):
    """The owner's invitation for a person to sign in to the brand with a
    role: a link that works once, until it expires or the owner withdraws
    it. Only a SHA-256 of the link's token is stored, as for API keys."""

    __tablename__ = "staff_invites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[StaffRole] = mapped_column(_staff_role())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()


class PasswordReset(Base):
    """A link that sets a staff user's password once, until it expires.
    Only a SHA-256 of its token is stored."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    staff: Mapped[StaffUser] = relationship()
