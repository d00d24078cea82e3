"""The ledger's rules, one test per rule (helpers in tests/support/ledger.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support.ledger import (
    POINTS,
    T0,
    TIERS,
    assert_consistent,
    book,
    buy,
    entries,
    join,
    make_club,
    member,
    set_program,
)
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.errors import Conflict, NotFound, RuleViolation
from wallet.loyalty.ledger_models import LedgerTransaction, PointLot
from wallet.loyalty.models import Membership, OutboxEvent

# --- earning -----------------------------------------------------------------


def test_a_purchase_earns_points_at_the_clubs_rate_rounded_down(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    txn = buy(db, mid, 12_345)  # 123.45 -> 6.17 points -> 6
    assert (txn["type"], txn["points"], txn["amount"]) == ("purchase", 6, 12_345)
    assert assert_consistent(db, mid).balance == 6


def test_half_up_rounding_rounds_half_a_point_up(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "rounding": "half_up"}}))
    assert buy(db, mid, 11_000)["points"] == 6  # 5.5 -> 6
    assert buy(db, mid, 10_900)["points"] == 5  # 5.45 -> 5


def test_a_purchase_below_the_minimum_earns_nothing(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "min_purchase": 10_000}}))
    assert buy(db, mid, 9_999)["points"] == 0
    assert buy(db, mid, 10_000)["points"] == 5


def test_amounts_must_be_positive_integers_and_bad_ones_change_nothing(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    for bad in (0, -100, 1.5, "100", True, 10**20):
        with pytest.raises(RuleViolation) as err:
            buy(db, mid, bad)
        assert err.value.code == "invalid_amount"
    assert entries(db, mid) == []
    assert member(db, mid).version == 1


def test_points_earned_stay_pending_until_the_return_window_ends(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "pending_days": 14}}))
    txn = buy(db, mid, 100_000)
    assert txn["points"] == 50 and txn["pending_change"] == 50 and txn["balance_change"] == 0
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending) == (0, 50)
    with pytest.raises(RuleViolation) as err:
        book(db, ledger.redeem, mid, points=10, now=T0 + timedelta(days=13))
    assert err.value.code == "insufficient_balance"
    # The next operation after the window books the release first.
    book(db, ledger.redeem, mid, points=10, now=T0 + timedelta(days=14))
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending) == (40, 0)
    assert [e.type for e in entries(db, mid)] == ["purchase", "release", "redeem"]


def test_a_lot_opened_earlier_in_the_same_transaction_is_released_when_its_window_ends(db: Database) -> None:
    # The lock query tells a booking when the member's first lot falls due,
    # so most bookings skip the due lots' query; a lot opened after the lock
    # must count too (a day's history booked in one transaction).
    mid = join(db, make_club(db, {"points": {**POINTS, "pending_days": 3}}))
    with db.transaction() as s:
        m = ledger.get_member_for_update(s, mid)
        ledger.purchase(s, m, amount=100_000, actor="till-1", now=T0)
        ledger.purchase(s, m, amount=100_000, actor="till-1", now=T0 + timedelta(days=4))
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending) == (50, 50)
    assert [e.type for e in entries(db, mid)] == ["purchase", "release", "purchase"]


# --- spending ----------------------------------------------------------------


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    buy(db, mid, 20_000)
    version = member(db, mid).version
    with pytest.raises(RuleViolation) as err:
        book(db, ledger.redeem, mid, points=11)
    assert err.value.code == "insufficient_balance"
    m = assert_consistent(db, mid)
    assert (m.balance, m.version) == (10, version)


def test_redemption_spends_the_oldest_points_first(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "expiry_days": 30}}))
    buy(db, mid, 20_000, now=T0)  # 10 points expiring T0+30d
    buy(db, mid, 20_000, now=T0 + timedelta(days=10))  # 10 points expiring T0+40d
    book(db, ledger.redeem, mid, points=12, now=T0 + timedelta(days=11))
    with db.session() as s:
        lots = s.scalars(select(PointLot).where(PointLot.membership_id == mid).order_by(PointLot.id)).all()
        assert [lot.remaining for lot in lots] == [0, 8]


def test_a_redemption_records_the_money_value_of_the_points(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "redeem_value": 50}}))
    buy(db, mid, 200_000)
    txn = book(db, ledger.redeem, mid, points=30)
    assert (txn["points"], txn["amount"]) == (-30, 1_500)


# --- refunds -----------------------------------------------------------------


def test_a_partial_refund_reverses_points_in_proportion(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    p = buy(db, mid, 100_000)  # 50 points
    r = book(db, ledger.refund, mid, refund_of=p["id"], amount=40_000)
    assert (r["type"], r["points"], r["refund_of"]) == ("refund", -20, p["id"])
    assert assert_consistent(db, mid).balance == 30


def test_several_partial_refunds_never_reverse_more_than_the_purchase_earned(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    p = buy(db, mid, 30_000)  # 15 points
    reversed_ = [-book(db, ledger.refund, mid, refund_of=p["id"], amount=10_000)["points"] for _ in range(3)]
    assert sum(reversed_) == 15  # 5 + 5 + 5 with integer arithmetic on the running total
    assert assert_consistent(db, mid).balance == 0
    mid2 = join(db, make_club(db, {"points": {"earn_points": 10, "per_amount": 300}}))
    p2 = buy(db, mid2, 100)  # 3 points (10*100/300 = 3.33)
    assert [-book(db, ledger.refund, mid2, refund_of=p2["id"], amount=1)["points"] for _ in range(100)].count(0) == 97
    assert assert_consistent(db, mid2).balance == 0


def test_refunding_more_than_is_left_of_the_purchase_is_refused(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    p = buy(db, mid, 50_000)
    book(db, ledger.refund, mid, refund_of=p["id"], amount=30_000)
    with pytest.raises(RuleViolation) as err:
        book(db, ledger.refund, mid, refund_of=p["id"], amount=20_001)
    assert err.value.code == "refund_exceeds_purchase"
    book(db, ledger.refund, mid, refund_of=p["id"], amount=20_000)
    assert_consistent(db, mid)


def test_a_refund_must_name_a_purchase_of_the_same_member(db: Database) -> None:
    club = make_club(db, {"points": POINTS})
    a, b = join(db, club), join(db, club)
    p = buy(db, a, 50_000)
    with pytest.raises(NotFound):
        book(db, ledger.refund, b, refund_of=p["id"], amount=100)
    r = book(db, ledger.redeem, a, points=1)
    with pytest.raises(NotFound):
        book(db, ledger.refund, a, refund_of=r["id"], amount=100)


def test_a_refund_takes_the_purchases_own_pending_lot_first(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "pending_days": 14}, "bonuses": {"welcome_points": 100}}))
    p = buy(db, mid, 100_000)  # 50 pending
    r = book(db, ledger.refund, mid, refund_of=p["id"], amount=100_000)
    assert (r["pending_change"], r["balance_change"]) == (-50, 0)
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending) == (100, 0)  # the welcome points are untouched


def test_a_refund_of_spent_points_takes_other_points_then_stops_at_zero(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    p = buy(db, mid, 100_000)  # 50
    book(db, ledger.redeem, mid, points=45)
    r = book(db, ledger.refund, mid, refund_of=p["id"], amount=100_000)
    assert r["points"] == -5 and r["details"]["unreversed_points"] == 45
    assert assert_consistent(db, mid).balance == 0


def test_with_allow_negative_a_refund_can_push_the_balance_below_zero(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "allow_negative": True}}))
    p = buy(db, mid, 100_000)  # 50
    book(db, ledger.redeem, mid, points=50)
    book(db, ledger.refund, mid, refund_of=p["id"], amount=100_000)
    assert assert_consistent(db, mid).balance == -50
    buy(db, mid, 200_000)  # +100 pays the debt first
    assert assert_consistent(db, mid).balance == 50
    with pytest.raises(RuleViolation):
        book(db, ledger.redeem, mid, points=51)


def test_cashback_goes_to_the_money_balance_and_comes_back_on_refund(db: Database) -> None:
    mid = join(db, make_club(db, {"cashback": {"percent": "2.5"}}))
    p = buy(db, mid, 12_345)  # 308.625 -> 308 minor units
    assert p["cash_change"] == 308 and p["points"] == 0
    r = book(db, ledger.refund, mid, refund_of=p["id"], amount=12_345)
    assert r["cash_change"] == -308
    assert assert_consistent(db, mid).cash_balance == 0


# --- stamps, tiers, bonuses ----------------------------------------------------


def test_every_nth_purchase_earns_the_stamp_reward(db: Database) -> None:
    mid = join(db, make_club(db, {"stamps": {"required": 3, "reward": "Free coffee"}}))
    for _ in range(7):
        buy(db, mid, 100)
    rewards = [e for e in entries(db, mid) if e.type == "reward"]
    assert [r.reason for r in rewards] == ["Free coffee", "Free coffee"]
    purchases = [e.id for e in entries(db, mid) if e.type == "purchase"]
    assert [r.details["source_id"] for r in rewards] == [purchases[2], purchases[5]]
    assert assert_consistent(db, mid).stamps == 1


def test_a_stamp_without_a_purchase_counts_towards_the_same_reward(db: Database) -> None:
    mid = join(db, make_club(db, {"stamps": {"required": 3, "reward": "Free coffee"}}))
    buy(db, mid, 100)
    first = book(db, ledger.stamp, mid)
    assert (first["type"], first["stamps_change"], first["points"], first["amount"]) == ("stamp", 1, 0, None)
    assert assert_consistent(db, mid).stamps == 2
    full = book(db, ledger.stamp, mid)
    [reward] = [e for e in entries(db, mid) if e.type == "reward"]
    assert (reward.reason, reward.details["source_id"]) == ("Free coffee", full["id"])
    assert assert_consistent(db, mid).stamps == 0


def test_a_club_without_stamps_refuses_a_stamp_and_books_nothing(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    before = entries(db, mid)
    with pytest.raises(RuleViolation) as refused:
        book(db, ledger.stamp, mid)
    assert refused.value.code == "no_stamps"
    assert entries(db, mid) == before
    assert assert_consistent(db, mid).stamps == 0


def test_a_member_starts_in_the_first_tier_and_upgrades_at_once(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS, "tiers": TIERS}))
    assert member(db, mid).tier == "Silver"
    assert buy(db, mid, 300_000)["points"] == 150  # earned at Silver's rate
    assert assert_consistent(db, mid).tier == "Gold"
    assert buy(db, mid, 100_000)["points"] == 70  # Gold's own rate from now on


def test_the_rolling_spend_counts_each_purchase_once(db: Database) -> None:
    """The spend before a purchase is read with its entry (one statement on
    PostgreSQL), so it must not see that entry: counted twice, 150.00 +
    149.99 would already reach Gold's 300.00."""
    mid = join(db, make_club(db, {"points": POINTS, "tiers": TIERS}))
    buy(db, mid, 150_000)
    buy(db, mid, 149_999)
    assert assert_consistent(db, mid).tier == "Silver"
    buy(db, mid, 1)
    assert assert_consistent(db, mid).tier == "Gold"
    tier_entry = [e for e in entries(db, mid) if e.type == "tier" and e.reason == "upgrade"]
    assert [e.details["window_spend"] for e in tier_entry] == [300_000]


def test_a_refund_does_not_downgrade_before_the_review_date(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS, "tiers": TIERS}))
    p = buy(db, mid, 300_000)
    book(db, ledger.refund, mid, refund_of=p["id"], amount=300_000)
    assert assert_consistent(db, mid).tier == "Gold"


def test_welcome_points_are_granted_once_on_joining(db: Database) -> None:
    club = make_club(db, {"points": POINTS, "bonuses": {"welcome_points": 100}})
    mid = join(db, club, "ann@example.test")
    assert join(db, club, "ANN@example.test") == mid
    assert assert_consistent(db, mid).balance == 100
    assert [(e.type, e.points, e.reason) for e in entries(db, mid)] == [("bonus", 100, "welcome")]


def test_both_sides_get_referral_points_at_the_invited_members_first_purchase(db: Database) -> None:
    club = make_club(db, {"points": POINTS, "bonuses": {"referral_points": 200}})
    ann = join(db, club, "ann@example.test")
    code = member(db, ann).referral_code
    bob = join(db, club, "bob@example.test", referral_code=code)
    assert member(db, ann).balance == 0 and member(db, bob).balance == 0
    buy(db, bob, 100_000)
    buy(db, bob, 100_000)
    assert assert_consistent(db, ann).balance == 200
    assert assert_consistent(db, bob).balance == 200 + 50 + 50


def test_an_unknown_referral_code_is_refused(db: Database) -> None:
    club = make_club(db, {"bonuses": {"referral_points": 200}})
    with pytest.raises(RuleViolation) as err:
        join(db, club, referral_code="NOPE1234")
    assert err.value.code == "unknown_referral_code"


def test_a_rule_change_applies_from_then_on_and_never_rewrites_history(db: Database) -> None:
    club = make_club(db, {"points": POINTS})
    mid = join(db, club)
    first = buy(db, mid, 100_000)
    set_program(db, club, {"points": {**POINTS, "earn_points": 10}})
    second = buy(db, mid, 100_000)
    assert (first["points"], second["points"]) == (50, 100)
    assert first["details"]["earn_points"] == 5 and second["details"]["earn_points"] == 10
    assert [e.points for e in entries(db, mid)] == [50, 100]
    assert assert_consistent(db, mid).balance == 150


# --- adjustments, receipts, side effects ----------------------------------------


def test_an_adjustment_needs_a_reason_and_cannot_overdraw(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    with pytest.raises(RuleViolation):
        book(db, ledger.adjust, mid, points=10, reason="  ")
    a = book(db, ledger.adjust, mid, points=30, reason="goodwill", actor="brand:alice")
    assert (a["type"], a["points"], a["reason"], a["actor"]) == ("adjust", 30, "goodwill", "brand:alice")
    with pytest.raises(RuleViolation) as err:
        book(db, ledger.adjust, mid, points=-31, reason="typo")
    assert err.value.code == "insufficient_balance"
    book(db, ledger.adjust, mid, points=-30, reason="typo")
    assert assert_consistent(db, mid).balance == 0


def test_a_receipt_is_booked_once_per_club(db: Database) -> None:
    club = make_club(db, {"points": POINTS})
    a, b = join(db, club), join(db, club)
    buy(db, a, 10_000, receipt_id="R-1")
    with pytest.raises(Conflict) as err:
        buy(db, b, 10_000, receipt_id="R-1")
    assert err.value.code == "duplicate_receipt"
    buy(db, join(db, make_club(db)), 10_000, receipt_id="R-1")  # another club's till may reuse it
    assert assert_consistent(db, a).balance == 5 and member(db, b).balance == 0


def test_every_booking_bumps_the_card_and_queues_its_push_and_webhook(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}, webhook=True))
    before = member(db, mid)
    txn = buy(db, mid, 10_000)
    after = member(db, mid)
    assert after.version == before.version + 1 and after.change_seq > before.change_seq
    with db.session() as s:
        rows = s.execute(select(OutboxEvent.kind, OutboxEvent.membership_id, OutboxEvent.payload)
                         .order_by(OutboxEvent.id)).all()
    assert [m for k, m, _ in rows if k == "card.changed"][-1] == mid
    hooks = [p["event"] for k, _, p in rows if k == "webhook"]
    assert hooks[-1]["type"] == "transaction.created"
    assert hooks[-1]["data"]["transaction"]["id"] == txn["id"]


def test_a_member_who_left_cannot_book(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    with db.transaction() as s:
        s.get(Membership, mid).status = "ended"
    with pytest.raises(RuleViolation) as err:
        buy(db, mid, 10_000)
    assert err.value.code == "membership_ended"


def test_the_ledger_is_append_only_so_figures_replay_from_it(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {**POINTS, "pending_days": 3}, "cashback": {"percent": 1},
                                  "stamps": {"required": 2, "reward": "Tea"}}))
    p = buy(db, mid, 100_000)
    buy(db, mid, 50_000, now=T0 + timedelta(days=4))
    book(db, ledger.redeem, mid, points=20, now=T0 + timedelta(days=5))
    book(db, ledger.refund, mid, refund_of=p["id"], amount=50_000, now=T0 + timedelta(days=6))
    m = assert_consistent(db, mid)
    assert (m.balance, m.pending, m.cash_balance, m.stamps) == (5, 25, 1_000, 0)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerTransaction)
                        .where(LedgerTransaction.membership_id == mid)) == 6


def test_a_purchase_that_would_earn_an_absurd_number_of_points_is_refused(db: Database) -> None:
    mid = join(db, make_club(db, {"points": {"earn_points": 1_000_000_000, "per_amount": 1}}))
    with pytest.raises(RuleViolation) as err:
        buy(db, mid, 10**12)
    assert err.value.code == "invalid_amount"
    assert entries(db, mid) == []
    txn = buy(db, mid, 1_000)
    assert txn["points"] == 10**12
    assert book(db, ledger.redeem, mid, points=10**9)["amount"] == 10**11  # 100 minor units a point


def test_receipts_reasons_and_actors_must_be_plain_text(db: Database) -> None:
    mid = join(db, make_club(db, {"points": POINTS}))
    with pytest.raises(RuleViolation) as err:
        buy(db, mid, 10_000, receipt_id="R\x00")
    assert err.value.code == "invalid_receipt_id"
    with pytest.raises(RuleViolation) as err:
        book(db, ledger.adjust, mid, points=5, reason="oops\x00")
    assert err.value.code == "invalid_reason"
    with pytest.raises(RuleViolation) as err:
        buy(db, mid, 10_000, actor="")
    assert err.value.code == "invalid_actor"
    assert entries(db, mid) == []
