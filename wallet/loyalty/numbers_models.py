"""Tables the club's numbers read besides the ledger and the memberships:
the members' survey answers (NPS) and the log of cards added to and removed
from phones' wallets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId


class NpsAnswer(Base):
    """One member's answer to "How likely are you to recommend us?" (0-10)
    in one survey period (a calendar quarter, ``2026-Q4``): one answer per
    member per period. ``tier`` is the member's tier when answering, so the
    NPS of each tier does not move when members change tier later."""

    __tablename__ = "nps_answers"
    __table_args__ = (
        UniqueConstraint("membership_id", "period", name="uq_nps_answers_membership_period"),
        Index("ix_nps_answers_club_created", "club_id", "created_at"),
        CheckConstraint("score BETWEEN 0 AND 10", name="score"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardWallet(StrEnum):
    """Where a card lives on a phone: Apple Wallet, the Android apps that
    speak Apple's web service (the values of wallet.apple's WalletApp), or
    Google Wallet."""

    APPLE = "apple"
    WALLETPASSES = "walletpasses"
    WALLETUNION = "walletunion"
    WALLETUNION_HMS = "walletunion_hms"
    GOOGLE = "google"


class CardEvent(Base):
    """A card added to (``installed``) or removed from a wallet of one kind.
    Written by the Apple web service (first registration of a pass in that
    app, and the last one gone) and by Google's save/delete callbacks, so
    for each member and wallet installs and removals alternate: the sum of
    +1 per install and -1 per removal is 1 while a card is on a phone."""

    __tablename__ = "card_events"
    __table_args__ = (Index("ix_card_events_club_created", "club_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    wallet: Mapped[CardWallet] = mapped_column(
        Enum(CardWallet, name="wallet", native_enum=False, create_constraint=True, length=16,
             values_callable=lambda kinds: [k.value for k in kinds]))
    installed: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
