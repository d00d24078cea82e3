"""The database layer: declarative base, engine and sessions.

Plain SQLAlchemy 2.0 rather than a Flask extension, so the loyalty core and the
workers use the same models and sessions with or without a Flask app.
"""

from __future__ import annotations

import importlib
import os
import select
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    inspect,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Session, make_transient, make_transient_to_detached, sessionmaker
# An object's state without inspect()'s walk of the inspection registry
# (a documented attribute utility): on every booking's hot objects.
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.types import TypeDecorator

# Stable constraint names keep Alembic migrations identical on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every module that defines tables; Alembic and create_all import them all.
MODEL_MODULES = (
    "wallet.loyalty.models",
    "wallet.loyalty.ledger_models",
    "wallet.loyalty.import_models",
    "wallet.loyalty.campaign_models",
    "wallet.loyalty.webhooks",
    "wallet.loyalty.numbers_models",
    "wallet.apple.models",
    "wallet.google.models",
    "wallet.api.models",
    "wallet.jobs.models",
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones; storing naive UTC and attaching UTC on the way
    out keeps comparisons and isoformat() identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return (_naive_utc if dialect.name == "sqlite" else _utc)(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return _as_utc(value)

    # TypeDecorator's processors wrap process_bind_param and
    # process_result_value in a call of their own for every value; these
    # hand the conversion itself to the driver's step when the dialect has
    # none of its own (PostgreSQL): a booking converts a dozen per purchase,
    # and every loaded row its own.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        impl = self.impl_instance.bind_processor(dialect)
        convert = _naive_utc if dialect.name == "sqlite" else _utc
        if impl is None:
            return convert
        return lambda value: impl(convert(value))

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        impl = self.impl_instance.result_processor(dialect, coltype)
        if impl is None:
            return _as_utc
        return lambda value: _as_utc(impl(value))


def _utc(value: datetime | None) -> datetime | None:
    """A datetime to store, in UTC; a naive one is refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given; use utcnow()")
    return value.astimezone(timezone.utc)


def _naive_utc(value: datetime | None) -> datetime | None:
    """``_utc`` without its zone, as SQLite stores it."""
    value = _utc(value)
    return None if value is None else value.replace(tzinfo=None)


def _as_utc(value: datetime | None) -> datetime | None:
    """A stored datetime as an aware one in UTC (SQLite's are naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# The largest id a BIGINT primary key holds: a larger number names no row,
# and must be answered before it reaches a driver that cannot bind it.
MAX_ID = 2**63 - 1


# What SQLAlchemy raises when the database cannot be reached or answer: the
# server is down or refuses us, the file cannot be opened, the pool is
# exhausted. Callers turn these into a 503, a one-line CLI error or a retry.
UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
)


def describe_unavailable(exc: BaseException) -> str:
    """The driver's reason in one line, e.g. "connection refused"."""
    reason = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return lines[0] if lines else type(reason).__name__


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def any_of(column: Any, ids: Sequence[int] | None = None, *, key: str | None = None) -> Any:
    """``column = ANY(:ids)``: the ids as one array parameter, so a batch's
    statement is the same text whatever its size (psycopg converts it once
    and prepares it; PostgreSQL plans it once). An expanded IN list was a
    new statement of up to 1,000 parameters for every batch, each rendered
    by SQLAlchemy, split by psycopg and parsed by PostgreSQL anew. With
    ``key`` instead of ``ids``: the parameter so named, for a statement
    built once and given its ids when run."""
    if ids is None:
        return column == any_(bindparam(key, type_=ARRAY(BigInteger)))
    return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


_Model = TypeVar("_Model", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements on hot paths (a Core
    INSERT or UPDATE skips the unit of work's bookkeeping)."""
    return cast(Table, model.__table__)


def mark_written(session: Session, obj: Any) -> bool:
    """Count a persistent object as clean once Core statements have written
    every change it holds (each then set with ``set_committed_value``): its
    changed flag would otherwise make the next flush walk it through the
    unit of work to find nothing (about 0.2 ms). Returns False, changing
    nothing, while a change is left unwritten: the flush writes it then."""
    state = instance_state(obj)
    if not state.modified:
        return True
    if set(state.mapper.attrs.keys()) - state.unmodified:
        return False
    # The public way to an object without pending changes: detached,
    # transient, detached again with every loaded attribute as committed.
    session.expunge(obj)
    make_transient(obj)
    make_transient_to_detached(obj)
    session.add(obj)
    return True


class DriverStatement:
    """A Core statement as psycopg runs it on PostgreSQL, compiled once:
    its SQL with PostgreSQL's own placeholders ($1, which a psycopg
    ``RawCursor`` sends as they are instead of rewriting %(name)s on every
    execution), the order of its parameters with the bind processor of
    each one's type and the values of its literals, and the result
    processor of each column it returns (None where the driver's value is
    already what SQLAlchemy would give). Run by ``run_on_driver``.

    SQLAlchemy's execution of a statement (its compiled cache lookup,
    execution context, the cursor's description of the columns and the
    result object) cost about three times psycopg's own work on the hot
    statements of a purchase; this keeps SQLAlchemy's types (UTC
    datetimes, JSON) and its errors, and leaves the rest out. A statement
    with an expanding IN (a list bound at execution) is refused: its SQL
    depends on the list."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=type(dialect)(paramstyle="numeric_dollar"))
        self.sql = str(compiled)
        if "__[POSTCOMPILE" in self.sql:
            raise ValueError("a statement with an expanding IN has no SQL of its own: write the values out")
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in self.names]
        self.bind_processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds)
        # The statement's own values (its literals); None for those given at each execution.
        self.constants: tuple[Any, ...] = tuple(
            None if bind.required or bind.callable is not None else bind.value for bind in binds)
        self.given = tuple(bind.required or bind.callable is not None for bind in binds)
        # What ``parameters`` does, laid out once: every value read in one
        # C call (``operator.itemgetter``) from the given values with the
        # literals laid over them, then only the values whose type has a
        # bind processor (a datetime, JSON) passed through it, instead of
        # a Python step for each of a booking's ~35 parameters.
        self._literals = {name: constant for name, given, constant in zip(self.names, self.given, self.constants)
                          if not given}
        self._read = _reader(self.names)
        self._processed = tuple((i, process) for i, process in enumerate(self.bind_processors) if process is not None)
        columns = list(statement.exported_columns)
        self.returns_rows = bool(columns)
        self.result_processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
        self.converted = tuple(i for i, process in enumerate(self.result_processors) if process is not None)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's parameters, in order, from the statement's named ones."""
        read = self._read({**values, **self._literals} if self._literals else values)
        if not self._processed:
            return read
        out = list(read)
        for i, process in self._processed:
            if out[i] is not None:
                out[i] = process(out[i])
        return tuple(out)

    def row(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """A returned row's values as SQLAlchemy would give them."""
        if not self.converted:
            return values
        converted = list(values)
        processors = self.result_processors
        for i in self.converted:
            converted[i] = processors[i](converted[i])  # type: ignore[misc]
        return tuple(converted)


def _reader(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function reading ``names`` from a mapping as a tuple, in order."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda values: (values[name],)
    return lambda _values: ()


_driver_statements: dict[tuple[int, str], tuple[Any, DriverStatement]] = {}


def driver_statement(statement: Any, dialect: Dialect) -> DriverStatement:
    """``statement`` compiled for the driver, once per process and dialect
    (built at first use; the statement is kept alive with it, so its id
    names it)."""
    key = (id(statement), dialect.name)
    found = _driver_statements.get(key)
    if found is None:
        found = _driver_statements[key] = (statement, DriverStatement(statement, dialect))
    return found[1]


def driver_cursor(connection: Connection, statement: DriverStatement) -> Any:
    """A psycopg ``RawCursor`` for ``statement``, kept with the driver
    connection under ``connection`` (made once per driver connection and
    statement, and gone with the connection). One cursor per statement:
    psycopg keeps a cursor's adaptation state (its Transformer, with the
    dumper found for each parameter's type) only while the cursor runs the
    same query again, so one cursor shared by a booking's statements looked
    up every parameter's dumper anew on each of them."""
    import psycopg

    pooled = connection.connection  # its info is the connection's, kept with the driver's
    raw, info = pooled.driver_connection, pooled.info
    kept = info.get("wallet.driver_cursors")
    if kept is None or kept[0] is not raw:
        kept = info["wallet.driver_cursors"] = (raw, {})
    cursor = kept[1].get(statement)
    if cursor is None:
        cursor = kept[1][statement] = psycopg.RawCursor(raw)  # type: ignore[arg-type]
    return cursor


def run_on_driver(connection: Connection, statement: DriverStatement,
                  values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run ``statement`` on ``connection``'s kept psycopg cursor, in its
    transaction, with ``values`` by the statement's parameter names; its
    first row as SQLAlchemy would give it (None: no row). A driver error is
    raised as SQLAlchemy would raise it (an IntegrityError, an
    OperationalError that wallet.outage answers 503), the connection
    invalidated if it broke. The engine's cursor events are fired around
    it when something listens (statement counts, tracing), as SQLAlchemy's
    execution fires them."""
    rows = _on_driver(connection, statement, values, every=False)
    return rows[0] if rows else None


def _on_driver(connection: Connection, statement: DriverStatement, values: Mapping[str, Any], *,
               every: bool) -> list[tuple[Any, ...]]:
    """``run_on_driver``'s work: the first row, or ``every`` row."""
    import psycopg

    parameters = statement.parameters(values)
    # Asked of the engine's own listeners, which live as long as it does:
    # asking the connection's (its listeners joined with the engine's,
    # made afresh for each new Connection) built that join per event name
    # on every transaction's first statement. Listeners are put on the
    # engine (or its class); when one is there, the connection fires it.
    listening = connection.engine.dispatch
    try:
        cursor = driver_cursor(connection, statement)
        if listening.before_cursor_execute or listening.after_cursor_execute:
            events = connection.dispatch
            events.before_cursor_execute(connection, cursor, statement.sql, parameters, None, False)
            cursor.execute(statement.sql, parameters)
            events.after_cursor_execute(connection, cursor, statement.sql, parameters, None, False)
        else:
            cursor.execute(statement.sql, parameters)
        if not statement.returns_rows:
            found = []
        elif every:
            found = cursor.fetchall()
        else:
            first = cursor.fetchone()
            found = [] if first is None else [first]
    except psycopg.Error as exc:
        dialect = connection.dialect
        broken = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if broken:
            connection.invalidate(exc)
        raise sa_exc.DBAPIError.instance(statement.sql, parameters, exc, psycopg.Error,
                                         connection_invalidated=broken, dialect=dialect) from exc
    return [statement.row(row) for row in found]


# The Connection of a session's transaction, in ``session.info`` with the
# transaction it belongs to: ``Session.connection()`` walks the session's
# transaction states on every call (about as much Python as building a
# statement's parameters), and a booking asks it for each statement.
_CONNECTION = "wallet.transaction_connection"


def _transaction_connection(session: Session) -> Connection:
    """``session.connection()``, looked up once per transaction and once
    per savepoint in it (the session sends a savepoint's SAVEPOINT when it
    is first asked for its connection). Once the transaction is no longer
    active, or a driver error invalidated its connection, the session is
    asked again and answers for it as it would."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and kept[0] is transaction and transaction.is_active and not kept[1].invalidated:
        return cast(Connection, kept[1])
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_nested_transaction() or session.get_transaction(), connection)
    return connection


def execute_core_all(session: Session, statement: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row a Core statement returns in the session's transaction: on
    PostgreSQL by the driver as ``run_on_driver``, elsewhere by
    ``session.execute``. It notes no table for ``take_core_writes``: a
    select, or a write that must wake nobody (an outbox claim's lease,
    wallet.jobs.outbox)."""
    connection = _transaction_connection(session)
    if connection.dialect.name != "postgresql":
        return [tuple(row) for row in session.execute(statement, values)]
    return _on_driver(connection, driver_statement(statement, connection.dialect), values, every=True)


# The tables that ``execute_core`` wrote in a session's transaction, by
# name, in ``session.info``: a statement run on the driver fires no session
# event (``do_orm_execute``), so a listener that wants to know what a
# transaction wrote (wallet.jobs.nudge: outbox rows) reads them here. Its
# ``after_commit``/``after_rollback`` take them away (``take_core_writes``).
_CORE_WRITES = "wallet.core_writes"


def take_core_writes(session: Session) -> frozenset[str]:
    """The tables ``execute_core`` wrote in this session since this was last
    called (at the end of each transaction), forgotten."""
    return frozenset(session.info.pop(_CORE_WRITES, ()))


def execute_core(session: Session, statement: Any, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A Core statement (no ORM entities: nothing to autoflush, as with
    ``session.execute``) in the session's transaction, its first row:
    on PostgreSQL by ``run_on_driver``, elsewhere by ``session.execute``.
    The table an INSERT, UPDATE or DELETE names is noted for
    ``take_core_writes``."""
    written = getattr(statement, "table", None)
    if written is not None:
        session.info.setdefault(_CORE_WRITES, set()).add(written.name)
    connection = _transaction_connection(session)
    if connection.dialect.name != "postgresql":
        result = session.execute(statement, values)
        row = result.first() if result.returns_rows else None
        return None if row is None else tuple(row)
    return run_on_driver(connection, driver_statement(statement, connection.dialect), values)


@cache
def _class_manager(model: type[Base]) -> Any:
    """The ORM's instrumentation of ``model`` (its mapper's class manager),
    looked up once per class."""
    return inspect(model).class_manager


def loaded_detached(model: type[_Model], values: Mapping[str, Any]) -> _Model:
    """A detached ``model`` object holding ``values`` (by attribute name)
    as if a query had loaded them, for a row read or written by a Core
    statement (``session.add`` makes it the session's). Made as the ORM's
    own loading makes an object (the class manager's ``new_instance``: no
    constructor, whose instrumentation fires the init event and sets up
    what a new object needs, about 40 % of the work here), its values put
    in its state dict (``InstanceState.dict``, where that loading puts a
    row's), then made detached with them as committed
    (``make_transient_to_detached``): setting them through the constructor
    records each as a change with its events, four times the cost for 35
    columns."""
    obj = _class_manager(model).new_instance()
    instance_state(obj).dict.update(values)
    make_transient_to_detached(obj)
    return obj


def values_reader(model: type, names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """Reads the attributes ``names`` of an object in one call, as a tuple.
    A ``model`` object gives the values it has loaded straight from its
    state dict (``InstanceState.dict``, where the ORM keeps them and where
    an instrumented attribute's read finds them), one C call instead of a
    Python descriptor call per attribute; one missing there (expired,
    deferred, never set) makes it read them all through the attributes,
    which load it. Any other object (a row by its columns' names) is read
    through its attributes. Two names at least: a getter of one name gives
    the value itself, not a tuple."""
    if len(names) < 2:
        raise ValueError("values_reader reads two attributes or more")
    from_dict, from_attributes = itemgetter(*names), attrgetter(*names)

    def read(obj: Any) -> tuple[Any, ...]:
        if type(obj) is model:
            try:
                return from_dict(obj.__dict__)  # type: ignore[no-any-return]
            except KeyError:
                pass
        return from_attributes(obj)  # type: ignore[no-any-return]

    return read


def import_all_models() -> MetaData:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def make_engine(url: str, *, sqlite_immediate: bool = False, **kwargs: Any) -> Engine:
    """An engine tuned for the backend.

    SQLite: WAL so readers never wait for the writer, a busy timeout so
    writers queue instead of failing. With ``sqlite_immediate`` every
    transaction opens with BEGIN IMMEDIATE: a deferred transaction that reads
    and then writes fails with "database is locked" when another writer got
    there first, so write paths take the lock up front. That is SQLite's
    equivalent of PostgreSQL's row locks (SELECT ... FOR UPDATE).
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        # Pooled: opening a SQLite connection and setting its PRAGMAs costs
        # about half a millisecond, a large share of a small request.
        engine = create_engine(url, **kwargs)
        _dispose_in_forked_children(engine)
        begin_sql = "BEGIN IMMEDIATE" if sqlite_immediate else "BEGIN"

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine

    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    _dispose_in_forked_children(engine)
    _replace_dropped_connections(engine)
    return engine


def _replace_dropped_connections(engine: Engine) -> None:
    """A pooled connection that the server dropped while it sat in the pool
    (a restart, a terminated backend, an idle timeout) is replaced when it
    is taken, so the request that takes it never sees the drop.

    SQLAlchemy's ``pool_pre_ping`` asks the server on every checkout, a
    round trip per transaction. A server that drops a connection says so
    on its socket (its goodbye message, then the close), so an idle
    connection whose socket has nothing to read is alive as far as anyone
    can tell without a round trip: only one with something to read is
    pinged (a notice can arrive too), and one that fails the ping, or is
    closed, is replaced through the pool's documented checkout hook
    (``DisconnectionError``), with every connection older than it.

    A drop that the socket cannot show yet (the network, not the server,
    went away) fails the first statement instead: SQLAlchemy's own
    disconnect handling then invalidates the pool, the request answers 503
    as any unreachable database does (wallet.outage), and the next one
    connects afresh. ``pool_pre_ping`` could not have done better: its ping
    would have failed the same way."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if getattr(dbapi_conn, "closed", False):
            raise sa_exc.InvalidatePoolError("the connection was closed")
        fileno = getattr(dbapi_conn, "fileno", None)
        if fileno is not None:
            try:
                idle = select.poll()
                idle.register(fileno(), select.POLLIN)
                if not idle.poll(0):
                    return  # nothing said since it was last used
            except (OSError, ValueError, dialect.loaded_dbapi.Error):
                raise sa_exc.InvalidatePoolError("the connection's socket is gone") from None
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            raise sa_exc.InvalidatePoolError(f"the server dropped the connection: {exc}") from None


def _dispose_in_forked_children(engine: Engine) -> None:
    """A forked child (a gunicorn or Celery worker) must not share its
    parent's pooled connections: two processes on one socket or one SQLite
    handle corrupt each other's conversations. The child drops them without
    closing them, as SQLAlchemy documents for multiprocessing."""
    ref = weakref.ref(engine)

    def _after_fork() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork)


class Database:
    """Engines plus session factories for one process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = (
            make_engine(url, sqlite_immediate=True, **engine_kwargs) if self.is_sqlite else self.engine
        )
        self.write_engine = write_engine
        # PostgreSQL reads run in autocommit: each statement has its own
        # snapshot either way (READ COMMITTED), and a read then costs no
        # BEGIN and ROLLBACK round trips. SQLite keeps its deferred
        # transactions (a snapshot of the WAL).
        read_engine = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = sessionmaker(read_engine, expire_on_commit=False)
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    def session(self) -> Session:
        """A session for reads only: on PostgreSQL each statement commits by
        itself, on SQLite its transactions begin DEFERRED."""
        return self._read()

    def write_session(self) -> Session:
        """A session for writes: BEGIN IMMEDIATE on SQLite; on PostgreSQL an
        ordinary session whose writers lock the rows they change."""
        return self._write()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session in one transaction: committed on success, rolled
        back on any exception, closed either way."""
        session = self.write_session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
