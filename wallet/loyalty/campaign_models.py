"""Tables of segments, campaigns and automatic messages (see
``wallet.loyalty.campaigns``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN (" + ", ".join(f"'{v.value}'" for v in values) + ")", name=column)


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time
    SENDING = "sending"  # pages of its segment being written
    SENT = "sent"  # every card of the segment has the message queued
    CANCELLED = "cancelled"


class AutoKind(StrEnum):
    """The occasions of automatic messages."""

    EXPIRING = "expiring"  # points expire within the club's warning window
    TIER_REACHED = "tier_reached"  # the member moved up to a tier
    BIRTHDAY = "birthday"  # the birthday bonus was paid
    WINBACK = "winback"  # no purchase for ``days`` days


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # on the card, the wallets not told yet
    REACHED = "reached"  # a wallet holding the card was told, with a notification
    SILENT = "silent"  # only Google holds it, and it had its 3 notifications today
    FAILED = "failed"  # a wallet could not be told; the outbox tries again
    NO_WALLET = "no_wallet"  # the card is in no wallet: the card page shows it


class SavedSegment(Base):
    """A brand's saved segment of one club: its rules (segments.Segment)."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("club_id", "name", name="uq_segments_club_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """A message to a segment of one club, now or at ``send_at``.

    ``rules`` is the segment as it was when the campaign was made (a saved
    segment edited later does not change whom it went to). The segment is
    written a page at a time (``after_id``: the last membership id done),
    each page in its own transaction, so a worker that dies loses at most
    its uncommitted page, and the next one goes on from ``after_id``."""

    __tablename__ = "campaigns"
    __table_args__ = (_one_of("status", CampaignStatus), Index("ix_campaigns_club_created", "club_id", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    segment_name: Mapped[str | None] = mapped_column(String(100))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text: Mapped[str] = mapped_column(Text)
    send_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.SCHEDULED.value)
    after_id: Mapped[int] = mapped_column(BigInteger, default=0)
    targeted: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AutoMessage(Base):
    """An automatic message a brand switched on for one club."""

    __tablename__ = "auto_messages"
    __table_args__ = (UniqueConstraint("club_id", "kind", name="uq_auto_messages_club_kind"), _one_of("kind", AutoKind))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str] = mapped_column(Text, default="")
    # Win-back: days without a purchase.
    days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageDelivery(Base):
    """One message to one card: a campaign's, or an automatic one's for
    one occasion. ``occasion`` ("campaign:7", "expiring:lot:42",
    "birthday:2027", ...) is unique per member, so each goes once; the
    workers record what each wallet did in ``status``."""

    __tablename__ = "message_deliveries"
    __table_args__ = (
        UniqueConstraint("membership_id", "occasion", name="uq_message_deliveries_membership_occasion"),
        Index("ix_message_deliveries_campaign_status", "campaign_id", "status"),
        Index("ix_message_deliveries_club_kind", "club_id", "kind", "created_at"),
        _one_of("status", DeliveryStatus),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # "campaign" or an AutoKind.
    kind: Mapped[str] = mapped_column(String(16))
    occasion: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
