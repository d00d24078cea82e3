"""Two tills at once never lose or double an entry.

Each thread uses its own write session, as concurrent requests do; the final
figures must match what the successful calls booked, to the point, and the
cached figures must equal the ledger's. Runs on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from tests.support.ledger import POINTS, T0, assert_consistent, buy, join, make_club, recompute_figures
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.errors import LoyaltyError, RuleViolation
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership

THREADS = 8
OPS_PER_THREAD = 25


def run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def runner(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


def test_concurrent_purchases_and_redemptions_on_one_member_add_up_to_the_point(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS, "cashback": {"percent": "1"}}))
    buy(db, mid, 200_000)  # 100 points to start with
    lock = threading.Lock()
    booked = {"earned": 100, "redeemed": 0, "refused": 0, "cash": 2_000}

    def work(i: int) -> None:
        rng = random.Random(i)
        for _ in range(OPS_PER_THREAD):
            session = db.write_session()
            try:
                m = session.get(Membership, mid)
                if rng.random() < 0.5:
                    amount = rng.choice((10_000, 20_000, 30_000))
                    txn = ledger.purchase(session, m, amount=amount, actor=f"till-{i}")
                    points, cash = txn.points, txn.cash_delta
                    session.commit()
                    with lock:
                        booked["earned"] += points
                        booked["cash"] += cash
                else:
                    wanted = rng.choice((3, 7, 11))
                    try:
                        ledger.redeem(session, m, points=wanted, actor=f"till-{i}")
                        session.commit()
                        with lock:
                            booked["redeemed"] += wanted
                    except RuleViolation:
                        session.rollback()
                        with lock:
                            booked["refused"] += 1
            finally:
                session.close()

    assert run_threads(THREADS, work) == []
    m = assert_consistent(db, mid)
    assert m.balance == booked["earned"] - booked["redeemed"]
    assert m.cash_balance == booked["cash"]
    assert m.balance >= 0


def test_concurrent_partial_refunds_never_refund_more_than_the_purchase(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    purchase = buy(db, mid, 100_000)  # 50 points
    done: list[int] = []

    def work(i: int) -> None:
        session = db.write_session()
        try:
            ledger.refund(session, session.get(Membership, mid), refund_of=purchase["id"], amount=20_000,
                          actor=f"till-{i}")
            session.commit()
            done.append(i)
        except RuleViolation as exc:
            assert exc.code == "refund_exceeds_purchase"
        finally:
            session.close()

    assert run_threads(10, work) == []
    assert len(done) == 5
    m = assert_consistent(db, mid)
    assert m.balance == 0


def test_enrolling_the_same_person_from_two_tills_at_once_makes_one_membership(db: Database) -> None:
    club_id = make_club(db, {"bonuses": {"welcome_points": 100}})
    results: list[tuple[int, bool]] = []

    def work(i: int) -> None:
        session = db.write_session()
        try:
            m, created = enrol(session, session.get(Club, club_id), email="same@example.test", now=T0)
            session.commit()
            results.append((m.id, created))
        except LoyaltyError as exc:  # pragma: no cover - would fail the assertion below
            results.append((-1, bool(exc)))
        finally:
            session.close()

    assert run_threads(6, work) == []
    assert len({mid for mid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert assert_consistent(db, results[0][0]).balance == 100


def test_concurrent_purchases_with_the_same_receipt_book_once(db: Database) -> None:
    club_id = make_club(db, {"points": POINTS})
    members = [join(db, club_id) for _ in range(6)]
    outcomes: list[Any] = []

    def work(i: int) -> None:
        session = db.write_session()
        try:
            ledger.purchase(session, session.get(Membership, members[i]), amount=10_000, receipt_id="R-42",
                            actor="till")
            session.commit()
            outcomes.append("booked")
        except LoyaltyError as exc:
            outcomes.append(exc.code)
        finally:
            session.close()

    assert run_threads(6, work) == []
    assert sorted(outcomes) == ["booked"] + ["duplicate_receipt"] * 5
    assert sum(assert_consistent(db, mid).balance for mid in members) == 5


def test_club_messages_and_referral_purchases_alongside_tills_never_deadlock(db: Database) -> None:
    from tests.support.ledger import page_messages
    from wallet.loyalty.messages import send_club_message

    club_id = make_club(db, {"points": POINTS, "bonuses": {"referral_points": 10}})
    referrer = join(db, club_id)
    with db.session() as s:
        code = s.get(Membership, referrer).referral_code
    invited = [join(db, club_id, referral_code=code) for _ in range(12)]
    everyone = [referrer, *invited]

    def work(i: int) -> None:
        if i == 0:
            for n in range(6):
                with db.transaction() as s:
                    send_club_message(s, s.get(Club, club_id), text=f"News {n}")
                page_messages(db)  # the workers' part, page by page, beside the tills
            return
        rng = random.Random(i)
        for _ in range(10):
            with db.transaction() as s:
                mid = rng.choice(everyone)
                ledger.purchase(s, s.get(Membership, mid), amount=10_000, actor=f"till-{i}")

    errors = run_threads(5, work)
    assert errors == [], "\n".join(map(str, errors))
    for mid in everyone:
        assert_consistent(db, mid)
    with db.session() as s:
        paid_invitees = sum(1 for mid in invited if recompute_figures(s, s.get(Membership, mid)).balance
                            >= 10 and s.get(Membership, mid).referred_by_id == referrer
                            and any(t.reason == "referral" for t in ledger.list_transactions(s, mid, limit=500)))
        referrer_bonuses = [t for t in ledger.list_transactions(s, referrer, limit=500) if t.reason == "referral"]
    assert len(referrer_bonuses) == paid_invitees


def test_the_nightly_run_alongside_tills_expires_each_lot_once(db: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from wallet.loyalty.ledger_models import LedgerTransaction
    from wallet.loyalty.schedule import run_time_rules

    club_id = make_club(db, {"points": {**POINTS, "expiry_days": 30}})
    members = [join(db, club_id) for _ in range(8)]
    for mid in members:
        buy(db, mid, 100_000)  # 50 points each, expiring at T0+30d
    # The schedule's run within the warning window told every member first.
    assert run_time_rules(db, T0 + timedelta(days=20))["warnings"] == len(members)
    later = T0 + timedelta(days=31)

    def work(i: int) -> None:
        if i < 2:
            run_time_rules(db, later)
            return
        for mid in members:
            with db.transaction() as s:
                ledger.purchase(s, s.get(Membership, mid), amount=20_000, actor=f"till-{i}", now=later)

    errors = run_threads(5, work)
    assert errors == [], "\n".join(map(str, errors))
    with db.session() as s:
        expired = s.scalar(select(func.count()).select_from(LedgerTransaction)
                           .where(LedgerTransaction.type == "expire"))
    assert expired == len(members)
    for mid in members:
        assert assert_consistent(db, mid).balance == 3 * 10
