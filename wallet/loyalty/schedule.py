"""Time-based rules, run by `flask --app wsgi expire-points` and the
scheduled job: expiry, the end of pending windows, tier reviews, birthday
bonuses and expiry warnings, all as of one instant; with them the automatic
messages a club switched on (wallet.loyalty.automessages): the expiry
warning's, and win-back.

Candidates are found with a few indexed queries, then each member is handled
in a transaction of its own (row locked, like a till's purchase), so a run
over many members never holds locks for long and one failure does not undo
the rest. Running twice for the same instant books nothing new: lots carry
their released/expired/warned flags, bonuses carry a unique dedupe key per
member and year, and a tier review moves the member's next review date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from wallet.db import Database
from wallet.loyalty.automessages import auto_message, winback, winback_candidates
from wallet.loyalty.campaign_models import AutoKind
from wallet.loyalty.ledger import (
    apply_due,
    expiring_figures,
    finish_booking,
    get_member_for_update,
    grant_bonus,
    set_tier,
    window_spend,
)
from wallet.loyalty.ledger_models import EXPIRE, RELEASE, PointLot
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import Program
from wallet.loyalty.webhooks import emit_event

log = logging.getLogger(__name__)
BATCH = 500
BIRTHDAY_GRACE_DAYS = 7  # a run missed on the day still pays within a week
# A warning that comes late (the schedule did not run) still gives this much
# notice: the lot's expiry moves so, and the card shows the new date.
MIN_NOTICE = timedelta(days=1)
ACTOR = "system:schedule"


@dataclass
class Report:
    as_of: str
    members_checked: int = 0
    members_changed: int = 0
    released_lots: int = 0
    released_points: int = 0
    expired_lots: int = 0
    expired_points: int = 0
    tier_changes: int = 0
    birthday_bonuses: int = 0
    warnings: int = 0
    # Automatic messages put on cards (expiry warnings, win-back) by this run.
    auto_messages: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def birthday_in(year: int, born: date) -> date:
    """The birthday's date in ``year`` (29 February -> 28 February)."""
    try:
        return born.replace(year=year)
    except ValueError:
        return born.replace(year=year, day=28)


def birthday_due(born: date, joined: date, today: date) -> date | None:
    """The birthday to pay as of ``today``, if any: this year's (or last
    year's, around New Year) within the grace window, after joining."""
    for year in (today.year, today.year - 1):
        day = birthday_in(year, born)
        if day <= today < day + timedelta(days=BIRTHDAY_GRACE_DAYS) and day >= joined:
            return day
    return None


def _candidates(session: Session, as_of: datetime) -> set[int]:
    ids: set[int] = set()
    L = PointLot
    # Lots to release or expire.
    ids.update(session.scalars(
        select(L.membership_id).where(L.released.is_(False), L.spendable_at <= as_of).distinct()
    ))
    ids.update(session.scalars(
        select(L.membership_id).where(L.exhausted.is_(False), L.expires_at <= as_of).distinct()
    ))
    clubs = session.execute(select(Club.id, Club.program)).all()
    warn_clubs: dict[int, int] = {}
    tier_clubs: list[int] = []
    birthday_clubs: list[int] = []
    for club_id, raw in clubs:
        try:
            program = Program.from_dict(raw)
        except Exception:  # a club with rules stored before validation: skip it
            continue
        if program.points and program.points.warning_days > 0:
            warn_clubs[club_id] = program.points.warning_days
        if program.tiers:
            tier_clubs.append(club_id)
        if program.birthday_points > 0:
            birthday_clubs.append(club_id)
    # Lots expiring within a warning window that nobody was told about, and
    # members whose shown warning may be stale.
    for club_id, days in warn_clubs.items():
        ids.update(session.scalars(
            select(L.membership_id).join(Membership, Membership.id == L.membership_id).where(
                Membership.club_id == club_id, L.exhausted.is_(False), L.remaining > 0,
                L.warned_at.is_(None), L.expires_at <= as_of + timedelta(days=days),
            ).distinct()
        ))
    ids.update(session.scalars(
        select(Membership.id).where(or_(Membership.expiring_points != 0, Membership.expiring_on.is_not(None)))
    ))
    if tier_clubs:
        ids.update(session.scalars(
            select(Membership.id).where(
                Membership.club_id.in_(tier_clubs), Membership.status == "active",
                or_(Membership.tier_review_at.is_(None), Membership.tier_review_at <= as_of),
            )
        ))
    if birthday_clubs:
        today = as_of.date()
        rows = session.execute(
            select(Membership.id, Membership.birthday, Membership.created_at)
            .where(Membership.club_id.in_(birthday_clubs), Membership.status == "active",
                   Membership.birthday.is_not(None))
        )
        for member_id, born, created in rows:
            if birthday_due(born, created.date(), today) is not None:
                ids.add(member_id)
    ids.update(winback_candidates(session, as_of))
    return ids


def _review_tier(session: Session, member: Membership, program: Program, as_of: datetime,
                 report: Report) -> bool:
    tiers = program.tiers
    if tiers is None or member.status != "active":
        return False
    step = timedelta(days=tiers.review_days)
    if member.tier_review_at is None:
        # Tiers introduced after the member joined: review dates count from joining.
        member.tier_review_at = member.created_at + step
    if member.tier_review_at > as_of:
        return False
    changed = False
    spend = window_spend(session, member, days=tiers.window_days, as_of=as_of)
    target = tiers.for_spend(spend)
    if target.name != member.tier:
        reason = "review_downgrade" if tiers.rank(target.name) < tiers.rank(member.tier) else "review_upgrade"
        set_tier(session, member, target.name, actor=ACTOR, now=as_of, reason=reason,
                 details={"window_spend": spend})
        report.tier_changes += 1
        changed = True
    # Next review: the first review date after as_of.
    periods = (as_of - member.tier_review_at) // step + 1
    member.tier_review_at = member.tier_review_at + periods * step
    return changed


def _process(session: Session, member_id: int, as_of: datetime, report: Report) -> None:
    member = get_member_for_update(session, member_id)
    club = member.club
    program = Program.of(club)
    messages: list[str] = []
    occasions: list[str] = []  # automatic messages put on the card
    booked = apply_due(session, member, program, as_of) if member.status == "active" else []
    for txn in booked:
        if txn.type == RELEASE:
            report.released_lots += 1
            report.released_points += txn.balance_delta
        elif txn.type == EXPIRE:
            report.expired_lots += 1
            report.expired_points -= txn.points
    if any(t.type == RELEASE for t in booked):
        messages.append(f"{sum(t.balance_delta for t in booked if t.type == RELEASE)} points are now available")
    if any(t.type == EXPIRE for t in booked):
        messages.append(f"{-sum(t.points for t in booked if t.type == EXPIRE)} points expired")

    if _review_tier(session, member, program, as_of, report):
        messages.append(f"Your tier is now {member.tier}")

    if program.birthday_points > 0 and member.status == "active" and member.birthday:
        day = birthday_due(member.birthday, member.created_at.date(), as_of.date())
        if day is not None:
            bonus = grant_bonus(session, member, program.birthday_points, kind="birthday",
                                dedupe_key=f"birthday:{member.id}:{day.year}", actor=ACTOR,
                                program=program, now=as_of)
            if bonus is not None:
                booked.append(bonus)
                report.birthday_bonuses += 1
                messages.append(f"Happy birthday! +{bonus.points} points")

    warning_days = program.points.warning_days if program.points else 0
    if warning_days > 0:
        fresh = session.scalars(
            select(PointLot).where(
                PointLot.membership_id == member.id, PointLot.exhausted.is_(False), PointLot.remaining > 0,
                PointLot.warned_at.is_(None), PointLot.expires_at <= as_of + timedelta(days=warning_days),
            ).order_by(PointLot.expires_at)
        ).all()
        if fresh:
            for lot in fresh:
                lot.warned_at = as_of
                if lot.expires_at is not None and lot.expires_at < as_of + MIN_NOTICE:
                    lot.expires_at = as_of + MIN_NOTICE  # late: the member still gets a day
            session.flush()
            report.warnings += 1
            warned = auto_message(session, member, AutoKind.EXPIRING, f"lot:{fresh[0].id}", as_of,
                                  points=sum(lot.remaining for lot in fresh),
                                  date=min(lot.expires_at for lot in fresh if lot.expires_at).date().isoformat())
            if warned:
                occasions.append(warned)
            emit_event(session, brand_id=club.brand_id, event_type="points.expiring", data={
                "member_id": member.id,
                "club_id": member.club_id,
                "lots": [{"lot_id": lot.id, "points": lot.remaining, "expires_at": lot.expires_at.isoformat()}
                         for lot in fresh if lot.expires_at is not None],
                "points": sum(lot.remaining for lot in fresh),
            })
    points, on = expiring_figures(session, member, as_of=as_of, warning_days=warning_days)
    if (points, on) != (member.expiring_points, member.expiring_on):
        member.expiring_points, member.expiring_on = points, on
        if points:
            messages.append(f"{points} points expire on {on.isoformat() if on else ''}")
    lapsed = winback(session, member, as_of)
    if lapsed:
        occasions.append(lapsed)
    report.auto_messages += len(occasions)
    if messages or occasions:
        finish_booking(session, member, club, booked, occasions=occasions)
        report.members_changed += 1


def _batches(ids: Iterable[int], size: int) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def run_time_rules(db: Database, as_of: datetime) -> dict[str, Any]:
    """Apply every time-based rule as of ``as_of``; returns a report."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    report = Report(as_of=as_of.isoformat())
    with db.session() as session:
        ids = _candidates(session, as_of)
    for batch in _batches(ids, BATCH):
        for member_id in batch:
            report.members_checked += 1
            # Counted apart and added only once the member's transaction committed.
            scratch = Report(as_of=report.as_of)
            try:
                with db.transaction() as session:
                    _process(session, member_id, as_of, scratch)
                for name, value in scratch.__dict__.items():
                    if isinstance(value, int):
                        setattr(report, name, getattr(report, name) + value)
            except Exception as exc:  # one member's failure must not stop the run
                log.exception("time rules failed for member %s", member_id)
                report.errors.append({"member_id": member_id, "error": f"{type(exc).__name__}: {exc}"})
    return report.__dict__
