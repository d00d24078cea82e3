"""``flask --app wsgi worker``: run outbox workers in this process.

With BROKER_URL: a Celery worker (thread pool, so the app, its database pool
and the APNs connection are shared by the threads) that also polls the outbox.
Without: ``concurrency`` plain threads that drain the outbox and poll it.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from wallet.config import get_settings
from wallet.jobs.outbox import process_batch, worker_id

log = logging.getLogger(__name__)


def run_worker(app: Any, concurrency: int | None = None) -> None:
    settings = get_settings(app)
    threads = concurrency or settings.worker_concurrency
    if settings.broker_url:
        _run_celery(app, threads)
    else:
        _run_threads(app, threads)


def _run_celery(app: Any, concurrency: int) -> None:
    from wallet.jobs.celery_app import celery_of, start_poller

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
    celery.worker_main(argv)


def _run_threads(app: Any, concurrency: int) -> None:
    stop = threading.Event()
    poll = get_settings(app).outbox_poll_seconds

    def loop() -> None:
        owner = worker_id()
        while not stop.is_set():
            try:
                count, _full = process_batch(app, owner=owner)
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
    log.info("outbox worker running with %d threads (no BROKER_URL: polling)", concurrency)
    while not stop.is_set():
        stop.wait(1.0)
    for thread in workers:
        thread.join(30)
