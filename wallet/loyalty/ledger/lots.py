"""Point lots, spent oldest first: every credit of points opens a lot that
knows when it becomes spendable and when it expires; spending and refunds
take from the oldest; time releases pending lots and expires old ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from wallet.loyalty.ledger.booking import book
from wallet.loyalty.ledger.figures import expiring_figures, may_have_due_lots
from wallet.loyalty.ledger_models import EXPIRE, RELEASE, LedgerTransaction, PointLot
from wallet.loyalty.models import Membership
from wallet.loyalty.program import Program


def new_lot(
    member: Membership,
    points: int,
    *,
    program: Program,
    now: datetime,
    pending: bool,
    balance_before: int,
) -> dict[str, Any] | None:
    """The lot that ``points`` credited now open (None for none), for
    ``booking.book`` to write with its entry, by Core INSERTs (no unit of
    work to sort it out at the flush). A spendable lot first pays off any
    debt (a negative balance), keeping lots == max(balance, 0)."""
    if points <= 0:
        return None
    rules = program.points
    pending_days = rules.pending_days if (rules and pending) else 0
    expiry_days = rules.expiry_days if rules else None
    spendable_at = now + timedelta(days=pending_days)
    released = spendable_at <= now
    remaining = points
    if released and balance_before < 0:
        remaining -= min(points, -balance_before)
    expires_at = now + timedelta(days=expiry_days) if expiry_days else None
    return {
        "membership_id": member.id, "points": points, "remaining": remaining, "earned_at": now,
        "spendable_at": spendable_at, "released": released, "expires_at": expires_at,
        "exhausted": remaining == 0, "expired_at": None, "warned_at": None,
    }


def take(lot: PointLot, wanted: int) -> int:
    taken = min(lot.remaining, wanted)
    lot.remaining -= taken
    if lot.remaining == 0:
        lot.exhausted = True
    return taken


def _open_lots(session: Session, member: Membership, *, released: bool, limit: int) -> list[PointLot]:
    L = PointLot
    return list(
        session.scalars(
            select(L)
            .where(L.membership_id == member.id, L.exhausted.is_(False), L.released.is_(released))
            .order_by(L.earned_at, L.id)
            .limit(limit)
        )
    )


def take_fifo(session: Session, member: Membership, wanted: int, *, released: bool) -> int:
    """Take up to ``wanted`` points from the member's lots, oldest first."""
    taken = 0
    # In pages: a member may hold thousands of small lots and a redemption
    # usually needs the first few. Exhausted lots drop out of the next page
    # (autoflush writes their flag first).
    while taken < wanted:
        page = _open_lots(session, member, released=released, limit=50)
        if not page:
            break
        for lot in page:
            taken += take(lot, wanted - taken)
            if taken == wanted:
                break
    return taken


def credit(
    session: Session,
    member: Membership,
    type_: str,
    points: int,
    *,
    program: Program,
    actor: str,
    now: datetime,
    **fields: Any,
) -> LedgerTransaction:
    """Book spendable points (a bonus, a positive adjustment) with their lot."""
    lot = new_lot(member, points, program=program, now=now, pending=False, balance_before=member.balance)
    return book(session, member, type_, actor=actor, now=now, balance=points, lot=lot, **fields)


_DUE_LOTS = (
    select(PointLot)
    .where(
        PointLot.membership_id == bindparam("member_id"),
        PointLot.exhausted.is_(False),
        or_(PointLot.released.is_(False) & (PointLot.spendable_at <= bindparam("now")),
            PointLot.expires_at <= bindparam("now")),
    )
    .order_by(PointLot.earned_at, PointLot.id)
)


def apply_due(session: Session, member: Membership, program: Program, now: datetime) -> list[LedgerTransaction]:
    """Book what time has made due for one (locked) member: pending lots whose
    window ended become spendable, lots past their expiry expire. Each lot is
    booked once (its flags change in the same transaction, and the entry's
    dedupe key would refuse a second).

    In a club that warns before expiry, a lot nobody was warned about does
    not expire: the schedule warns first and gives it a day's notice
    (wallet.loyalty.schedule), so no member loses points unwarned even when
    the schedule did not run for a while."""
    if not may_have_due_lots(session, member, now):
        return []
    warns = bool(program.points and program.points.warning_days > 0)
    lots = session.scalars(_DUE_LOTS, {"member_id": member.id, "now": now}).all()
    booked: list[LedgerTransaction] = []
    for lot in lots:
        if not lot.released and lot.spendable_at <= now:
            points = lot.remaining
            before = member.balance
            lot.released = True
            if before < 0:
                take(lot, -before)  # the debt is paid first
            booked.append(
                book(session, member, RELEASE, actor="system:schedule", now=now, balance=points,
                     pending=-points, dedupe_key=f"release:lot:{lot.id}",
                     details={"lot_id": lot.id, "source_id": lot.source_id})
            )
        if (lot.expires_at is not None and lot.expires_at <= now and not lot.exhausted
                and (lot.warned_at is not None or not warns)):
            points = lot.remaining
            field = "balance" if lot.released else "pending"
            lot.remaining = 0
            lot.exhausted = True
            lot.expired_at = now
            booked.append(
                book(session, member, EXPIRE, actor="system:schedule", now=now,
                     dedupe_key=f"expire:lot:{lot.id}",
                     details={"lot_id": lot.id, "source_id": lot.source_id,
                              "expires_at": lot.expires_at.isoformat()},
                     **{field: -points})
            )
    return booked


def refresh_expiring(session: Session, member: Membership, program: Program, now: datetime) -> bool:
    """Recompute the card's "N points expire on D" after points left lots.
    Returns whether the figures changed."""
    if member.expiring_points == 0 and member.expiring_on is None:
        return False
    warning_days = program.points.warning_days if program.points else 0
    points, on = expiring_figures(session, member, as_of=now, warning_days=warning_days)
    if (points, on) == (member.expiring_points, member.expiring_on):
        return False
    member.expiring_points, member.expiring_on = points, on
    return True
