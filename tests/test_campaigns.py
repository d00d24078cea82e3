"""Segments, campaigns and automatic messages: a segment is the club's
members the rules pick, in SQL and never another brand's; a message to it,
now or at its time, reaches exactly those cards at the APNs and Google
Wallet stand-ins, and the campaign counts what each wallet did; an
automatic expiry warning reaches the member before the points expire."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, insert, select, update

from tests.support.android_push import AndroidPushStandIn
from tests.support.apns_standin import ApnsStandIn
from tests.support.app import TEST_PASS_TYPE
from tests.support.ledger import POINTS, T0, TIERS, add_members, book, buy, join, make_club, member
from wallet.apple.models import DeviceRegistration, WalletApp
from wallet.db import Database, utcnow
from wallet.google.models import GoogleObject
from wallet.jobs.outbox import drain
from wallet.loyalty import ledger
from wallet.loyalty.automessages import auto_results, set_auto_message
from wallet.loyalty.campaign_models import AutoKind, Campaign, CampaignStatus, MessageDelivery
from wallet.loyalty.campaigns import (
    PAGE,
    CampaignPayload,
    cancel_campaign,
    create_campaign,
    preview,
    results,
    run_campaign_page,
)
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import InvalidFields
from wallet.loyalty.ledger_models import PointLot
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.schedule import run_time_rules
from wallet.loyalty.nps import answer_survey, category
from wallet.loyalty.segments import NPS_GROUPS, NPS_SCORES, Segment, count_segment, segment_filter

PROGRAM = {"points": {**POINTS, "expiry_days": 30, "warning_days": 14}, "tiers": TIERS}


def token(n: int) -> str:
    return f"{n:064x}"


def register(db: Database, membership_id: int, n: int, app: WalletApp = WalletApp.APPLE) -> str:
    with db.transaction() as s:
        s.execute(insert(DeviceRegistration), [{
            "device_library_identifier": f"device-{n}", "pass_type_identifier": TEST_PASS_TYPE,
            "membership_id": membership_id, "push_token": token(n), "app": app}])
    return token(n)


def saved_to_google(db: Database, membership_id: int) -> str:
    """What Google's save callback records (tests/test_google_callback.py covers the callback)."""
    with db.transaction() as s:
        row = s.get(GoogleObject, membership_id)
        if row is None:
            row = GoogleObject(membership_id=membership_id, club_id=s.get(Membership, membership_id).club_id,
                               object_id=f"test.{membership_id}")
            s.add(row)
        row.installed = True
        return row.object_id


def ids_of(db: Database, club_id: int, rules: dict[str, Any], now: datetime) -> list[int]:
    with db.session() as s:
        return list(s.scalars(select(Membership.id).where(*segment_filter(club_id, Segment.load(rules), now))
                              .order_by(Membership.id)))


# --- segments ---------------------------------------------------------------------


def test_each_segment_rule_picks_the_members_it_names_and_only_of_its_club(db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    old = join(db, club_id, now=T0 - timedelta(days=200))
    gold = join(db, club_id, now=T0 - timedelta(days=100))
    fresh = join(db, club_id, now=T0 - timedelta(days=3))
    idle = join(db, club_id, now=T0 - timedelta(days=100))
    buy(db, old, 100_000, now=T0 - timedelta(days=120))  # 50 points, expired long ago (30 days)
    buy(db, gold, 300_000, now=T0 - timedelta(days=20))  # Gold; 150 points expiring at T0+10d
    buy(db, fresh, 40_000, now=T0 - timedelta(days=1))  # 20 points
    buy(db, old, 50_000, now=T0 - timedelta(days=2))
    book(db, ledger.refund, old, refund_of=ledger_id(db, old, 50_000), amount=20_000, now=T0 - timedelta(days=1))
    register(db, gold, 1)
    register(db, fresh, 2, WalletApp.WALLETPASSES)
    saved_to_google(db, idle)
    # Another brand's club, whose members match every rule below.
    other = make_club(db, PROGRAM)
    twin = join(db, other, now=T0 - timedelta(days=3))
    buy(db, twin, 300_000, now=T0 - timedelta(days=1))
    register(db, twin, 3)

    assert ids_of(db, club_id, {}, T0) == [old, gold, fresh, idle]
    assert ids_of(db, club_id, {"tiers": ["Gold"]}, T0) == [gold]
    assert ids_of(db, club_id, {"purchased_within_days": 7}, T0) == [old, fresh]
    assert ids_of(db, club_id, {"no_purchase_days": 7}, T0) == [gold, idle]
    # Spend is purchases less refunds: old bought 1,000.00 + 500.00, 200.00 refunded.
    assert ids_of(db, club_id, {"min_spend": 130_000}, T0) == [old, gold]
    assert ids_of(db, club_id, {"min_spend": 130_000, "max_spend": 200_000}, T0) == [old]
    assert ids_of(db, club_id, {"min_balance": 21}, T0) == [old, gold]
    assert ids_of(db, club_id, {"max_balance": 0}, T0) == [idle]
    assert ids_of(db, club_id, {"expiring_within_days": 14}, T0) == [gold]
    assert ids_of(db, club_id, {"wallets": ["apple"]}, T0) == [gold]
    assert ids_of(db, club_id, {"wallets": ["android"]}, T0) == [fresh]
    assert ids_of(db, club_id, {"wallets": ["google"]}, T0) == [idle]
    assert ids_of(db, club_id, {"wallets": ["none"]}, T0) == [old]
    assert ids_of(db, club_id, {"wallets": ["apple", "google"]}, T0) == [gold, idle]
    assert ids_of(db, club_id, {"joined_within_days": 7}, T0) == [fresh]
    assert ids_of(db, club_id, {"tiers": ["Gold"], "wallets": ["none"]}, T0) == []
    with db.session() as s:
        assert count_segment(s, club_id, Segment.load({"purchased_within_days": 7}), T0) == 2
    with db.transaction() as s:
        s.get(Membership, fresh).status = "ended"
    assert ids_of(db, club_id, {"joined_within_days": 7}, T0) == []


def ledger_id(db: Database, membership_id: int, amount: int) -> int:
    from wallet.loyalty.ledger_models import LedgerTransaction

    with db.session() as s:
        return s.scalar(select(LedgerTransaction.id).where(LedgerTransaction.membership_id == membership_id,
                                                           LedgerTransaction.amount == amount))


def test_the_survey_answer_rule_reads_each_members_latest_answer(db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    fan, meh, critic, converted, silent = (join(db, club_id) for _ in range(5))
    answers = [(fan, 10, T0), (meh, 8, T0), (critic, 3, T0), (converted, 2, T0), (converted, 9, T0 + timedelta(days=100))]
    for mid, score, at in answers:
        with db.transaction() as s:
            answer_survey(s, s.get(Membership, mid), score=score, now=at)
    now = T0 + timedelta(days=101)
    assert ids_of(db, club_id, {"nps": ["promoter"]}, now) == [fan, converted]
    assert ids_of(db, club_id, {"nps": ["passive"]}, now) == [meh]
    assert ids_of(db, club_id, {"nps": ["detractor"]}, now) == [critic]
    assert ids_of(db, club_id, {"nps": ["passive", "detractor"]}, now) == [meh, critic]
    assert silent not in ids_of(db, club_id, {"nps": list(NPS_GROUPS)}, now)


def test_the_survey_categories_in_sql_are_the_surveys_own() -> None:
    for score in range(11):
        low, high = NPS_SCORES[category(score)]
        assert low <= score <= high


def test_segment_rules_refuse_what_makes_no_sense() -> None:
    for rules in ({"tiers": "Gold"}, {"wallets": ["nokia"]}, {"min_spend": -1}, {"min_balance": 10, "max_balance": 5},
                  {"purchased_within_days": 0}, {"colour": "red"}, {"nps": ["fan"]}):
        with pytest.raises(InvalidFields) as err:
            Segment.load(rules)
        assert err.value.code == "invalid_segment"
    assert Segment.load({"tiers": ["Gold", "Gold"]}).to_json() == {"tiers": ["Gold"]}
    assert Segment.load({}).everyone


def test_a_segment_query_is_one_statement_whatever_the_rules(db: Database) -> None:
    from sqlalchemy import event

    club_id = make_club(db, PROGRAM)
    for _ in range(3):
        buy(db, join(db, club_id), 100_000)
    statements: list[str] = []
    everything = {"tiers": ["Silver"], "purchased_within_days": 30, "min_spend": 1, "max_spend": 10**9,
                  "min_balance": 1, "max_balance": 10**6, "expiring_within_days": 60, "wallets": list(("apple", "none")),
                  "joined_within_days": 30}
    with db.session() as s:
        event.listen(s.connection(), "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert count_segment(s, club_id, Segment.load(everything), T0 + timedelta(days=1)) == 3
    assert len(statements) == 1


# --- campaigns against the stand-ins ------------------------------------------------


@pytest.fixture
def app_config(app_config: dict[str, Any], standin: ApnsStandIn) -> dict[str, Any]:
    app_config.update(APNS_URL=standin.url, APNS_CA_FILE=str(standin.ca_file), APNS_BACKOFF_BASE=0.01,
                      OUTBOX_BACKOFF_SECONDS=60)
    return app_config


def google_messages(google: Any) -> dict[str, list[dict[str, Any]]]:
    """addMessage calls by object id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for call in google.received("POST", "/addMessage"):
        object_id = call.path.split("/loyaltyObject/")[1].split("/")[0]
        out.setdefault(object_id, []).append(call.body["message"])
    return out


def test_a_scheduled_message_to_a_segment_reaches_exactly_its_cards_at_apple_and_google(
    google: Any, standin: ApnsStandIn, walletpasses: AndroidPushStandIn, app: Any, db: Database,
) -> None:
    club_id = make_club(db, PROGRAM)
    now = utcnow()
    members = {name: join(db, club_id, now=now) for name in ("gold_iphone", "gold_google", "gold_android",
                                                            "gold_nowallet", "silver_iphone", "silver_google")}
    for name, mid in members.items():
        if name.startswith("gold"):
            buy(db, mid, 300_000, now=now)
    other = make_club(db, PROGRAM)  # another brand's Gold member with an iPhone
    stranger = join(db, other, now=now)
    buy(db, stranger, 300_000, now=now)
    drain(app)  # the new cards go to Google (objects inserted)
    register(db, members["gold_iphone"], 1)
    register(db, members["silver_iphone"], 2)
    register(db, stranger, 3)
    register(db, members["gold_android"], 4, WalletApp.WALLETPASSES)
    objects = {name: saved_to_google(db, members[name]) for name in ("gold_google", "silver_google")}
    standin.reset()
    assert google.received("POST", "/addMessage") == [] and walletpasses.received == []

    send_at = now + timedelta(minutes=30)
    with db.transaction() as s:
        club = s.get(Club, club_id)
        seen = preview(s, club, Segment.load({"tiers": ["Gold"]}), "Gold lounge opens Friday", now=now)
        assert (seen.members, seen.apple, seen.google, seen.android, seen.none) == (4, 1, 1, 1, 1)
        campaign_id = create_campaign(s, club, text="Gold lounge opens Friday", segment=Segment.load({"tiers": ["Gold"]}),
                                      send_at=send_at, now=now).id
    drain(app)
    assert standin.received() == [] and google_messages(google) == {} and walletpasses.received == []
    with db.session() as s:
        assert s.get(Campaign, campaign_id).status == CampaignStatus.SCHEDULED

    with time_machine.travel(send_at + timedelta(seconds=1), tick=True):
        drain(app)
    with db.session() as s:
        campaign = s.get(Campaign, campaign_id)
        assert (campaign.status, campaign.targeted) == (CampaignStatus.SENT, 4)
        assert results(s, campaign_id) == {"queued": 0, "reached": 3, "silent": 0, "failed": 0, "no_wallet": 1}
    assert sorted(r.token for r in standin.received()) == [token(1)]  # the Gold iPhone only
    assert [body["pushTokens"] for body in walletpasses.received] == [[token(4)]]
    sent = google_messages(google)
    # Google keeps a copy of every card (saved or not): each Gold card's copy has the message.
    gold = [mid for name, mid in members.items() if name.startswith("gold")]
    assert set(sent) == google_object_ids(db, *gold)
    assert sent[objects["gold_google"]][0]["body"] == "Gold lounge opens Friday"
    assert sent[objects["gold_google"]][0]["messageType"] == "TEXT_AND_NOTIFY"
    assert objects["silver_google"] not in sent
    assert member(db, members["silver_iphone"]).message is None
    assert member(db, stranger).message is None
    assert member(db, members["gold_nowallet"]).message == "Gold lounge opens Friday"


def google_object_ids(db: Database, *membership_ids: int) -> set[str]:
    with db.session() as s:
        return set(s.scalars(select(GoogleObject.object_id).where(GoogleObject.membership_id.in_(membership_ids))))


def test_a_google_card_that_had_its_three_notifications_today_gets_the_message_silently(
    google: Any, standin: ApnsStandIn, app: Any, db: Database,
) -> None:
    club_id = make_club(db, PROGRAM)
    mid = join(db, club_id, now=utcnow())
    drain(app)
    saved_to_google(db, mid)
    with db.transaction() as s:
        s.execute(update(GoogleObject).where(GoogleObject.membership_id == mid)
                  .values(notify_day=utcnow().date(), notify_count=3))
        seen = preview(s, s.get(Club, club_id), Segment(), "Hello")
        assert (seen.google, seen.google_silent) == (1, 1)
        campaign_id = create_campaign(s, s.get(Club, club_id), text="Hello", segment=Segment()).id
    drain(app)
    [message] = [m for ms in google_messages(google).values() for m in ms]
    assert message["messageType"] == "TEXT"
    with db.session() as s:
        assert results(s, campaign_id)["silent"] == 1


def test_a_card_apns_keeps_refusing_counts_as_failed_until_the_retry_reaches_it(
    standin: ApnsStandIn, app: Any, db: Database,
) -> None:
    club_id = make_club(db, PROGRAM)
    mid = join(db, club_id, now=utcnow())
    drain(app)
    register(db, mid, 5)
    standin.script(token(5), *[500] * 20)
    with db.transaction() as s:
        campaign_id = create_campaign(s, s.get(Club, club_id), text="Hello", segment=Segment()).id
    drain(app)
    with db.session() as s:
        assert results(s, campaign_id)["failed"] == 1
    standin.reset()  # APNs answers again; the outbox retries the card
    with db.transaction() as s:
        s.execute(update(OutboxEvent).where(OutboxEvent.done_at.is_(None)).values(available_at=utcnow()))
    drain(app)
    with db.session() as s:
        assert results(s, campaign_id) == {"queued": 0, "reached": 1, "silent": 0, "failed": 0, "no_wallet": 0}


def test_a_page_written_already_is_not_written_again(db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    mid = join(db, club_id)
    with db.transaction() as s:
        campaign = create_campaign(s, s.get(Club, club_id), text="Once", segment=Segment())
        payload = CampaignPayload(campaign_id=campaign.id, after_id=0)
    for _ in range(2):  # a worker died after committing the page; another takes the row again
        with db.transaction() as s:
            run_campaign_page(s, payload)
    with db.session() as s:
        assert s.get(Campaign, payload.campaign_id).targeted == 1
        assert s.scalar(select(func.count(MessageDelivery.id)).where(MessageDelivery.membership_id == mid)) == 1


def test_a_campaign_is_written_a_page_at_a_time_and_a_cancelled_one_sends_nothing(app: Any, db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    with db.transaction() as s:
        add_members(s, club_id, PAGE + 3)
        club = s.get(Club, club_id)
        big = create_campaign(s, club, text="Everyone", segment=Segment()).id
        later = create_campaign(s, club, text="Never", segment=Segment(), send_at=utcnow() + timedelta(hours=1))
        assert cancel_campaign(s, later)
        later_id = later.id
    drain(app)
    with db.session() as s:
        assert s.get(Campaign, big).targeted == PAGE + 3
        pages = s.scalar(select(func.count(OutboxEvent.id)).where(OutboxEvent.kind == "campaign.send"))
        assert pages == 3  # two pages of the big one, and the cancelled one's row
        assert s.scalar(select(func.count(MessageDelivery.id)).where(MessageDelivery.campaign_id == later_id)) == 0
    with db.transaction() as s:
        assert not cancel_campaign(s, s.get(Campaign, big))


def test_a_campaign_whose_pages_hold_few_of_its_segment_reaches_each_of_them_and_no_other(app: Any, db: Database) -> None:
    # A page is the club's next PAGE members; the segment is picked among
    # them, so pages may hold few or none of it and the walk must go on.
    club_id = make_club(db, PROGRAM)
    with db.transaction() as s:
        add_members(s, club_id, 2 * PAGE + 7)
        ids = list(s.scalars(select(Membership.id).where(Membership.club_id == club_id).order_by(Membership.id)))
        gold = ids[PAGE - 1 :: 97]  # the last member of the first page, then every 97th
        s.execute(update(Membership).where(Membership.id.in_(gold)).values(tier="Gold"))
        s.execute(update(Membership).where(Membership.id == ids[-1]).values(tier="Gold", status="ended"))
        campaign_id = create_campaign(s, s.get(Club, club_id), text="Gold only", segment=Segment(tiers=("Gold",))).id
    drain(app)
    with db.session() as s:
        assert s.get(Campaign, campaign_id).status == CampaignStatus.SENT
        assert s.get(Campaign, campaign_id).targeted == len(gold)
        reached = s.scalars(select(MessageDelivery.membership_id).where(MessageDelivery.campaign_id == campaign_id))
        assert sorted(reached) == gold
        assert s.scalars(select(Membership.message).where(Membership.id.in_(gold))).all() == ["Gold only"] * len(gold)
        assert s.scalar(select(func.count(Membership.id)).where(Membership.club_id == club_id,
                                                                Membership.message.is_not(None))) == len(gold)


def test_the_preview_counts_cards_already_showing_the_text_where_apple_shows_nothing_new(app: Any, db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    shown, other = join(db, club_id), join(db, club_id)
    with db.transaction() as s:
        create_campaign(s, s.get(Club, club_id), text="Same again", segment=Segment())
    drain(app)
    with db.transaction() as s:
        s.get(Membership, other).message = "Something else"
    with db.session() as s:
        club = s.get(Club, club_id)
        assert preview(s, club, Segment(), "Same again").unchanged_text == 1
        assert preview(s, club, Segment(), "Brand new").unchanged_text == 0
        assert preview(s, club, Segment(), "Same again").members == 2
    assert member(db, shown).message == "Same again"


def test_a_campaign_refuses_an_empty_text_a_past_time_and_an_unknown_tier(db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    with db.transaction() as s:
        club = s.get(Club, club_id)
        for kwargs, code in (({"text": " "}, "invalid_text"),
                             ({"send_at": utcnow() - timedelta(hours=1)}, "invalid_send_at"),
                             ({"segment": Segment.load({"tiers": ["Diamond"]})}, "unknown_tier")):
            with pytest.raises(RuleViolation) as err:
                create_campaign(s, club, **{"text": "Hi", "segment": Segment(), **kwargs})
            assert err.value.code == code


# --- automatic messages ------------------------------------------------------------


def test_an_automatic_expiry_warning_reaches_the_member_before_the_points_expire(
    google: Any, standin: ApnsStandIn, app: Any, db: Database,
) -> None:
    club_id = make_club(db, PROGRAM)
    mid = join(db, club_id)
    buy(db, mid, 100_000, now=T0)  # 50 points, expiring at T0+30d; warned 14 days before
    drain(app)
    register(db, mid, 7)
    object_id = saved_to_google(db, mid)
    with db.transaction() as s:
        set_auto_message(s, s.get(Club, club_id), AutoKind.EXPIRING, enabled=True,
                         text="{points} points expire on {date}: treat yourself")
    standin.reset()
    run_time_rules(db, T0 + timedelta(days=15))
    assert member(db, mid).message is None  # not yet within the warning window
    run_time_rules(db, T0 + timedelta(days=17))
    m = member(db, mid)
    assert m.message == "50 points expire on 2027-01-31: treat yourself"
    drain(app)
    assert [r.token for r in standin.received()] == [token(7)]
    assert google_messages(google)[object_id][-1]["body"] == m.message
    with db.session() as s:
        lot = s.scalar(select(PointLot).where(PointLot.membership_id == mid))
        assert lot.remaining == 50 and lot.expires_at > T0 + timedelta(days=17)  # before they expire
        [delivery] = s.scalars(select(MessageDelivery).where(MessageDelivery.membership_id == mid)).all()
        assert (delivery.kind, delivery.status) == ("expiring", "reached")
        counts = auto_results(s, club_id, T0)
        assert (counts[AutoKind.EXPIRING]["sent"], counts[AutoKind.EXPIRING]["reached"]) == (1, 1)
        assert counts[AutoKind.WINBACK]["sent"] == 0
    # Once per occasion: later runs warn nobody again.
    run_time_rules(db, T0 + timedelta(days=18))
    with db.session() as s:
        assert s.scalar(select(func.count(MessageDelivery.id)).where(MessageDelivery.membership_id == mid)) == 1


def test_tier_birthday_and_winback_messages_go_once_per_occasion(db: Database) -> None:
    club_id = make_club(db, {**PROGRAM, "bonuses": {"birthday_points": 100}})
    with db.transaction() as s:
        club = s.get(Club, club_id)
        set_auto_message(s, club, AutoKind.TIER_REACHED, enabled=True, text="Welcome to {tier}, {name}")
        set_auto_message(s, club, AutoKind.BIRTHDAY, enabled=True, text="Happy birthday: +{points}")
        set_auto_message(s, club, AutoKind.WINBACK, enabled=True, text="We miss you", days=30)
    climber = join(db, club_id, name="Ann")
    buy(db, climber, 300_000, now=T0)
    assert member(db, climber).message == "Welcome to Gold, Ann"
    buy(db, climber, 10_000, now=T0 + timedelta(hours=1))  # still Gold: nothing new
    born = join(db, club_id, birthday=(T0 + timedelta(days=40)).date().replace(year=1990), now=T0)
    run_time_rules(db, T0 + timedelta(days=40))
    assert member(db, born).message == "Happy birthday: +100"
    run_time_rules(db, T0 + timedelta(days=41))
    # Win-back: 30 days without a purchase.
    assert member(db, climber).message == "We miss you"
    with db.session() as s:
        kinds = sorted(s.scalars(select(MessageDelivery.kind).where(MessageDelivery.club_id == club_id)))
    assert kinds == ["birthday", "tier_reached", "winback", "winback"]
    run_time_rules(db, T0 + timedelta(days=45))
    with db.session() as s:
        assert s.scalar(select(func.count(MessageDelivery.id)).where(MessageDelivery.club_id == club_id)) == 4
    # A purchase, then 30 more days without one: win-back again, once.
    buy(db, climber, 10_000, now=T0 + timedelta(days=50))
    run_time_rules(db, T0 + timedelta(days=81))
    run_time_rules(db, T0 + timedelta(days=82))
    with db.session() as s:
        assert s.scalar(select(func.count(MessageDelivery.id)).where(MessageDelivery.membership_id == climber,
                                                                     MessageDelivery.kind == "winback")) == 2


def test_a_switched_off_automatic_message_sends_nothing(db: Database) -> None:
    club_id = make_club(db, PROGRAM)
    with db.transaction() as s:
        set_auto_message(s, s.get(Club, club_id), AutoKind.TIER_REACHED, enabled=False, text="")
        with pytest.raises(RuleViolation):
            set_auto_message(s, s.get(Club, club_id), AutoKind.WINBACK, enabled=True, text="Hi", days=0)
    mid = join(db, club_id)
    buy(db, mid, 300_000, now=T0)
    assert member(db, mid).tier == "Gold" and member(db, mid).message is None


def test_a_tier_message_switched_on_after_the_clubs_bookings_reaches_the_next_upgrade(db: Database) -> None:
    # The bookings before it keep the club's state, which had no message on.
    club_id = make_club(db, PROGRAM)
    first, second = join(db, club_id, name="Ann"), join(db, club_id, name="Bob")
    buy(db, first, 300_000, now=T0)
    assert member(db, first).tier == "Gold" and member(db, first).message is None
    with db.transaction() as s:
        set_auto_message(s, s.get(Club, club_id), AutoKind.TIER_REACHED, enabled=True, text="Welcome to {tier}, {name}")
    buy(db, second, 300_000, now=T0 + timedelta(hours=1))
    assert member(db, second).message == "Welcome to Gold, Bob"
