"""POST /google/callback: Google's save/delete callbacks, signed in the
ECv2SigningOnly scheme with the tests' own root and intermediate keys
(tests/support/google_callbacks.py), believed only when they verify."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.apple import make_club, make_member
from tests.support.google_callbacks import CallbackSigner
from tests.support.webhooks import Receiver
from wallet.google.identity import get_identity
from wallet.google.models import GoogleObject, GoogleWalletEvent, WalletEventType
from wallet.google.objects import class_id, object_id
from wallet.jobs.outbox import drain
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.numbers_models import CardEvent
from wallet.loyalty.webhooks import Webhook


@pytest.fixture
def signer(app_config: dict[str, Any], tmp_path) -> CallbackSigner:
    from tests.conftest import GOOGLE_ISSUER

    signing = CallbackSigner(GOOGLE_ISSUER)
    app_config.update(GOOGLE_ISSUER_ID=GOOGLE_ISSUER,
                      GOOGLE_CALLBACK_ROOT_KEYS_FILE=str(signing.write_root_keys(tmp_path / "root-keys.json")))
    return signing


@pytest.fixture
def card(signer, app, db) -> dict[str, Any]:
    member_id = make_member(db, make_club(db))
    issuer = get_identity(app).issuer_id
    with db.session() as session:
        membership = session.get(Membership, member_id)
        return {"member_id": member_id, "club_id": membership.club_id,
                "class_id": class_id(issuer, membership.club_id), "object_id": object_id(issuer, membership)}


def _post(client, body: bytes):
    return client.post("/google/callback", data=body, content_type="application/json")


def wallet_counts(session: Session, club_id: int) -> dict[str, int]:
    """The club's cards in Google Wallets now, and saves and deletions ever."""
    installed = session.scalar(select(func.count()).select_from(GoogleObject).where(
        GoogleObject.club_id == club_id, GoogleObject.installed.is_(True))) or 0
    by_type = dict(session.execute(select(GoogleWalletEvent.event_type, func.count()).where(
        GoogleWalletEvent.club_id == club_id).group_by(GoogleWalletEvent.event_type)).tuples().all())
    return {"installed": installed, "saves": by_type.get(WalletEventType.SAVE, 0),
            "removals": by_type.get(WalletEventType.DELETE, 0)}


def _events(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(GoogleWalletEvent))


def test_a_signed_save_marks_the_card_installed_and_a_delete_removed(signer, card, app, db, client) -> None:
    ids = {"class_id": card["class_id"], "object_id": card["object_id"]}
    assert _post(client, signer.body(**ids)).status_code == 200
    with db.session() as session:
        state = session.get(GoogleObject, card["member_id"])
        assert state.installed and state.inserted_at is not None
        assert wallet_counts(session, card["club_id"]) == {"installed": 1, "saves": 1, "removals": 0}
    assert _post(client, signer.body(event_type="del", **ids)).status_code == 200
    with db.session() as session:
        assert not session.get(GoogleObject, card["member_id"]).installed
        assert wallet_counts(session, card["club_id"]) == {"installed": 0, "saves": 1, "removals": 1}
        moves = session.execute(select(CardEvent.wallet, CardEvent.installed)
                                .where(CardEvent.membership_id == card["member_id"]).order_by(CardEvent.id)).all()
    assert [(wallet.value, installed) for wallet, installed in moves] == [("google", True), ("google", False)]


def test_a_repeated_nonce_is_answered_again_and_recorded_once(signer, card, app, db, client) -> None:
    body = signer.body(class_id=card["class_id"], object_id=card["object_id"], nonce="n-1")
    assert _post(client, body).status_code == 200
    assert _post(client, body).status_code == 200
    assert _events(db) == 1


def _tampered(body: bytes) -> bytes:
    envelope = json.loads(body)
    envelope["signedMessage"] = envelope["signedMessage"].replace('"save"', '"del"')
    return json.dumps(envelope).encode()


REFUSED = {
    "tampered": lambda s, ids: _tampered(s.body(**ids)),
    "wrong recipient": lambda s, ids: s.body(recipient_id="3388000000099999999", **ids),
    "expired message": lambda s, ids: s.body(expires_in=-60, **ids),
    "expired intermediate key": lambda s, ids: s.body(key_expires_in=-60, **ids),
    "intermediate key not signed by Google": lambda s, ids: s.body(root=ec.generate_private_key(ec.SECP256R1()),
                                                                   **ids),
    "another issuer's class": lambda s, ids: s.body(class_id="3388000000099999999.club-1",
                                                    object_id=ids["object_id"]),
    "an object that is not ours": lambda s, ids: s.body(class_id=ids["class_id"],
                                                        object_id=ids["object_id"][:-4] + "0000"),
    "not JSON": lambda s, ids: b"\xff{nope",
    "wrong protocol": lambda s, ids: s.body(**ids).replace(b'"protocolVersion": "ECv2SigningOnly"',
                                                           b'"protocolVersion": "ECv2"'),
    "empty": lambda s, ids: b"",
    "nested past the parser": lambda s, ids: b"[" * 60000,
    "a thousand signatures": lambda s, ids: s.body(**ids).replace(b'"signatures": [',
                                                                  b'"signatures": [' + b'"AA==", ' * 1000),
    "a list": lambda s, ids: b"[1, 2]",
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_anything_that_does_not_verify_is_refused_and_changes_nothing(signer, card, app, db, client, make) -> None:
    body = make(signer, {"class_id": card["class_id"], "object_id": card["object_id"]})
    assert _post(client, body).status_code == 400
    assert _events(db) == 0
    with db.session() as session:
        assert session.get(GoogleObject, card["member_id"]) is None


def test_without_root_keys_every_callback_is_refused(app, db, client) -> None:
    assert _post(client, b'{"protocolVersion": "ECv2SigningOnly"}').status_code == 400


@pytest.fixture
def loopback_webhooks(app_config: dict[str, Any]) -> None:
    app_config["WEBHOOK_ALLOW_PRIVATE"] = True


def test_the_brands_webhook_hears_of_the_install_once(loopback_webhooks, signer, card, app, db, client) -> None:
    with Receiver() as receiver:
        with db.transaction() as session:
            brand_id = session.get(Club, card["club_id"]).brand_id
            hook = Webhook(brand_id=brand_id, url=receiver.url, events=["card.installed", "card.removed"])
            session.add(hook)
            session.flush()
            receiver.secret = hook.secret
        ids = {"class_id": card["class_id"], "object_id": card["object_id"]}
        for _ in range(2):  # a second save (another phone) is no new install
            assert _post(client, signer.body(**ids)).status_code == 200
        drain(app)
        events = [r["event"] for r in receiver.received]
    assert [e["type"] for e in events] == ["card.installed"]
    assert events[0]["data"] == {"member_id": card["member_id"], "club_id": card["club_id"],
                                 "serial_number": events[0]["data"]["serial_number"], "platform": "google",
                                 "wallet": "google"}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None))) == 0
