"""The member's apple_pass_url serves the current signed pass; anything else is 404."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.apple import ca_bundle, make_club, make_member, manifest_problems, openssl_verify, unzip
from wallet.apple.links import apple_pass_url
from wallet.db import Database
from wallet.loyalty.models import Membership


@pytest.fixture
def member(db: Database) -> int:
    return make_member(db, make_club(db), balance=77)


def _url(app: Flask, db: Database, member_id: int) -> str:
    with app.app_context(), db.session() as session:
        return apple_pass_url(session.get(Membership, member_id))


def test_apple_pass_url_is_public_base_plus_download_token(app: Flask, db: Database, member: int) -> None:
    with db.session() as session:
        token = session.get(Membership, member).download_token
    assert _url(app, db, member) == f"https://wallet.test/apple/cards/{token}.pkpass"


def test_download_serves_a_signed_pkpass(
    app: Flask, client: FlaskClient, db: Database, member: int, dev_certs_dir: Path
) -> None:
    path = _url(app, db, member).removeprefix("https://wallet.test")
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.apple.pkpass"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.last_modified is not None
    files = unzip(response.data)
    assert json.loads(files["pass.json"])["storeCard"]["primaryFields"][0]["value"] == 77
    assert manifest_problems(files) == []
    assert openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir)).returncode == 0


def test_download_shows_the_current_balance(app: Flask, client: FlaskClient, db: Database, member: int) -> None:
    path = _url(app, db, member).removeprefix("https://wallet.test")
    with db.transaction() as session:
        session.get(Membership, member).balance = 5000
    files = unzip(client.get(path).data)
    assert json.loads(files["pass.json"])["storeCard"]["primaryFields"][0]["value"] == 5000


@pytest.mark.parametrize(
    "token",
    [
        "A" * 32,  # well-formed, unknown
        "short",
        "x" * 65,
        "has%20space",
        "..%2F..%2Fetc%2Fpasswd",
        "%00" * 20,
        "ünïcödé-token-ünïcödé",
    ],
)
def test_unknown_or_malformed_tokens_are_404(client: FlaskClient, member: int, token: str) -> None:
    response = client.get(f"/apple/cards/{token}.pkpass")
    assert response.status_code == 404
    if "%2F" not in token:  # a slash leaves the route: the app's own 404 answers
        assert response.get_json() == {"error": {"code": "not_found", "message": "no such card"}}


def test_auth_token_does_not_open_the_download(
    app: Flask, client: FlaskClient, db: Database, member: int
) -> None:
    with db.session() as session:
        auth = session.get(Membership, member).auth_token
    assert client.get(f"/apple/cards/{auth}.pkpass").status_code == 404
