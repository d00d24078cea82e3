"""Outbound webhooks: events reach the brand's endpoint signed, every
attempt is recorded, failures are left for the dispatcher to retry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.support.api import Api, make_brand
from tests.support.webhooks import Receiver
from wallet.extensions import webhook_targets
from wallet.jobs.dispatch import dispatch
from wallet.jobs.webhook_delivery import RetryLater
from wallet.jobs.webhook_delivery import deliver as deliver_with
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind
from wallet.loyalty.webhooks import Webhook, WebhookDelivery, sign, verify_signature


@pytest.fixture
def app_config(app_config):
    # The receivers listen on loopback.
    app_config["WEBHOOK_ALLOW_PRIVATE"] = True
    return app_config


@pytest.fixture
def deliver(app):
    return lambda db, row: deliver_with(db, row, targets=webhook_targets(app))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _webhook_rows(db) -> list[OutboxEvent]:
    with db.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.WEBHOOK).order_by(OutboxEvent.id)))


def _deliveries(db) -> list[WebhookDelivery]:
    with db.session() as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_events_arrive_signed_and_each_delivery_is_recorded(client, db, receiver, deliver):
    api = Api(client, make_brand(db).key)
    created = api.post("/webhooks", {"url": receiver.url})
    assert created.status_code == 201
    receiver.secret = created.get_json()["secret"]
    assert "secret" not in api.get(f"/webhooks/{created.get_json()['id']}").get_json()

    club = api.club()
    member = api.member(club["id"])
    api.purchase(member["id"], 20000)
    rows = _webhook_rows(db)
    assert len(rows) == 2
    for row in rows:
        deliver(db, row)

    assert receiver.bad_signatures == 0
    types = [r["event"]["type"] for r in receiver.received]
    assert types == ["member.enrolled", "transaction.created"]
    enrolled, purchase = (r["event"] for r in receiver.received)
    assert enrolled["data"]["member"]["id"] == member["id"]
    assert purchase["data"]["transaction"]["points"] == 10
    assert receiver.received[1]["headers"]["Wallet-Event"] == "transaction.created"
    assert receiver.received[1]["headers"]["Wallet-Delivery"] == purchase["id"]
    recorded = _deliveries(db)
    assert [(d.event_type, d.response_status, d.succeeded) for d in recorded] == [
        ("member.enrolled", 200, True), ("transaction.created", 200, True)]


def test_a_failing_endpoint_is_retried_later_and_every_attempt_recorded(app, client, db, receiver, deliver):
    api = Api(client, make_brand(db).key)
    receiver.secret = api.post("/webhooks", {"url": receiver.url, "events": ["member.enrolled"]}).get_json()["secret"]
    api.member(api.club()["id"])
    [row] = _webhook_rows(db)

    receiver.status = 503
    with pytest.raises(RetryLater):
        deliver(db, row)
    # Through the outbox dispatcher, a failure is reported for back-off.
    outcome = dispatch(app, db, [row])
    assert row.id in outcome.failed and row.id not in outcome.done
    receiver.status = 204
    outcome = dispatch(app, db, [row])
    assert row.id in outcome.done
    assert [(d.response_status, d.succeeded) for d in _deliveries(db)] == [
        (503, False), (503, False), (204, True)]
    # The brand sees every attempt, newest first.
    [hook] = api.get("/webhooks").get_json()["items"]
    listed = api.get(f"/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert [(d["response_status"], d["succeeded"]) for d in listed] == [(204, True), (503, False), (503, False)]
    assert all(d["event_type"] == "member.enrolled" for d in listed)


def test_an_unreachable_endpoint_is_recorded_as_connection_failed(client, db, deliver):
    api = Api(client, make_brand(db).key)
    with Receiver() as gone:
        url = gone.url
    api.post("/webhooks", {"url": url})
    api.member(api.club()["id"])
    [row] = _webhook_rows(db)
    with pytest.raises(RetryLater):
        deliver(db, row)
    [attempt] = _deliveries(db)
    assert attempt.response_status is None and not attempt.succeeded
    # The brand learns that the connection failed, not the socket's words
    # ("[Errno 111] Connection refused"), which would map open ports.
    [hook] = api.get("/webhooks").get_json()["items"]
    [listed] = api.get(f"/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert listed["error"] == attempt.error == "connection failed"


def test_410_gone_switches_the_webhook_off(client, db, receiver, deliver):
    api = Api(client, make_brand(db).key)
    receiver.secret = api.post("/webhooks", {"url": receiver.url}).get_json()["secret"]
    api.member(api.club()["id"])
    [row] = _webhook_rows(db)
    receiver.status = 410
    deliver(db, row)  # no retry: the endpoint asked to stop
    with db.session() as s:
        assert not s.scalars(select(Webhook)).one().active


def test_only_subscribed_events_are_queued_and_deleted_webhooks_get_nothing(client, db, receiver, deliver):
    api = Api(client, make_brand(db).key)
    hook = api.post("/webhooks", {"url": receiver.url, "events": ["transaction.created"]}).get_json()
    receiver.secret = hook["secret"]
    member = api.member(api.club()["id"])
    assert _webhook_rows(db) == []
    api.purchase(member["id"], 20000)
    [row] = _webhook_rows(db)
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    deliver(db, row)  # the webhook is gone: done, nothing sent
    assert receiver.received == [] and _deliveries(db) == []
    assert api.get("/webhooks").get_json()["items"] == []


def test_webhook_registration_checks_url_and_events(client, db):
    api = Api(client, make_brand(db).key)
    for body in ({"url": "ftp://example.com/x"}, {"url": "not a url"},
                 {"url": "https://example.com/x", "events": ["member.deleted"]}, {"events": []}):
        assert api.post("/webhooks", body).status_code == 422, body


def test_signatures_cover_the_timestamp_and_the_body():
    body = b'{"type":"member.enrolled"}'
    header = sign("whsec_x", 1_800_000_000, body)
    assert verify_signature("whsec_x", header, body, now=1_800_000_010)
    assert not verify_signature("whsec_y", header, body, now=1_800_000_010)
    assert not verify_signature("whsec_x", header, body + b" ", now=1_800_000_010)
    assert not verify_signature("whsec_x", header.replace("t=1800000000", "t=1800000001"), body,
                                now=1_800_000_010)
    assert not verify_signature("whsec_x", header, body, now=1_800_000_000 + 3600)
    assert not verify_signature("whsec_x", "garbage", body, now=1_800_000_000)


def test_the_outbox_workers_retry_a_failed_delivery_with_back_off(app, client, db, receiver):
    from sqlalchemy import update

    from wallet.db import utcnow
    from wallet.jobs.outbox import drain

    api = Api(client, make_brand(db).key)
    receiver.secret = api.post("/webhooks", {"url": receiver.url, "events": ["member.enrolled"]}).get_json()["secret"]
    api.member(api.club()["id"])
    receiver.status = 500
    with app.app_context():
        drain(app)
    [row] = _webhook_rows(db)
    assert row.done_at is None and row.attempts == 1 and "HTTP 500" in (row.last_error or "")
    assert row.available_at > utcnow()  # backed off, not retried at once
    with app.app_context():
        drain(app)
    assert len(_deliveries(db)) == 1

    receiver.status = 200
    with db.transaction() as s:  # the back-off has passed
        s.execute(update(OutboxEvent).where(OutboxEvent.id == row.id).values(available_at=utcnow()))
    with app.app_context():
        drain(app)
    [row] = _webhook_rows(db)
    assert row.done_at is not None
    assert [(d.attempt, d.response_status, d.succeeded) for d in _deliveries(db)] == [
        (1, 500, False), (2, 200, True)]
    # Both attempts carry the same event id, so a receiver can drop repeats.
    assert len({r["headers"]["Wallet-Delivery"] for r in receiver.received}) == 1
