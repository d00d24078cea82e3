"""``flask --app wsgi worker``: run outbox workers in this process.

With BROKER_URL: a Celery worker (thread pool, so the app, its database pool
and the APNs connection are shared by the threads) that also polls the outbox;
``--beat`` adds Celery beat. Without: ``concurrency`` plain threads that drain
the outbox and poll it, and the schedule timer.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Any

from wallet.config import get_settings
from wallet.db import UNAVAILABLE, describe_unavailable
from wallet.jobs.outbox import process_batch, worker_id
from wallet.jobs.scheduler import ScheduleTimer

log = logging.getLogger(__name__)


def run_worker(app: Any, concurrency: int | None = None, *, beat: bool = False) -> None:
    """``beat`` (scale mode) also runs Celery beat in this worker: the
    schedule's slots are claimed in the database, so a beat in every worker
    still runs each job once."""
    settings = get_settings(app)
    threads = concurrency or settings.worker_concurrency
    # What the app made at start (modules, mappers, compiled statements)
    # lives as long as the process: out of the collector's generations, the
    # collections a batch's allocations set off no longer walk all of it.
    gc.freeze()
    if settings.broker_url:
        _run_celery(app, threads, beat)
    else:
        _run_threads(app, threads)


def _run_celery(app: Any, concurrency: int, beat: bool) -> None:
    from wallet.jobs.celery_app import beat_schedule_file, celery_of, start_poller

    celery = celery_of(app)
    start_poller(app)
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        celery.conf.task_default_queue,
    ]
    if beat:
        argv += ["--beat", f"--schedule={beat_schedule_file(app)}"]
    celery.worker_main(argv)


def _run_threads(app: Any, concurrency: int) -> None:
    stop = threading.Event()
    poll = get_settings(app).outbox_poll_seconds

    def loop() -> None:
        owner = worker_id()
        while not stop.is_set():
            try:
                count, _full = process_batch(app, owner=owner)
            except UNAVAILABLE as exc:
                log.warning("outbox worker: %s", describe_unavailable(exc))
                count = 0
            except Exception:
                log.exception("outbox batch failed")
                count = 0
            if not count:
                stop.wait(poll)

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers = [threading.Thread(target=loop, name=f"outbox-{i}", daemon=True) for i in range(concurrency)]
    for thread in workers:
        thread.start()
    timer = ScheduleTimer(app)
    timer.start()
    log.info("outbox worker running with %d threads (no BROKER_URL: polling), schedule timer on", concurrency)
    while not stop.is_set():
        stop.wait(1.0)
    timer.stop()
    for thread in workers:
        thread.join(30)
