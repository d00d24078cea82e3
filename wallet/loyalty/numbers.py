"""A club's numbers (or a brand's, over all its clubs) for a period: members,
cards on phones, points, purchases, cohorts and NPS.

Every figure is an aggregate query in the database over an index
(ledger and answers by club and time, memberships by club and time), so its
cost follows the period's activity and the club's members, not the length
of its history; nothing here loads rows into Python to count them. Only
aggregates come back (one row per day, month, tier, wallet or source).

A period is whole UTC days, ``start`` to ``end`` inclusive. Money is in
minor units, per currency (a brand's clubs may use several).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, literal, or_, select
from sqlalchemy.orm import Session

from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.ledger_models import ADJUST, BONUS, EXPIRE, PURCHASE, REDEEM, REFUND, LedgerTransaction
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.nps import nps_score
from wallet.loyalty.numbers_models import CardEvent, CardWallet, NpsAnswer
from wallet.loyalty.program import Program

ACTIVE_DAYS = 90  # a member who bought within this many days is active
MAX_PERIOD_DAYS = 731
DEFAULT_PERIOD_DAYS = 90
LATEST_COMMENTS = 10
SOURCES = ("join_page", "api", "import", "referral", "other")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=timezone.utc)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=timezone.utc)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def months(self) -> list[str]:
        out: list[str] = []
        day = self.start.replace(day=1)
        while day <= self.end:
            out.append(f"{day.year:04d}-{day.month:02d}")
            day = (day + timedelta(days=32)).replace(day=1)
        return out


def period_of(start: date | str | None, end: date | str | None, *, today: date) -> Period:
    """The period from query values (ISO dates; either may be missing: the
    last ``DEFAULT_PERIOD_DAYS`` days up to today)."""
    try:
        last = _as_date(end) or today
        first = _as_date(start) or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    except ValueError:
        raise RuleViolation("from and to must be dates (YYYY-MM-DD)", code="invalid_period") from None
    if first > last:
        raise RuleViolation("the period's start is after its end", code="invalid_period")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise RuleViolation(f"a period is at most {MAX_PERIOD_DAYS} days", code="invalid_period")
    return Period(first, last)


def _as_date(value: date | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# --- the figures ---------------------------------------------------------------


@dataclass
class Numbers:
    period: Period
    club_ids: list[int]
    members: dict[str, Any] = field(default_factory=dict)
    cards: dict[str, Any] = field(default_factory=dict)
    points: dict[str, Any] = field(default_factory=dict)
    purchases: dict[str, Any] = field(default_factory=dict)
    cohorts: list[dict[str, Any]] = field(default_factory=list)
    nps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {"from": self.period.start.isoformat(), "to": self.period.end.isoformat()},
            "club_ids": self.club_ids,
            "members": self.members,
            "cards": self.cards,
            "points": self.points,
            "purchases": self.purchases,
            "cohorts": self.cohorts,
            "nps": self.nps,
        }


def compute(session: Session, clubs: Sequence[Club], period: Period) -> Numbers:
    """Every number of ``clubs`` (one club, or all of a brand's) over ``period``."""
    ids = sorted(club.id for club in clubs)
    numbers = Numbers(period=period, club_ids=ids)
    dialect = session.get_bind().dialect.name
    numbers.members = _members(session, ids, period, dialect)
    numbers.cards = _cards(session, ids, period, numbers.members["total"])
    numbers.points = _points(session, clubs, period)
    numbers.purchases = _purchases(session, ids, period)
    numbers.cohorts = _cohorts(session, ids, period, dialect)
    numbers.nps = _nps(session, ids, period, dialect)
    return numbers


def _day(column: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM-DD`` of a UTC timestamp column."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


def _month(column: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM`` of a UTC timestamp column."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM")


def share(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 decimals (0.1234 = 12.34 %); None when whole is 0."""
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _members(session: Session, ids: list[int], period: Period, dialect: str) -> dict[str, Any]:
    M, T = Membership, LedgerTransaction
    joined_in = and_(M.club_id.in_(ids), M.created_at >= period.since, M.created_at < period.until)
    day = _day(M.created_at, dialect)
    per_day = dict(session.execute(select(day, func.count()).where(joined_in).group_by(day)).tuples().all())
    source = case(
        (M.referred_by_id.is_not(None), literal("referral")),
        (M.source.in_(("join_page", "api", "import")), M.source),
        else_=literal("other"),
    )
    by_source = dict(session.execute(select(source, func.count()).where(joined_in).group_by(source)).tuples().all())
    total = session.scalar(select(func.count()).select_from(M).where(
        M.club_id.in_(ids), M.created_at < period.until,
        or_(M.ended_at.is_(None), M.ended_at >= period.until))) or 0
    active = session.scalar(select(func.count(distinct(T.membership_id))).where(
        T.club_id.in_(ids), T.type == PURCHASE, T.created_at >= period.until - timedelta(days=ACTIVE_DAYS),
        T.created_at < period.until)) or 0
    days = [{"date": d.isoformat(), "joined": int(per_day.get(d.isoformat(), 0))} for d in period.days()]
    weeks: dict[str, int] = {}
    for d, row in zip(period.days(), days):
        monday = (d - timedelta(days=d.weekday())).isoformat()
        weeks[monday] = weeks.get(monday, 0) + row["joined"]
    return {
        "joined": sum(row["joined"] for row in days),
        "joined_per_day": days,
        "joined_per_week": [{"week": week, "joined": count} for week, count in weeks.items()],
        "total": int(total),
        "active": int(active),
        "active_share": share(active, total),
        "by_source": {name: int(by_source.get(name, 0)) for name in SOURCES},
    }


def _cards(session: Session, ids: list[int], period: Period, total_members: int) -> dict[str, Any]:
    C = CardEvent
    in_period = and_(C.club_id.in_(ids), C.created_at >= period.since, C.created_at < period.until)
    moves = session.execute(select(C.wallet, C.installed, func.count()).where(in_period)
                            .group_by(C.wallet, C.installed)).all()
    step = case((C.installed.is_(True), 1), else_=-1)
    up_to_end = and_(C.club_id.in_(ids), C.created_at < period.until)
    on_phones = dict(session.execute(select(C.wallet, func.sum(step)).where(up_to_end)
                                     .group_by(C.wallet)).tuples().all())
    holding = select(C.membership_id).where(up_to_end).group_by(C.membership_id).having(func.sum(step) > 0)
    members_with_card = session.scalar(select(func.count()).select_from(holding.subquery())) or 0
    per_wallet = {wallet.value: {"installed": 0, "removed": 0, "on_phones": int(on_phones.get(wallet, 0) or 0)}
                  for wallet in CardWallet}
    for wallet, installed, count in moves:
        per_wallet[CardWallet(wallet).value]["installed" if installed else "removed"] += int(count)
    return {
        "wallets": per_wallet,
        "installed": sum(w["installed"] for w in per_wallet.values()),
        "removed": sum(w["removed"] for w in per_wallet.values()),
        "on_phones": sum(w["on_phones"] for w in per_wallet.values()),
        "members_with_card": int(members_with_card),
        "members_with_card_share": share(members_with_card, total_members),
    }


def _points(session: Session, clubs: Sequence[Club], period: Period) -> dict[str, Any]:
    T, M = LedgerTransaction, Membership
    ids = [club.id for club in clubs]
    gain = case((T.points > 0, T.points), else_=0)
    loss = case((T.points < 0, -T.points), else_=0)
    rows = session.execute(
        select(T.type, func.sum(gain), func.sum(loss))
        .where(T.club_id.in_(ids), T.created_at >= period.since, T.created_at < period.until,
               T.type.in_((PURCHASE, BONUS, ADJUST, REDEEM, EXPIRE, REFUND)))
        .group_by(T.type)
    ).all()
    gains = {kind: int(g or 0) for kind, g, _l in rows}
    losses = {kind: int(lo or 0) for kind, _g, lo in rows}
    issued = gains.get(PURCHASE, 0) + gains.get(BONUS, 0) + gains.get(ADJUST, 0)
    expired = losses.get(EXPIRE, 0)
    held = session.execute(
        select(M.club_id, func.coalesce(func.sum(M.balance), 0), func.coalesce(func.sum(M.pending), 0))
        .where(M.club_id.in_(ids), M.status == "active").group_by(M.club_id)
    ).all()
    by_club = {club.id: club for club in clubs}
    liability: dict[str, int] = defaultdict(int)
    outstanding = pending = 0
    for club_id, balance, waiting in held:
        club = by_club[club_id]
        rules = Program.of(club).points
        outstanding += int(balance)
        pending += int(waiting)
        liability[club.currency] += int(balance) * (rules.redeem_value if rules else 0)
    return {
        "issued": issued,
        "redeemed": losses.get(REDEEM, 0),
        "expired": expired,
        "reversed": losses.get(REFUND, 0) + losses.get(ADJUST, 0),
        "pending": pending,
        "outstanding": outstanding,
        "liability": dict(sorted(liability.items())),
        "breakage": share(expired, issued),
    }


def _purchases(session: Session, ids: list[int], period: Period) -> dict[str, Any]:
    T, M = LedgerTransaction, Membership
    bought = and_(T.club_id.in_(ids), T.type == PURCHASE, T.created_at >= period.since,
                  T.created_at < period.until)
    per_member = (select(T.membership_id, func.count().label("n")).where(bought)
                  .group_by(T.membership_id).subquery())
    buyers, repeaters, count = session.execute(select(
        func.count(), func.coalesce(func.sum(case((per_member.c.n >= 2, 1), else_=0)), 0),
        func.coalesce(func.sum(per_member.c.n), 0))).one()
    money = session.execute(select(T.currency, func.count(), func.sum(T.amount)).where(bought)
                            .group_by(T.currency)).all()
    refunds = dict(session.execute(
        select(T.currency, func.sum(T.amount)).where(
            T.club_id.in_(ids), T.type == REFUND, T.created_at >= period.since, T.created_at < period.until)
        .group_by(T.currency)).tuples().all())
    tiers = session.execute(
        select(M.tier, T.currency, func.count(distinct(T.membership_id)), func.count(), func.sum(T.amount))
        .join(M, M.id == T.membership_id).where(bought).group_by(M.tier, T.currency)
        .order_by(M.tier, T.currency)
    ).all()
    return {
        "buyers": int(buyers),
        "purchases": int(count),
        "repeat_buyers": int(repeaters),
        "repeat_rate": share(repeaters, buyers),
        "frequency": float((Decimal(count) / Decimal(buyers)).quantize(Decimal("0.01"), ROUND_HALF_UP))
        if buyers else None,
        "spend": {currency: int(total or 0) for currency, _n, total in money},
        "refunds": {currency: int(total or 0) for currency, total in refunds.items()},
        "average_purchase": {currency: _average(int(total or 0), int(n)) for currency, n, total in money},
        "by_tier": [{"tier": tier, "currency": currency, "buyers": int(b), "purchases": int(n),
                     "spend": int(total or 0)} for tier, currency, b, n, total in tiers],
    }


def _average(total: int, count: int) -> int | None:
    """Money per purchase in minor units, rounded half up."""
    return int((Decimal(total) / Decimal(count)).quantize(Decimal(1), ROUND_HALF_UP)) if count else None


def _cohorts(session: Session, ids: list[int], period: Period, dialect: str) -> list[dict[str, Any]]:
    """Members who joined in each month of the period, and the share of them
    who bought in that month and each month after it up to the period's end."""
    M, T = Membership, LedgerTransaction
    joined_in = and_(M.club_id.in_(ids), M.created_at >= period.since, M.created_at < period.until)
    cohort = _month(M.created_at, dialect)
    sizes = dict(session.execute(select(cohort, func.count()).where(joined_in).group_by(cohort)).tuples().all())
    bought_month = _month(T.created_at, dialect)
    active = session.execute(
        select(cohort, bought_month, func.count(distinct(M.id)))
        .join(T, T.membership_id == M.id)
        .where(joined_in, T.type == PURCHASE, T.created_at >= period.since, T.created_at < period.until)
        .group_by(cohort, bought_month)
    ).all()
    counts = {(c, b): int(n) for c, b, n in active}
    months = period.months()
    out = []
    for index, month in enumerate(months):
        size = int(sizes.get(month, 0))
        if not size:
            continue
        out.append({"month": month, "members": size, "months": [
            {"month": later, "buyers": counts.get((month, later), 0),
             "share": share(counts.get((month, later), 0), size)} for later in months[index:]]})
    return out


def _nps(session: Session, ids: list[int], period: Period, dialect: str) -> dict[str, Any]:
    A = NpsAnswer
    in_period = and_(A.club_id.in_(ids), A.created_at >= period.since, A.created_at < period.until)
    promoter = func.coalesce(func.sum(case((A.score >= 9, 1), else_=0)), 0)
    detractor = func.coalesce(func.sum(case((A.score <= 6, 1), else_=0)), 0)

    def figures(answers: int, promoters: int, detractors: int) -> dict[str, Any]:
        return {"answers": int(answers), "promoters": int(promoters), "detractors": int(detractors),
                "passives": int(answers) - int(promoters) - int(detractors),
                "nps": nps_score(int(promoters), int(detractors), int(answers))}

    total = figures(*session.execute(select(func.count(), promoter, detractor).where(in_period)).one())
    month = _month(A.created_at, dialect)
    trend = {m: figures(n, p, d) for m, n, p, d in session.execute(
        select(month, func.count(), promoter, detractor).where(in_period).group_by(month)).all()}
    tiers = session.execute(select(A.tier, func.count(), promoter, detractor).where(in_period)
                            .group_by(A.tier).order_by(A.tier)).all()
    comments = session.execute(
        select(A.score, A.comment, A.tier, A.created_at, A.membership_id)
        .where(in_period, A.comment != "").order_by(A.created_at.desc(), A.id.desc()).limit(LATEST_COMMENTS)
    ).all()
    return {
        **total,
        "trend": [{"month": m, **trend.get(m, figures(0, 0, 0))} for m in period.months()],
        "by_tier": [{"tier": tier, **figures(n, p, d)} for tier, n, p, d in tiers],
        "comments": [{"score": score, "comment": comment, "tier": tier, "answered_at": at.isoformat(),
                      "member_id": member_id} for score, comment, tier, at, member_id in comments],
    }
