"""Every client mistake is a clear 4xx in the one error format, never a 5xx."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.support.api import Api, error_code, make_brand
from wallet.api.models import IdempotencyKey
from wallet.loyalty.brands import revoke_api_key
from wallet.loyalty.models import ApiKey, Brand


def test_no_key_a_wrong_key_or_a_revoked_key_is_401(client, db):
    brand = make_brand(db)
    assert client.get("/api/v1/clubs").status_code == 401
    assert client.get("/api/v1/clubs", headers={"Authorization": "Basic abc"}).status_code == 401
    wrong = client.get("/api/v1/clubs", headers={"Authorization": "Bearer wc_live_nope"})
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_api_key"
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert Api(client, brand.key).get("/clubs").status_code == 200
    with db.transaction() as s:
        key = s.query(ApiKey).filter_by(brand_id=brand.id).one()
        revoke_api_key(s, s.get(Brand, brand.id), key.id)
    assert Api(client, brand.key).get("/clubs").status_code == 401


def test_malformed_json_is_400_and_a_wrong_content_type_415(client, db):
    api = Api(client, make_brand(db).key)
    headers = api.headers({"Idempotency-Key": "k"})
    bad = client.post("/api/v1/clubs", data='{"name": ', headers=headers, content_type="application/json")
    assert bad.status_code == 400 and error_code(bad) == "malformed_json"
    nan = client.post("/api/v1/clubs", data='{"name": NaN}', headers=headers, content_type="application/json")
    assert nan.status_code == 400
    huge = client.post("/api/v1/clubs", data='{"name": ' + "9" * 5000 + "}", headers=headers,
                       content_type="application/json")
    assert huge.status_code == 400
    deep = client.post("/api/v1/clubs", data="[" * 100000 + "]" * 100000, headers=headers,
                       content_type="application/json")
    assert deep.status_code in (400, 413)
    form = client.post("/api/v1/clubs", data={"name": "x"}, headers=headers)
    assert form.status_code == 415 and error_code(form) == "unsupported_media_type"
    not_object = api.post("/clubs", ["name"])
    assert not_object.status_code == 422


def test_text_the_database_cannot_store_is_refused(client, db):
    api = Api(client, make_brand(db).key)
    assert api.post("/clubs", {"name": "Nul\u0000club"}).status_code == 422
    surrogate = client.post("/api/v1/clubs", data='{"name": "\\ud800"}', content_type="application/json",
                            headers=api.headers())
    assert surrogate.status_code == 422
    assert api.get("/clubs?cursor=%00").status_code == 400


class TestBodyLimit:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["API_MAX_BODY"] = 1000
        return app_config

    def test_a_body_too_large_is_413(self, client, db):
        _body_too_large_is_413(client, db)


def _body_too_large_is_413(client, db):
    api = Api(client, make_brand(db).key)
    response = api.post("/clubs", {"name": "x", "description": "y" * 2000})
    assert response.status_code == 413 and error_code(response) == "payload_too_large"


def test_unknown_routes_wrong_methods_and_odd_ids(client, db):
    api = Api(client, make_brand(db).key)
    assert error_code(api.get("/nothing-here")) == "not_found"
    assert client.get("/api/v2/clubs").status_code == 404
    assert api.get("/clubs/abc").status_code == 404
    assert api.get("/members/-1").status_code == 404
    assert api.get("/members/99999999999999999999999999").status_code == 404
    assert api.get("/clubs/9223372036854775808").status_code == 404
    club = api.club()
    assert api.get(f"/clubs/{club['id']}").status_code == 200
    # The same number in other digits names nothing, in the path or the query.
    wide = "".join(chr(0xFF10 + int(d)) for d in str(club["id"]))
    assert api.get(f"/clubs/{wide}").status_code == 404
    for limit in ("\u0661\u0660", "1_0", " 10", "10.0", "9" * 40):
        response = api.get(f"/clubs?limit={limit}")
        assert response.status_code == 400 and error_code(response) == "invalid_query", limit
    wrong = api.delete("/clubs")
    assert wrong.status_code == 405 and error_code(wrong) == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


class TestRateLimit:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["API_RATE_LIMIT"] = "5 per minute"
        return app_config

    def test_too_many_requests_is_429_with_retry_after(self, client, db):
        api = Api(client, make_brand(db).key)
        other = Api(client, make_brand(db, "Other").key)
        statuses = [api.get("/clubs").status_code for _ in range(6)]
        assert statuses[:5] == [200] * 5 and statuses[5] == 429
        limited = api.get("/clubs")
        assert error_code(limited) == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        assert limited.get_json()["error"]["message"] == (
            f"rate limit exceeded (5 per 1 minute); retry after {limited.headers['Retry-After']} s")
        # The limit is per API key: another brand is not held back.
        assert other.get("/clubs").status_code == 200

    def test_a_wrong_key_spends_its_own_budget_and_writes_are_limited_too(self, client, db):
        wrong = Api(client, "wk_not-a-key")
        assert [wrong.get("/clubs").status_code for _ in range(6)] == [401] * 5 + [429]
        api = Api(client, make_brand(db).key)
        statuses = [api.post("/clubs", {"name": f"Club {n}", "currency": "RUB"}).status_code for n in range(6)]
        assert statuses == [201] * 5 + [429]


class TestServerFaults:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["TESTING"] = False  # let Flask turn an exception into a 500 as in production
        app_config["PROPAGATE_EXCEPTIONS"] = False
        return app_config

    def test_a_fault_of_ours_still_answers_in_the_api_format(self, client, db, monkeypatch):
        import wallet.api.views as views

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(views.club_core, "list_clubs", broken)
        response = Api(client, make_brand(db).key).get("/clubs")
        assert response.status_code == 500 and error_code(response) == "internal_error"


def test_a_key_revoked_after_it_proved_live_stops_booking_at_once(client, db):
    """A write that claims an Idempotency-Key takes a key that proved live
    without looking it up; its claim checks the key in the transaction that
    books, so a revoked key books nothing, is 401, and stores no answer."""
    brand = make_brand(db)
    api = Api(client, brand.key)
    club = api.club()
    member = api.member(club["id"])
    assert api.purchase(member["id"], 100_00)["member"]["balance"] > 0
    with db.transaction() as s:
        key = s.query(ApiKey).filter_by(brand_id=brand.id).one()
        revoke_api_key(s, s.get(Brand, brand.id), key.id)
    body = {"type": "purchase", "amount": 100_00}
    for _ in range(2):  # the same Idempotency-Key again: the refusal was not stored
        refused = api.post(f"/members/{member['id']}/transactions", body, key="after-revocation")
        assert refused.status_code == 401 and error_code(refused) == "invalid_api_key"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    with db.transaction() as s:
        s.execute(update(ApiKey).values(revoked_at=None))
    again = api.post(f"/members/{member['id']}/transactions", body, key="after-revocation")
    assert again.status_code == 201 and again.get_json()["member"]["balance"] == 2 * (
        again.get_json()["transaction"]["points"])


def test_a_revoked_key_is_401_even_for_a_request_the_view_refuses(client, db):
    """A key taken as proven is checked when the refusal is stored: the
    request is 401, not the view's 422, and no answer is kept for its
    Idempotency-Key."""
    brand = make_brand(db)
    api = Api(client, brand.key)
    member = api.member(api.club()["id"])
    assert api.purchase(member["id"], 100_00)["member"]["balance"] > 0
    with db.transaction() as s:
        key = s.query(ApiKey).filter_by(brand_id=brand.id).one()
        revoke_api_key(s, s.get(Brand, brand.id), key.id)
    refused = api.post(f"/members/{member['id']}/transactions", {"type": "redeem", "points": 10_000},
                       key="redeem-after-revocation")
    assert refused.status_code == 401 and error_code(refused) == "invalid_api_key"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    with db.session() as s:
        assert s.query(IdempotencyKey).filter_by(key="redeem-after-revocation").count() == 0
