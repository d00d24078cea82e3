"""Segments: which of one club's members a message goes to.

A segment is a set of rules (``SegmentRulesSchema``, one rule set for the
portal's form, the API and the database) that the database answers: the
rules become one SELECT of membership ids within the club, never rows
loaded into Python. Every rule narrows; an empty rule set is every active
member of the club. The club is always part of the query, so a segment can
never reach another club's, let alone another brand's, members.

Rules:
- ``tiers``: the member's tier is one of these.
- ``purchased_within_days`` / ``no_purchase_days``: the last purchase was
  within the last N days / there was none in the last N days (win-back).
- ``min_spend`` / ``max_spend``: total spend (purchases less refunds, minor units).
- ``min_balance`` / ``max_balance``: spendable points.
- ``expiring_within_days``: some points expire within N days.
- ``wallets``: the card is in one of these: ``apple`` (Apple Wallet),
  ``google`` (saved to Google Wallet), ``android`` (an Android wallet app
  speaking Apple's protocol), ``none`` (in no wallet).
- ``joined_within_days``: joined in the last N days.
- ``nps``: the member's latest survey answer (wallet.loyalty.nps) makes
  them a promoter, a passive or a detractor.

The wallets' tables belong to wallet.apple and wallet.google, which the core
does not import; their rows are read by name from the shared metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from sqlalchemy import Table, and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from wallet.db import Base
from wallet.loyalty.fields import Integer, RuleSet, Text, between, one_of
from wallet.loyalty.ledger_models import PURCHASE, LedgerTransaction, PointLot
from wallet.loyalty.models import Membership
from wallet.loyalty.nps import NpsCategory
from wallet.loyalty.numbers_models import NpsAnswer
from wallet.loyalty.program import MAX_MONEY, MAX_POINTS

MAX_DAYS = 3650
WALLETS = ("apple", "google", "android", "none")
NPS_GROUPS = tuple(category.value for category in NpsCategory)
# The registrations of Android wallet apps (wallet.apple.models.WalletApp).
ANDROID_APPS = ("walletpasses", "walletunion", "walletunion_hms")
# Google's limit of notifying updates per pass and day (wallet.google.sync).
GOOGLE_NOTIFICATIONS_PER_DAY = 3


def _doc(description: str, example: Any) -> dict[str, Any]:
    return {"description": description, "example": example}


class SegmentRulesSchema(RuleSet):
    """Which members of a club a message goes to; every rule narrows."""

    error_code = "invalid_segment"

    tiers = ma.fields.List(Text(max_len=64, allow_empty=False), load_default=list,
                           metadata=_doc("the member's tier is one of these", ["Gold"]))
    purchased_within_days = Integer(load_default=None, allow_none=True, validate=between(1, MAX_DAYS),
                                    metadata=_doc("the last purchase was within this many days", 30))
    no_purchase_days = Integer(load_default=None, allow_none=True, validate=between(1, MAX_DAYS),
                               metadata=_doc("no purchase for at least this many days", 90))
    min_spend = Integer(load_default=None, allow_none=True, validate=between(0, MAX_MONEY),
                        metadata=_doc("total spend at least this (minor units)", 100000))
    max_spend = Integer(load_default=None, allow_none=True, validate=between(0, MAX_MONEY),
                        metadata=_doc("total spend at most this (minor units)", None))
    min_balance = Integer(load_default=None, allow_none=True, validate=between(0, MAX_POINTS),
                          metadata=_doc("at least this many spendable points", 100))
    max_balance = Integer(load_default=None, allow_none=True, validate=between(0, MAX_POINTS),
                          metadata=_doc("at most this many spendable points", None))
    expiring_within_days = Integer(load_default=None, allow_none=True, validate=between(1, MAX_DAYS),
                                   metadata=_doc("some points expire within this many days", 14))
    wallets = ma.fields.List(ma.fields.String(validate=one_of(WALLETS)), load_default=list,
                             metadata=_doc("the card is in one of these wallets: apple, google, android, none",
                                           ["apple", "google"]))
    joined_within_days = Integer(load_default=None, allow_none=True, validate=between(1, MAX_DAYS),
                                 metadata=_doc("joined within this many days", 30))
    nps = ma.fields.List(ma.fields.String(validate=one_of(NPS_GROUPS)), load_default=list,
                         metadata=_doc("the latest survey answer: promoter, passive, detractor", ["detractor"]))

    @ma.validates_schema
    def _ranges(self, data: dict[str, Any], **_: Any) -> None:
        for low, high in (("min_spend", "max_spend"), ("min_balance", "max_balance")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                raise ma.ValidationError(f"must not be less than {low}", high)


@dataclass(frozen=True)
class Segment:
    tiers: tuple[str, ...] = ()
    purchased_within_days: int | None = None
    no_purchase_days: int | None = None
    min_spend: int | None = None
    max_spend: int | None = None
    min_balance: int | None = None
    max_balance: int | None = None
    expiring_within_days: int | None = None
    wallets: tuple[str, ...] = ()
    joined_within_days: int | None = None
    nps: tuple[str, ...] = ()

    @classmethod
    def load(cls, data: Any) -> Segment:
        """The segment of a JSON object; InvalidFields (code invalid_segment) otherwise."""
        rules = SegmentRulesSchema().load(data if data is not None else {})
        return cls(**{**rules, "tiers": tuple(dict.fromkeys(rules["tiers"])),
                      "wallets": tuple(dict.fromkeys(rules["wallets"])), "nps": tuple(dict.fromkeys(rules["nps"]))})

    def to_json(self) -> dict[str, Any]:
        """Only the rules set: the stored and shown form."""
        out: dict[str, Any] = {}
        for name in SegmentRulesSchema().fields:
            value = getattr(self, name)
            if value not in (None, ()):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def everyone(self) -> bool:
        return not self.to_json()


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _purchases(since: datetime | None = None) -> Any:
    L = LedgerTransaction
    query = select(L.id).where(L.membership_id == Membership.id, L.type == PURCHASE)
    if since is not None:
        query = query.where(L.created_at >= since)
    return exists(query)


def _spend() -> Any:
    L = LedgerTransaction
    return (
        select(func.coalesce(func.sum(L.amount - L.refunded_amount), 0))
        .where(L.membership_id == Membership.id, L.type == PURCHASE)
        .scalar_subquery()
    )


def _wallet(kind: str) -> Any:
    registrations = _table("apple_registrations")
    if kind == "apple":
        return exists(select(registrations.c.id).where(registrations.c.membership_id == Membership.id,
                                                       registrations.c.app == "apple"))
    if kind == "android":
        return exists(select(registrations.c.id).where(registrations.c.membership_id == Membership.id,
                                                       registrations.c.app.in_(ANDROID_APPS)))
    objects = _table("google_objects")
    google = exists(select(objects.c.membership_id).where(objects.c.membership_id == Membership.id,
                                                          objects.c.installed.is_(True)))
    if kind == "google":
        return google
    return and_(not_(_wallet("apple")), not_(_wallet("android")), not_(google))


# The scores of each answer category, as wallet.loyalty.nps.category reads them.
NPS_SCORES = {NpsCategory.PROMOTER: (9, 10), NpsCategory.PASSIVE: (7, 8), NpsCategory.DETRACTOR: (0, 6)}


def _nps(groups: tuple[str, ...]) -> Any:
    """Members whose latest survey answer (wallet.loyalty.nps) is in one of the groups."""
    A = NpsAnswer
    latest = (
        select(A.score).where(A.membership_id == Membership.id)
        .order_by(A.created_at.desc(), A.id.desc()).limit(1).scalar_subquery()
    )
    return or_(*(latest.between(*NPS_SCORES[NpsCategory(group)]) for group in groups))


def segment_filter(club_id: int, segment: Segment, now: datetime) -> list[Any]:
    """The WHERE clauses of a segment of one club, as of ``now``."""
    M = Membership
    where: list[Any] = [M.club_id == club_id, M.status == "active"]
    if segment.tiers:
        where.append(M.tier.in_(segment.tiers))
    if segment.purchased_within_days is not None:
        where.append(_purchases(now - timedelta(days=segment.purchased_within_days)))
    if segment.no_purchase_days is not None:
        where.append(not_(_purchases(now - timedelta(days=segment.no_purchase_days))))
    if segment.min_spend is not None:
        where.append(_spend() >= segment.min_spend)
    if segment.max_spend is not None:
        where.append(_spend() <= segment.max_spend)
    if segment.min_balance is not None:
        where.append(M.balance >= segment.min_balance)
    if segment.max_balance is not None:
        where.append(M.balance <= segment.max_balance)
    if segment.expiring_within_days is not None:
        P = PointLot
        where.append(exists(select(P.id).where(
            P.membership_id == M.id, P.exhausted.is_(False), P.remaining > 0, P.expires_at > now,
            P.expires_at <= now + timedelta(days=segment.expiring_within_days),
        )))
    if segment.wallets:
        where.append(or_(*(_wallet(kind) for kind in segment.wallets)))
    if segment.joined_within_days is not None:
        where.append(M.created_at >= now - timedelta(days=segment.joined_within_days))
    if segment.nps:
        where.append(_nps(segment.nps))
    return where


def count_segment(session: Session, club_id: int, segment: Segment, now: datetime) -> int:
    return session.scalar(select(func.count(Membership.id)).where(*segment_filter(club_id, segment, now))) or 0


def wallet_counts(session: Session, club_id: int, segment: Segment, now: datetime) -> dict[str, int]:
    """How many of the segment's cards are in each wallet (a card may be in
    several) and in none: what a message to it will do, wallet by wallet."""
    where = segment_filter(club_id, segment, now)
    objects = _table("google_objects")
    # Google lets a pass notify 3 times a UTC day (wallet.google.sync): a card
    # that had its 3 today gets the message silently.
    spent = exists(select(objects.c.membership_id).where(
        objects.c.membership_id == Membership.id, objects.c.installed.is_(True),
        objects.c.notify_day == now.date(), objects.c.notify_count >= GOOGLE_NOTIFICATIONS_PER_DAY))
    columns = [func.count(Membership.id).filter(_wallet(kind)).label(kind) for kind in WALLETS]
    row = session.execute(select(*columns, func.count(Membership.id).filter(spent).label("google_silent"))
                          .where(*where)).one()
    return {**{kind: int(getattr(row, kind) or 0) for kind in WALLETS}, "google_silent": int(row.google_silent or 0)}
