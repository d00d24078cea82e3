"""The time rules and purges run by themselves, exactly once per slot.

A frozen clock (time-machine) walks a member through a birthday, the end of
a pending window, an expiry warning, an expiry and a tier review. Nobody
calls `expire-points`: in the embedded mode the timers of two web processes
race for each slot; in scale mode Celery beat ticks and a real Celery worker
on Redis runs the task. Either way each rule books once, and each slot of
each job has one run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from tests.support.app import REDIS_URL, empty_tables, make_test_config
from tests.support.ledger import buy, join, make_club, member
from wallet import create_app
from wallet.api.models import IdempotencyKey
from wallet.db import Database
from wallet.jobs.models import ScheduleRun
from wallet.jobs.scheduler import Job, claim, run_due, slot_of
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind


T0 = datetime(2027, 1, 1, 12, 0, tzinfo=timezone.utc)
PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 30, "pending_days": 7, "warning_days": 14},
    "tiers": {"window_days": 30, "review_days": 30,
              "levels": [{"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 100_000}]},
    "bonuses": {"birthday_points": 300},
}


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def entries(db: Database, member_id: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(LedgerTransaction.type).where(LedgerTransaction.membership_id == member_id)
                              .order_by(LedgerTransaction.id)))


def runs(db: Database) -> list[tuple[str, datetime, bool]]:
    with db.session() as s:
        return [(r.job, r.slot, r.finished_at is not None)
                for r in s.scalars(select(ScheduleRun).order_by(ScheduleRun.slot, ScheduleRun.job))]


def wait_for_slot(db: Database, slot: datetime, timeout: float = 60) -> None:
    """Until every job of ``slot`` has finished (run by whoever claimed it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = {job for job, when, finished in runs(db) if when == slot and finished}
        if done == {job.value for job in Job}:
            return
        time.sleep(0.1)
    raise AssertionError(f"the schedule did not run by itself for {slot}: {runs(db)}")


def walk_through_the_rules(db: Database, traveller: Any, settle: Callable[[datetime], None]) -> None:
    """Moves the clock past each rule's moment and checks that rule booked
    once. ``settle(slot)`` waits for the schedule to have run that slot."""
    club = make_club(db, PROGRAM)
    mid = join(db, club, now=T0, birthday="1990-01-05")
    buy(db, mid, 100_000, now=T0)  # 50 points, pending 7 days, expiring on T0+30d; Gold
    before = len(entries(db, mid))

    def booked() -> list[str]:
        return entries(db, mid)[before:]

    with db.transaction() as s:  # leftovers the purges must take
        s.add(OutboxEvent(kind=OutboxKind.CARD_CHANGED, membership_id=mid, payload={}, done_at=at(-8),
                          available_at=at(-8)))
        s.add(IdempotencyKey(brand_id=s.scalar(select(func.min(IdempotencyKey.brand_id))) or _brand_of(s, club),
                             key="old", request_hash="0" * 64, method="POST", path="/api/v1/clubs",
                             state="done", owner="x", locked_until=at(-3), created_at=at(-3)))

    def move(days: float) -> datetime:
        traveller.move_to(at(days))
        slot = slot_of(at(days), 60)
        settle(slot)
        return slot

    first = move(0.05)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at < at(-7))) == 0
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    assert booked() == []

    move(4.1)  # 5 January, after 12:00: the birthday
    assert booked() == ["bonus"]
    move(7.1)  # the return window ended
    assert booked() == ["bonus", "release"]
    move(16.5)  # 14 days before the purchase's points expire
    m = member(db, mid)
    assert (m.expiring_points, m.expiring_on) == (50, at(30).date())
    move(30.1)  # expiry, and the tier review of day 30 with nothing spent since day 0.1
    m = member(db, mid)
    assert sorted(booked()) == ["bonus", "expire", "release", "tier"]
    assert (m.balance, m.tier) == (300, "Silver")
    move(30.2)  # an hour later: nothing new
    assert sorted(booked()) == ["bonus", "expire", "release", "tier"]

    slots = sorted({when for _job, when, _finished in runs(db)})
    assert slots[0] == first and len(slots) == 6
    # One run of each job per slot, every one finished.
    assert sorted(runs(db)) == sorted((job.value, slot, True) for job in Job for slot in slots)


def _brand_of(session: Any, club_id: int) -> int:
    from wallet.loyalty.models import Club

    club = session.get(Club, club_id)
    assert club is not None
    return club.brand_id


@pytest.fixture
def scheduler_apps(database_url: str, tmp_path: Path, dev_certs_dir: Path) -> Iterator[Callable[..., Flask]]:
    made: list[Flask] = []

    def make(**extra: Any) -> Flask:
        config = make_test_config(database_url, tmp_path / f"instance{len(made)}", dev_certs_dir, **extra)
        application = create_app(config)
        made.append(application)
        return application

    yield make
    for application in made:
        worker = application.extensions.get("wallet.jobs.embedded")
        if worker is not None:
            worker.stop()
        application.extensions["wallet.db"].dispose()
    empty_tables(database_url)


def test_in_the_embedded_mode_the_timers_run_each_rule_once(scheduler_apps: Callable[..., Flask]) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        apps = [scheduler_apps(EMBEDDED_WORKER=True) for _ in range(2)]  # two web processes
        db: Database = apps[0].extensions["wallet.db"]
        started = False

        def settle(slot: datetime) -> None:
            nonlocal started
            if not started:  # as the first request to each process does
                for application in apps:
                    application.extensions["wallet.jobs.embedded"].ensure_started()
                started = True
            wait_for_slot(db, slot)

        walk_through_the_rules(db, traveller, settle)


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_in_scale_mode_celery_beat_and_a_worker_run_each_rule_once(
    scheduler_apps: Callable[..., Flask], tmp_path: Path
) -> None:
    from celery.beat import EmbeddedService
    from celery.contrib.testing.worker import start_worker

    queue = f"wallet-test-beat-{secrets.token_hex(4)}"
    with time_machine.travel(T0, tick=False) as traveller:
        application = scheduler_apps(BROKER_URL=REDIS_URL, CELERY_QUEUE=queue)
        db: Database = application.extensions["wallet.db"]
        celery = application.extensions["celery"]
        celery.conf.beat_max_loop_interval = 0.2  # look at the (frozen) clock often
        beats = [EmbeddedService(celery, thread=True, schedule_filename=str(tmp_path / f"beat{i}"))
                 for i in range(2)]  # a second beat started by mistake changes nothing
        with start_worker(celery, pool="threads", concurrency=2, perform_ping_check=False,
                          loglevel="WARNING", shutdown_timeout=30):
            for beat in beats:
                beat.start()
            try:
                walk_through_the_rules(db, traveller, lambda slot: wait_for_slot(db, slot))
            finally:
                for beat in beats:
                    beat.stop()
    import redis

    client = redis.Redis.from_url(REDIS_URL)  # type: ignore[arg-type]
    client.delete(queue)
    client.close()


def test_a_slot_is_claimed_once_however_many_schedulers_ask(app: Flask, db: Database) -> None:
    slot = slot_of(T0, 60)
    assert claim(db, Job.TIME_RULES, slot, "first")
    assert not claim(db, Job.TIME_RULES, slot, "second")
    assert claim(db, Job.TIME_RULES, slot + timedelta(hours=1), "second")
    ran = run_due(app, slot + timedelta(minutes=59))  # still the first slot: only the purges are left
    assert set(ran) == {Job.PURGE_OUTBOX.value, Job.PURGE_IDEMPOTENCY_KEYS.value}
    assert run_due(app, slot) == {}


def test_slots_are_a_grid_every_process_agrees_on() -> None:
    assert slot_of(datetime(2027, 3, 4, 17, 59, 59, tzinfo=timezone.utc), 60) == datetime(
        2027, 3, 4, 17, 0, tzinfo=timezone.utc)
    assert slot_of(datetime(2027, 3, 4, 17, 44, tzinfo=timezone.utc), 15) == datetime(
        2027, 3, 4, 17, 30, tzinfo=timezone.utc)
