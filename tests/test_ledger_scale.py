"""A balance read stays one query, and a booking stays a fixed handful of
statements, for a member with 10,000 ledger entries."""

from __future__ import annotations

from sqlalchemy import event, insert

from tests.support.ledger import POINTS, T0, assert_consistent, buy, join, make_club
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.ledger_models import LedgerTransaction, PointLot
from wallet.loyalty.models import Membership

ENTRIES = 10_000


def count_statements(db_session) -> list[str]:
    statements: list[str] = []
    event.listen(db_session.connection(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_balance_read_is_one_query_with_ten_thousand_entries(db: Database) -> None:
    club_id = make_club(db, {"points": POINTS})
    mid = join(db, club_id)
    with db.transaction() as s:
        rows = [
            {"membership_id": mid, "club_id": club_id, "type": "purchase", "points": 5, "balance_delta": 5,
             "pending_delta": 0, "cash_delta": 0, "stamps_delta": 0, "amount": 10_000, "refunded_amount": 0,
             "actor": "bench", "details": {}, "created_at": T0}
            for _ in range(ENTRIES)
        ]
        s.execute(insert(LedgerTransaction), rows)
        first_id = min(t.id for t in ledger.list_transactions(s, mid, limit=1))  # any id will do as a source
        s.add(PointLot(membership_id=mid, source_id=first_id, points=5 * ENTRIES, remaining=5 * ENTRIES,
                       earned_at=T0, spendable_at=T0, released=True))
        s.get(Membership, mid).balance = 5 * ENTRIES
    assert_consistent(db, mid)

    with db.session() as s:
        statements = count_statements(s)
        balance = s.get(Membership, mid).balance
    assert balance == 5 * ENTRIES
    assert len(statements) == 1 and "ledger_transactions" not in statements[0]

    with db.transaction() as s:
        statements = count_statements(s)
        ledger.purchase(s, s.get(Membership, mid), amount=10_000, actor="till", now=T0)
    replay = [q for q in statements if "sum(" in q.lower() and "ledger_transactions" in q]
    assert replay == [] and len(statements) < 20
    assert assert_consistent(db, mid).balance == 5 * ENTRIES + 5


def test_a_booking_costs_the_same_handful_of_statements_however_long_the_history(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS, "cashback": {"percent": 1}}))
    costs = []
    for i in range(30):
        with db.transaction() as s:
            statements = count_statements(s)
            ledger.purchase(s, s.get(Membership, mid), amount=10_000, actor="till", now=T0)
        costs.append(len(statements))
    assert len(set(costs[1:])) == 1  # flat: nothing grows with the member's history
    buy(db, mid, 10_000)
    assert_consistent(db, mid)
