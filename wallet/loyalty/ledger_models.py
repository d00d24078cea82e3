"""Tables of the points ledger.

``LedgerTransaction`` rows are append-only: each records what one event did
to a member's figures (signed deltas of spendable points, pending points,
cashback money and stamps), what rule produced it (``details``) and who made
it (``actor``). The only column ever updated afterwards is a purchase's
``refunded_amount``, the running total that keeps partial refunds within the
purchase. Cached figures on Membership are sums of these deltas.

``PointLot`` rows are the FIFO structure behind the balance: every credit of
points opens a lot (with its pending window and expiry), every debit takes
from lots oldest first. A lot's ``remaining`` changes; the ledger row that
caused each change is what stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId

# Types of ledger entries.
PURCHASE = "purchase"  # earn points / cashback / a stamp
REDEEM = "redeem"
REFUND = "refund"
ADJUST = "adjust"
EXPIRE = "expire"
BONUS = "bonus"  # welcome, referral, birthday (see ``details["bonus"]``)
RELEASE = "release"  # pending points become spendable (points 0: moves pending -> balance)
TIER = "tier"  # tier change (points 0; ``tier`` is the new tier)
REWARD = "reward"  # stamp card full: reward earned (stamps -required)
STAMP = "stamp"  # a stamp given at the till without a purchase to book (stamps +1)
TYPES = (PURCHASE, REDEEM, REFUND, ADJUST, EXPIRE, BONUS, RELEASE, TIER, REWARD, STAMP)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index("ix_ledger_transactions_member_created", "membership_id", "created_at"),
        # The club's numbers over a period (wallet.loyalty.numbers).
        Index("ix_ledger_transactions_club_created", "club_id", "created_at"),
        # Partial on the columns a purchase leaves null (migration 0021):
        # every query names a value, and nulls never clashed.
        Index("uq_ledger_transactions_club_receipt", "club_id", "receipt_id", unique=True,
              sqlite_where=text("receipt_id IS NOT NULL"), postgresql_where=text("receipt_id IS NOT NULL")),
        Index("uq_ledger_transactions_dedupe_key", "dedupe_key", unique=True,
              sqlite_where=text("dedupe_key IS NOT NULL"), postgresql_where=text("dedupe_key IS NOT NULL")),
        # The foreign key's checks of a refunded purchase.
        Index("ix_ledger_transactions_refund_of_id", "refund_of_id",
              sqlite_where=text("refund_of_id IS NOT NULL"), postgresql_where=text("refund_of_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    # No index of its own: those above begin with it (migration 0018).
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    # Signed change of balance + pending (what the API calls "points").
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    cash_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    stamps_delta: Mapped[int] = mapped_column(Integer, default=0)
    # Money in minor units of ``currency``: the purchase or refund amount, or
    # the money value of redeemed points.
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    receipt_id: Mapped[str | None] = mapped_column(String(100))
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    # On purchases: how much of ``amount`` has been refunded so far.
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    # Makes scheduled and one-off entries idempotent ("expire:lot:12",
    # "birthday:5:2027", "welcome:5"): a second attempt hits the constraint.
    dedupe_key: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointLot(Base):
    __tablename__ = "point_lots"
    __table_args__ = (
        Index("ix_point_lots_member_open", "membership_id", "exhausted", "earned_at"),
        # The schedule's pending lots whose window ended: only pending lots
        # (most are released when opened, and wrote an entry nothing read).
        Index("ix_point_lots_release", "spendable_at",
              sqlite_where=text("released IS 0"), postgresql_where=text("released IS false")),
        Index("ix_point_lots_expiry", "exhausted", "expires_at"),
        # A member's earliest open expiry and pending release, read by every
        # booking's lock (ledger.figures): the first entry of the member's
        # part of each, instead of walking every member's lots in date order
        # (the global indexes above) or every open lot of the member.
        Index("ix_point_lots_member_expiry", "membership_id", "expires_at",
              sqlite_where=text("exhausted IS 0"), postgresql_where=text("exhausted IS false")),
        Index("ix_point_lots_member_pending", "membership_id", "spendable_at",
              sqlite_where=text("exhausted IS 0 AND released IS 0"),
              postgresql_where=text("exhausted IS false AND released IS false")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime]
    # Until then the lot's points are pending (the shop's return window).
    spendable_at: Mapped[datetime]
    released: Mapped[bool] = mapped_column(default=True)
    expires_at: Mapped[datetime | None]
    # remaining == 0 or expired: nothing left to take from or expire.
    exhausted: Mapped[bool] = mapped_column(default=False)
    expired_at: Mapped[datetime | None]
    # When the member was told (points.expiring) that this lot runs out soon.
    warned_at: Mapped[datetime | None]

    # Lets a lot be added with its entry in one flush (no id needed first).
    source: Mapped[LedgerTransaction] = relationship(lazy="raise")
