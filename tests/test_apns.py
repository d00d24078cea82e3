"""Pushes to APNs, against the local stand-in over real HTTP/2 + TLS sockets:
what each APNs answer does to the registration and the outbox row, and that
a purchase reaches every device of the card."""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import insert, select

from tests.support.apns_standin import ApnsStandIn
from tests.support.app import TEST_PASS_TYPE, TEST_TEAM
from tests.support.apple import make_club, make_member
from wallet.apple.apns import ApnsClient, ApnsSettings
from wallet.apple.models import DeviceRegistration
from wallet.config import get_settings
from wallet.db import Database
from wallet.jobs import dispatch
from wallet.jobs.outbox import drain
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.ledger import purchase
from wallet.loyalty.models import Membership, OutboxEvent
from wallet.loyalty.numbers_models import CardEvent


def token(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def app_config(app_config: dict[str, Any], standin: ApnsStandIn) -> dict[str, Any]:
    app_config.update(
        APNS_URL=standin.url,
        APNS_CA_FILE=str(standin.ca_file),
        APNS_BACKOFF_BASE=0.01,
        OUTBOX_BACKOFF_SECONDS=60,
    )
    return app_config


def register_devices(db: Database, membership_id: int, tokens: list[str]) -> None:
    with db.transaction() as session:
        session.execute(
            insert(DeviceRegistration),
            [
                {"device_library_identifier": f"device-{t[-12:]}", "pass_type_identifier": TEST_PASS_TYPE,
                 "membership_id": membership_id, "push_token": t}
                for t in tokens
            ],
        )


def change_card(db: Database, membership_id: int) -> None:
    with db.transaction() as session:
        membership = session.get(Membership, membership_id)
        assert membership is not None
        record_card_change(session, membership)


def remaining_tokens(db: Database) -> set[str]:
    with db.transaction() as session:
        return set(session.scalars(select(DeviceRegistration.push_token)))


def outbox(db: Database) -> list[OutboxEvent]:
    with db.transaction() as session:
        rows = list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
        session.expunge_all()
        return rows


@pytest.fixture
def member(db: Database) -> int:
    return make_member(db, make_club(db))


def test_purchase_pushes_every_device_of_the_card_once(
    app: Flask, db: Database, standin: ApnsStandIn, member: int
) -> None:
    other = make_member(db, make_club(db, name="Other"))
    register_devices(db, member, [token(1), token(2), token(3)])
    register_devices(db, other, [token(9)])
    with db.transaction() as session:
        membership = session.get(Membership, member)
        assert membership is not None
        purchase(session, membership, amount=150_00, actor="till")
    assert drain(app) >= 1
    received = standin.received()
    assert sorted(r.token for r in received) == [token(1), token(2), token(3)]
    for push in received:
        assert push.method == "POST"
        assert push.path == f"/3/device/{push.token}"
        assert push.topic == TEST_PASS_TYPE
        assert push.body == b"{}"
        assert push.certificate_uid == TEST_PASS_TYPE  # the Pass Type ID cert authenticated
    assert all(row.done_at is not None for row in outbox(db))


def test_several_changes_of_one_card_are_one_push(app: Flask, db: Database, standin: ApnsStandIn, member: int) -> None:
    register_devices(db, member, [token(1)])
    for _ in range(5):
        change_card(db, member)
    assert drain(app) == 5
    assert standin.accepted_tokens() == {token(1): 1}


def test_changes_of_one_card_waiting_in_later_batches_join_its_push(
    app: Flask, db: Database, standin: ApnsStandIn
) -> None:
    club = make_club(db)
    a, b, c = (make_member(db, club) for _ in range(3))
    for n, m in enumerate((a, b, c), start=1):
        register_devices(db, m, [token(n)])
    app.extensions["wallet.settings"] = replace(get_settings(app), outbox_batch_size=4)
    # Batch one takes a, b, c, a; the later changes of a and c come with it.
    for m in (a, b, c, a, c, a, a, a):
        change_card(db, m)
    assert drain(app) == 8
    assert standin.accepted_tokens() == {token(1): 1, token(2): 1, token(3): 1}
    assert all(row.done_at is not None for row in outbox(db))


def test_a_change_committed_while_its_card_is_pushed_is_pushed_again(
    app: Flask, db: Database, standin: ApnsStandIn, member: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_devices(db, member, [token(1)])
    for _ in range(3):
        change_card(db, member)
    changed_meanwhile: list[int] = []

    def pusher_while_the_card_changes(app_: Any, db_: Database, membership_ids: list[int]) -> Any:
        if not changed_meanwhile:  # a till books after the batch was claimed
            change_card(db, member)
            changed_meanwhile.append(member)
        return dispatch.apple_pusher(app_, db_, membership_ids)

    monkeypatch.setattr(dispatch, "CARD_PUSHERS", [pusher_while_the_card_changes])
    assert drain(app) == 4
    assert standin.accepted_tokens() == {token(1): 2}
    assert all(row.done_at is not None for row in outbox(db))


def test_410_and_bad_device_token_remove_the_registration(
    app: Flask, db: Database, standin: ApnsStandIn, member: int
) -> None:
    register_devices(db, member, [token(1), token(2), token(3)])
    standin.script(token(1), 410)
    standin.script(token(2), 400)  # BadDeviceToken
    change_card(db, member)
    drain(app)
    assert remaining_tokens(db) == {token(3)}
    assert all(row.done_at is not None for row in outbox(db))


def test_429_and_5xx_are_retried_until_accepted(app: Flask, db: Database, standin: ApnsStandIn, member: int) -> None:
    register_devices(db, member, [token(1), token(2)])
    standin.script(token(1), 429, 429, 200)
    standin.script(token(2), 500, 503, 200)
    change_card(db, member)
    drain(app)
    statuses = {t: [r.status for r in standin.received() if r.token == t] for t in (token(1), token(2))}
    assert statuses == {token(1): [429, 429, 200], token(2): [500, 503, 200]}
    assert remaining_tokens(db) == {token(1), token(2)}
    assert outbox(db)[0].done_at is not None


def test_a_device_that_keeps_failing_leaves_the_row_for_later(
    app: Flask, db: Database, standin: ApnsStandIn, member: int
) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), apns_max_retries=2)
    register_devices(db, member, [token(1)])
    standin.script(token(1), 500)
    change_card(db, member)
    drain(app)
    assert [r.status for r in standin.received()] == [500, 500, 500]
    row = outbox(db)[0]
    assert row.done_at is None and row.attempts == 1 and row.locked_until is None
    assert row.available_at > row.created_at
    assert "500" in (row.last_error or "")
    assert remaining_tokens(db) == {token(1)}


def test_403_stops_the_batch_and_is_logged_once(
    app: Flask, db: Database, standin: ApnsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    club = make_club(db)
    members = [make_member(db, club) for _ in range(3)]
    for i, m in enumerate(members):
        register_devices(db, m, [token(100 * i + k) for k in range(50)])
    app.extensions["wallet.settings"] = replace(get_settings(app), apns_max_streams=10)
    standin.default = 403
    for m in members:
        change_card(db, m)
    with caplog.at_level(logging.ERROR, logger="wallet.apple.push"):
        drain(app)
        for row in outbox(db):
            assert row.done_at is None and row.attempts == 1
        # Make the rows due again: still one log line for the same problem.
        with db.transaction() as session:
            session.execute(OutboxEvent.__table__.update().values(available_at=OutboxEvent.created_at))
        drain(app)
    problems = [r for r in caplog.records if "refused our credentials" in r.getMessage()]
    assert len(problems) == 1
    assert "BadCertificate" in problems[0].getMessage()
    # Each batch stopped after the streams already in flight (10), instead of
    # trying all 150 devices.
    assert len(standin.received()) <= 2 * 10
    assert remaining_tokens(db) == {token(100 * i + k) for i in range(3) for k in range(50)}


def test_many_pushes_share_one_connection(app: Flask, db: Database, standin: ApnsStandIn, member: int) -> None:
    register_devices(db, member, [token(i) for i in range(300)])
    change_card(db, member)
    drain(app)
    assert len(standin.accepted_tokens()) == 300
    assert standin.connections == 1


def test_standin_refuses_a_client_without_the_certificate(standin: ApnsStandIn) -> None:
    context = ssl.create_default_context(cafile=str(standin.ca_file))
    with pytest.raises(httpx.HTTPError):
        with httpx.Client(http2=True, verify=context) as http:
            http.post(f"{standin.url}/3/device/{token(1)}", content=b"{}", headers={"apns-topic": TEST_PASS_TYPE})
    assert standin.received() == []


def test_standin_checks_topic_and_path(dev_certs_dir: Path, standin: ApnsStandIn) -> None:
    context = ssl.create_default_context(cafile=str(standin.ca_file))
    context.load_cert_chain(_pass_cert(dev_certs_dir), _pass_key(dev_certs_dir))
    with httpx.Client(http2=True, verify=context) as http:
        assert http.post(f"{standin.url}/3/device/{token(1)}", content=b"{}", headers={"apns-topic": "pass.wrong"}).status_code == 400
        assert http.post(f"{standin.url}/3/device/{token(1)}", content=b"{}").status_code == 400
        assert http.post(f"{standin.url}/3/devices/{token(1)}", content=b"{}", headers={"apns-topic": TEST_PASS_TYPE}).status_code == 404
        assert http.get(f"{standin.url}/3/device/{token(1)}", headers={"apns-topic": TEST_PASS_TYPE}).status_code == 405
    assert standin.accepted_tokens() == {}


def _pass_cert(folder: Path) -> Path:
    from wallet.apple.certs import DEV_FILES

    return folder / DEV_FILES["pass_cert"]


def _pass_key(folder: Path) -> Path:
    from wallet.apple.certs import DEV_FILES

    return folder / DEV_FILES["pass_key"]


def test_token_authentication_sends_an_es256_provider_token(tmp_path: Path, dev_certs_dir: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    with ApnsStandIn(client_ca_file=dev_certs_dir / "dev-ca-bundle.pem", workdir=tmp_path / "s",
                     jwt_public_key=key.public_key()) as server:
        client = ApnsClient(ApnsSettings(
            url=server.url, topic=TEST_PASS_TYPE, ca_file=str(server.ca_file),
            auth_key_file=str(key_file), auth_key_id="ABC123DEFG", team_id=TEST_TEAM,
        ))
        report = client.send([token(1), token(2)])
        client.close()
    assert sorted(report.sent) == [token(1), token(2)]
    import jwt

    pushes = server.received()
    header = jwt.get_unverified_header(pushes[0].authorization.split()[1])  # type: ignore[union-attr]
    claims = jwt.decode(pushes[0].authorization.split()[1], key.public_key(), algorithms=["ES256"])  # type: ignore[union-attr]
    assert header["kid"] == "ABC123DEFG" and header["alg"] == "ES256"
    assert claims["iss"] == TEST_TEAM
    assert pushes[0].certificate_uid is None  # no client certificate with token auth


def test_a_card_every_device_unregistered_counts_as_removed_from_apple_wallet(
    app: Flask, db: Database, standin: ApnsStandIn, member: int
) -> None:
    register_devices(db, member, [token(1), token(2)])
    with db.transaction() as session:  # as the web service logged the first registration
        record_card_changes(session, session.get(Membership, member), before=[], after=["apple"])
    standin.script(token(1), 410)
    change_card(db, member)
    drain(app)
    assert _card_moves(db, member) == [("apple", True)]  # token 2 still holds it
    standin.script(token(2), 410)
    change_card(db, member)
    drain(app)
    assert remaining_tokens(db) == set()
    assert _card_moves(db, member) == [("apple", True), ("apple", False)]


def _card_moves(db: Database, member: int) -> list[tuple[str, bool]]:
    with db.session() as session:
        return [(wallet.value, installed) for wallet, installed in session.execute(
            select(CardEvent.wallet, CardEvent.installed).where(CardEvent.membership_id == member)
            .order_by(CardEvent.id))]


def test_a_connection_apns_closes_mid_batch_loses_and_doubles_no_push(
    app: Flask, db: Database, standin: ApnsStandIn, member: int
) -> None:
    register_devices(db, member, [token(i) for i in range(300)])
    standin.goaway_after = 70  # GOAWAY after 70 answers on each connection
    change_card(db, member)
    drain(app)
    assert standin.accepted_tokens() == {token(i): 1 for i in range(300)}
    assert standin.connections >= 5
    assert all(row.done_at is not None for row in outbox(db))


def test_pushes_to_an_apns_that_cannot_be_reached_fail_after_their_retries() -> None:
    # A port nothing listens on: every connection attempt is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ApnsClient(ApnsSettings(url=f"https://127.0.0.1:{port}", topic=TEST_PASS_TYPE, max_streams=10,
                                     max_retries=2, backoff_base=0.001))
    report = client.send([token(i) for i in range(25)])
    assert sorted(report.failed) == [token(i) for i in range(25)]
    assert all(reason.startswith("connection ") for reason in report.failed.values())
    assert report.sent == [] and report.not_attempted == []
