"""API keys through the API: shown once, listed without the secret, revocable."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event, update

from tests.support.api import Api, error_code, make_brand
from wallet.db import utcnow
from wallet.loyalty.models import ApiKey


def test_a_new_key_works_is_listed_without_its_secret_and_can_be_revoked(client, db):
    api = Api(client, make_brand(db).key)
    created = api.post("/api-keys", {"name": "till 2"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["key"].startswith(body["prefix"]) and body["name"] == "till 2"
    second = Api(client, body["key"])
    assert second.get("/clubs").status_code == 200

    listed = api.get("/api-keys").get_json()["items"]
    assert [k["name"] for k in listed] == ["default", "till 2"]
    assert all("key" not in k for k in listed)

    assert api.delete(f"/api-keys/{body['id']}").status_code == 204
    assert second.get("/clubs").status_code == 401
    again = api.delete(f"/api-keys/{body['id']}")
    assert again.status_code == 409 and error_code(again) == "already_revoked"
    assert api.get("/api-keys").get_json()["items"][1]["revoked_at"] is not None


def test_key_names_are_checked(client, db):
    api = Api(client, make_brand(db).key)
    assert api.post("/api-keys", {"name": ""}).status_code == 422
    assert api.post("/api-keys", {"name": "x" * 101}).status_code == 422
    assert api.post("/api-keys", {"label": "x"}).status_code == 422


def _key_writes(db) -> list[str]:
    """Every UPDATE of api_keys the database is sent from now on."""
    seen: list[str] = []

    def watch(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            seen.append(statement)

    for engine in {db.engine, db.write_engine}:
        event.listen(engine, "before_cursor_execute", watch)
    return seen


def test_last_used_at_is_kept_to_the_minute_without_a_write_per_request(client, db):
    brand = make_brand(db)
    api = Api(client, brand.key)
    [fresh] = api.get("/api-keys").get_json()["items"]
    # The listing request is itself a use of the key.
    assert fresh["last_used_at"] is not None
    first = datetime.fromisoformat(fresh["last_used_at"])
    assert abs((utcnow() - first).total_seconds()) < 60

    writes = _key_writes(db)
    for _ in range(20):
        assert api.get("/clubs").status_code == 200
    assert api.post("/clubs", {"name": ""}).status_code == 422
    assert writes == []  # used 21 times within the minute: not one write
    assert api.get("/api-keys").get_json()["items"][0]["last_used_at"] == fresh["last_used_at"]

    with db.transaction() as s:  # a minute and more goes by
        s.execute(update(ApiKey).values(last_used_at=first - timedelta(seconds=61)))
    writes.clear()
    api.get("/clubs")
    api.get("/clubs")
    assert len(writes) == 1
    [later] = api.get("/api-keys").get_json()["items"]
    assert datetime.fromisoformat(later["last_used_at"]) >= first


def test_each_key_keeps_its_own_last_use(client, db):
    api = Api(client, make_brand(db).key)
    second = api.post("/api-keys", {"name": "till 2"}).get_json()
    listed = {k["name"]: k for k in api.get("/api-keys").get_json()["items"]}
    assert listed["default"]["last_used_at"] is not None and listed["till 2"]["last_used_at"] is None
    assert Api(client, second["key"]).get("/clubs").status_code == 200
    listed = {k["name"]: k for k in api.get("/api-keys").get_json()["items"]}
    assert listed["till 2"]["last_used_at"] is not None
    # A key that fails to authenticate records nothing.
    assert Api(client, second["key"] + "x").get("/clubs").status_code == 401
