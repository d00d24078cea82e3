"""Enrolment, member lookups and transactions through the API."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.support.api import Api, error_code, make_brand
from tests.support.ledger import recompute_figures
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import Membership

MEMBER_FIELDS = {"id", "club_id", "card_number", "serial_number", "balance", "pending", "cash_balance",
                 "tier", "expiring", "apple_pass_url", "google_save_url"}


def _ledger_rows(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0


def test_enrolment_answers_the_member_with_card_links(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club(program={"bonuses": {"welcome_points": 100}, "points": {"earn_points": 1, "per_amount": 100}})
    member = api.member(club["id"], email="Ann@Example.com", birthday="1990-05-01")
    assert MEMBER_FIELDS <= set(member)
    assert member["club_id"] == club["id"]
    assert member["balance"] == 100 and member["pending"] == 0 and member["cash_balance"] == 0
    assert member["expiring"] is None
    assert member["apple_pass_url"].startswith("https://wallet.test/apple/cards/")
    assert member["apple_pass_url"].endswith(".pkpass")
    assert member["google_save_url"].startswith("https://pay.google.com/gp/v/save/")
    assert api.get(f"/members/{member['id']}").get_json() == member


def test_enrolling_someone_already_in_the_club_answers_200_with_the_same_member(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    first = api.member(club["id"], email="ann@example.com")
    again = api.post(f"/clubs/{club['id']}/members", {"email": "ANN@example.com", "name": "Ann"})
    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"]
    by_phone = api.post(f"/clubs/{club['id']}/members", {"phone": "+7 916 123-45-67"})
    assert by_phone.status_code == 201
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 2


def test_enrolment_needs_an_email_or_a_phone_and_valid_values(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    for body in ({"name": "Nobody"}, {"email": "not-an-email"}, {"phone": "12"},
                 {"email": "a@example.com", "birthday": "2999-01-01"},
                 {"email": "a@example.com", "birthday": "yesterday"},
                 {"email": "a@example.com", "referral_code": "NOSUCHCODE"},
                 {"email": "a@example.com", "favourite_colour": "blue"}):
        response = api.post(f"/clubs/{club['id']}/members", body)
        assert response.status_code == 422, (body, response.get_json())
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 0


def test_members_are_found_by_card_number_email_or_phone(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    ann = api.member(club["id"], email="ann@example.com")
    bob = api.member(club["id"], email="bob@example.com", phone="+79161112233")
    path = f"/clubs/{club['id']}/members"
    assert [m["id"] for m in api.get(path).get_json()["items"]] == [ann["id"], bob["id"]]
    assert [m["id"] for m in api.get(f"{path}?card_number={bob['card_number']}").get_json()["items"]] == [bob["id"]]
    assert [m["id"] for m in api.get(f"{path}?email=ANN@example.com").get_json()["items"]] == [ann["id"]]
    assert [m["id"] for m in api.get(f"{path}?phone=%2B79161112233").get_json()["items"]] == [bob["id"]]
    assert api.get(f"{path}?card_number=000000000000").get_json() == {"items": [], "next_cursor": None}
    assert api.get(f"{path}?email=nobody").status_code == 400
    page = api.get(f"{path}?limit=1").get_json()
    assert [m["id"] for m in page["items"]] == [ann["id"]]
    rest = api.get(f"{path}?limit=1&cursor={page['next_cursor']}").get_json()
    assert [m["id"] for m in rest["items"]] == [bob["id"]]


def test_purchase_redeem_refund_adjust(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()  # 5 points per 100.00
    member = api.member(club["id"])
    mid = member["id"]

    bought = api.purchase(mid, 100000, receipt_id="R-1")
    assert bought["transaction"]["type"] == "purchase" and bought["transaction"]["points"] == 50
    assert {"id", "type", "points", "created_at"} <= set(bought["transaction"])
    assert bought["member"]["balance"] == 50

    spent = api.post(f"/members/{mid}/transactions", {"type": "redeem", "points": 20})
    assert spent.status_code == 201
    assert spent.get_json()["transaction"]["points"] == -20 and spent.get_json()["member"]["balance"] == 30

    refunded = api.post(f"/members/{mid}/transactions",
                        {"type": "refund", "refund_of": bought["transaction"]["id"], "amount": 50000})
    assert refunded.status_code == 201, refunded.get_json()
    assert refunded.get_json()["transaction"]["points"] == -25
    assert refunded.get_json()["member"]["balance"] == 5

    adjusted = api.post(f"/members/{mid}/transactions", {"type": "adjust", "points": 7, "reason": "goodwill"})
    assert adjusted.status_code == 201 and adjusted.get_json()["member"]["balance"] == 12

    listed = api.get(f"/members/{mid}/transactions").get_json()
    assert [t["type"] for t in listed["items"]] == ["adjust", "refund", "redeem", "purchase"]
    first = api.get(f"/members/{mid}/transactions?limit=3").get_json()
    rest = api.get(f"/members/{mid}/transactions?limit=3&cursor={first['next_cursor']}").get_json()
    assert [t["id"] for t in first["items"] + rest["items"]] == [t["id"] for t in listed["items"]]
    with db.session() as s:
        m = s.get(Membership, mid)
        assert recompute_figures(s, m).balance == m.balance == 12


def test_a_stamp_club_books_a_stamp_alone_and_its_reward(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club(program={"stamps": {"required": 2, "reward": "Free tea"}})
    mid = api.member(club["id"])["id"]
    api.purchase(mid, 500)
    stamped = api.post(f"/members/{mid}/transactions", {"type": "stamp"})
    assert stamped.status_code == 201, stamped.get_json()
    assert (stamped.get_json()["transaction"]["type"], stamped.get_json()["transaction"]["stamps_change"]) == (
        "stamp", 1)
    assert stamped.get_json()["member"]["stamps"] == 0  # the second stamp filled the card
    listed = api.get(f"/members/{mid}/transactions").get_json()["items"]
    assert [(t["type"], t["stamps_change"], t["reason"]) for t in listed] == [
        ("reward", -2, "Free tea"), ("stamp", 1, None), ("purchase", 1, None)]


def test_rule_breaking_transactions_are_422_and_book_nothing(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    mid = api.member(club["id"])["id"]
    bought = api.purchase(mid, 100000)
    rows = _ledger_rows(db)
    path = f"/members/{mid}/transactions"
    cases = [
        ({"type": "purchase", "amount": -100}, "validation_error"),
        ({"type": "purchase", "amount": 0}, "validation_error"),
        ({"type": "purchase", "amount": 10**20}, "validation_error"),
        ({"type": "purchase", "amount": 12.5}, "validation_error"),
        ({"type": "purchase", "amount": "100"}, "validation_error"),
        ({"type": "purchase", "amount": True}, "validation_error"),
        ({"type": "purchase"}, "validation_error"),
        ({"type": "purchase", "amount": 100, "tip": 5}, "unknown_field"),
        ({"type": "purchase", "amount": 100, "points": 5}, "unknown_field"),
        ({"type": "gift", "amount": 100}, "validation_error"),
        ({"type": "redeem", "points": 51}, "insufficient_balance"),
        ({"type": "redeem", "points": -5}, "validation_error"),
        ({"type": "refund", "refund_of": bought["transaction"]["id"], "amount": 100001}, "refund_exceeds_purchase"),
        ({"type": "adjust", "points": -51, "reason": "oops"}, "insufficient_balance"),
        ({"type": "adjust", "points": 5}, "validation_error"),
        ({"type": "stamp"}, "no_stamps"),
        ({"type": "stamp", "amount": 100}, "unknown_field"),
    ]
    for body, code in cases:
        response = api.post(path, body)
        assert response.status_code == 422, (body, response.get_json())
        assert error_code(response) == code, (body, response.get_json())
    missing = api.post(path, {"type": "refund", "refund_of": 999999, "amount": 1})
    assert missing.status_code == 404
    assert _ledger_rows(db) == rows
    assert api.get(f"/members/{mid}").get_json()["balance"] == 50


def test_a_receipt_is_booked_once_per_club(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    mid = api.member(club["id"])["id"]
    api.purchase(mid, 1000, receipt_id="R-7")
    again = api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 1000, "receipt_id": "R-7"})
    assert again.status_code == 409 and error_code(again) == "duplicate_receipt"


def test_a_club_message_is_accepted_for_every_card(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    api.member(club["id"], email="a@example.com")
    api.member(club["id"], email="b@example.com")
    response = api.post(f"/clubs/{club['id']}/messages", {"text": "Double points this weekend"})
    assert response.status_code == 202 and response.get_json() == {"cards": 2}
    assert api.post(f"/clubs/{club['id']}/messages", {"text": ""}).status_code == 422
    assert api.post(f"/clubs/{club['id']}/messages", {"text": "Hi", "tier": "Gold"}).status_code == 422


def test_points_expiring_soon_show_on_the_member(client, db):
    from datetime import datetime, timedelta

    from wallet.db import utcnow
    from wallet.loyalty.schedule import run_time_rules

    api = Api(client, make_brand(db).key)
    club = api.club(program={"points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 30,
                                        "warning_days": 14}})
    mid = api.member(club["id"])["id"]
    bought = api.purchase(mid, 100000)
    assert bought["member"]["expiring"] is None
    # The nightly run, 20 days on: the 50 points run out within the warning window.
    run_time_rules(db, utcnow() + timedelta(days=20))
    expiring = api.get(f"/members/{mid}").get_json()["expiring"]
    earned_at = datetime.fromisoformat(bought["transaction"]["created_at"])
    expected_date = (earned_at + timedelta(days=30)).date().isoformat()
    assert expiring == {"points": 50, "date": expected_date}


def test_a_transactions_answer_shows_the_club_as_it_is_now(app, client, db):
    """The answer's Google save link carries the club (development: the
    whole class): after the club changes, the next booking's link shows the
    change, whatever the process kept of the club before."""
    import jwt

    from wallet.google.identity import get_identity
    from wallet.google.links import SAVE_URL_PREFIX

    def program_name(answer: dict) -> str:
        token = answer["member"]["google_save_url"].removeprefix(SAVE_URL_PREFIX)
        claims = jwt.decode(token, get_identity(app).private_key.public_key(), algorithms=["RS256"],
                            audience="google")
        return claims["payload"]["loyaltyClasses"][0]["programName"]

    api = Api(client, make_brand(db).key)
    club = api.club(name="Before")
    mid = api.member(club["id"])["id"]
    assert program_name(api.purchase(mid, 10_000)) == "Before"
    assert program_name(api.purchase(mid, 10_000)) == "Before"
    assert api.patch(f"/clubs/{club['id']}", {"name": "After"}).status_code == 200
    for kind in ({"type": "purchase", "amount": 10_000}, {"type": "adjust", "points": 5, "reason": "gift"}):
        answer = api.post(f"/members/{mid}/transactions", kind)
        assert answer.status_code == 201 and program_name(answer.get_json()) == "After"
