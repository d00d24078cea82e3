"""A till's transaction answered before Flask makes a request of it
(wallet.api.direct): the route's answer byte for byte, every refusal the
route's own, the request counted against the rate limit once."""

from __future__ import annotations

import json

import pytest
from flask import request_started
from sqlalchemy import func, select, update

from tests.support.api import Api, error_code, make_brand
from wallet.db import utcnow
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import ApiKey


@pytest.fixture
def routed(app):
    """How many requests Flask's routing served."""
    seen: list[str] = []

    def note(sender, **extra):  # noqa: ANN001
        seen.append("routed")

    request_started.connect(note, app, weak=False)
    yield seen
    request_started.disconnect(note, app)


def _entries(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0


def test_a_purchase_answered_directly_is_the_routes_answer(client, db, routed):
    api = Api(client, make_brand(db).key)
    club = api.club()
    first, second = api.member(club["id"], "a@example.com"), api.member(club["id"], "b@example.com")
    body = {"type": "purchase", "amount": 25000}
    before = len(routed)
    # A media type with parameters is left to the route; the plain one is answered directly.
    by_route = api.post(f"/members/{first['id']}/transactions", data=json.dumps(body),
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert len(routed) == before + 1
    direct = api.post(f"/members/{second['id']}/transactions", body, key="direct-1")
    assert len(routed) == before + 1
    assert by_route.status == direct.status == "201 CREATED"
    assert [name for name, _ in by_route.headers] == [name for name, _ in direct.headers]
    assert by_route.headers["Content-Type"] == direct.headers["Content-Type"] == "application/json"
    for answer in (by_route, direct):
        assert int(answer.headers["Content-Length"]) == len(answer.data)
        assert answer.data == (json.dumps(answer.get_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()
    routed_json, direct_json = by_route.get_json(), direct.get_json()
    assert routed_json.keys() == direct_json.keys()
    for part in ("transaction", "member"):
        assert routed_json[part].keys() == direct_json[part].keys()
    assert direct_json["member"]["id"] == second["id"] and direct_json["transaction"]["points"] == 12
    # The retry replays exactly what was answered, and books nothing more.
    entries = _entries(db)
    replayed = api.post(f"/members/{second['id']}/transactions", body, key="direct-1")
    assert replayed.data == direct.data and replayed.headers["Idempotent-Replayed"] == "true"
    assert _entries(db) == entries


# Each member's own, not what the purchase made of the card.
_OWN = {"member": ("id", "card_number", "serial_number", "email", "referral_code", "apple_pass_url",
                   "google_save_url", "created_at"),
        "transaction": ("id", "member_id", "created_at")}


def test_a_purchase_that_lifts_the_tier_and_fills_the_card_answered_directly_is_the_routes_answer(client, db,
                                                                                                   routed):
    # Its answer is made before the card change's statement, which stores
    # it with the Idempotency-Key (on PostgreSQL): it shows the member as
    # the whole booking leaves it, the tier and the reward included.
    api = Api(client, make_brand(db).key)
    club = api.club(program={
        "points": {"earn_points": 5, "per_amount": 10000},
        "tiers": {"levels": [{"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 20000}]},
        "cashback": {"percent": "1"},
        "stamps": {"required": 2, "reward": "Free coffee"},
    })
    first, second = api.member(club["id"], "a@example.com"), api.member(club["id"], "b@example.com")
    for member in (first, second):
        api.purchase(member["id"], 15000)
    body = {"type": "purchase", "amount": 10000}
    before = len(routed)
    by_route = api.post(f"/members/{first['id']}/transactions", data=json.dumps(body),
                        headers={"Content-Type": "application/json; charset=utf-8"})
    direct = api.post(f"/members/{second['id']}/transactions", body, key="direct-lift")
    assert len(routed) == before + 1 and by_route.status_code == direct.status_code == 201
    answers = [answer.get_json() for answer in (by_route, direct)]
    for answer in answers:
        for part, own in _OWN.items():
            for key in own:
                answer[part].pop(key)
    assert answers[0] == answers[1]
    assert (answers[1]["member"]["tier"], answers[1]["member"]["stamps"]) == ("Gold", 0)
    held = api.get(f"/members/{second['id']}").get_json()
    assert {key: held[key] for key in ("balance", "cash_balance", "stamps", "tier")} == {
        key: direct.get_json()["member"][key] for key in ("balance", "cash_balance", "stamps", "tier")}
    replayed = api.post(f"/members/{second['id']}/transactions", body, key="direct-lift")
    assert replayed.data == direct.data and replayed.headers["Idempotent-Replayed"] == "true"


def test_a_key_revoked_after_it_was_proven_is_refused_and_books_nothing(client, db, routed):
    brand = make_brand(db)
    api = Api(client, brand.key)
    member = api.member(api.club()["id"])
    api.purchase(member["id"], 10000)
    entries = _entries(db)
    with db.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.brand_id == brand.id).values(revoked_at=utcnow()))
    refused = api.post(f"/members/{member['id']}/transactions", {"type": "purchase", "amount": 10000})
    assert refused.status_code == 401 and error_code(refused) == "invalid_api_key"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert _entries(db) == entries


class TestRateLimit:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["API_RATE_LIMIT"] = "4 per minute"
        return app_config

    def test_a_request_the_route_answers_after_the_direct_path_is_counted_once(self, client, db, routed):
        api = Api(client, make_brand(db).key)
        member = api.member(api.club()["id"])  # two requests
        before = len(routed)
        broken = api.post(f"/members/{member['id']}/transactions", {"type": "purchase", "amount": -5})
        assert broken.status_code == 422 and len(routed) == before + 1  # counted once: the third
        assert api.post(f"/members/{member['id']}/transactions",
                        {"type": "purchase", "amount": 5000}).status_code == 201  # the fourth
        limited = api.post(f"/members/{member['id']}/transactions", {"type": "purchase", "amount": 5000})
        assert limited.status_code == 429 and error_code(limited) == "rate_limited"
        assert limited.get_json()["error"]["message"] == (
            f"rate limit exceeded (4 per 1 minute); retry after {limited.headers['Retry-After']} s")
