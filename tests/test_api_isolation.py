"""A brand sees and touches only its own rows: another brand's id is a 404,
exactly like an id that does not exist, on every endpoint that takes one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tests.support.api import Api, error_code, make_brand
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import Club
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
    b_member = b.member(b.club()["id"])
    ledger_rows = _count(db, LedgerTransaction)

    cid, mid = club["id"], member["id"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/clubs/{cid}", None),
        ("PATCH", f"/clubs/{cid}", {"name": "Taken over"}),
        ("POST", f"/clubs/{cid}/members", {"email": "spy@example.com"}),
        ("GET", f"/clubs/{cid}/members", None),
        ("POST", f"/clubs/{cid}/messages", {"text": "Hello from Beta"}),
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
