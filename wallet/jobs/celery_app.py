"""Scale mode: Celery on Redis (BROKER_URL) drives the same outbox code.

Web processes publish ``drain_outbox`` after a commit that wrote outbox rows;
any worker that takes it drains due rows in batches, and when a batch is
full it publishes one more task first, so idle workers join in. The outbox
in the database stays the truth: a lost message only costs latency, because
each worker also polls the outbox (see ``start_poller``), and a worker killed
with -9 leaves only leased rows that come back when the lease runs out.

The Celery app is made by ``init_celery(app)`` from the Flask app's settings,
as Flask's own guide does it: nothing is configured at import, and each
Flask app (a test makes many) has its own broker and queue.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask

from wallet.config import get_settings
from wallet.jobs.outbox import has_due, process_batch, worker_id
from wallet.jobs.scheduler import run_due

log = logging.getLogger(__name__)

DRAIN_TASK = "wallet.jobs.drain_outbox"
SCHEDULE_TASK = "wallet.jobs.run_schedule"
TASK_TIME_BUDGET = 30.0
# Beat asks this often whether the schedule's slot has come; the task claims
# each slot once (wallet.jobs.scheduler), so a late or repeated tick is harmless.
BEAT_SECONDS = 60.0


class WalletCelery(Celery):
    """A Celery app that knows the Flask app its tasks work for."""

    flask_app: Flask


def init_celery(flask_app: Flask) -> WalletCelery:
    """The Celery app for ``flask_app``'s broker and queue, kept at
    ``flask_app.extensions["celery"]``."""
    settings = get_settings(flask_app)
    celery = WalletCelery(flask_app.import_name, set_as_current=False)
    celery.flask_app = flask_app
    celery.conf.update(
        broker_url=settings.broker_url,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # A task is only a wake-up call; the outbox row is the durable part.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        # The wake-up is published from a web request after its commit: with
        # Redis unreachable it must fail fast (the poller covers for it), not hang.
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 2},
    )
    celery.conf.beat_schedule = {
        "wallet-schedule": {
            "task": SCHEDULE_TASK,
            "schedule": timedelta(seconds=BEAT_SECONDS),
            # A tick that waited past the next one is worth nothing.
            "options": {"expires": BEAT_SECONDS},
        },
    }
    celery.task(name=DRAIN_TASK, bind=True)(_drain_outbox)
    celery.task(name=SCHEDULE_TASK, bind=True)(_run_schedule)
    flask_app.extensions["celery"] = celery
    return celery


def celery_of(flask_app: Flask) -> WalletCelery:
    return flask_app.extensions["celery"]


def enqueue_drain(celery: Celery) -> None:
    celery.tasks[DRAIN_TASK].apply_async(retry=False)


def beat_schedule_file(flask_app: Flask) -> Path:
    """Where beat keeps when each entry last ran (a file of its own)."""
    return get_settings(flask_app).instance_path / "celerybeat-schedule"


def run_beat(flask_app: Flask) -> None:
    """Celery beat in this process: publishes the schedule's ticks."""
    celery = celery_of(flask_app)
    celery.Beat(schedule=str(beat_schedule_file(flask_app)), loglevel="INFO").run()


def _run_schedule(task: Task) -> dict[str, Any]:
    celery: WalletCelery = task.app  # type: ignore[assignment]
    return run_due(celery.flask_app)


def _drain_outbox(task: Task) -> int:
    celery: WalletCelery = task.app  # type: ignore[assignment]
    owner = worker_id()
    deadline = time.monotonic() + TASK_TIME_BUDGET
    called_in = False
    total = 0

    def spread(_count: int, full: bool) -> None:
        nonlocal called_in
        if full and not called_in:
            called_in = True
            try:
                enqueue_drain(celery)
            except Exception:
                log.warning("could not publish a drain task", exc_info=True)

    while True:
        count, full = process_batch(celery.flask_app, owner=owner, on_claimed=spread)
        total += count
        if not count:
            break
        if time.monotonic() > deadline:
            # Give the thread back to the pool; the work goes on in a new task.
            enqueue_drain(celery)
            break
    return total


def start_poller(flask_app: Flask, *, interval: float | None = None) -> threading.Thread:
    """A thread that publishes a drain task whenever due rows wait: catches
    wake-ups lost on the way and rows whose lease or back-off ran out."""
    from wallet.extensions import get_db

    every = interval or get_settings(flask_app).outbox_poll_seconds
    celery = celery_of(flask_app)

    def loop() -> None:
        while True:
            try:
                if has_due(get_db(flask_app)):
                    enqueue_drain(celery)
            except Exception:
                log.warning("outbox poll failed", exc_info=True)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="outbox-poller", daemon=True)
    thread.start()
    return thread
