"""Helpers of the loyalty core tests: clubs and members made through the core,
bookings in a transaction of their own, and the ledger's invariants checked
by replaying it (the service reads the cached figures; these replay the rows).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.ledger_models import TIER, LedgerTransaction, PointLot
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Brand, Club, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind
from wallet.loyalty.program import validate_program
from wallet.loyalty.webhooks import Webhook

T0 = datetime(2027, 1, 1, 12, 0, tzinfo=timezone.utc)
POINTS = {"earn_points": 5, "per_amount": 10000}  # 5 points per 100.00


def make_club(db: Database, program: dict[str, Any] | None = None, *, webhook: bool = False) -> int:
    with db.transaction() as s:
        brand = Brand(name="Brand", email=f"b{secrets.token_hex(4)}@example.test")
        s.add(brand)
        s.flush()
        club = Club(brand_id=brand.id, name="Coffee", currency="RUB", program=validate_program(program or {}))
        s.add(club)
        if webhook:
            s.add(Webhook(brand_id=brand.id, url="https://hooks.example.test/"))
        s.flush()
        return club.id


def set_program(db: Database, club_id: int, program: dict[str, Any]) -> None:
    with db.transaction() as s:
        s.get(Club, club_id).program = validate_program(program)


def join(db: Database, club_id: int, email: str | None = None, *, now: datetime = T0, **kw: Any) -> int:
    with db.transaction() as s:
        member, _ = enrol(s, s.get(Club, club_id), email=email or f"m{secrets.token_hex(4)}@example.test",
                          now=now, **kw)
        return member.id


def book(db: Database, op: Callable[..., LedgerTransaction], member_id: int, **kw: Any) -> dict[str, Any]:
    kw.setdefault("actor", "till-1")
    kw.setdefault("now", T0)
    with db.transaction() as s:
        return ledger.transaction_to_dict(op(s, s.get(Membership, member_id), **kw))


def buy(db: Database, member_id: int, amount: int, **kw: Any) -> dict[str, Any]:
    return book(db, ledger.purchase, member_id, amount=amount, **kw)


def add_members(session: Session, club_id: int, count: int) -> None:
    """``count`` active members of the club in one statement (set-based:
    for the tests of what goes a page at a time)."""
    session.execute(insert(Membership), [
        {"club_id": club_id, "email": f"p{i}@example.test", "card_number": str(10**11 + i),
         "serial_number": f"page-{i}", "auth_token": f"t{i:020d}", "download_token": f"page{i:020d}"}
        for i in range(count)])


def page_messages(db: Database, *, pages: int | None = None) -> int:
    """Do the workers' part of club messages (their club.message outbox
    rows, a page of members each, wallet.loyalty.messages) through the
    workers' handler, leaving every other row (the pushes) queued; at most
    ``pages`` pages. Returns how many pages ran."""
    from wallet.jobs.dispatch import handle_club_message

    ran = 0
    while pages is None or ran < pages:
        with db.session() as s:
            step = s.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.CLUB_MESSAGE,
                                                      OutboxEvent.done_at.is_(None)).order_by(OutboxEvent.id)).first()
        if step is None:
            break
        outcome = handle_club_message(None, db, [step])
        assert outcome.done == {step.id}, outcome.failed
        ran += 1
    return ran


def member(db: Database, member_id: int) -> Membership:
    with db.session() as s:
        m = s.get(Membership, member_id)
        s.expunge(m)
        return m


def assert_consistent(db: Database, member_id: int) -> Membership:
    """Cached figures equal the ledger's; lots hold exactly the points."""
    with db.session() as s:
        m = s.get(Membership, member_id)
        assert cached_figures(m) == recompute_figures(s, m)
        assert lot_totals(s, m) == (max(m.balance, 0), m.pending)
        s.expunge(m)
        return m


def entries(db: Database, member_id: int) -> list[LedgerTransaction]:
    with db.session() as s:
        rows = list(s.scalars(select(LedgerTransaction).where(LedgerTransaction.membership_id == member_id)
                              .order_by(LedgerTransaction.id)))
        s.expunge_all()
        return rows


TIERS = {
    "window_days": 365,
    "review_days": 30,
    "levels": [
        {"name": "Silver", "min_spend": 0},
        {"name": "Gold", "min_spend": 300_000, "earn_points": 7, "discount_percent": "3"},
        {"name": "Platinum", "min_spend": 1_000_000, "earn_points": 10},
    ],
}


@dataclass(frozen=True)
class Figures:
    balance: int
    pending: int
    cash_balance: int
    stamps: int
    tier: str | None


def cached_figures(membership: Membership) -> Figures:
    return Figures(
        balance=membership.balance,
        pending=membership.pending,
        cash_balance=membership.cash_balance,
        stamps=membership.stamps,
        tier=membership.tier,
    )


def recompute_figures(session: Session, membership: Membership) -> Figures:
    """The member's figures derived from the ledger alone (a full replay;
    the service reads the cached columns, tests compare the two)."""
    T = LedgerTransaction
    sums = session.execute(
        select(
            func.coalesce(func.sum(T.balance_delta), 0),
            func.coalesce(func.sum(T.pending_delta), 0),
            func.coalesce(func.sum(T.cash_delta), 0),
            func.coalesce(func.sum(T.stamps_delta), 0),
        ).where(T.membership_id == membership.id)
    ).one()
    tier = session.scalar(
        select(T.tier).where(T.membership_id == membership.id, T.type == TIER).order_by(T.id.desc()).limit(1)
    )
    return Figures(
        balance=int(sums[0]), pending=int(sums[1]), cash_balance=int(sums[2]), stamps=int(sums[3]), tier=tier
    )


def lot_totals(session: Session, membership: Membership) -> tuple[int, int]:
    """(points left in spendable lots, points left in pending lots)."""
    L = PointLot
    row = session.execute(
        select(
            func.coalesce(func.sum(case((L.released.is_(True), L.remaining), else_=0)), 0),
            func.coalesce(func.sum(case((L.released.is_(False), L.remaining), else_=0)), 0),
        ).where(L.membership_id == membership.id, L.exhausted.is_(False))
    ).one()
    return int(row[0]), int(row[1])
