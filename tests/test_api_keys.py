"""API keys through the API: shown once, listed without the secret, revocable."""

from __future__ import annotations

from tests.support.api import Api, error_code, make_brand


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
