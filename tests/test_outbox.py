"""The outbox's kinds are a closed set that the database keeps, each with a
handler; payloads are typed, and a row whose payload does not fit its kind is
dropped rather than retried for ever."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wallet.db import Database
from wallet.jobs.dispatch import HANDLERS
from wallet.jobs.outbox import drain
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.notifications import Channel, NotificationPayload
from wallet.loyalty.outbox import MalformedPayload, OutboxKind
from wallet.loyalty.webhooks import WebhookEvent, WebhookPayload


def test_every_kind_has_a_handler() -> None:
    assert set(OutboxKind) <= set(HANDLERS)


def test_the_database_takes_every_kind_and_refuses_any_other(db: Database) -> None:
    with db.transaction() as session:
        session.add_all(OutboxEvent(kind=kind) for kind in OutboxKind)
    with pytest.raises(IntegrityError):
        with db.transaction() as session:
            session.add(OutboxEvent(kind="google.patch"))
    with db.session() as session:
        assert sorted(session.scalars(select(OutboxEvent.kind))) == sorted(OutboxKind)


def test_payloads_read_back_as_they_were_written(db: Database) -> None:
    webhook = WebhookPayload(webhook_id=7, event=WebhookEvent(id="evt_1", type="member.enrolled",
                                                               created_at="2027-01-01T12:00:00+00:00",
                                                               data={"member": {"id": 3}}))
    email = NotificationPayload(channel=Channel.EMAIL, to="ann@example.com", subject="Hi", body="Text")
    with db.transaction() as session:
        session.add_all([OutboxEvent.carrying(webhook, brand_id=None), OutboxEvent.carrying(email)])
    with db.session() as session:
        hook_row, email_row = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        assert (hook_row.kind, email_row.kind) == (OutboxKind.WEBHOOK, OutboxKind.NOTIFICATION)
        assert WebhookPayload.of(hook_row) == webhook
        assert NotificationPayload.of(email_row) == email
        with pytest.raises(MalformedPayload):
            WebhookPayload.of(email_row)


def test_keys_a_newer_version_added_are_ignored() -> None:
    newer = {"webhook_id": 7, "attempt_hint": 2,
             "event": {"id": "e", "type": "t", "created_at": "c", "data": {}, "version": 2}}
    assert WebhookPayload.from_json(newer) == WebhookPayload(
        webhook_id=7, event=WebhookEvent(id="e", type="t", created_at="c", data={}))


@pytest.mark.parametrize("payload", [
    [],
    {"webhook_id": "7", "event": {"id": "e", "type": "t", "created_at": "c", "data": {}}},
    {"webhook_id": 7, "event": {"id": "e", "type": "t", "created_at": "c"}},
    {"webhook_id": 7, "event": "evt_1"},
    {"webhook_id": True, "event": {"id": "e", "type": "t", "created_at": "c", "data": {}}},
])
def test_a_payload_that_does_not_fit_its_kind_is_refused(payload: object) -> None:
    with pytest.raises(MalformedPayload):
        WebhookPayload.from_json(payload)


def test_a_row_with_a_malformed_payload_is_dropped_not_retried(
    app: Flask, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with db.transaction() as session:
        webhook = OutboxEvent(kind=OutboxKind.WEBHOOK, payload={"webhook_id": "seven"})
        email = OutboxEvent(kind=OutboxKind.NOTIFICATION, payload={"channel": "pigeon", "to": "x", "body": "y"})
        session.add_all([webhook, email])
    with caplog.at_level(logging.WARNING):
        assert drain(app) == 2
    with db.session() as session:
        assert all(row.done_at is not None for row in session.scalars(select(OutboxEvent)))
    assert caplog.text.count("dropp") == 2
