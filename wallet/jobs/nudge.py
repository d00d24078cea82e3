"""Waking the workers when a commit wrote outbox rows.

The loyalty core only writes rows; it knows nothing of threads or Celery.
Session events notice a commit that inserted into the outbox and call the
waker registered for that database's engine: the embedded thread's event,
or (scale mode) a Celery task published after the commit. A lost wake-up
costs only latency: workers also poll.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session

from wallet.db import take_core_writes
from wallet.loyalty.models import OutboxEvent

log = logging.getLogger(__name__)

_FLAG = "wallet.outbox_written"
_wakers: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()
_installed = False
_lock = threading.Lock()


def register_waker(engine: Engine, waker: Callable[[], None]) -> None:
    install()
    _wakers[engine] = waker


def install() -> None:
    """Adds the session listeners, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _installed = True


def _after_flush(session: Session, _context: Any) -> None:
    if any(isinstance(obj, OutboxEvent) for obj in session.new):
        session.info[_FLAG] = True


def _on_execute(state: ORMExecuteState) -> None:
    if state.is_insert:
        table = getattr(state.statement, "table", None)
        if table is not None and table.name == OutboxEvent.__tablename__:
            state.session.info[_FLAG] = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
    take_core_writes(session)


def _after_commit(session: Session) -> None:
    # Statements run on the driver (wallet.db.execute_core) fire no do_orm_execute.
    by_driver = OutboxEvent.__tablename__ in take_core_writes(session)
    if not session.info.pop(_FLAG, False) and not by_driver:
        return
    try:
        bind = session.get_bind()
    except Exception:
        return
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    waker = _wakers.get(engine) if engine is not None else None
    if waker is None:
        return
    try:
        waker()
    except Exception:  # the rows are committed; a poll will find them
        log.warning("could not wake the outbox workers", exc_info=True)
