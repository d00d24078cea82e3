"""The embedded worker: a daemon thread in the app process drains the outbox,
and a timer beside it runs the schedule (wallet.jobs.scheduler).

Used when there is no BROKER_URL and EMBEDDED_WORKER is on (one machine, the
default). Started lazily, by the first request or when ``flask run`` starts,
never at import or app creation, so CLI commands and
tests run no stray threads. Under gunicorn each web process runs one; the
leases keep them from doing the same row twice.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from wallet.db import UNAVAILABLE, describe_unavailable
from wallet.jobs.outbox import process_batch, worker_id
from wallet.jobs.scheduler import ScheduleTimer

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, app: Any, *, poll_seconds: float) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.timer: ScheduleTimer | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        # After a fork (gunicorn --preload) the parent's thread is not ours.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
            self._thread.start()
            self.timer = ScheduleTimer(self.app)
            self.timer.start()

    def wake(self) -> None:
        # Only a running thread is woken: a CLI command that writes outbox
        # rows must not start pushing on its way out; the server drains them.
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.timer is not None:
            self.timer.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        owner = worker_id()
        while not self._stop.is_set():
            try:
                count, _full = process_batch(self.app, owner=owner)
            except UNAVAILABLE as exc:
                log.warning("embedded outbox worker: %s", describe_unavailable(exc))
                count = 0
                self._stop.wait(self.poll_seconds)
            except Exception:
                log.exception("embedded outbox worker: batch failed")
                count = 0
                self._stop.wait(self.poll_seconds)
            if count:
                continue
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
