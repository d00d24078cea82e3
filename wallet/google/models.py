"""Tables of the Google side: what Google holds of each club and card, and
the save/delete callbacks it sent."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId


class GoogleClass(Base):
    """The LoyaltyClass of one club as Google last accepted it."""

    __tablename__ = "google_classes"

    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"), primary_key=True)
    class_id: Mapped[str] = mapped_column(String(255), unique=True)
    # SHA-256 of the body Google accepted last; another body is written again.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[datetime | None]
    # What Google answered when it refused the class (a 4xx), for the brand.
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]


class GoogleObject(Base):
    """The LoyaltyObject of one membership: whether Google has it, what it
    was sent last, and how many notifying updates it had today."""

    __tablename__ = "google_objects"

    membership_id: Mapped[int] = mapped_column(
        ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True
    )
    object_id: Mapped[str] = mapped_column(String(255), unique=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"), index=True)
    # Set once Google has the object: the save link then carries only its id.
    inserted_at: Mapped[datetime | None]
    # That link, signed when the object was inserted (wallet.google.links):
    # an answer showing the card reads it instead of signing it.
    save_link: Mapped[str | None] = mapped_column(Text)
    # What it was made for (links.link_made_for: the issuer, the service
    # account's key, the address): made for another, it is signed anew.
    save_link_for: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the figures (points, cash, stamps) and the tier Google was
    # sent last: a change of them is a notifying update.
    sent_figures: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the last message added to the object.
    sent_message: Mapped[str | None] = mapped_column(String(64))
    # Google lets a pass notify 3 times a day; counted per UTC day.
    notify_day: Mapped[date | None]
    notify_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    # From the save/delete callbacks: whether a Google Wallet holds the card.
    installed: Mapped[bool] = mapped_column(default=False)
    installed_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]


class WalletEventType(StrEnum):
    SAVE = "save"
    DELETE = "del"


class GoogleWalletEvent(Base):
    """One save or delete callback, by its nonce: Google may deliver one
    twice, and the second changes nothing."""

    __tablename__ = "google_wallet_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[WalletEventType] = mapped_column(
        Enum(WalletEventType, name="event_type", native_enum=False, create_constraint=True, length=8,
             values_callable=lambda kinds: [k.value for k in kinds])
    )
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
