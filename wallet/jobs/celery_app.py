"""Scale mode: Celery on Redis (BROKER_URL) drives the same outbox code.

Web processes publish ``drain_outbox`` after a commit that wrote outbox rows;
any worker that takes it drains due rows in batches, and when a batch is
full it publishes one more task first, so idle workers join in. The outbox
in the database stays the truth: a lost message only costs latency, because
each worker also polls the outbox (see ``start_poller``), and a worker killed
with -9 leaves only leased rows that come back when the lease runs out.

``flask --app wsgi worker`` binds the app it was started with;
``celery -A wallet.jobs.celery_app worker`` builds one from the environment
(wsgi.create_app) in each worker process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from wallet.jobs.outbox import has_due, process_batch, worker_id

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "wallet-outbox"
TASK_TIME_BUDGET = 30.0
POLL_SECONDS = 5.0

celery_app = Celery("wallet")
celery_app.conf.update(
    broker_url=os.environ.get("BROKER_URL") or "redis://127.0.0.1:6379/0",
    task_ignore_result=True,
    task_default_queue=os.environ.get("CELERY_QUEUE") or DEFAULT_QUEUE,
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
app = celery_app  # `celery -A wallet.jobs.celery_app` finds it under either name

_bound: dict[int, Any] = {}
_bind_lock = threading.Lock()


def configure(flask_app: Any) -> None:
    """Point Celery at the app's broker and bind the app for tasks in this process."""
    celery_app.conf.broker_url = flask_app.config["BROKER_URL"]
    from wallet.jobs.settings import setting

    queue = setting(flask_app, "CELERY_QUEUE")
    if queue:
        celery_app.conf.task_default_queue = queue
    _bound[os.getpid()] = flask_app


def flask_app() -> Any:
    pid = os.getpid()
    with _bind_lock:
        if pid not in _bound:
            from wallet import create_app

            _bound[pid] = create_app()
        return _bound[pid]


def enqueue_drain() -> None:
    drain_outbox.apply_async(retry=False)


@celery_app.task(name="wallet.jobs.drain_outbox")
def drain_outbox() -> int:
    application = flask_app()
    owner = worker_id()
    deadline = time.monotonic() + TASK_TIME_BUDGET
    called_in = False
    total = 0

    def spread(_count: int, full: bool) -> None:
        nonlocal called_in
        if full and not called_in:
            called_in = True
            try:
                enqueue_drain()
            except Exception:
                log.warning("could not publish a drain task", exc_info=True)

    while True:
        count, full = process_batch(application, owner=owner, on_claimed=spread)
        total += count
        if not count:
            break
        if time.monotonic() > deadline:
            # Give the thread back to the pool; the work goes on in a new task.
            enqueue_drain()
            break
    return total


def start_poller(application: Any, *, interval: float | None = None) -> threading.Thread:
    """A thread that publishes a drain task whenever due rows wait: catches
    wake-ups lost on the way and rows whose lease or back-off ran out."""
    from wallet.extensions import get_db

    from wallet.jobs.settings import number

    every = interval or number(application, "OUTBOX_POLL_SECONDS", POLL_SECONDS)

    def loop() -> None:
        while True:
            try:
                if has_due(get_db(application)):
                    enqueue_drain()
            except Exception:
                log.warning("outbox poll failed", exc_info=True)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="outbox-poller", daemon=True)
    thread.start()
    return thread


@worker_ready.connect
def _on_worker_ready(**_kwargs: Any) -> None:
    start_poller(flask_app())
