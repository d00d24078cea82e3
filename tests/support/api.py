"""Helpers for the API tests: brands with keys, and a client that speaks
the API's dialect (Bearer key, JSON, a fresh Idempotency-Key per POST)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from wallet.db import Database
from wallet.loyalty.brands import create_brand

POINTS_PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "rounding": "down", "redeem_value": 100,
               "expiry_days": 365, "pending_days": 0, "warning_days": 14},
}


@dataclass
class Brand:
    id: int
    key: str


def make_brand(db: Database, name: str = "Coffee Co") -> Brand:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    with db.transaction() as session:
        brand, key = create_brand(session, name=name, email=email, password="correct horse battery")
        return Brand(id=brand.id, key=key)


class Api:
    """The test client with a brand's key."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get("/api/v1" + path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, body: Any = None, *, key: str | None = "auto", **kwargs: Any) -> TestResponse:
        extra = kwargs.pop("headers", None) or {}
        if key == "auto":
            key = uuid.uuid4().hex
        if key is not None:
            extra = {"Idempotency-Key": key, **extra}
        return self.client.post("/api/v1" + path, json=body, headers=self.headers(extra), **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> TestResponse:
        return self.client.patch("/api/v1" + path, json=body, headers=self.headers(kwargs.pop("headers", None)),
                                 **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.delete("/api/v1" + path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    # shortcuts that must succeed
    def club(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Beans", "currency": "RUB", "program": POINTS_PROGRAM, **fields}
        r = self.post("/clubs", body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def member(self, club_id: int, email: str = "ann@example.com", **fields: Any) -> dict[str, Any]:
        r = self.post(f"/clubs/{club_id}/members", {"email": email, "name": "Ann", **fields})
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def purchase(self, member_id: int, amount: int, **fields: Any) -> dict[str, Any]:
        r = self.post(f"/members/{member_id}/transactions", {"type": "purchase", "amount": amount, **fields})
        assert r.status_code == 201, r.get_json()
        return r.get_json()


def error_code(response: TestResponse) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]
