"""Whatever sequence of bookings and nightly runs happens, the cached figures
equal the ledger's, the lots hold exactly the points, and no refund reverses
more than its purchase earned. Random sequences with fixed seeds, so a
failure replays."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.support.ledger import T0, assert_consistent, book, buy, join, make_club, member
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.schedule import run_time_rules

PROGRAMS = {
    "pending_and_expiry": {"points": {"earn_points": 5, "per_amount": 1000, "pending_days": 3,
                                      "expiry_days": 20, "warning_days": 5},
                           "cashback": {"percent": "2.5"}, "stamps": {"required": 4, "reward": "Tea"}},
    "negative_allowed": {"points": {"earn_points": 3, "per_amount": 700, "rounding": "half_up",
                                    "allow_negative": True, "expiry_days": 15},
                         "bonuses": {"welcome_points": 10}},
    "tiers": {"points": {"earn_points": 1, "per_amount": 100, "pending_days": 1},
              "tiers": {"window_days": 10, "review_days": 5, "levels": [
                  {"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 20_000, "earn_points": 2}]}},
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_random_histories_keep_the_ledger_and_the_cache_in_step(db: Database, name: str) -> None:
    rng = random.Random(name)
    mid = join(db, make_club(db, PROGRAMS[name]))
    purchases: list[tuple[int, int]] = []  # (id, amount)
    now = T0
    for _ in range(60):
        now += timedelta(hours=rng.randrange(1, 40))
        op = rng.random()
        try:
            if op < 0.4:
                txn = buy(db, mid, rng.randrange(100, 9_000), now=now)
                purchases.append((txn["id"], txn["amount"]))
            elif op < 0.6:
                book(db, ledger.redeem, mid, points=rng.randrange(1, 60), now=now)
            elif op < 0.75 and purchases:
                pid, amount = rng.choice(purchases)
                book(db, ledger.refund, mid, refund_of=pid, amount=rng.randrange(1, amount + 1), now=now)
            elif op < 0.85:
                book(db, ledger.adjust, mid, points=rng.choice((-25, -5, 5, 25)), reason="random", now=now)
            else:
                run_time_rules(db, now)
        except RuleViolation as exc:
            assert exc.code in ("insufficient_balance", "refund_exceeds_purchase")
        m = assert_consistent(db, mid)
        if not PROGRAMS[name]["points"].get("allow_negative"):
            assert m.balance >= 0
        assert m.pending >= 0 and m.cash_balance >= 0

    with db.session() as s:
        for pid, amount in purchases:
            p = s.get(LedgerTransaction, pid)
            refunds = [t for t in ledger.list_transactions(s, mid, limit=1000) if t.refund_of_id == pid]
            assert p.refunded_amount == sum(r.amount for r in refunds) <= amount
            assert sum(r.details["points_due"] for r in refunds) <= p.points
            assert sum(r.details["cash_due"] for r in refunds) <= p.cash_delta
            if p.refunded_amount == amount:
                assert sum(r.details["points_due"] for r in refunds) == p.points
    assert member(db, mid).version > 1
