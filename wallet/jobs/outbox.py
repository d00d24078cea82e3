"""Claiming and finishing outbox rows, with leases.

A worker claims a batch of due rows by stamping ``locked_until`` (now + lease)
and ``locked_by`` in a short transaction (PostgreSQL: SELECT ... FOR UPDATE
SKIP LOCKED, so concurrent workers take different rows without waiting;
SQLite: the write transaction itself is the lock), with every other pending
card.changed row of the cards it took, so a card is pushed once however often
it changed (a change committed after the claim pushes again). It then does the work
outside any transaction and marks the rows done, or failed with a back-off.
A worker that dies leaves its rows locked until the lease runs out; then
any other worker claims them again. So a row is never lost, and what is done
twice is at most what one worker had claimed when it died.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)

from wallet.db import (
    Database,
    any_of,
    execute_core_all,
    table_of,
    utcnow,
)
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DEFAULT_LEASE_SECONDS = 60
MAX_BACKOFF_SECONDS = 3600


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident() % 100000}"


@dataclass(frozen=True)
class OutboxSettings:
    batch_size: int = DEFAULT_BATCH_SIZE
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    backoff_base: float = 5.0

    @classmethod
    def from_app(cls, app: Any) -> OutboxSettings:
        from wallet.config import get_settings

        settings = get_settings(app)
        return cls(
            batch_size=settings.outbox_batch_size,
            lease_seconds=settings.outbox_lease_seconds,
            backoff_base=settings.outbox_backoff_seconds,
        )


class Claimed(NamedTuple):
    """An outbox row as a worker claimed it: its values when leased, read
    once. The handlers only read them (a row is finished by id through
    ``complete`` and ``fail``), so a plain tuple does: made as ORM objects
    (wallet.db.loaded_detached), with their identity keys and instance
    state, the claimed rows were about a sixth of a worker's batch thread
    (py-spy) at one row per device of a club message."""

    id: int
    kind: str
    membership_id: int | None
    club_id: int | None
    brand_id: int | None
    payload: Any
    attempts: int
    available_at: datetime
    locked_until: datetime | None
    locked_by: str | None
    last_error: str | None
    created_at: datetime
    done_at: datetime | None


def _due(now: Any) -> Any:
    return and_(
        OutboxEvent.done_at.is_(None),
        OutboxEvent.available_at <= now,
        or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until < now),
    )


def claim(db: Database, owner: str, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease up to ``limit`` due rows to ``owner`` (and the other pending
    changes of their cards); returns them by id."""
    now = utcnow()
    lease = {"locked_until": now + timedelta(seconds=lease_seconds), "locked_by": owner[:64]}
    with db.transaction() as session:
        if not db.is_sqlite:
            # A done row leaves a dead entry in the pending index until a
            # vacuum; a bitmap scan visits every one of them at each claim
            # (72 ms per claim after 100,000 pushes, growing), a plain index
            # scan marks them dead as it passes and skips them afterwards.
            session.execute(_NO_BITMAP_SCAN)
            # The claim's one statement, built once and run on the driver.
            # Built for each claim and loaded through the ORM's RETURNING,
            # a claim cost the workers about 36 us per row, 26 with its
            # rows made detached ORM objects. Run so, it notes no write of
            # the outbox: a lease is no new work to wake the workers for
            # (wallet.jobs.nudge), as the ORM's UPDATE was not.
            rows = execute_core_all(session, _claim_statement(), {"now": now, "limit": limit, **lease})
            return sorted(map(Claimed._make, rows))
        # The write transaction is the lock.
        ids = list(session.scalars(_due_rows(now, limit)))
        if not ids:
            return []
        cards = select(OutboxEvent.membership_id).where(OutboxEvent.id.in_(ids),
                                                        OutboxEvent.kind == OutboxKind.CARD_CHANGED)
        ids += session.scalars(_same_cards(OutboxEvent.membership_id.in_(cards), ids, now, limit))
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(**lease)
                        .execution_options(synchronize_session=False))
        return sorted(map(Claimed._make, session.execute(select(*_OUTBOX.c).where(_OUTBOX.c.id.in_(ids)))))


_OUTBOX = table_of(OutboxEvent)
# A claimed row is made from the table's columns in their order.
assert Claimed._fields == tuple(column.key for column in _OUTBOX.c), "Claimed must name the outbox's columns"


@functools.cache
def _claim_statement() -> Any:
    """PostgreSQL: pick the due rows, join the same cards' rows, lease them
    and return them, in one statement."""
    now = bindparam("now", type_=_OUTBOX.c.available_at.type)
    limit = bindparam("limit", type_=Integer)
    picked = _due_rows(now, limit).add_columns(OutboxEvent.kind, OutboxEvent.membership_id) \
        .with_for_update(skip_locked=True).cte("picked")
    # The picked cards as one array, so their other rows are looked
    # up in the index of pending rows by card, whatever the planner
    # (without statistics) guesses of the CTE: as a semi-join it
    # walked every pending row once per picked row (60,000 to
    # 120,000 comparisons, 45 to 80 ms, a claim).
    cards = cast(select(func.array_agg(picked.c.membership_id))
                 .where(picked.c.kind == OutboxKind.CARD_CHANGED).scalar_subquery(), ARRAY(BigInteger))
    same = _same_cards(OutboxEvent.membership_id == any_(cards), select(picked.c.id), now, limit) \
        .with_for_update(skip_locked=True).cte("same")
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(union_all(select(picked.c.id), select(same.c.id))))
        .values(locked_until=bindparam("locked_until", type_=_OUTBOX.c.locked_until.type),
                locked_by=bindparam("locked_by", type_=_OUTBOX.c.locked_by.type))
        .returning(*_OUTBOX.c)
    )


_NO_BITMAP_SCAN = text("SET LOCAL enable_bitmapscan = off")


def _due_rows(now: Any, limit: Any) -> Select[tuple[int]]:
    return select(OutboxEvent.id).where(_due(now)).order_by(OutboxEvent.available_at, OutboxEvent.id).limit(limit)


def _same_cards(of_cards: Any, taken: Any, now: Any, limit: Any) -> Select[tuple[int]]:
    """The other pending card.changed rows of the cards ``of_cards`` names (not ``taken``),
    also those waiting out a back-off: they join the batch, so a card
    changed five times is pushed once (the pushers render the card as it is
    when they run). A row committed after this claim is not among them and
    pushes again. At most ``limit`` more rows; any beyond wait their turn."""
    return (
        select(OutboxEvent.id)
        .where(OutboxEvent.kind == OutboxKind.CARD_CHANGED, of_cards,
               OutboxEvent.done_at.is_(None), OutboxEvent.id.not_in(taken),
               or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until < now))
        .order_by(OutboxEvent.id)
        .limit(limit)
    )


def extend_lease(db: Database, ids: Sequence[int], owner: str, lease_seconds: float) -> None:
    with db.transaction() as session:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(ids), OutboxEvent.locked_by == owner[:64], OutboxEvent.done_at.is_(None))
            .values(locked_until=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )


@contextmanager
def _lease_kept(db: Database, ids: list[int], owner: str, lease_seconds: float) -> Iterator[None]:
    """Renews the lease every third of its length while the batch runs, so
    a slow batch (webhooks timing out) is not taken over by another worker;
    a dead worker renews nothing and its rows come back."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_seconds / 3):
            try:
                extend_lease(db, ids, owner, lease_seconds)
            except Exception:
                log.warning("could not renew the outbox lease", exc_info=True)

    thread = threading.Thread(target=renew, name="outbox-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def has_due(db: Database) -> bool:
    session = db.session()
    try:
        return session.scalar(select(OutboxEvent.id).where(_due(utcnow())).limit(1)) is not None
    finally:
        session.close()


def complete(db: Database, ids: Sequence[int]) -> None:
    if not ids:
        return
    now = utcnow()
    with db.transaction() as session:
        if not db.is_sqlite:
            # By primary key: a bitmap of the pending index would visit every
            # done row's dead entry there too, as the claim's would.
            session.execute(_NO_BITMAP_SCAN)
            # Built once and run on the driver, noting no write (a row done
            # is no new work to wake the workers for, as the ORM's UPDATE
            # was not): through the session's ORM execution, each call
            # building its statement and cache key, the done mark was a
            # fifth of a worker's batch thread (py-spy).
            execute_core_all(session, _DONE_OF, {"ids": list(ids), "done_at": now})
            return
        for start in range(0, len(ids), 1000):
            session.execute(_DONE.where(OutboxEvent.id.in_(ids[start : start + 1000])), {"done_at": now})


_DONE = (update(OutboxEvent).where(OutboxEvent.done_at.is_(None))
         .values(done_at=bindparam("done_at"), locked_until=None, last_error=None)
         .execution_options(synchronize_session=False))
_DONE_OF = (update(_OUTBOX).where(_OUTBOX.c.done_at.is_(None), any_of(_OUTBOX.c.id, key="ids"))
            .values(done_at=bindparam("done_at", type_=_OUTBOX.c.done_at.type), locked_until=None, last_error=None))


def fail(db: Database, failures: dict[int, str], attempts: dict[int, int], *, backoff_base: float) -> None:
    """Put rows back with attempts + 1 and a growing, jittered delay."""
    if not failures:
        return
    now = utcnow()
    with db.transaction() as session:
        for event_id, reason in failures.items():
            tries = attempts.get(event_id, 0) + 1
            delay = min(MAX_BACKOFF_SECONDS, backoff_base * (2 ** min(tries - 1, 20)))
            delay = delay * random.uniform(0.5, 1.0)
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == event_id, OutboxEvent.done_at.is_(None))
                .values(
                    attempts=tries,
                    available_at=now + timedelta(seconds=delay),
                    locked_until=None,
                    last_error=reason[:2000],
                )
                .execution_options(synchronize_session=False)
            )


def purge_done(db: Database, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete rows done before ``now - older_than``; the scheduler runs it."""
    cutoff = (now or utcnow()) - older_than
    with db.transaction() as session:
        return session.execute(
            delete(OutboxEvent).where(OutboxEvent.done_at.is_not(None), OutboxEvent.done_at < cutoff)
        ).rowcount or 0


def process_batch(
    app: Any,
    *,
    owner: str | None = None,
    settings: OutboxSettings | None = None,
    on_claimed: Callable[[int, bool], None] | None = None,
) -> tuple[int, bool]:
    """Claim one batch and do it. Returns (rows claimed, batch was full).

    ``on_claimed`` runs between claim and work: the Celery task uses it to
    call in another worker while this one is busy."""
    from wallet.extensions import get_db
    from wallet.jobs.dispatch import dispatch

    settings = settings or OutboxSettings.from_app(app)
    db = get_db(app)
    owner = owner or worker_id()
    events = claim(db, owner, limit=settings.batch_size, lease_seconds=settings.lease_seconds)
    if not events:
        return 0, False
    full = len(events) >= settings.batch_size
    if on_claimed is not None:
        on_claimed(len(events), full)
    with _lease_kept(db, [e.id for e in events], owner, settings.lease_seconds):
        outcome = dispatch(app, db, events)
    complete(db, sorted(outcome.done))
    fail(db, outcome.failed, {e.id: e.attempts for e in events}, backoff_base=settings.backoff_base)
    return len(events), full


def drain(app: Any, *, max_batches: int | None = None) -> int:
    """Do every due outbox row now, in this thread; returns how many were
    processed (done or put back). Tests and the workers call this."""
    owner = worker_id()
    settings = OutboxSettings.from_app(app)
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        count, _full = process_batch(app, owner=owner, settings=settings)
        if not count:
            break
        total += count
        batches += 1
    return total
