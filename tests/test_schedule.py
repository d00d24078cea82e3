"""Time-based rules: expiry, pending windows, warnings, tier reviews, birthdays.

Every rule is run as of an instant; running it twice for the same instant
books nothing new.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from tests.support.ledger import POINTS, T0, assert_consistent, book, buy, entries, join, make_club, member
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind
from wallet.loyalty.schedule import birthday_due, run_time_rules

EXPIRING = {"points": {**POINTS, "expiry_days": 30, "warning_days": 14}}


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def outbox(db: Database, kind: str) -> list[dict]:
    with db.session() as s:
        return [p for (p,) in s.execute(select(OutboxEvent.payload).where(OutboxEvent.kind == kind)
                                        .order_by(OutboxEvent.id))]


def card_changes(db: Database, member_id: int) -> int:
    """Card changes queued for the member's wallets."""
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.kind == OutboxKind.CARD_CHANGED, OutboxEvent.membership_id == member_id)) or 0


def counts(report: dict) -> dict:
    return {k: v for k, v in report.items() if isinstance(v, int) and k != "members_checked"}


def test_points_expire_after_the_clubs_validity_and_only_once(db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING))
    buy(db, mid, 100_000)  # 50 points, expire at T0+30d
    assert run_time_rules(db, days(29))["expired_points"] == 0
    first = run_time_rules(db, days(30))
    assert (first["expired_lots"], first["expired_points"]) == (1, 50)
    m = assert_consistent(db, mid)
    assert m.balance == 0
    again = run_time_rules(db, days(30))
    assert set(counts(again).values()) == {0}
    assert member(db, mid).version == m.version
    assert [e.type for e in entries(db, mid)] == ["purchase", "expire"]


def test_only_what_is_left_of_a_partly_spent_lot_expires(db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING))
    buy(db, mid, 100_000, now=T0)  # 50, expire T0+30
    buy(db, mid, 100_000, now=days(20))  # 50, expire T0+50
    book(db, ledger.redeem, mid, points=70, now=days(21))  # 50 from the first lot, 20 from the second
    report = run_time_rules(db, days(31))
    assert report["expired_points"] == 0
    assert run_time_rules(db, days(40))["warnings"] == 1
    report = run_time_rules(db, days(51))
    assert report["expired_points"] == 30
    assert assert_consistent(db, mid).balance == 0


def test_pending_points_become_spendable_when_the_return_window_ends(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "pending_days": 14}}))
    buy(db, mid, 100_000)
    run_time_rules(db, days(13))
    assert (member(db, mid).balance, member(db, mid).pending) == (0, 50)
    report = run_time_rules(db, days(14))
    assert (report["released_lots"], report["released_points"]) == (1, 50)
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending) == (50, 0)
    assert set(counts(run_time_rules(db, days(14))).values()) == {0}


def test_members_are_warned_once_of_points_expiring_within_the_warning_window(db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING, webhook=True))
    buy(db, mid, 70_000)  # 35 points expiring on T0+30d
    run_time_rules(db, days(10))
    assert member(db, mid).expiring_points == 0
    before = member(db, mid).version
    changes_before = card_changes(db, mid)
    report = run_time_rules(db, days(16))
    m = member(db, mid)
    assert report["warnings"] == 1
    assert (m.expiring_points, m.expiring_on) == (35, days(30).date())
    assert m.version == before + 1
    assert card_changes(db, mid) == changes_before + 1  # the card shows the warning
    events = [p["event"] for p in outbox(db, "webhook") if p["event"]["type"] == "points.expiring"]
    assert len(events) == 1 and events[0]["data"]["points"] == 35
    # A second run tells nobody again and leaves the card alone.
    run_time_rules(db, days(16))
    run_time_rules(db, days(17))
    assert member(db, mid).version == m.version
    assert len([p for p in outbox(db, "webhook") if p["event"]["type"] == "points.expiring"]) == 1


def test_points_never_expire_before_their_warning_was_on_the_card(db: Database) -> None:
    """The schedule did not run during the whole warning window: the late
    run warns and gives a day's notice instead of taking the points."""
    mid = join(db, make_club(db, EXPIRING, webhook=True))
    buy(db, mid, 70_000)  # 35 points expiring on T0+30d
    before = member(db, mid).version
    late = run_time_rules(db, days(31))
    assert (late["expired_points"], late["warnings"]) == (0, 1)
    m = member(db, mid)
    assert (m.balance, m.expiring_points, m.expiring_on) == (35, 35, days(32).date())
    assert m.version == before + 1  # the card shows it
    assert run_time_rules(db, days(31.5))["expired_points"] == 0
    assert run_time_rules(db, days(32))["expired_points"] == 35
    assert assert_consistent(db, mid).balance == 0


def test_spending_points_that_were_about_to_expire_clears_the_warning(db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING))
    buy(db, mid, 70_000)
    run_time_rules(db, days(16))
    book(db, ledger.redeem, mid, points=30, now=days(17))
    m = assert_consistent(db, mid)
    assert (m.expiring_points, m.expiring_on) == (5, days(30).date())
    book(db, ledger.redeem, mid, points=5, now=days(18))
    assert (member(db, mid).expiring_points, member(db, mid).expiring_on) == (0, None)


TIERS = {
    "window_days": 30,
    "review_days": 30,
    "levels": [{"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 100_000}],
}


def test_tiers_downgrade_only_at_a_review_date(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS, "tiers": TIERS}))
    buy(db, mid, 100_000, now=days(1))
    assert member(db, mid).tier == "Gold"
    run_time_rules(db, days(30))  # review 1: the purchase is inside the window
    assert member(db, mid).tier == "Gold"
    run_time_rules(db, days(45))  # the spend left the window, but it is no review date
    assert member(db, mid).tier == "Gold"
    report = run_time_rules(db, days(60))  # review 2
    assert report["tier_changes"] == 1
    m = assert_consistent(db, mid)
    assert m.tier == "Silver"
    assert [e.reason for e in entries(db, mid) if e.type == "tier"] == ["enrolled", "upgrade", "review_downgrade"]
    assert set(counts(run_time_rules(db, days(60))).values()) == {0}


def test_a_birthday_bonus_is_paid_once_a_year(db: Database) -> None:
    club = make_club(db, {"points": POINTS, "bonuses": {"birthday_points": 300}})
    mid = join(db, club, "ann@example.test", now=T0, birthday="1990-01-05")
    join(db, club, "bob@example.test", now=T0)  # no birthday given: never paid
    assert run_time_rules(db, datetime(2027, 1, 4, 23, 0, tzinfo=T0.tzinfo))["birthday_bonuses"] == 0
    assert run_time_rules(db, datetime(2027, 1, 5, 9, 0, tzinfo=T0.tzinfo))["birthday_bonuses"] == 1
    assert run_time_rules(db, datetime(2027, 1, 5, 9, 0, tzinfo=T0.tzinfo))["birthday_bonuses"] == 0
    assert run_time_rules(db, datetime(2027, 1, 6, 9, 0, tzinfo=T0.tzinfo))["birthday_bonuses"] == 0
    assert run_time_rules(db, datetime(2028, 1, 5, 9, 0, tzinfo=T0.tzinfo))["birthday_bonuses"] == 1
    assert assert_consistent(db, mid).balance == 600


def test_birthday_rules_cover_leap_days_late_runs_and_new_members() -> None:
    assert birthday_due(date(2000, 2, 29), date(2020, 1, 1), date(2027, 2, 28)) == date(2027, 2, 28)
    assert birthday_due(date(1990, 12, 30), date(2020, 1, 1), date(2028, 1, 2)) == date(2027, 12, 30)
    assert birthday_due(date(1990, 1, 5), date(2027, 1, 6), date(2027, 1, 7)) is None  # joined after it
    assert birthday_due(date(1990, 1, 5), date(2020, 1, 1), date(2027, 1, 20)) is None  # long past


def test_expire_points_command_runs_every_rule_as_of_an_instant(app: Flask, db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING))
    buy(db, mid, 100_000)
    runner = app.test_cli_runner()
    warned = runner.invoke(args=["expire-points", "--as-of", (T0 + timedelta(days=20)).isoformat()])
    assert json.loads(warned.output)["warnings"] == 1
    result = runner.invoke(args=["expire-points", "--as-of", "2027-02-15T00:00"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["expired_points"] == 50
    again = runner.invoke(args=["expire-points", "--as-of", "2027-02-15T00:00"])
    assert json.loads(again.output)["expired_points"] == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerTransaction)
                        .where(LedgerTransaction.type == "expire")) == 1


def test_time_rules_handle_many_members_in_one_run(db: Database) -> None:
    club = make_club(db, EXPIRING)
    ids = [join(db, club) for _ in range(30)]
    for mid in ids:
        buy(db, mid, 20_000)
    assert run_time_rules(db, days(20))["warnings"] == 30
    report = run_time_rules(db, days(31))
    assert (report["expired_lots"], report["expired_points"], report["errors"]) == (30, 300, [])
    assert all(member(db, mid).balance == 0 for mid in ids)


def test_a_booking_after_points_ran_out_clears_their_warning_at_once(db: Database) -> None:
    mid = join(db, make_club(db, EXPIRING))
    buy(db, mid, 70_000)
    run_time_rules(db, days(16))
    assert member(db, mid).expiring_points == 35
    buy(db, mid, 20_000, now=days(31))  # the till comes before the nightly run
    m = assert_consistent(db, mid)
    assert (m.balance, m.expiring_points, m.expiring_on) == (10, 0, None)
    assert [e.type for e in entries(db, mid)] == ["purchase", "expire", "purchase"]
