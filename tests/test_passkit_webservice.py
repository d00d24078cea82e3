"""The PassKit web service as Apple documents it ("Adding a Web Service to
Update Passes"): register, list updated passes, fetch the latest pass, log,
unregister, and what a device gets for wrong tokens and malformed requests.

The last test plays a device's whole conversation against a real server on a
free port, written from Apple's documentation rather than from our code.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from tests.support.app import TEST_PASS_TYPE
from tests.support.apple import make_club, make_member
from tests.support.server import live_server
from wallet.apple.models import DeviceLogEntry, DeviceRegistration
from wallet.apple.webservice import MAX_DEVICES_PER_PASS, MAX_LOG_LINE, MAX_LOG_LINES_PER_REQUEST
from wallet.config import get_settings
from wallet.db import Database
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.numbers_models import CardEvent
from wallet.loyalty.webhooks import Webhook

DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
PUSH_TOKEN = "ab" * 32


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["APPLE_AUTH_FAILURE_LIMIT"] = "1000 per minute"
    return app_config


@pytest.fixture
def club(db: Database) -> int:
    return make_club(db)


@pytest.fixture
def member(db: Database, club: int) -> dict[str, Any]:
    return _member_info(db, make_member(db, club))


def _member_info(db: Database, member_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        m = session.get(Membership, member_id)
        assert m is not None
        return {"id": m.id, "serial": m.serial_number, "token": m.auth_token, "club_id": m.club_id}


def auth(member: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"ApplePass {member['token']}"}


def reg_path(member: dict[str, Any], device: str = DEVICE, pass_type: str = TEST_PASS_TYPE) -> str:
    return f"/apple/v1/devices/{device}/registrations/{pass_type}/{member['serial']}"


def register(client: FlaskClient, member: dict[str, Any], device: str = DEVICE, token: str = PUSH_TOKEN) -> int:
    return client.post(reg_path(member, device), json={"pushToken": token}, headers=auth(member)).status_code


def bump(db: Database, member_id: int) -> None:
    with db.transaction() as session:
        m = session.get(Membership, member_id)
        assert m is not None
        record_card_change(session, m)


def registrations(db: Database) -> list[tuple[str, int, str]]:
    with db.transaction() as session:
        return [
            (r.device_library_identifier, r.membership_id, r.push_token)
            for r in session.scalars(select(DeviceRegistration).order_by(DeviceRegistration.id))
        ]


# -- registration ---------------------------------------------------------


def test_register_is_201_then_200_and_updates_the_push_token(client: FlaskClient, db: Database, member: dict) -> None:
    assert register(client, member) == 201
    assert register(client, member, token="cd" * 32) == 200
    assert registrations(db) == [(DEVICE, member["id"], "cd" * 32)]


def test_register_with_wrong_token_or_unknown_pass_is_401_and_stores_nothing(
    client: FlaskClient, db: Database, member: dict
) -> None:
    body = {"pushToken": PUSH_TOKEN}
    wrong = {"Authorization": "ApplePass " + "x" * 32}
    assert client.post(reg_path(member), json=body, headers=wrong).status_code == 401
    assert client.post(reg_path(member), json=body).status_code == 401
    assert client.post(reg_path(member), json=body, headers={"Authorization": f"Bearer {member['token']}"}).status_code == 401
    unknown_serial = dict(member, serial="no-such-serial")
    assert client.post(reg_path(unknown_serial), json=body, headers=auth(member)).status_code == 401
    other_type = reg_path(member, pass_type="pass.other.type")
    assert client.post(other_type, json=body, headers=auth(member)).status_code == 401
    assert registrations(db) == []


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"pushToken": 5}', b'{"pushToken": ""}', b'{"other": "x"}',
     b'{"pushToken": "../../etc/passwd"}'],
)
def test_register_with_malformed_body_is_400(client: FlaskClient, db: Database, member: dict, body: bytes) -> None:
    response = client.post(reg_path(member), data=body, headers={**auth(member), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert registrations(db) == []


def test_first_registration_and_last_unregistration_emit_webhooks(
    client: FlaskClient, db: Database, member: dict
) -> None:
    with db.transaction() as session:
        brand_id = session.scalar(select(Club.brand_id).where(Club.id == member["club_id"]))
        session.add(Webhook(brand_id=brand_id, url="https://hooks.test/x"))

    def events() -> list[str]:
        with db.transaction() as session:
            rows = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "webhook").order_by(OutboxEvent.id))
            return [row.payload["event"]["type"] for row in rows]

    assert register(client, member) == 201
    assert register(client, member, device="second-device") == 201
    assert register(client, member) == 200
    assert events() == ["card.installed"]
    assert client.delete(reg_path(member), headers=auth(member)).status_code == 200
    assert events() == ["card.installed"]
    assert client.delete(reg_path(member, "second-device"), headers=auth(member)).status_code == 200
    assert events() == ["card.installed", "card.removed"]
    # The club's numbers count the same: one card into Apple Wallet, and out.
    with db.session() as session:
        moves = session.execute(select(CardEvent.wallet, CardEvent.installed)
                                .where(CardEvent.membership_id == member["id"]).order_by(CardEvent.id)).all()
    assert [(wallet.value, installed) for wallet, installed in moves] == [("apple", True), ("apple", False)]


def test_unregister_is_200_and_401_with_wrong_token(client: FlaskClient, db: Database, member: dict) -> None:
    assert register(client, member) == 201
    assert client.delete(reg_path(member), headers={"Authorization": "ApplePass wrong-token-123456"}).status_code == 401
    assert len(registrations(db)) == 1
    assert client.delete(reg_path(member), headers=auth(member)).status_code == 200
    assert registrations(db) == []


def test_a_pass_holds_ten_devices_and_a_new_one_replaces_the_least_recently_active(
    client: FlaskClient, db: Database, member: dict
) -> None:
    devices = [f"device{n:02d}" for n in range(MAX_DEVICES_PER_PASS + 2)]
    for device in devices[:MAX_DEVICES_PER_PASS]:
        assert register(client, member, device) == 201
    assert MAX_DEVICES_PER_PASS == 10
    # The first device registers again: it is active and keeps its place.
    assert register(client, member, devices[0]) == 200

    assert register(client, member, devices[10]) == 201
    held = [device for device, _m, _t in registrations(db)]
    assert len(held) == 10
    assert devices[1] not in held and devices[0] in held and devices[10] in held
    dropped = client.get(f"/apple/v1/devices/{devices[1]}/registrations/{TEST_PASS_TYPE}")
    assert dropped.status_code == 204  # it gets no pushes and lists nothing

    assert register(client, member, devices[11]) == 201
    held = [device for device, _m, _t in registrations(db)]
    assert len(held) == 10 and devices[2] not in held and devices[11] in held
    # The device that was dropped may come back: it replaces the next in line.
    assert register(client, member, devices[1]) == 201
    held = [device for device, _m, _t in registrations(db)]
    assert len(held) == 10 and devices[1] in held and devices[3] not in held


def test_the_limit_is_per_pass(client: FlaskClient, db: Database, club: int) -> None:
    a, b = (_member_info(db, make_member(db, club)) for _ in range(2))
    for n in range(MAX_DEVICES_PER_PASS):
        assert register(client, a, f"device{n:02d}") == 201
    # One device with many passes is not a pass with many devices.
    assert register(client, b, "device00") == 201
    assert len(registrations(db)) == MAX_DEVICES_PER_PASS + 1


# -- list of updated passes -------------------------------------------------


def test_list_returns_every_pass_changed_since_the_tag(client: FlaskClient, db: Database, club: int,
                                                       backend: str) -> None:
    a, b, c = (_member_info(db, make_member(db, club)) for _ in range(3))
    for m in (a, b, c):
        assert register(client, m) == 201
    list_path = f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}"

    first = client.get(list_path)
    assert first.status_code == 200
    assert sorted(first.json["serialNumbers"]) == sorted(m["serial"] for m in (a, b, c))
    tag = first.json["lastUpdated"]
    assert isinstance(tag, str)

    assert client.get(list_path, query_string={"passesUpdatedSince": tag}).status_code == 204

    bump(db, a["id"])
    bump(db, c["id"])
    changed = client.get(list_path, query_string={"passesUpdatedSince": tag})
    assert changed.status_code == 200
    # Every pass changed since the tag, not only the newest one.
    assert sorted(changed.json["serialNumbers"]) == sorted([a["serial"], c["serial"]])
    new_tag = changed.json["lastUpdated"]
    again = client.get(list_path, query_string={"passesUpdatedSince": new_tag})
    if backend == "sqlite":
        assert again.status_code == 204
    else:
        # Anyone's transaction still running on the database holds the tag
        # back (tests/test_change_tags.py): what changed may be listed once
        # more, and the phone's fetch then gets 304; what did not, never.
        assert again.status_code == 204 or set(again.json["serialNumbers"]) <= {a["serial"], c["serial"]}


def test_list_for_unknown_device_or_pass_type_is_204(client: FlaskClient, member: dict) -> None:
    assert register(client, member) == 201
    assert client.get(f"/apple/v1/devices/unknown/registrations/{TEST_PASS_TYPE}").status_code == 204
    assert client.get(f"/apple/v1/devices/{DEVICE}/registrations/pass.other.type").status_code == 204
    garbage = client.get(f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}?passesUpdatedSince=yesterday")
    assert garbage.status_code == 200  # an unknown tag means "everything"


@pytest.mark.parametrize("tag", ["\u0661\u0662", "\uff11", "\u00b2", "\u09e7", "\U0001d7d9", " 1", "1 ", "+1",
                                 "-1", "1_0", str(2**64), "9" * 400, "\x00", ""])
def test_a_tag_that_is_not_ours_lists_every_pass(client: FlaskClient, db: Database, member: dict, tag: str) -> None:
    """Digits of other scripts (which str.isdigit accepts and int() may
    reject), signs, spaces and numbers of more than 64 bits are no tag of ours:
    the device gets everything, which is always safe, and never a 5xx."""
    assert register(client, member) == 201
    bump(db, member["id"])
    listing = client.get(f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}",
                         query_string={"passesUpdatedSince": tag})
    assert listing.status_code == 200
    assert listing.json["serialNumbers"] == [member["serial"]]


# -- latest pass --------------------------------------------------------------


def test_latest_pass_has_pkpass_type_last_modified_and_304(client: FlaskClient, db: Database, member: dict) -> None:
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    response = client.get(path, headers=auth(member))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.apple.pkpass"
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("pass.json"))
    assert pass_json["serialNumber"] == member["serial"]
    assert pass_json["webServiceURL"] == "https://wallet.test/apple"
    with db.transaction() as session:
        modified = session.get(Membership, member["id"]).card_modified_at  # type: ignore[union-attr]
    last_modified = response.headers["Last-Modified"]
    assert parsedate_to_datetime(last_modified) == modified.replace(microsecond=0)

    again = client.get(path, headers={**auth(member), "If-Modified-Since": last_modified})
    assert again.status_code == 304
    assert again.data == b""

    bump(db, member["id"])
    changed = client.get(path, headers={**auth(member), "If-Modified-Since": last_modified})
    assert changed.status_code == 200
    # A change within the second of the last fetch is dated a second ahead,
    # and Last-Modified never runs ahead of the clock, so it may repeat the
    # old date (test_last_modified_is_never_later_than_date).
    assert parsedate_to_datetime(changed.headers["Last-Modified"]) >= parsedate_to_datetime(last_modified)


def test_a_pass_fetch_survives_the_server_closing_its_connection(client: FlaskClient, db: Database, member: dict,
                                                                 backend: str) -> None:
    """The pass read keeps its connection between requests (PostgreSQL);
    when the server ends it (a restart, an idle timeout), the next fetch
    still answers, on a new connection."""
    if backend != "postgresql":
        pytest.skip("SQLite reads take a connection per request")
    from wallet.apple import serving

    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    assert client.get(path, headers=auth(member)).status_code == 200
    kept = serving._reader(db).kept().connection.connection.dbapi_connection
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid})
    bump(db, member["id"])
    assert client.get(path, headers=auth(member)).status_code == 200
    assert client.get(path, headers=auth(member)).status_code == 200


def test_the_pass_reads_time_zone_stays_on_their_own_connection(client: FlaskClient, db: Database, member: dict,
                                                                backend: str) -> None:
    """The kept connection reads in UTC (psycopg then loads its timestamps
    without converting them), and it is the reader's own: no connection of
    the pool, which every other request uses, meets that setting, not even
    once the reader gave its connection back."""
    if backend != "postgresql":
        pytest.skip("SQLite reads take a connection per request")
    from wallet.apple import serving

    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    assert client.get(path, headers=auth(member)).status_code == 200
    reader = serving._reader(db)
    kept = reader.kept()
    raw = kept.connection.connection.dbapi_connection
    assert raw.info.parameter_status("TimeZone") == "UTC"
    reader.drop(kept)
    assert raw.closed
    with db.engine.connect() as first, db.engine.connect() as second:
        for pooled in (first, second):
            default = pooled.execute(text("SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'")).scalar()
            assert pooled.execute(text("SHOW TIME ZONE")).scalar() == default
            assert pooled.connection.dbapi_connection is not raw
    assert client.get(path, headers=auth(member)).status_code == 200


def test_the_pass_read_gives_what_sqlalchemy_would(db: Database, club: int) -> None:
    """On PostgreSQL the card's row is read through psycopg's cursor and
    converted by the columns' own result processors: every value, with its
    type and time zone, is the one SQLAlchemy's execution gives."""
    from wallet.apple import serving

    member_id = make_member(db, club)
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)
    with db.transaction() as session:
        m = session.get(Membership, member_id)
        assert m is not None
        m.birthday, m.phone, m.tier, m.message, m.message_at = moment.date(), "+79990001122", "Gold", "Hi ✓", moment
        m.expiring_points, m.expiring_on, m.referral_code = 40, moment.date(), "REF123"
        m.status, m.ended_at = "ended", moment
        serial, token = m.serial_number, m.download_token
    for read, statement, key in ((serving.read_card, serving._BY_SERIAL, serial),
                                 (serving.read_card_by_download_token, serving._BY_DOWNLOAD_TOKEN, token)):
        state = read(db, key)
        assert state is not None
        with db.engine.connect() as connection:
            expected = connection.execute(statement, {"key": key}).one()
        assert state.row._fields == tuple(expected._fields)
        for name, value, wanted in zip(state.row._fields, state.row, expected, strict=True):
            assert (type(value), value) == (type(wanted), wanted), name
            if isinstance(wanted, datetime):
                assert value.tzinfo == wanted.tzinfo == timezone.utc, name
        assert state.row.message_at == moment and state.row.ended_at == moment
        assert read(db, key + "x") is None


def test_latest_pass_with_wrong_token_or_unknown_serial_is_401(client: FlaskClient, member: dict) -> None:
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    assert client.get(path).status_code == 401
    last = "y" if member["token"].endswith("x") else "x"
    assert client.get(path, headers={"Authorization": "ApplePass " + member["token"][:-1] + last}).status_code == 401
    assert client.get(f"/apple/v1/passes/{TEST_PASS_TYPE}/unknown", headers=auth(member)).status_code == 401
    assert client.get(f"/apple/v1/passes/pass.other/{member['serial']}", headers=auth(member)).status_code == 401


def _answer(client: FlaskClient, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = client.open(path, method=method, headers=headers)
    return response.status, sorted((k, v) for k, v in response.headers.items() if k != "Date"), response.data


def test_a_pass_fetch_is_answered_before_flask_routes_it_exactly_as_its_route_answers(
    app: Flask, client: FlaskClient, member: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass fetch is answered from the WSGI environ, without a Flask
    request (wallet.http_rules.answer_directly): every status, header and
    byte is what the blueprint's own route gives, and what that route must
    serve (another method, another path) still reaches it."""
    from flask import request, request_started

    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    since = client.get(path, headers=auth(member)).headers["Last-Modified"]
    cases = [
        ("GET", path, auth(member)), ("HEAD", path, auth(member)),
        ("GET", path, {**auth(member), "If-Modified-Since": since}),
        ("HEAD", path, {**auth(member), "If-Modified-Since": since}),
        ("GET", path, {**auth(member), "If-Modified-Since": "not a date"}),
        ("GET", path, {**auth(member), "If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
        ("GET", path, {}), ("GET", path, {"Authorization": "ApplePass " + "x" * 32}),
        ("GET", path, {"Authorization": f"Bearer {member['token']}"}),
        ("GET", path, {"Authorization": f"AndroidPass {member['token']}"}),
        ("GET", f"/apple/v1/passes/{TEST_PASS_TYPE}/unknown", auth(member)),
        ("GET", f"/apple/v1/passes/pass.other/{member['serial']}", auth(member)),
        ("GET", f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}%C3%A9", auth(member)),
        ("GET", path + "/", auth(member)), ("GET", f"/apple/v1/passes//{member['serial']}", auth(member)),
        ("GET", f"/apple/v1/passes/{TEST_PASS_TYPE}", auth(member)),
        ("POST", path, auth(member)), ("DELETE", path, auth(member)),
    ]
    routed: list[str] = []

    def record(_sender: Flask, **_extra: Any) -> None:
        routed.append(request.method + " " + request.path)

    request_started.connect(record, app)
    try:
        direct = [_answer(client, *case) for case in cases]
        # Only what is not a GET or HEAD of /apple/v1/passes/<a>/<b> in ASCII became a Flask request.
        assert routed == [f"GET {path}é", f"GET {path}/", f"GET /apple/v1/passes//{member['serial']}",
                          f"GET /apple/v1/passes/{TEST_PASS_TYPE}", f"POST {path}", f"DELETE {path}"]
        monkeypatch.setattr(app, "direct_routes", [])
        assert [_answer(client, *case) for case in cases] == direct
    finally:
        request_started.disconnect(record, app)
    assert [status for status, _headers, _body in direct[:6]] == ["200 OK", "200 OK"] + ["304 NOT MODIFIED"] * 2 + [
        "200 OK"] * 2


def _tag_digits_alike(answer: tuple[Any, ...]) -> tuple[Any, ...]:
    # A PostgreSQL tag is the xmin of the listing's snapshot, which any
    # transaction on the server moves between two requests: compared by
    # its form and length (the body's length with it), not its value.
    status, headers, body = answer
    return status, headers, re.sub(rb'"lastUpdated":"x([0-9]+)"',
                                   lambda m: b'"lastUpdated":"x' + b"9" * len(m[1]) + b'"', body)


def test_a_device_listing_is_answered_before_flask_routes_it_exactly_as_its_route_answers(
    app: Flask, client: FlaskClient, db: Database, member: dict, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """"List updated passes" is answered from the WSGI environ, without a
    Flask request: for every tag, device and pass type, good or bad, the
    status, headers and bytes of the blueprint's own route; what that route
    must serve itself (another method or path) still reaches it."""
    from flask import jsonify, request, request_started

    assert register(client, member) == 201
    bump(db, member["id"])
    with db.transaction() as session:
        seq = session.scalar(select(Membership.change_seq).where(Membership.id == member["id"]))
    # The tag handed out after this change: nothing changed since.
    current = f"x{seq + 1}" if backend == "postgresql" else str(seq)
    listing = f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}"
    cases = [
        ("GET", listing), ("HEAD", listing), ("GET", f"{listing}?passesUpdatedSince={current}"),
        ("HEAD", f"{listing}?passesUpdatedSince={current}"), ("GET", f"{listing}?passesUpdatedSince=yesterday"),
        ("GET", f"{listing}?passesUpdatedSince="), ("GET", f"{listing}?passesUpdatedSince"),
        ("GET", f"{listing}?passesUpdatedSince={current}&passesUpdatedSince=0"),
        ("GET", f"{listing}?passesUpdatedSince=0&passesUpdatedSince={current}"),
        ("GET", f"{listing}?passesUpdatedSince=%{ord(current[0]):02X}{current[1:]}"),
        ("GET", f"{listing}?passesUpdatedSince=+{current}"), ("GET", f"{listing}?passesUpdatedSince=%FF%ZZ"),
        ("GET", f"{listing}?other=1&passesUpdatedSince={current}"), ("GET", f"{listing}?other=1"),
        ("GET", f"{listing}?passesupdatedsince={current}"), ("GET", f"{listing}?passesUpdatedSince=x{2**63}"),
        ("GET", f"/apple/v1/devices/unknown/registrations/{TEST_PASS_TYPE}"),
        ("GET", f"/apple/v1/devices/{DEVICE}/registrations/pass.other.type"),
        ("GET", f"/apple/v1/devices/{'d' * 129}/registrations/{TEST_PASS_TYPE}"),
        ("GET", f"/apple/v1/devices/dev!ce/registrations/{TEST_PASS_TYPE}"),
        ("GET", f"/apple/v1/devices/{DEVICE}/registrations/pass%20type"),
        # Flask's own: another path, another method, a path werkzeug decodes.
        ("GET", f"{listing}/"), ("GET", f"{listing}/{member['serial']}"),
        ("GET", f"/apple/v1/devices/{DEVICE}/registrations"),
        ("GET", f"/apple/v1/devices//registrations/{TEST_PASS_TYPE}"),
        ("GET", f"/apple/v1/devices/{DEVICE}/registration/{TEST_PASS_TYPE}"), ("GET", f"{listing}%C3%A9"),
        ("POST", listing), ("DELETE", listing),
    ]
    routed: list[str] = []

    def record(_sender: Flask, **_extra: Any) -> None:
        routed.append(request.method + " " + request.path)

    request_started.connect(record, app)
    try:
        direct = [_tag_digits_alike(_answer(client, method, path, {})) for method, path in cases]
        assert routed == [f"GET {listing}/", f"GET {listing}/{member['serial']}",
                          f"GET /apple/v1/devices/{DEVICE}/registrations",
                          f"GET /apple/v1/devices//registrations/{TEST_PASS_TYPE}",
                          f"GET /apple/v1/devices/{DEVICE}/registration/{TEST_PASS_TYPE}", f"GET {listing}é",
                          f"POST {listing}", f"DELETE {listing}"]
        monkeypatch.setattr(app, "direct_routes", [])
        assert [_tag_digits_alike(_answer(client, method, path, {})) for method, path in cases] == direct
    finally:
        request_started.disconnect(record, app)
    statuses = [status for status, _headers, _body in direct]
    assert statuses[:21] == ["200 OK", "200 OK", "204 NO CONTENT", "204 NO CONTENT", "200 OK", "200 OK", "200 OK",
                             "204 NO CONTENT", "200 OK", "204 NO CONTENT", "200 OK", "200 OK", "204 NO CONTENT",
                             "200 OK", "200 OK", "200 OK"] + ["204 NO CONTENT"] * 5
    # The listing as jsonify wrote it before it was answered directly.
    found = client.get(listing)
    with app.test_request_context():
        expected = jsonify(serialNumbers=[member["serial"]], lastUpdated=found.json["lastUpdated"])
    assert found.data == expected.data
    assert sorted((k, v) for k, v in found.headers.items() if k != "Date") == sorted(expected.headers.items())


def test_a_pass_fetch_refused_for_failed_authentications_is_answered_as_the_route_does(
    app: Flask, client: FlaskClient, member: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), apple_auth_failure_limit="2 per minute")
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    wrong = {"Authorization": "ApplePass wrong-token-0000000"}
    assert [client.get(path, headers=wrong).status_code for _ in range(2)] == [401, 401]
    direct = client.get(path, headers=auth(member))
    monkeypatch.setattr(app, "direct_routes", [])
    routed = client.get(path, headers=auth(member))
    assert direct.status == routed.status == "429 TOO MANY REQUESTS"
    assert sorted(direct.headers.keys()) == sorted(routed.headers.keys())
    assert 1 <= int(direct.headers["Retry-After"]) <= 61 and direct.data == routed.data == b""


def test_hooks_that_need_no_request_run_before_a_direct_answer(app: Flask, client: FlaskClient,
                                                                member: dict) -> None:
    """The embedded worker starts on a pass fetch, the first request a
    server may get (wallet.jobs marks its hook so)."""
    from wallet.http_rules import everywhere

    ran: list[str] = []
    app.before_request(everywhere(lambda: ran.append("without"), needs_request=False))
    app.before_request(everywhere(lambda: ran.append("with")))
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    assert client.get(path, headers=auth(member)).status_code == 200
    assert ran == ["without"]


def test_a_hook_that_fails_before_a_direct_answer_leaves_the_request_to_flask(app: Flask, client: FlaskClient,
                                                                              member: dict) -> None:
    """Flask runs the hook again and answers through its error handlers,
    rather than the failure escaping the WSGI app."""
    from wallet.http_rules import everywhere

    calls: list[int] = []

    def fails_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the worker could not start")

    app.before_request(everywhere(fails_once, needs_request=False))
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    answer = client.get(path, headers=auth(member))
    assert answer.status_code == 200 and answer.mimetype == "application/vnd.apple.pkpass"
    assert len(calls) == 2


# -- log ----------------------------------------------------------------------


def test_log_is_stored_bounded(client: FlaskClient, db: Database) -> None:
    lines = [f"line {i}" for i in range(MAX_LOG_LINES_PER_REQUEST + 20)] + ["x" * (MAX_LOG_LINE * 3), 7]
    assert client.post("/apple/v1/log", json={"logs": lines}).status_code == 200
    with db.transaction() as session:
        stored = list(session.scalars(select(DeviceLogEntry.message).order_by(DeviceLogEntry.id)))
    assert stored == [f"line {i}" for i in range(MAX_LOG_LINES_PER_REQUEST)]
    assert client.post("/apple/v1/log", json={"logs": ["y" * (MAX_LOG_LINE * 3)]}).status_code == 200
    with db.transaction() as session:
        longest = session.scalar(select(func.max(func.length(DeviceLogEntry.message))))
    assert longest == MAX_LOG_LINE
    assert client.post("/apple/v1/log", data=b"nope", content_type="application/json").status_code == 400
    assert client.post("/apple/v1/log", json={"logs": "not a list"}).status_code == 400


def test_device_logs_command_prints_them(app: Flask, client: FlaskClient) -> None:
    assert client.post("/apple/v1/log", json={"logs": ["Web service error: 500"]}).status_code == 200
    result = app.test_cli_runner().invoke(args=["apple", "device-logs"])
    assert result.exit_code == 0
    assert "Web service error: 500" in result.output


def test_device_log_text_is_escaped_in_the_log_and_the_table(
    app: Flask, client: FlaskClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    nasty = ["forged\n[2026-01-01 00:00:00] ERROR in app: all is lost", "\x1b[2J\x1b[31mred\r", "nul\x00byte",
             "bidi \u202e gnp.exe", "back\\slash"]
    with caplog.at_level(logging.WARNING, logger="wallet.apple.device_log"):
        response = client.post("/apple/v1/log", json={"logs": nasty},
                               headers={"User-Agent": "\x1b[31mphone"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "wallet.apple.device_log"]
    with db.transaction() as session:
        stored = list(session.scalars(select(DeviceLogEntry.message).order_by(DeviceLogEntry.id)))
    assert len(messages) == len(stored) == len(nasty)
    for line in messages + stored:
        assert line.isprintable(), line
    assert stored == ["forged\\n[2026-01-01 00:00:00] ERROR in app: all is lost", "\\x1b[2J\\x1b[31mred\\r",
                      "nul\\x00byte", "bidi \\u202e gnp.exe", "back\\\\slash"]
    printed = app.test_cli_runner().invoke(args=["apple", "device-logs"]).output
    assert "\x1b" not in printed and "\r" not in printed and len(printed.splitlines()) == len(nasty)


@pytest.mark.parametrize("body", [b'{"logs":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                  b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"\x00", b'{"logs": ["\x00"]}',
                                  b'{"logs": ["\\ud800"], "pushToken": "\\udfff"}'])
def test_bodies_too_deep_or_not_unicode_are_400_on_every_passkit_post(
    client: FlaskClient, db: Database, member: dict, body: bytes
) -> None:
    assert client.post("/apple/v1/log", data=body, content_type="application/json").status_code == 400
    response = client.post(reg_path(member), data=body, headers={**auth(member), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert registrations(db) == []


# -- rate limiting of failed authentication -------------------------------------


def test_failed_authentications_are_rate_limited_per_client(
    app: Flask, client: FlaskClient, member: dict
) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), apple_auth_failure_limit="5 per minute")
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    wrong = {"Authorization": "ApplePass wrong-token-0000000"}
    statuses = [client.get(path, headers=wrong).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3
    # Another address is not affected.
    other = client.get(path, headers=auth(member), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_the_device_log_keeps_its_own_limit_per_client(app: Flask, client: FlaskClient) -> None:
    """The web service skips Flask-Limiter's app-wide check (wallet.http_rules,
    for_machines): the log's limit is applied by its own decorator."""
    app.extensions["wallet.settings"] = replace(get_settings(app), apple_log_limit="3 per minute")
    statuses = [client.post("/apple/v1/log", json={"logs": ["hello"]}).status_code for _ in range(5)]
    assert statuses == [200] * 3 + [429] * 2
    other = client.post("/apple/v1/log", json={"logs": ["hello"]}, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_successful_requests_do_not_use_up_the_budget(app: Flask, client: FlaskClient, member: dict) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), apple_auth_failure_limit="3 per minute")
    path = f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    for _ in range(6):
        assert client.get(path, headers=auth(member)).status_code == 200


# -- a device's conversation against a real server --------------------------------


@pytest.fixture
def web_service(app: Flask) -> Iterator[str]:
    """The pass's webServiceURL, served on a real socket."""
    with live_server(app) as url:
        yield f"{url}/apple"


def test_device_conversation_from_apples_documentation(web_service: str, db: Database, member: dict,
                                                       backend: str) -> None:
    """Apple: "Adding a Web Service to Update Passes", step by step."""
    web_service_url = web_service  # the pass's webServiceURL
    serial, token = member["serial"], member["token"]
    device, push_token = "f1e2d3c4b5a6978877665544332211aa", "0123456789abcdef" * 4
    registration = f"{web_service_url}/v1/devices/{device}/registrations/{TEST_PASS_TYPE}/{serial}"
    good = {"Authorization": f"ApplePass {token}"}
    bad = {"Authorization": "ApplePass not-the-token-000000"}

    with httpx.Client(timeout=10) as http:
        # 1. The device registers the pass: 201, then 200 when already registered.
        assert http.post(registration, json={"pushToken": push_token}, headers=bad).status_code == 401
        assert http.post(registration, json={"pushToken": push_token}, headers=good).status_code == 201
        assert http.post(registration, json={"pushToken": push_token}, headers=good).status_code == 200

        # 2. After a push it asks which passes changed; first without a tag.
        listing = f"{web_service_url}/v1/devices/{device}/registrations/{TEST_PASS_TYPE}"
        answer = http.get(listing)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert body["serialNumbers"] == [serial]
        last_updated = body["lastUpdated"]
        assert http.get(listing, params={"passesUpdatedSince": last_updated}).status_code == 204

        # 3. It fetches the latest version of the pass.
        pass_url = f"{web_service_url}/v1/passes/{TEST_PASS_TYPE}/{serial}"
        assert http.get(pass_url, headers=bad).status_code == 401
        latest = http.get(pass_url, headers=good)
        assert latest.status_code == 200
        assert latest.headers["content-type"] == "application/vnd.apple.pkpass"
        assert zipfile.ZipFile(io.BytesIO(latest.content)).testzip() is None
        modified = latest.headers["last-modified"]
        assert http.get(pass_url, headers={**good, "If-Modified-Since": modified}).status_code == 304
        earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=5), usegmt=True)
        assert http.get(pass_url, headers={**good, "If-Modified-Since": earlier}).status_code == 200

        # The card changes; the device's tag now lists it.
        bump(db, member["id"])
        body = http.get(listing, params={"passesUpdatedSince": last_updated}).json()
        assert body["serialNumbers"] == [serial]
        # On PostgreSQL anyone's transaction still running holds the tag back
        # (tests/test_change_tags.py): it may stay, and the pass be listed again.
        assert body["lastUpdated"] != last_updated or backend == "postgresql"

        # 4. It logs problems.
        assert http.post(f"{web_service_url}/v1/log", json={"logs": ["a device message"]}).status_code == 200

        # 5. The pass is deleted from the device: it unregisters.
        assert http.delete(registration, headers=bad).status_code == 401
        assert http.delete(registration, headers=good).status_code == 200
        assert http.get(listing).status_code == 204
    assert registrations(db) == []


def test_devices_registering_one_pass_at_once_make_one_installed_event_and_keep_the_limit(
    web_service: str, db: Database, member: dict
) -> None:
    with db.transaction() as session:
        brand_id = session.scalar(select(Club.brand_id).where(Club.id == member["club_id"]))
        session.add(Webhook(brand_id=brand_id, url="https://hooks.test/x"))
    statuses: list[int] = []
    lock = threading.Lock()

    def device(n: int) -> None:
        url = f"{web_service}/v1/devices/device{n:04d}/registrations/{TEST_PASS_TYPE}/{member['serial']}"
        with httpx.Client(timeout=30) as http:
            status = http.post(url, json={"pushToken": f"{n:064x}"}, headers=auth(member)).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=device, args=(n,)) for n in range(MAX_DEVICES_PER_PASS + 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * (MAX_DEVICES_PER_PASS + 4)
    assert len(registrations(db)) == MAX_DEVICES_PER_PASS
    with db.transaction() as session:
        kinds = [row.payload["event"]["type"] for row in session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "webhook"))]
    assert kinds == ["card.installed"]

def _dates(answer: httpx.Response) -> tuple[datetime, datetime]:
    return parsedate_to_datetime(answer.headers["last-modified"]), parsedate_to_datetime(answer.headers["date"])


def test_last_modified_is_never_later_than_date(web_service: str, db: Database, member: dict) -> None:
    """A card changed twice within a second is dated a second ahead (so the
    two versions differ), and another machine's clock may run ahead: the
    answer still says it was modified no later than it was sent, and a
    device that sends that date back still gets the newer pass."""
    pass_url = f"{web_service}/v1/passes/{TEST_PASS_TYPE}/{member['serial']}"
    with db.transaction() as session:
        download = f"{web_service}/cards/{session.get(Membership, member['id']).download_token}.pkpass"  # type: ignore[union-attr]
    with httpx.Client(timeout=10, headers=auth(member)) as http:
        bump(db, member["id"])
        bump(db, member["id"])  # the same second: dated a second ahead
        for url in (pass_url, download):
            modified, date = _dates(http.get(url))
            assert modified <= date

        ahead = datetime.now(timezone.utc) + timedelta(hours=3)
        with db.transaction() as session:
            session.get(Membership, member["id"]).card_modified_at = ahead  # type: ignore[union-attr]
        for url in (pass_url, download):
            answer = http.get(url)
            modified, date = _dates(answer)
            assert answer.status_code == 200 and modified <= date
        again = http.get(pass_url, headers={"If-Modified-Since": answer.headers["last-modified"]})
        assert again.status_code == 200  # the pass is still newer than what the device holds
        later = format_datetime(ahead + timedelta(seconds=1), usegmt=True)
        not_modified = http.get(pass_url, headers={"If-Modified-Since": later})
        assert not_modified.status_code == 304
