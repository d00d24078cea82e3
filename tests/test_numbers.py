"""The club's numbers and NPS against a small history worked out by hand.

Period January 2027 (and January-February for cohorts). Club: 5 points per
100.00, a point worth 1.00 at the till, points expire after 30 days, tiers
Silver / Gold (3,000.00) / Platinum.

  member  joined   source     January                                  later
  D       Dec 15   import     Dec 16 buys 100.00 (5, expire Jan 15);
                              Jan 25 buys 400.00 (20)
  A       Jan 1    join page  Jan 2 buys 100.00 (5), Jan 10 200.00 (10),
                              Jan 11 redeems 5, Jan 12 adjusted +7         Feb 3 buys 100.00
  B       Jan 3    API        Jan 5 buys 3,000.00 (150, then Gold),
                              Jan 6 refund 1,000.00 (-50)
  C       Jan 9    referral   -
  E       Feb 1    API        -
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.ledger import TIERS, book, buy, join, make_club, member
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.nps import answer_survey, category, nps_score, survey_period
from wallet.loyalty.numbers import Period, compute, period_of
from wallet.loyalty.schedule import run_time_rules

PROGRAM = {"points": {"earn_points": 5, "per_amount": 10_000, "expiry_days": 30}, "tiers": TIERS}
JANUARY = Period(date(2027, 1, 1), date(2027, 1, 31))


def at(month: int, day: int, year: int = 2027) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def history(db: Database) -> dict[str, Any]:
    club = make_club(db, PROGRAM, webhook=True)
    d = join(db, club, now=at(12, 15, 2026), source="import")
    buy(db, d, 10_000, now=at(12, 16, 2026))
    a = join(db, club, now=at(1, 1), source="join_page")
    buy(db, a, 10_000, now=at(1, 2))
    b = join(db, club, now=at(1, 3), source="api")
    b_purchase = buy(db, b, 300_000, now=at(1, 5))
    book(db, ledger.refund, b, refund_of=b_purchase["id"], amount=100_000, now=at(1, 6))
    c = join(db, club, now=at(1, 9), source="api", referral_code=member(db, a).referral_code)
    buy(db, a, 20_000, now=at(1, 10))
    book(db, ledger.redeem, a, points=5, now=at(1, 11))
    book(db, ledger.adjust, a, points=7, reason="apology", now=at(1, 12))
    run_time_rules(db, at(1, 20))
    buy(db, d, 40_000, now=at(1, 25))
    e = join(db, club, now=at(2, 1), source="api")
    buy(db, a, 10_000, now=at(2, 3))
    with db.transaction() as s:
        def move(mid: int, before: list[str], after: list[str], when: datetime) -> None:
            record_card_changes(s, s.get(Membership, mid), before=before, after=after, now=when)
        move(d, [], ["apple"], at(12, 20, 2026))
        move(a, [], ["apple"], at(1, 2))
        move(a, ["apple"], ["apple", "google"], at(1, 3))
        move(b, [], ["walletpasses"], at(1, 4))
        move(b, ["walletpasses"], [], at(1, 20))
        move(e, [], ["google"], at(2, 2))
    for mid, score, comment, when in ((a, 10, "Great coffee", at(1, 5)), (b, 6, "", at(1, 8)),
                                      (c, 8, "ok", at(1, 10)), (d, 9, "Friendly staff", at(1, 26)),
                                      (e, 0, "", at(2, 2))):
        with db.transaction() as s:
            answer_survey(s, s.get(Membership, mid), score=score, comment=comment, now=when)
    return {"club": club, "a": a, "b": b, "c": c, "d": d, "e": e}


def numbers_of(db: Database, club_id: int, period: Period = JANUARY) -> dict[str, Any]:
    with db.session() as s:
        return compute(s, [s.get(Club, club_id)], period).to_dict()


def test_members_joined_per_day_and_week_total_active_and_by_source(db: Database, history: dict[str, Any]) -> None:
    members = numbers_of(db, history["club"])["members"]
    assert members["joined"] == 3
    per_day = {row["date"]: row["joined"] for row in members["joined_per_day"]}
    assert len(per_day) == 31
    assert {d: n for d, n in per_day.items() if n} == {"2027-01-01": 1, "2027-01-03": 1, "2027-01-09": 1}
    # 1 January 2027 is a Friday: its week began on Monday 28 December.
    weeks = {row["week"]: row["joined"] for row in members["joined_per_week"]}
    assert weeks == {"2026-12-28": 2, "2027-01-04": 1, "2027-01-11": 0, "2027-01-18": 0, "2027-01-25": 0}
    assert members["total"] == 4  # A, B, C, D; E joined in February
    assert (members["active"], members["active_share"]) == (3, 0.75)  # A, B, D bought
    assert members["by_source"] == {"join_page": 1, "api": 1, "import": 0, "referral": 1, "other": 0}


def test_cards_installed_removed_per_wallet_and_on_phones(db: Database, history: dict[str, Any]) -> None:
    cards = numbers_of(db, history["club"])["cards"]
    assert cards["wallets"] == {
        "apple": {"installed": 1, "removed": 0, "on_phones": 2},  # A in January, D before
        "walletpasses": {"installed": 1, "removed": 1, "on_phones": 0},
        "walletunion": {"installed": 0, "removed": 0, "on_phones": 0},
        "walletunion_hms": {"installed": 0, "removed": 0, "on_phones": 0},
        "google": {"installed": 1, "removed": 0, "on_phones": 1},  # E's is February's
    }
    assert (cards["installed"], cards["removed"], cards["on_phones"]) == (3, 1, 3)
    # A (two wallets) and D of the 4 members.
    assert (cards["members_with_card"], cards["members_with_card_share"]) == (2, 0.5)


def test_points_issued_redeemed_expired_outstanding_liability_and_breakage(db: Database,
                                                                           history: dict[str, Any]) -> None:
    points = numbers_of(db, history["club"])["points"]
    # A 5 + 10 + 7, B 150, D 20; the refund took back 50 of B's.
    assert points["issued"] == 192
    assert points["redeemed"] == 5
    assert points["expired"] == 5  # D's December points, on 15 January
    assert points["reversed"] == 50
    # Now: A 5+10-5+7+5 (February) = 22, B 100, D 20.
    assert (points["outstanding"], points["pending"]) == (142, 0)
    assert points["liability"] == {"RUB": 14_200}
    assert points["breakage"] == 0.026  # 5 / 192 = 0.02604


def test_repeat_rate_frequency_average_purchase_and_spend_per_tier(db: Database, history: dict[str, Any]) -> None:
    purchases = numbers_of(db, history["club"])["purchases"]
    assert (purchases["buyers"], purchases["purchases"], purchases["repeat_buyers"]) == (3, 4, 1)
    assert purchases["repeat_rate"] == 0.3333
    assert purchases["frequency"] == 1.33
    assert purchases["spend"] == {"RUB": 370_000}
    assert purchases["refunds"] == {"RUB": 100_000}
    assert purchases["average_purchase"] == {"RUB": 92_500}
    assert purchases["by_tier"] == [
        {"tier": "Gold", "currency": "RUB", "buyers": 1, "purchases": 1, "spend": 300_000},
        {"tier": "Silver", "currency": "RUB", "buyers": 2, "purchases": 3, "spend": 70_000},
    ]


def test_cohort_retention_by_month_of_joining(db: Database, history: dict[str, Any]) -> None:
    cohorts = numbers_of(db, history["club"], Period(date(2027, 1, 1), date(2027, 2, 28)))["cohorts"]
    assert cohorts == [
        {"month": "2027-01", "members": 3, "months": [
            {"month": "2027-01", "buyers": 2, "share": 0.6667},  # A and B
            {"month": "2027-02", "buyers": 1, "share": 0.3333},  # A again
        ]},
        {"month": "2027-02", "members": 1, "months": [{"month": "2027-02", "buyers": 0, "share": 0.0}]},
    ]


def test_nps_its_trend_comments_and_tiers(db: Database, history: dict[str, Any]) -> None:
    nps = numbers_of(db, history["club"])["nps"]
    # A 10, D 9 promote; C 8 is passive; B 6 detracts: 50 % - 25 %.
    assert (nps["answers"], nps["promoters"], nps["passives"], nps["detractors"]) == (4, 2, 1, 1)
    assert nps["nps"] == 25
    assert nps["trend"] == [{"month": "2027-01", "answers": 4, "promoters": 2, "detractors": 1, "passives": 1,
                             "nps": 25}]
    # B answered as Gold; A, C and D as Silver (2 promoters of 3: 66.7 -> 67).
    assert [(t["tier"], t["answers"], t["nps"]) for t in nps["by_tier"]] == [("Gold", 1, -100), ("Silver", 3, 67)]
    assert [(c["score"], c["comment"]) for c in nps["comments"]] == [
        (9, "Friendly staff"), (8, "ok"), (10, "Great coffee")]
    february = numbers_of(db, history["club"], Period(date(2027, 2, 1), date(2027, 2, 28)))["nps"]
    assert (february["answers"], february["nps"], february["comments"]) == (1, -100, [])


def test_one_answer_per_member_per_quarter_and_each_goes_to_the_webhooks(db: Database,
                                                                       history: dict[str, Any]) -> None:
    with db.transaction() as s:
        with pytest.raises(RuleViolation) as refused:
            answer_survey(s, s.get(Membership, history["d"]), score=3, now=at(1, 27))
    assert refused.value.code == "already_answered"
    with db.transaction() as s:  # a new quarter, a new answer
        answer_survey(s, s.get(Membership, history["d"]), score=3, comment="  ", now=at(4, 1))
    with db.session() as s:
        events = [row.payload["event"] for row in s.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "webhook").order_by(OutboxEvent.id))
            if row.payload["event"]["type"] == "survey.answered"]
    assert [(e["data"]["member_id"], e["data"]["score"], e["data"]["category"]) for e in events] == [
        (history["a"], 10, "promoter"), (history["b"], 6, "detractor"), (history["c"], 8, "passive"),
        (history["d"], 9, "promoter"), (history["e"], 0, "detractor"), (history["d"], 3, "detractor")]
    assert events[-1]["data"]["period"] == "2027-Q2" and events[-1]["data"]["comment"] == ""


@pytest.mark.parametrize("score", [-1, 11, 5.5, "9", True, None])
def test_a_score_outside_0_to_10_is_refused(db: Database, score: Any) -> None:
    mid = join(db, make_club(db, PROGRAM))
    with db.transaction() as s, pytest.raises(RuleViolation) as refused:
        answer_survey(s, s.get(Membership, mid), score=score)
    assert refused.value.code == "invalid_score"


def test_nps_rules() -> None:
    assert [category(score).value for score in (0, 6, 7, 8, 9, 10)] == [
        "detractor", "detractor", "passive", "passive", "promoter", "promoter"]
    assert nps_score(0, 0, 0) is None
    assert nps_score(1, 0, 8) == 13  # 12.5 rounds away from zero
    assert nps_score(0, 1, 8) == -13
    assert nps_score(3, 3, 7) == 0
    assert survey_period(at(3, 31)) == "2027-Q1" and survey_period(at(10, 1)) == "2027-Q4"


def test_a_period_is_whole_days_of_at_most_two_years() -> None:
    today = date(2027, 3, 31)
    assert period_of(None, None, today=today) == Period(today - timedelta(days=89), today)
    assert period_of("2027-01-01", "2027-01-31", today=today) == JANUARY
    for start, end in (("2027-02-01", "2027-01-01"), ("x", None), ("2020-01-01", "2027-01-01")):
        with pytest.raises(RuleViolation) as refused:
            period_of(start, end, today=today)
        assert refused.value.code == "invalid_period"


def test_the_demo_history_gives_the_demo_club_every_number(app, db: Database) -> None:
    from wallet.demo import load_demo
    from wallet.demo_history import DAYS, load_history

    club_id = load_demo(app)["club_ids"][0]
    assert load_history(db, club_id, members_count=40) == 40
    assert load_history(db, club_id, members_count=40) == 0  # made once
    today = datetime.now(timezone.utc).date()
    n = numbers_of(db, club_id, Period(today - timedelta(days=DAYS), today))
    members, cards, points, purchases, nps = n["members"], n["cards"], n["points"], n["purchases"], n["nps"]
    assert members["joined"] == 40 + 3 and members["active"] > 0  # and the demo's own 3 today
    assert all(members["by_source"].values()), members["by_source"]
    assert cards["installed"] > 0 and cards["removed"] > 0 and cards["members_with_card_share"] > 0
    assert all(points[key] > 0 for key in ("issued", "redeemed", "expired", "reversed", "outstanding")), points
    assert points["liability"]["RUB"] > 0 and points["breakage"] > 0
    assert purchases["repeat_rate"] > 0 and purchases["refunds"]["RUB"] > 0
    assert {row["tier"] for row in purchases["by_tier"]} >= {"Silver", "Gold"}
    assert len(n["cohorts"]) >= 12 and any(m["share"] for c in n["cohorts"] for m in c["months"][1:])
    assert nps["answers"] > 0 and nps["promoters"] > 0 and nps["detractors"] > 0 and nps["comments"]
    assert sum(1 for month in nps["trend"] if month["nps"] is not None) >= 6


def test_the_numbers_are_a_fixed_set_of_aggregate_queries_whatever_the_history(db: Database,
                                                                               history: dict[str, Any]) -> None:
    """Each figure is a query the database answers with aggregates: more
    history adds no statement (no per-row or per-member reading)."""
    from sqlalchemy import event

    def statements() -> int:
        seen: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            numbers_of(db, history["club"])
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return sum(1 for statement in seen if statement.lstrip().upper().startswith("SELECT"))

    before = statements()
    for day in range(1, 29):
        buy(db, history["a"], 10_000, now=at(1, day))
        join(db, history["club"], now=at(1, day))
    assert statements() == before <= 20
