"""Automatic messages a brand switches on per club: points expiring within
the warning window, a tier reached, the birthday bonus, win-back after N
days without a purchase.

Each is put on the member's card (its news field, as a campaign's message
is) by the code that notices the occasion, in the same transaction:
- expiring: the time rules' expiry warning (wallet.loyalty.schedule);
- tier reached and birthday: the booking of the tier change or the
  birthday bonus (``ledger_occasions``, from ``finish_booking``), whether a
  till's purchase or the time rules made it;
- win-back: the time rules, for the members ``winback_candidates`` finds.
A ``MessageDelivery`` row per member and occasion ("expiring:lot:42",
"tier:Gold:2027-03-01", "birthday:2027", "winback:2027-01-05"), unique in
the database, makes each go once; the workers record what each wallet did
with it, as for campaigns.

The text may name ``{name}``, ``{points}``, ``{date}``, ``{tier}`` and
``{days}``; what a text names that the occasion lacks stays as written.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.campaign_models import AutoKind, AutoMessage, DeliveryStatus, MessageDelivery
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.ledger.club_rules import ClubRules
from wallet.loyalty.ledger_models import BONUS, PURCHASE, TIER, LedgerTransaction
from wallet.loyalty.messages import MAX_MESSAGE
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import Program
from wallet.loyalty.segments import MAX_DAYS, Segment, segment_filter

PLACEHOLDERS = ("name", "points", "date", "tier", "days")
DEFAULT_WINBACK_DAYS = 60


def set_auto_message(session: Session, club: Club, kind: AutoKind, *, enabled: bool, text: str,
                     days: int | None = None) -> AutoMessage:
    """Switch one automatic message of the club on or off, with its text
    (and, for win-back, its days). RuleViolation for a text that is empty
    while switched on, too long, or days out of range."""
    kind = AutoKind(kind)
    text = valid_text(text, "text", max_len=MAX_MESSAGE, code="invalid_text", multiline=True,
                      allow_empty=not enabled)
    if kind is AutoKind.WINBACK:
        days = DEFAULT_WINBACK_DAYS if days is None else days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise RuleViolation(f"days must be between 1 and {MAX_DAYS}", code="invalid_days")
    else:
        days = None
    row = session.scalar(select(AutoMessage).where(AutoMessage.club_id == club.id, AutoMessage.kind == kind.value))
    if row is None:
        row = AutoMessage(club_id=club.id, kind=kind.value)
        session.add(row)
    row.enabled, row.text, row.days = enabled, text, days
    # A new state of the club: bookings keep which of its automatic
    # messages are on with its rules, by this (ledger.club_rules).
    club.updated_at = utcnow()
    session.flush()
    return row


def club_auto_messages(session: Session, club_id: int) -> dict[AutoKind, AutoMessage]:
    return {AutoKind(row.kind): row for row in session.scalars(
        select(AutoMessage).where(AutoMessage.club_id == club_id))}


class _Values(string.Formatter):
    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "{" + str(key) + "}")


def render(text: str, **values: Any) -> str:
    """The text with its placeholders filled; a malformed one is left as written."""
    try:
        return _Values().vformat(text, (), values)
    except (ValueError, IndexError, AttributeError, KeyError):
        return text


def auto_message(session: Session, member: Membership, kind: AutoKind, occasion: str, now: datetime,
                 **values: Any) -> str | None:
    """If the club switched ``kind`` on and the member has not had this
    occasion's message: put it on the card (the caller holds the member's
    row locked and records the card change) and return the occasion."""
    row = session.scalar(select(AutoMessage).where(AutoMessage.club_id == member.club_id,
                                                   AutoMessage.kind == kind.value, AutoMessage.enabled.is_(True)))
    if row is None or not row.text:
        return None
    occasion = f"{kind.value}:{occasion}"
    had = session.scalar(select(MessageDelivery.id).where(MessageDelivery.membership_id == member.id,
                                                          MessageDelivery.occasion == occasion))
    if had is not None:
        return None
    session.add(MessageDelivery(club_id=member.club_id, membership_id=member.id, kind=kind.value, occasion=occasion,
                                status=DeliveryStatus.QUEUED.value, created_at=now, updated_at=now))
    member.message = render(row.text, **{"name": member.name, "days": row.days, **values})
    member.message_at = now
    return occasion


def ledger_occasions(session: Session, member: Membership, club: Club | ClubRules,
                     txns: Sequence[LedgerTransaction]) -> list[str]:
    """The automatic messages a booking's entries call for: a tier moved up
    to, a birthday bonus paid. A club's kept rules (``ClubRules``) know
    which of these it has switched on, so a club without them is asked
    nothing."""
    if isinstance(club, ClubRules) and not club.auto_messages:
        return []
    occasions: list[str] = []
    for txn in txns:
        now = txn.created_at
        if txn.type == TIER and txn.tier:
            tiers = Program.of(club).tiers
            before = (txn.details or {}).get("from")
            if tiers is not None and (before is None or tiers.rank(txn.tier) > tiers.rank(before)):
                found = auto_message(session, member, AutoKind.TIER_REACHED, f"{txn.tier}:{now.date().isoformat()}",
                                     now, tier=txn.tier)
                if found:
                    occasions.append(found)
        elif txn.type == BONUS and (txn.details or {}).get("bonus") == "birthday":
            found = auto_message(session, member, AutoKind.BIRTHDAY, str(now.year), now, points=txn.points)
            if found:
                occasions.append(found)
    return occasions


def _last_purchase() -> Any:
    L = LedgerTransaction
    return (select(func.max(L.created_at)).where(L.membership_id == Membership.id, L.type == PURCHASE)
            .scalar_subquery())


def winback_candidates(session: Session, as_of: datetime) -> set[int]:
    """Members of clubs with win-back switched on who have gone its days
    without a purchase (and were members that long) and were not sent it
    since their last purchase."""
    ids: set[int] = set()
    for club_id, days in session.execute(select(AutoMessage.club_id, AutoMessage.days).where(
            AutoMessage.kind == AutoKind.WINBACK.value, AutoMessage.enabled.is_(True))).all():
        days = days or DEFAULT_WINBACK_DAYS
        since = func.coalesce(_last_purchase(), Membership.created_at)
        sent = exists(select(MessageDelivery.id).where(
            MessageDelivery.membership_id == Membership.id, MessageDelivery.kind == AutoKind.WINBACK.value,
            MessageDelivery.created_at >= since))
        ids.update(session.scalars(select(Membership.id).where(
            *segment_filter(club_id, Segment(no_purchase_days=days), as_of),
            Membership.created_at <= as_of - timedelta(days=days), ~sent)))
    return ids


def winback(session: Session, member: Membership, as_of: datetime) -> str | None:
    """The win-back message, if the member is due one as of ``as_of``."""
    row = session.scalar(select(AutoMessage).where(AutoMessage.club_id == member.club_id,
                                                   AutoMessage.kind == AutoKind.WINBACK.value,
                                                   AutoMessage.enabled.is_(True)))
    if row is None or member.status != "active":
        return None
    days = row.days or DEFAULT_WINBACK_DAYS
    last = session.scalar(select(func.max(LedgerTransaction.created_at)).where(
        LedgerTransaction.membership_id == member.id, LedgerTransaction.type == PURCHASE))
    since = last or member.created_at
    if since > as_of - timedelta(days=days):
        return None
    return auto_message(session, member, AutoKind.WINBACK, since.date().isoformat(), as_of, days=days)


def auto_results(session: Session, club_id: int, since: datetime) -> dict[AutoKind, dict[str, int]]:
    """Per automatic message, how many went out since ``since`` and what
    each wallet did with them (DeliveryStatus counts; "sent" is their sum)."""
    out = {kind: {"sent": 0, **{status.value: 0 for status in DeliveryStatus}} for kind in AutoKind}
    for kind, status, count in session.execute(
        select(MessageDelivery.kind, MessageDelivery.status, func.count(MessageDelivery.id))
        .where(MessageDelivery.club_id == club_id, MessageDelivery.created_at >= since,
               MessageDelivery.kind.in_([k.value for k in AutoKind]))
        .group_by(MessageDelivery.kind, MessageDelivery.status)
    ).tuples():
        out[AutoKind(kind)][status] = int(count)
        out[AutoKind(kind)]["sent"] += int(count)
    return out
