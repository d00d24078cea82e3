"""A pass as phones fetch it, at the cost of what must be new.

After each push a phone fetches its pass, with If-Modified-Since when it has
one, and every device holding the card fetches the same state. So:

- one query (``read_card``) reads the pass's token, its Last-Modified and
  every column of the membership its pass shows, with the key of its club's
  state; a 304 is decided from it and nothing else is read;
- what every member of a club shares (the club's row, its artwork and
  strings with their manifest hashes and zip entries, the club's part of
  pass.json) is kept per process per club state (``ClubDesign``), loaded
  once when the club or its design changes;
- a signed pass is built once per card state and kept, in a bounded
  per-process cache, for the next fetch of that state: only the pass's own
  zip entries are kept, the club design's are shared.

A device's "list updated passes" is one query too (``changed_passes``).

On PostgreSQL the queries run on a connection each thread keeps (autocommit,
so every read sees what committed before it): taking one from the pool per
request, with its liveness ping and its reset on return, cost more than the
query itself. A connection that broke is dropped and the read tried once
more on a new one, so a restarted server costs one failed attempt, not a
failed request; a server that stays down is the caller's error (503).

There a query, compiled once (wallet.db.driver_statement), runs as every
statement on the driver does (wallet.db.rows_on_driver: prepared on the
connection at its first use, run by libpq's PQexecPrepared). It is
detached from the pool and its session's TimeZone is UTC: psycopg then loads
timestamps in UTC, where it converted each to the server's zone and the
result processor back to UTC (a tenth of a 304's instructions in
process); detached, no other user of
the pool meets that setting. The driver's errors become
SQLAlchemy's (an unreachable server is an OperationalError, a 503 by
wallet.outage), and the engine's cursor events still see the statement
(tests/test_statement_counts.py counts them).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import namedtuple
from collections.abc import Hashable
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Engine, bindparam, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload

from wallet.apple.models import DeviceRegistration
from wallet.apple.pkpass import ClubDesign, ClubState, PassSettings, SignedPass, cached_design, club_design, sign_card
from wallet.db import Database, driver_statement, rows_on_driver
from wallet.loyalty.cardfacts import member_facts
from wallet.loyalty.cards import ChangedCards, changed_among, listing
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.nps import survey_url
from wallet.lru import LRU

# Own entries of a pass are a few kilobytes: a few thousand card states.
CACHE_SIZE = 4096

_M, _C, _B = Membership.__table__.c, Club.__table__.c, Brand.__table__.c
# What the card shows of the member (wallet.loyalty.cardfacts.member_facts
# and the survey link read these attributes, by the membership's own names;
# nothing else of the member), then the state of its club
# (wallet.apple.pkpass.club_state). Each column more is one more value for
# psycopg to load on every fetch, a 304's too.
_MEMBER_COLUMNS = ("id", "auth_token", "card_modified_at", "version", "club_id", "card_number",
                   "serial_number", "download_token", "name", "locale", "status", "ended_at", "balance",
                   "pending", "cash_balance", "stamps", "tier", "expiring_points", "expiring_on", "message",
                   "message_at")
_CARD = select(
    *(_M[name] for name in _MEMBER_COLUMNS),
    _C.updated_at.label("club_updated_at"), _C.design_version.label("club_design_version"),
    _C.created_at.label("club_created_at"), _B.name.label("brand_name"),
).select_from(
    Membership.__table__.join(Club.__table__, _M.club_id == _C.id).join(Brand.__table__, _C.brand_id == _B.id)
)
_BY_SERIAL = _CARD.where(_M.serial_number == bindparam("key"))
_BY_DOWNLOAD_TOKEN = _CARD.where(_M.download_token == bindparam("key"))
# The row a card read gives, by the columns' names, on every backend.
CardRow = namedtuple("CardRow", [column.key for column in _CARD.selected_columns])  # type: ignore[misc]


class CardState(NamedTuple):
    """A membership's row as its pass shows it. ``key`` names the card
    state: the same key, the same signed pass. A named tuple: made on every
    fetch, a frozen dataclass's ``__init__`` (a setattr call per field) cost
    about three times as much."""

    membership_id: int
    auth_token: str
    modified_at: datetime
    key: Hashable
    club_key: ClubState
    row: Any  # a CardRow


def _state(row: Any) -> CardState:
    club_key = (row.club_id, row.club_updated_at, row.club_design_version, row.club_created_at, row.brand_name)
    # The version grows with every change the card shows; the serial and
    # the modification time tell a row from a deleted one with its id.
    key = (row.id, row.version, row.card_modified_at, row.serial_number, club_key)
    return CardState(row.id, row.auth_token, row.card_modified_at, key, club_key, row)


class _Kept:
    """A thread's own connection for pass reads (PostgreSQL)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.pid, self.forks = os.getpid(), _forks


# Forks of this process so far (in a child, its parent's and its own): a
# connection kept before a fork is the parent's. Asking os.getpid() on every
# read was a system call each time.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class _Reader:
    """Connections for pass reads on PostgreSQL, one kept by each thread,
    detached from the pool (closed, never pooled, when given back), so that
    the session's time zone (see the module's docstring) stays with them.

    A thread that ended closes its connection when the next one is taken;
    disposing of the engine (tests, a forked child) closes them all, except
    a forked child's copies of its parent's, which it only forgets."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._mine = threading.local()
        self._held: dict[int, tuple[threading.Thread, _Kept]] = {}
        self._lock = threading.Lock()
        event.listen(db.engine, "engine_disposed", self._close_all)

    def kept(self) -> _Kept:
        kept: _Kept | None = getattr(self._mine, "kept", None)
        if kept is not None and kept.forks == _forks and not kept.connection.invalidated:
            return kept
        connection = self._engine.connect()
        try:
            connection.detach()
            connection.exec_driver_sql("SET TIME ZONE 'UTC'")
            kept = _Kept(connection)
        except BaseException:
            connection.close()
            raise
        thread = threading.current_thread()
        with self._lock:
            for key, (other, held) in list(self._held.items()):
                if held.pid != kept.pid or not other.is_alive():
                    del self._held[key]
                    if held.pid == kept.pid:
                        _close(held)
            self._held[id(thread)] = (thread, kept)
        self._mine.kept = kept
        return kept

    def drop(self, kept: _Kept) -> None:
        """Forget a connection that failed; the next read takes a new one."""
        self._mine.kept = None
        with self._lock:
            self._held.pop(id(threading.current_thread()), None)
        _close(kept)

    def _close_all(self, _engine: Engine) -> None:
        pid = os.getpid()
        with self._lock:
            held, self._held = self._held, {}
        for _thread, kept in held.values():
            if kept.pid == pid:
                _close(kept)


def _close(kept: _Kept) -> None:
    try:
        kept.connection.close()
    except DBAPIError:
        pass


_readers: weakref.WeakKeyDictionary[Database, _Reader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def _reader(db: Database) -> _Reader:
    found = _readers.get(db)
    if found is None:
        with _readers_lock:
            found = _readers.get(db)
            if found is None:
                found = _readers[db] = _Reader(db)
    return found


def _kept_rows(db: Database, statement: Any, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    """PostgreSQL: every row of a reading ``statement`` on this thread's
    kept connection."""
    reader = _reader(db)
    compiled = driver_statement(statement, db.engine.dialect)
    kept = reader.kept()
    try:
        return rows_on_driver(kept.connection, compiled, values)
    except DBAPIError as exc:
        reader.drop(kept)
        if not exc.connection_invalidated:
            raise
    # The server closed the kept connection (a restart, an idle timeout):
    # once more on a new one, which the pool checks first.
    kept = reader.kept()
    try:
        return rows_on_driver(kept.connection, compiled, values)
    except DBAPIError:
        reader.drop(kept)
        raise


def _read(db: Database, statement: Any, key: str) -> Any:
    if db.is_sqlite:
        # A SQLite read is a deferred transaction (a snapshot of the WAL):
        # one per request, ended when the connection goes back.
        with db.engine.connect() as connection:
            row = connection.execute(statement, {"key": key}).first()
        return None if row is None else CardRow._make(row)
    rows = _kept_rows(db, statement, {"key": key})
    return CardRow._make(rows[0]) if rows else None


def read_card(db: Database, serial_number: str) -> CardState | None:
    """The state of the pass with this serial number, in one query."""
    row = _read(db, _BY_SERIAL, serial_number)
    return None if row is None else _state(row)


def read_card_by_download_token(db: Database, token: str) -> CardState | None:
    """The state of the pass downloaded by this token, in one query."""
    row = _read(db, _BY_DOWNLOAD_TOKEN, token)
    return None if row is None else _state(row)


_R = DeviceRegistration.__table__.c
# A device's passes of one type, as "list updated passes" reads them: by
# PostgreSQL with the bounds of its snapshot (wallet.loyalty.cards).
_DEVICE_PASSES = (
    select(_M.serial_number, _M.change_seq)
    .select_from(Membership.__table__.join(DeviceRegistration.__table__, _R.membership_id == _M.id))
    .where(_R.device_library_identifier == bindparam("device"), _R.pass_type_identifier == bindparam("pass_type"))
    .order_by(_M.id)
)
_LISTINGS = {postgresql: listing(_DEVICE_PASSES, postgresql=postgresql) for postgresql in (False, True)}


def changed_passes(db: Database, device_id: str, pass_type: str, tag: str | None) -> ChangedCards:
    """The passes of this type on this device changed since ``tag`` (Apple's
    passesUpdatedSince), in one query."""
    values = {"device": device_id, "pass_type": pass_type}
    if db.is_sqlite:
        with db.engine.connect() as connection:
            rows: list[Any] = list(connection.execute(_LISTINGS[False], values).all())
        return changed_among(rows, tag, postgresql=False)
    return changed_among(_kept_rows(db, _LISTINGS[True], values), tag, postgresql=True)


_passes: LRU[SignedPass] = LRU(CACHE_SIZE)


def _design(db: Database, state: CardState, settings: PassSettings) -> ClubDesign | None:
    """The club's share of every pass, loaded once per club state (the
    club's row, then its artwork if the design is new to this process).
    A club that changed since the card was read is taken as it is now;
    None if it is gone."""
    found = cached_design(state.club_key, settings)
    if found is None:
        with db.session() as session:
            club = session.scalar(select(Club).where(Club.id == state.row.club_id).options(joinedload(Club.brand)))
            if club is None:
                return None
            found = club_design(club, settings)
    return found


def signed_pass(db: Database, state: CardState, settings: PassSettings) -> SignedPass | None:
    """The signed pass of a card state read by ``read_card``: from the cache,
    or built from the row that was read. None if the club is gone."""
    key = (state.key, settings)
    found = _passes.get(key)
    if found is None:
        design = _design(db, state, settings)
        if design is None:
            return None
        # The row carries the membership's columns under their own names.
        member = cast(Membership, state.row)
        found = sign_card(member_facts(member, design.facts), design, settings,
                          authentication_token=state.auth_token,
                          survey_url=survey_url(settings.public_base_url, member))
        _passes.put(key, found)
    return found


def clear_cache() -> None:
    _passes.clear()
