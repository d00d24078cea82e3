"""Apple-format cards in Android wallet apps (WalletPasses, WalletUnion's
Wallet): they speak the PassKit web service with their own Authorization
scheme, and a card change reaches them through their own push APIs (a
stand-in on a loopback socket, tests/support/android_push.py) instead of
APNs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.android_push import AndroidPushStandIn
from tests.support.api import POINTS_PROGRAM, Api, make_brand
from tests.support.app import TEST_PASS_TYPE
from wallet.apple.models import DeviceRegistration, WalletApp
from wallet.jobs.outbox import drain
from wallet.loyalty.models import Membership, OutboxEvent

# Firebase registration tokens are base64url with a colon, not hex.
FCM_TOKEN = "cA47ZTE4Rk2:APA91bHvUNfeYWuqSOo86P9EuJPX6IUN1b6KuRmZWeyWxrJj2mYVMDQ8CUhkt9niaWvCBbq8MG6JHYRY2mhi5PH1z"
DEVICE = "android-0f1e2d3c4b5a6978"


@pytest.fixture
def walletunion(app_config: dict[str, Any]) -> Iterator[AndroidPushStandIn]:
    with AndroidPushStandIn(api_key="wu-key") as server:
        app_config.update(WALLETUNION_PUSH_URL=server.url, WALLETUNION_API_KEY="wu-key")
        yield server


def _member(db, client) -> tuple[Api, dict[str, Any]]:
    api = Api(client, make_brand(db).key)
    club = api.post("/clubs", {"name": "Bean Club", "program": POINTS_PROGRAM}).get_json()
    member = api.post(f"/clubs/{club['id']}/members", {"email": "ann@example.com", "name": "Ann"}).get_json()
    with db.session() as session:
        member["auth_token"] = session.get(Membership, member["id"]).auth_token
    return api, member


def _register(client, member: dict[str, Any], scheme: str, token: str = FCM_TOKEN, device: str = DEVICE):
    return client.post(f"/apple/v1/devices/{device}/registrations/{TEST_PASS_TYPE}/{member['serial_number']}",
                       json={"pushToken": token}, headers={"Authorization": f"{scheme} {member['auth_token']}"})


def _buy(api: Api, member: dict[str, Any]) -> None:
    assert api.post(f"/members/{member['id']}/transactions", {"type": "purchase", "amount": 250000}).status_code == 201


def test_an_androidpass_device_gets_its_push_through_walletpasses_after_a_purchase(
    walletpasses, app, db, client
) -> None:
    api, member = _member(db, client)
    assert _register(client, member, "AndroidPass").status_code == 201
    with db.session() as session:
        registration = session.scalar(select(DeviceRegistration))
        assert (registration.app, registration.push_token) == (WalletApp.WALLETPASSES, FCM_TOKEN)
    drain(app)
    walletpasses.received.clear()
    _buy(api, member)
    drain(app)
    assert walletpasses.received == [{"passTypeIdentifier": TEST_PASS_TYPE, "pushTokens": [FCM_TOKEN]}]
    # The app then fetches the pass as Apple Wallet does, with its own scheme.
    fetched = client.get(f"/apple/v1/passes/{TEST_PASS_TYPE}/{member['serial_number']}",
                         headers={"Authorization": f"AndroidPass {member['auth_token']}"})
    assert fetched.status_code == 200 and fetched.mimetype == "application/vnd.apple.pkpass"


def test_walletunion_huawei_devices_are_pushed_with_hms_and_dead_tokens_dropped(
    walletunion, app, db, client
) -> None:
    api, member = _member(db, client)
    assert _register(client, member, "WalletUnionHMSPass").status_code == 201
    assert _register(client, member, "WalletUnionPass", token="gone" + FCM_TOKEN[4:],
                     device="android-dead").status_code == 201
    walletunion.expired.add("gone" + FCM_TOKEN[4:])
    _buy(api, member)
    drain(app)
    bodies = {body["hms"]: body for body in walletunion.received}
    assert bodies[True]["pushTokens"] == [FCM_TOKEN]
    assert bodies[False]["pushTokens"] == ["gone" + FCM_TOKEN[4:]]
    with db.session() as session:
        left = session.scalars(select(DeviceRegistration.device_library_identifier)).all()
        assert left == [DEVICE]
        assert session.scalar(select(OutboxEvent.id).where(OutboxEvent.done_at.is_(None))) is None


def test_a_busy_push_api_is_tried_again_and_a_refusal_keeps_the_row(walletpasses, app, db, client) -> None:
    api, member = _member(db, client)
    _register(client, member, "AndroidPass")
    drain(app)
    walletpasses.script(429, 503)
    _buy(api, member)
    drain(app)
    assert walletpasses.statuses[-3:] == [429, 503, 200]
    walletpasses.api_key = "rotated"  # our key no longer works: 401, the row waits
    _buy(api, member)
    drain(app, max_batches=1)
    with db.session() as session:
        waiting = session.scalars(select(OutboxEvent).where(OutboxEvent.done_at.is_(None))).all()
        assert len(waiting) == 1 and "401" in (waiting[0].last_error or "")


@pytest.mark.parametrize("scheme, token, status", [
    ("FooPass", FCM_TOKEN, 401),  # not a scheme of any wallet
    ("ApplePass", FCM_TOKEN, 400),  # APNs tokens are hex
    ("AndroidPass", "x" * 300, 400),
    ("AndroidPass", "tok en with spaces", 400),
])
def test_registrations_with_an_unknown_scheme_or_a_malformed_token_are_refused(
    app, db, client, scheme, token, status
) -> None:
    _api, member = _member(db, client)
    assert _register(client, member, scheme, token=token).status_code == status
    with db.session() as session:
        assert session.scalar(select(DeviceRegistration.id)) is None
