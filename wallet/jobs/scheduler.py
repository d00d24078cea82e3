"""Scheduled jobs that run by themselves, exactly once per slot.

The schedule is a grid of instants, one every SCHEDULE_MINUTES counted from
the Unix epoch (so every process agrees on it). At each slot three jobs run:
the time rules as of the slot (``wallet.loyalty.schedule.run_time_rules``, the
same code as ``flask --app wsgi expire-points --as-of <slot>``), the purge of
outbox rows done long ago, and the purge of expired idempotency keys.

Who triggers them depends on the mode: in the embedded mode a timer thread
beside the embedded outbox worker (and in ``flask --app wsgi worker`` without
a broker); in scale mode Celery beat (``flask --app wsgi beat``, or
``worker --beat``), whose task any worker runs. Any number of them may run:
each job's slot is claimed by inserting its ``schedule_runs`` row, and the
unique (job, slot) constraint lets exactly one claimant run it. A slot that
nobody claimed (every scheduler was down) is not replayed: the next slot's
run covers it, as every time rule books what is due as of its instant.
"""

from __future__ import annotations

import enum
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wallet.config import get_settings
from wallet.db import Database, utcnow
from wallet.jobs.models import ScheduleRun
from wallet.jobs.outbox import purge_done, worker_id

log = logging.getLogger(__name__)

# How often a timer looks at the clock; claiming happens once per slot.
TIMER_CHECK_SECONDS = 1.0
RETRY_SECONDS = 30


class Job(enum.Enum):
    TIME_RULES = "time_rules"
    PURGE_OUTBOX = "purge_outbox"
    PURGE_IDEMPOTENCY_KEYS = "purge_idempotency_keys"


def slot_of(instant: datetime, minutes: int) -> datetime:
    """The latest slot at or before ``instant``."""
    step = minutes * 60
    seconds = int(instant.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, timezone.utc)


def claim(db: Database, job: Job, slot: datetime, runner: str) -> bool:
    """Take ``job`` for ``slot``; False when another scheduler already has."""
    with db.session() as session:
        taken = session.scalar(select(ScheduleRun.id).where(ScheduleRun.job == job.value,
                                                             ScheduleRun.slot == slot))
    if taken is not None:
        return False
    try:
        with db.transaction() as session:
            session.add(ScheduleRun(job=job.value, slot=slot, runner=runner[:64], started_at=utcnow()))
    except IntegrityError:
        return False  # the constraint decided: someone else inserted first
    return True


def _finish(db: Database, job: Job, slot: datetime, report: dict[str, Any]) -> None:
    with db.transaction() as session:
        run = session.scalar(select(ScheduleRun).where(ScheduleRun.job == job.value, ScheduleRun.slot == slot))
        if run is not None:
            run.finished_at = utcnow()
            run.report = report


def _run_job(app: Flask, db: Database, job: Job, slot: datetime) -> dict[str, Any]:
    settings = get_settings(app)
    if job is Job.TIME_RULES:
        from wallet.loyalty.schedule import run_time_rules

        return run_time_rules(db, slot)
    if job is Job.PURGE_OUTBOX:
        deleted = purge_done(db, older_than=timedelta(days=settings.outbox_keep_days), now=slot)
        return {"deleted": deleted}
    from wallet.api.idempotency import purge_expired

    with db.transaction() as session:
        return {"deleted": purge_expired(session, now=slot)}


def run_due(app: Flask, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Run every job of the current slot that no scheduler has claimed yet;
    returns the reports of those this call ran."""
    from wallet.extensions import get_db

    db = get_db(app)
    slot = slot_of(now or utcnow(), get_settings(app).schedule_minutes)
    runner = worker_id()
    reports: dict[str, dict[str, Any]] = {}
    for job in Job:
        if not claim(db, job, slot, runner):
            continue
        try:
            report = _run_job(app, db, job, slot)
        except Exception as exc:  # one job's failure must not stop the others
            log.exception("scheduled job %s for %s failed", job.value, slot.isoformat())
            report = {"error": f"{type(exc).__name__}: {exc}"}
        _finish(db, job, slot, report)
        log.info("scheduled job %s ran for %s", job.value, slot.isoformat())
        reports[job.value] = report
    return reports


class ScheduleTimer:
    """A daemon thread that runs ``run_due`` whenever the clock enters a new
    slot (and once at start, to catch up after downtime)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="schedule-timer", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        minutes = get_settings(self.app).schedule_minutes
        done: datetime | None = None
        while not self._stop.is_set():
            slot = slot_of(utcnow(), minutes)
            if slot != done:
                try:
                    run_due(self.app, slot)
                    done = slot
                except Exception as exc:  # the database may be down: try again later
                    log.warning("the schedule could not run for %s (%s: %s); retrying in %d s",
                                slot.isoformat(), type(exc).__name__, exc, RETRY_SECONDS)
                    self._stop.wait(RETRY_SECONDS)
                    continue
            self._stop.wait(TIMER_CHECK_SECONDS)
