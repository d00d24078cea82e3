"""A brand sees and touches only its own rows: another brand's id is a 404,
exactly like an id that does not exist, on every endpoint that takes one;
and two brands that enrol the same person (by email, phone or both, again
after the card ended, through a referral, with a birthday) each keep the
profile they were told, which the other neither sees nor changes."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.api import POINTS_PROGRAM, Api, error_code, make_brand
from wallet.loyalty import identity
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.schedule import run_time_rules
from wallet.loyalty.webhooks import Webhook


def _count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_every_endpoint_with_an_id_answers_404_for_another_brands_id(app, client, db):
    a = Api(client, make_brand(db, "Alpha").key)
    b = Api(client, make_brand(db, "Beta").key)
    club = a.club()
    member = a.member(club["id"])
    bought = a.purchase(member["id"], 20000)
    hook = a.post("/webhooks", {"url": "https://hooks.example.com/hook"}).get_json()
    a_key = a.post("/api-keys", {"name": "till 2"}).get_json()
    send_at = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    campaign = a.post(f"/clubs/{club['id']}/campaigns", {"text": "Tomorrow", "send_at": send_at}).get_json()
    b_member = b.member(b.club()["id"])
    ledger_rows = _count(db, LedgerTransaction)

    cid, mid = club["id"], member["id"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/clubs/{cid}", None),
        ("PATCH", f"/clubs/{cid}", {"name": "Taken over"}),
        ("POST", f"/clubs/{cid}/members", {"email": "spy@example.com"}),
        ("GET", f"/clubs/{cid}/members", None),
        ("POST", f"/clubs/{cid}/messages", {"text": "Hello from Beta"}),
        ("GET", f"/clubs/{cid}/numbers", None),
        ("POST", f"/clubs/{cid}/campaigns", {"text": "Hello from Beta"}),
        ("GET", f"/clubs/{cid}/campaigns", None),
        ("GET", f"/campaigns/{campaign['id']}", None),
        ("DELETE", f"/campaigns/{campaign['id']}", None),
        ("GET", f"/members/{mid}", None),
        ("POST", f"/members/{mid}/transactions", {"type": "purchase", "amount": 100}),
        ("GET", f"/members/{mid}/transactions", None),
        ("DELETE", f"/api-keys/{a_key['id']}", None),
        ("GET", f"/webhooks/{hook['id']}", None),
        ("GET", f"/webhooks/{hook['id']}/deliveries", None),
        ("DELETE", f"/webhooks/{hook['id']}", None),
    ]
    covered = set()
    for method, path, body in calls:
        if method == "GET":
            response = b.get(path)
        elif method == "DELETE":
            response = b.delete(path)
        elif method == "PATCH":
            response = b.patch(path, body)
        else:
            response = b.post(path, body)
        assert response.status_code == 404, (method, path, response.get_json())
        assert error_code(response).endswith("not_found")
        covered.add((method, _rule_of(app, path)))

    # A's purchase cannot be refunded through B's member either.
    refund = b.post(f"/members/{b_member['id']}/transactions",
                    {"type": "refund", "refund_of": bought["transaction"]["id"], "amount": 100})
    assert refund.status_code == 404

    # Nothing of A's changed, and A's key still works.
    assert _count(db, LedgerTransaction) == ledger_rows
    with db.session() as s:
        assert s.get(Club, cid).name == "Beans"
        assert s.get(Webhook, hook["id"]).active
    assert a.get(f"/campaigns/{campaign['id']}").get_json()["status"] == "scheduled"
    assert Api(client, a_key["key"]).get(f"/clubs/{cid}").status_code == 200
    assert a.get(f"/members/{mid}").get_json()["balance"] == member["balance"] + 10

    # Every API route that takes an id is in the list above.
    with_ids = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and "<" in rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert with_ids <= covered, with_ids - covered


def _rule_of(app, path: str) -> str:
    adapter = app.url_map.bind("localhost")
    for method in ("GET", "POST", "PATCH", "DELETE"):
        try:
            rule, _ = adapter.match("/api/v1" + path, method=method, return_rule=True)
            return rule.rule
        except Exception:  # noqa: BLE001 - try the next method
            continue
    raise AssertionError(path)


def test_lists_show_only_the_brands_own_rows(client, db):
    a = Api(client, make_brand(db, "Alpha").key)
    b = Api(client, make_brand(db, "Beta").key)
    a_club = a.club()
    a.post("/webhooks", {"url": "https://hooks.example.com/hook"})
    b_club = b.club(name="Beta club")
    assert [c["id"] for c in b.get("/clubs").get_json()["items"]] == [b_club["id"]]
    assert b.get("/webhooks").get_json()["items"] == []
    assert len(b.get("/api-keys").get_json()["items"]) == 1
    assert len(a.get("/api-keys").get_json()["items"]) == 1
    # A cursor made from A's ids does not open A's rows to B.
    a.club(name="Second")
    page = a.get("/clubs?limit=1").get_json()
    assert [c["id"] for c in b.get(f"/clubs?cursor={page['next_cursor']}").get_json()["items"]] == [b_club["id"]]
    assert a_club["id"] not in [c["id"] for c in b.get("/clubs").get_json()["items"]]


def test_a_referral_code_works_only_inside_its_own_club(client, db):
    a = Api(client, make_brand(db, "Alpha").key)
    b = Api(client, make_brand(db, "Beta").key)
    code = a.member(a.club()["id"])["referral_code"]
    response = b.post(f"/clubs/{b.club()['id']}/members", {"email": "x@example.com", "referral_code": code})
    assert response.status_code == 422 and error_code(response) == "unknown_referral_code"


# --- customers belong to the brand that was told ----------------------------------------

BONUSES = {**POINTS_PROGRAM, "bonuses": {"welcome_points": 10, "referral_points": 20, "birthday_points": 300}}
ANN_AT_A = {"email": "ann@example.com", "phone": "8 (916) 123-45-67", "name": "Ann Alpha",
            "birthday": "1990-01-05", "locale": "ru"}
PROFILE = ("name", "email", "phone", "birthday", "locale")


def _two_brands(client, db) -> tuple[Api, Api, int, int]:
    a = Api(client, make_brand(db, "Alpha").key)
    b = Api(client, make_brand(db, "Beta").key)
    a_club = a.club(country="RU", program=BONUSES)["id"]
    b_club = b.club(country="RU", program=BONUSES, name="Beta club")["id"]
    with db.transaction() as s:  # webhooks of both, so every event is queued and can be read back
        for club_id in (a_club, b_club):
            s.add(Webhook(brand_id=s.get(Club, club_id).brand_id, url="https://hooks.example.com/"))
    return a, b, a_club, b_club


def _events(db, brand_id: int) -> list[dict[str, Any]]:
    with db.session() as s:
        return [row.payload["event"] for row in s.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "webhook", OutboxEvent.brand_id == brand_id)
            .order_by(OutboxEvent.id))]


def _brand_of(db, club_id: int) -> int:
    with db.session() as s:
        return s.get(Club, club_id).brand_id


@pytest.mark.parametrize("told_b", [
    {"email": "ANN@example.com"},
    {"phone": "+7 916 123 45 67"},
    {"email": "ann@example.com", "phone": "89161234567"},
], ids=["email", "phone", "both"])
def test_another_brand_enrolling_the_same_person_neither_sees_nor_changes_the_first(client, db,
                                                                                    told_b) -> None:
    a, b, a_club, b_club = _two_brands(client, db)
    ann_a = a.post(f"/clubs/{a_club}/members", ANN_AT_A).get_json()
    a_before = a.get(f"/members/{ann_a['id']}").get_json()

    response = b.post(f"/clubs/{b_club}/members", {**told_b, "name": "Anna B"})
    assert response.status_code == 201  # a membership of B's own, not A's
    ann_b = response.get_json()
    assert {k: ann_b[k] for k in PROFILE} == {
        "name": "Anna B", "email": "ann@example.com" if "email" in told_b else None,
        "phone": "+79161234567" if "phone" in told_b else None, "birthday": None, "locale": "en"}
    assert ann_b["id"] != ann_a["id"] and ann_b["balance"] == 10  # B's own welcome bonus

    # Enrolling again in B, now with everything A holds, gives B's member back unchanged.
    again = b.post(f"/clubs/{b_club}/members", {**ANN_AT_A, "name": "Mallory"})
    assert again.status_code == 200 and again.get_json()["id"] == ann_b["id"]
    assert {k: again.get_json()[k] for k in PROFILE} == {k: ann_b[k] for k in PROFILE}
    assert a.get(f"/members/{ann_a['id']}").get_json() == a_before

    # Each brand's search looks in its own club's profiles only.
    b_path, a_path = f"/clubs/{b_club}/members", f"/clubs/{a_club}/members"
    for field, value in (("email", "ann@example.com"), ("phone", "%2B79161234567")):
        b_found = [m["id"] for m in b.get(f"{b_path}?{field}={value}").get_json()["items"]]
        assert b_found == ([ann_b["id"]] if field in told_b else [])
        assert [m["id"] for m in a.get(f"{a_path}?{field}={value}").get_json()["items"]] == [ann_a["id"]]
        assert b.get(f"{a_path}?{field}={value}").status_code == 404

    # Webhooks carry only the profile each brand was told.
    b_events = _events(db, _brand_of(db, b_club))
    assert [e["type"] for e in b_events] == ["member.enrolled"]
    assert b_events[0]["data"]["name"] == "Anna B" and b_events[0]["data"]["birthday"] is None
    leaked = json.dumps(b_events)
    assert "Ann Alpha" not in leaked and "1990-01-05" not in leaked and str(ann_a["id"]) not in [
        str(e["data"]["member"]["id"]) for e in b_events]
    if "phone" not in told_b:
        assert "79161234567" not in leaked
    a_events = _events(db, _brand_of(db, a_club))
    assert [e["data"]["name"] for e in a_events] == ["Ann Alpha"] and "Anna B" not in json.dumps(a_events)


def test_a_member_whose_card_ended_rejoins_with_a_new_card_in_that_brand_only(client, db) -> None:
    a, b, a_club, b_club = _two_brands(client, db)
    ann_a = a.post(f"/clubs/{a_club}/members", ANN_AT_A).get_json()
    ann_b = b.member(b_club, email="ann@example.com", name="Anna B")
    with db.transaction() as s:
        s.get(Membership, ann_a["id"]).status = "ended"
    rejoined = a.post(f"/clubs/{a_club}/members", {"email": "ann@example.com", "name": "Ann Again"})
    assert rejoined.status_code == 201 and rejoined.get_json()["id"] != ann_a["id"]
    assert rejoined.get_json()["phone"] is None  # a new card starts from what it was told
    assert a.get(f"/members/{ann_a['id']}").get_json()["status"] == "ended"
    assert b.post(f"/clubs/{b_club}/members", {"email": "ann@example.com"}).get_json()["id"] == ann_b["id"]
    assert b.get(f"/members/{ann_b['id']}").get_json()["name"] == "Anna B"


def test_a_birthday_bonus_is_paid_from_the_birthday_each_club_was_told(client, db) -> None:
    a, b, a_club, b_club = _two_brands(client, db)
    soon = date.today() + timedelta(days=10)
    if (soon.month, soon.day) == (2, 29):
        soon += timedelta(days=1)
    later = soon + timedelta(days=30)
    ann_a = a.post(f"/clubs/{a_club}/members", {**ANN_AT_A, "birthday": f"1990-{soon:%m-%d}"}).get_json()
    ann_b = b.member(b_club, email="ann@example.com", name="Anna B", birthday=f"1985-{later:%m-%d}")
    no_birthday = b.member(b_club, email="bob@example.com", name="Bob")

    def paid(api: Api, member_id: int) -> int:
        return sum(t["points"] for t in api.get(f"/members/{member_id}/transactions").get_json()["items"]
                   if t["reason"] == "birthday")

    run_time_rules(db, datetime(soon.year, soon.month, soon.day, 9, tzinfo=timezone.utc))
    assert (paid(a, ann_a["id"]), paid(b, ann_b["id"])) == (300, 0)
    run_time_rules(db, datetime(later.year, later.month, later.day, 9, tzinfo=timezone.utc))
    assert (paid(a, ann_a["id"]), paid(b, ann_b["id"]), paid(b, no_birthday["id"])) == (300, 300, 0)


def test_a_referral_pays_inside_its_own_club_whoever_else_knows_the_people(client, db) -> None:
    a, b, a_club, b_club = _two_brands(client, db)
    ann_a = a.post(f"/clubs/{a_club}/members", ANN_AT_A).get_json()
    bob_b = b.member(b_club, email="bob@example.com", name="Bob at B")
    # B cannot use A's code, even for the same people.
    refused = b.post(f"/clubs/{b_club}/members", {"email": "cat@example.com",
                                                  "referral_code": ann_a["referral_code"]})
    assert refused.status_code == 422 and error_code(refused) == "unknown_referral_code"
    bob_a = a.post(f"/clubs/{a_club}/members", {"email": "bob@example.com", "name": "Bob",
                                                "referral_code": ann_a["referral_code"]}).get_json()
    assert bob_a["id"] != bob_b["id"]
    a.purchase(bob_a["id"], 20_000)
    assert a.get(f"/members/{ann_a['id']}").get_json()["balance"] == 10 + 20
    assert b.get(f"/members/{bob_b['id']}").get_json()["balance"] == 10
    assert [t["reason"] for t in b.get(f"/members/{bob_b['id']}/transactions").get_json()["items"]] == ["welcome"]


def test_proving_an_email_joins_the_cards_for_the_person_and_nothing_for_the_brands(client, db) -> None:
    a, b, a_club, b_club = _two_brands(client, db)
    ann_a = a.post(f"/clubs/{a_club}/members", ANN_AT_A).get_json()
    ann_b = b.member(b_club, email="ann@example.com", name="Anna B")
    sent: list[str] = []
    identity.request_email_sign_in(db, "ann@example.com", link_for=lambda t: sent.append(t) or f"https://w/{t}")
    customer = identity.verify_email_sign_in(db, sent[0])
    with db.session() as s:
        assert {m.id for m in identity.memberships_of(s, customer.id)} == {ann_a["id"], ann_b["id"]}
    # Each brand still sees its own profile and nothing of the other's.
    assert b.get(f"/members/{ann_b['id']}").get_json()["name"] == "Anna B"
    assert b.get(f"/members/{ann_b['id']}").get_json()["phone"] is None
    assert a.get(f"/members/{ann_a['id']}").get_json()["name"] == "Ann Alpha"
    assert b.get(f"/members/{ann_a['id']}").status_code == 404
