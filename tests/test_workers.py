"""The outbox workers: leases, back-off, dispatch by kind, the embedded
thread, and the wake-up published after commit in scale mode."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from tests.support.apns_standin import ApnsStandIn
from tests.support.app import REDIS_URL, TEST_PASS_TYPE, empty_tables, make_test_config
from tests.support.apple import make_club, make_member
from tests.support.push import push_token
from tests.support.webhooks import Receiver
from wallet import create_app
from wallet.config import get_settings
from wallet.db import Database, utcnow
from wallet.jobs import dispatch
from wallet.jobs.outbox import claim, drain
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind
from wallet.loyalty.webhooks import Webhook, emit_event


def add_rows(db: Database, count: int, kind: OutboxKind = OutboxKind.CARD_CHANGED) -> list[int]:
    with db.transaction() as session:
        rows = [OutboxEvent(kind=kind) for _ in range(count)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def rows(db: Database) -> dict[int, OutboxEvent]:
    with db.transaction() as session:
        found = {row.id: row for row in session.scalars(select(OutboxEvent))}
        session.expunge_all()
        return found


@pytest.fixture
def noop_kind(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """card.changed rows are handled by a handler that records its batches."""
    calls: list[list[int]] = []

    def handler(_app: Any, _db: Database, events: list[OutboxEvent]) -> dispatch.Outcome:
        calls.append([e.id for e in events])
        return dispatch.Outcome(done={e.id for e in events})

    monkeypatch.setitem(dispatch.HANDLERS, OutboxKind.CARD_CHANGED, handler)
    return calls


@pytest.fixture
def unhandled_kind(monkeypatch: pytest.MonkeyPatch) -> OutboxKind:
    """A kind this worker has no handler for, as when a newer version added it."""
    monkeypatch.delitem(dispatch.HANDLERS, OutboxKind.CARD_CHANGED)
    return OutboxKind.CARD_CHANGED


def test_a_leased_row_is_not_claimed_again_until_the_lease_expires(db: Database) -> None:
    ids = add_rows(db, 5)
    first = claim(db, "worker-a", limit=3, lease_seconds=60)
    second = claim(db, "worker-b", limit=10, lease_seconds=60)
    assert [e.id for e in first] == ids[:3]
    assert [e.id for e in second] == ids[3:]
    assert claim(db, "worker-c", limit=10, lease_seconds=60) == []
    # worker-a dies: its lease runs out and the rows come back.
    with db.transaction() as session:
        session.execute(update(OutboxEvent).where(OutboxEvent.locked_by == "worker-a")
                        .values(locked_until=utcnow() - timedelta(seconds=1)))
    again = claim(db, "worker-c", limit=10, lease_seconds=60)
    assert [e.id for e in again] == ids[:3]


def test_concurrent_claims_take_each_row_once(db: Database) -> None:
    add_rows(db, 400)
    taken: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while batch := claim(db, name, limit=25, lease_seconds=60):
                with lock:
                    taken.extend(e.id for e in batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(taken) == 400 and len(set(taken)) == 400


def test_drain_marks_rows_done_through_the_registered_handler(
    app: Flask, db: Database, noop_kind: list[list[int]]
) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), outbox_batch_size=4)
    ids = add_rows(db, 10)
    assert drain(app) == 10
    assert sorted(i for call in noop_kind for i in call) == ids
    assert max(len(call) for call in noop_kind) == 4
    assert all(row.done_at is not None and row.locked_until is None for row in rows(db).values())
    assert drain(app) == 0


def test_a_kind_without_handler_waits_with_back_off(app: Flask, db: Database, unhandled_kind: OutboxKind) -> None:
    [row_id] = add_rows(db, 1, unhandled_kind)
    assert drain(app) == 1
    row = rows(db)[row_id]
    assert row.done_at is None and row.attempts == 1
    assert "no handler" in (row.last_error or "")
    assert row.available_at > utcnow()
    assert drain(app) == 0  # not due before its back-off


def test_a_handler_that_raises_fails_only_its_rows(
    app: Flask, db: Database, noop_kind: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_app: Any, _db: Database, _events: list[OutboxEvent]) -> dispatch.Outcome:
        raise RuntimeError("boom")

    monkeypatch.setitem(dispatch.HANDLERS, OutboxKind.WEBHOOK, broken)
    ok = add_rows(db, 2)
    [bad] = add_rows(db, 1, OutboxKind.WEBHOOK)
    drain(app)
    found = rows(db)
    assert all(found[i].done_at is not None for i in ok)
    assert found[bad].done_at is None and found[bad].attempts == 1 and "boom" in (found[bad].last_error or "")


def test_back_off_grows_with_attempts(app: Flask, db: Database, unhandled_kind: OutboxKind) -> None:
    [row_id] = add_rows(db, 1, unhandled_kind)
    delays = []
    for _ in range(4):
        with db.transaction() as session:
            session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))
        before = utcnow()
        drain(app)
        delays.append((rows(db)[row_id].available_at - before).total_seconds())
    assert rows(db)[row_id].attempts == 4
    # jitter is at most halving, the base doubles: each delay beats the one two back
    assert delays[2] > delays[0] and delays[3] > delays[1]


def test_webhook_rows_are_delivered_by_the_webhook_handler(app: Flask, db: Database) -> None:
    targets = app.extensions["wallet.webhook_targets"]
    app.extensions["wallet.webhook_targets"] = dataclasses.replace(targets, allow_private=True)  # loopback
    with Receiver() as receiver:
        club_id = make_club(db)
        with db.transaction() as session:
            brand_id = session.scalar(select(Club.brand_id).where(Club.id == club_id))
            hook = Webhook(brand_id=brand_id, url=receiver.url)
            session.add(hook)
            session.flush()
            receiver.secret = hook.secret
        with db.transaction() as session:
            assert emit_event(session, brand_id=brand_id, event_type="card.installed", data={"member_id": 1}) == 1
        assert drain(app) == 1
    assert [r["event"]["type"] for r in receiver.received] == ["card.installed"]
    assert all(row.done_at is not None for row in rows(db).values())


# -- the embedded thread ---------------------------------------------------------


@pytest.fixture
def embedded_app(database_url: str, tmp_path: Path, dev_certs_dir: Path, standin: ApnsStandIn) -> Iterator[Flask]:
    config = make_test_config(database_url, tmp_path / "instance", dev_certs_dir, EMBEDDED_WORKER=True,
                              APNS_URL=standin.url, APNS_CA_FILE=str(standin.ca_file))
    application = create_app(config)
    try:
        yield application
    finally:
        application.extensions["wallet.jobs.embedded"].stop()
        application.extensions["wallet.db"].dispose()
        empty_tables(database_url)


def test_embedded_thread_starts_with_the_first_request_and_pushes_after_commit(
    embedded_app: Flask, standin: ApnsStandIn
) -> None:
    worker = embedded_app.extensions["wallet.jobs.embedded"]
    db = embedded_app.extensions["wallet.db"]
    member = make_member(db, make_club(db))
    from wallet.apple.models import DeviceRegistration

    with db.transaction() as session:
        session.add(DeviceRegistration(device_library_identifier="dev1", pass_type_identifier=TEST_PASS_TYPE,
                                       membership_id=member, push_token=push_token(7)))
    assert worker._thread is None  # nothing runs until the app serves
    embedded_app.test_client().get("/apple/v1/devices/none/registrations/none")
    assert worker._thread is not None and worker._thread.is_alive()

    with db.transaction() as session:
        membership = session.get(Membership, member)
        assert membership is not None
        record_card_change(session, membership)
    assert standin.wait_for(lambda s: s.accepted_tokens() == {push_token(7): 1}, timeout=30)
    assert standin.wait_for(lambda _s: all(r.done_at is not None for r in rows(db).values()), timeout=30)


# -- scale mode: the wake-up goes to the broker after commit ------------------------


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_scale_mode_publishes_a_drain_task_after_commit_only(
    database_url: str, tmp_path: Path, dev_certs_dir: Path
) -> None:
    import redis

    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL.rstrip("/")  # type: ignore[union-attr]
    broker = base + "/3"
    queue = f"wallet-test-wake-{tmp_path.name}"
    config = make_test_config(database_url, tmp_path / "instance", dev_certs_dir, BROKER_URL=broker,
                              CELERY_QUEUE=queue)
    application = create_app(config)
    r = redis.Redis.from_url(broker)
    try:
        db = application.extensions["wallet.db"]
        member = make_member(db, make_club(db))
        assert r.llen(queue) == 0
        with pytest.raises(RuntimeError):
            with db.transaction() as session:
                membership = session.get(Membership, member)
                assert membership is not None
                record_card_change(session, membership)
                raise RuntimeError("rollback")
        assert r.llen(queue) == 0
        with db.transaction() as session:
            membership = session.get(Membership, member)
            assert membership is not None
            record_card_change(session, membership)
        assert r.llen(queue) == 1
        message = json.loads(r.lindex(queue, 0))  # type: ignore[arg-type]
        assert message["headers"]["task"] == "wallet.jobs.drain_outbox"
    finally:
        r.delete(queue)
        r.close()
        application.extensions["wallet.db"].dispose()
        empty_tables(database_url)
