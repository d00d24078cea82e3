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

import psycopg
from psycopg import generators, pq
from psycopg.adapt import PyFormat, Transformer
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
    its SQL with PostgreSQL's own placeholders ($1, as libpq takes them,
    with nothing to rewrite on each execution), the order of its parameters with the bind processor of
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


class _OnLibpq:
    """What a psycopg connection keeps for the statements run on it by
    ``run_on_driver``: psycopg's Transformer, which dumps their parameters
    and loads their rows, the names of the statements prepared on it (by
    statement and parameter types), and a cursor for the cursor events'
    listeners, made when one listens.

    The statements go to libpq itself rather than through a psycopg
    cursor: the cursor's execution (its query conversion, its prepared
    statements' bookkeeping, its results, in Python generators) was 9 % of
    the web worker's Python in a till's purchase (sampled under the bench),
    and it sends a transaction's BEGIN on a round trip of its own (in
    psycopg's pipeline mode too, which syncs after BEGIN). Here BEGIN
    leaves in one libpq pipeline with the transaction's first statement
    (and a statement's PREPARE with its first execution): a round trip
    less per transaction; a statement in a begun transaction, once
    prepared, is one PQexecPrepared."""

    __slots__ = ("raw", "transformer", "prepared", "cursor", "formats")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.transformer = Transformer(raw)
        self.prepared: dict[tuple[DriverStatement, Any], bytes] = {}
        self.cursor: Any = None
        self.formats: dict[int, list[Any]] = {}


def _on_libpq(connection: Connection) -> _OnLibpq:
    """The ``_OnLibpq`` of ``connection``'s driver connection, kept with the
    pool's record of it (so it is gone with the connection)."""
    pooled = connection.connection
    # The DBAPI connection is psycopg's own (no async adaptation); a
    # detached connection has no record to give its driver_connection.
    raw, info = pooled.dbapi_connection, pooled.info
    if raw is None:
        raise psycopg.OperationalError("the connection is closed")
    kept = info.get("wallet.on_libpq")
    if kept is None or kept.raw is not raw:
        kept = info["wallet.on_libpq"] = _OnLibpq(raw)
    return cast(_OnLibpq, kept)


def run_on_driver(connection: Connection, statement: DriverStatement,
                  values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run ``statement`` on ``connection``'s psycopg connection, in its
    transaction (begun with it if not yet begun, as psycopg begins one),
    with ``values`` by the statement's parameter names; its first row as
    SQLAlchemy would give it (None: no row). A driver error is raised as
    SQLAlchemy would raise it (an IntegrityError, an OperationalError that
    wallet.outage answers 503), the connection invalidated if it broke.
    The engine's cursor events are fired around it when something listens
    (statement counts, tracing), as SQLAlchemy's execution fires them."""
    rows = rows_on_driver(connection, statement, values, every=False)
    return rows[0] if rows else None


def rows_on_driver(connection: Connection, statement: DriverStatement, values: Mapping[str, Any], *,
                   every: bool = True) -> list[tuple[Any, ...]]:
    """``run_on_driver``'s work: every row (or only the first, unless
    ``every``)."""

    parameters = statement.parameters(values)
    # Asked of the engine's own listeners, which live as long as it does:
    # asking the connection's (its listeners joined with the engine's,
    # made afresh for each new Connection) built that join per event name
    # on every transaction's first statement. Listeners are put on the
    # engine (or its class); when one is there, the connection fires it.
    listening = connection.engine.dispatch
    kept = None
    try:
        kept = _on_libpq(connection)
        if listening.before_cursor_execute or listening.after_cursor_execute:
            if kept.cursor is None:
                kept.cursor = psycopg.RawCursor(kept.raw)
            events = connection.dispatch
            events.before_cursor_execute(connection, kept.cursor, statement.sql, parameters, None, False)
            result = _executed(kept, statement, parameters)
            events.after_cursor_execute(connection, kept.cursor, statement.sql, parameters, None, False)
        else:
            result = _executed(kept, statement, parameters)
        if not statement.returns_rows or not result.ntuples:
            return []
        transformer = kept.transformer
        transformer.set_pgresult(result)
        try:
            found = transformer.load_rows(0, result.ntuples if every else 1, tuple)
        finally:
            transformer.set_pgresult(None)
    except psycopg.Error as exc:
        dialect = connection.dialect
        raw = connection.connection.dbapi_connection if kept is None else kept.raw
        broken = dialect.is_disconnect(exc, raw, None)
        if broken:
            connection.invalidate(exc)
        raise sa_exc.DBAPIError.instance(statement.sql, parameters, exc, psycopg.Error,
                                         connection_invalidated=broken, dialect=dialect) from exc
    return [statement.row(row) for row in found]


def _executed(kept: _OnLibpq, statement: DriverStatement, parameters: tuple[Any, ...]) -> Any:
    """libpq's result of ``statement`` with ``parameters`` (dumped as text,
    as a psycopg cursor's text parameters), prepared on the connection
    once (up to ``PREPARED_PER_CONNECTION`` statements and parameter
    types); psycopg's error raised from an error result. In a connection
    that is not in autocommit and not in a transaction, BEGIN goes first,
    in the same pipeline."""
    raw = kept.raw
    pgconn = raw.pgconn
    if pgconn.status != _CONNECTION_OK:
        raise psycopg.OperationalError("the connection is closed" if raw.closed else "the connection is lost")
    transformer = kept.transformer
    formats = kept.formats.get(len(parameters))
    if formats is None:
        formats = kept.formats[len(parameters)] = [_TEXT] * len(parameters)
    dumped = transformer.dump_sequence(parameters, formats)
    types, pqformats = transformer.types, transformer.formats
    name = kept.prepared.get((statement, types))
    begin = None if raw.autocommit or pgconn.transaction_status != _IDLE else _begin(raw)
    with raw.lock:
        if name is not None and begin is None:
            # One C call (PQexecPrepared, the GIL released while it waits).
            return _succeeded(pgconn.exec_prepared(name, dumped, pqformats), raw)
        # Prepared while the connection holds fewer than the bound; past
        # it a statement is parsed and planned for its execution alone.
        prepare = name is None and len(kept.prepared) < PREPARED_PER_CONNECTION
        if name is None and not prepare and begin is None:
            return _succeeded(pgconn.exec_params(statement.sql.encode(), dumped, types, pqformats), raw)
        new = f"wallet_{len(kept.prepared)}".encode() if prepare else None
        pgconn.enter_pipeline_mode()
        try:
            sent = 0
            if begin is not None:
                pgconn.send_query_params(begin, None)
                sent += 1
            if new is not None:
                pgconn.send_prepare(new, statement.sql.encode(), types)
                sent += 1
            if name is None and new is None:
                pgconn.send_query_params(statement.sql.encode(), dumped, types, pqformats)
            else:
                pgconn.send_query_prepared(new or name, dumped, pqformats)
            pgconn.pipeline_sync()
            answers = raw.wait(_pipeline_answers(pgconn, sent + 2))
            pgconn.exit_pipeline_mode()
        except BaseException:
            # Mid-pipeline the connection's state is unknown: it is not used again.
            raw.close()
            raise
    # BEGIN's, PREPARE's, the statement's, the pipeline's sync.
    *ahead, (result,), _sync = (answer[:1] for answer in answers)
    for (answer,) in ahead:
        _succeeded(answer, raw)
    if new is not None:
        kept.prepared[statement, types] = new
    return _succeeded(result, raw)


def _pipeline_answers(pgconn: Any, count: int) -> Any:
    """psycopg's generator (for ``Connection.wait``) that flushes a
    pipeline and reads the results of its first ``count`` commands (its
    sync counts as one)."""
    yield from generators.send(pgconn)
    answers = []
    for _ in range(count):
        answers.append((yield from generators.fetch_many(pgconn)))
    return answers


def _begin(raw: Any) -> bytes:
    """The BEGIN psycopg sends for ``raw``'s transaction characteristics
    (a connection back from an autocommit read has its isolation level
    named: SQLAlchemy resets it to the server's default)."""
    characteristics = (raw.isolation_level, raw.read_only, raw.deferrable)
    found = _BEGINS.get(characteristics)
    if found is None:
        found = _BEGINS[characteristics] = _begin_statement(raw)
    return found


_BEGINS: dict[tuple[Any, Any, Any], bytes] = {}

# The statements a connection keeps prepared, at most: each holds its plan
# in the server's memory. About thirty statements run on the driver, most
# in a few variants (psycopg sizes a parameter's integer type by its value:
# smallint, integer, bigint); psycopg's own bound was a hundred.
PREPARED_PER_CONNECTION = 256


def _begin_statement(raw: Any) -> bytes:
    parts = ["BEGIN"]
    if raw.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + psycopg.IsolationLevel(raw.isolation_level).name.replace("_", " "))
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        parts.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(parts).encode()


def _succeeded(result: Any, raw: Any) -> Any:
    """libpq's ``result``, or its error raised as psycopg raises it (by its
    SQLSTATE; a connection lost has none: an OperationalError, which
    wallet.outage answers 503)."""
    status = result.status
    if status == _TUPLES_OK or status == _COMMAND_OK:
        return result
    encoding = raw.info.encoding
    if not result.error_field(pq.DiagnosticField.SQLSTATE):
        raise psycopg.OperationalError(result.get_error_message(encoding))
    raise psycopg.errors.error_from_result(result, encoding=encoding)


_TUPLES_OK, _COMMAND_OK = pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK
_CONNECTION_OK, _IDLE, _TEXT = pq.ConnStatus.OK, pq.TransactionStatus.IDLE, PyFormat.TEXT


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
    return rows_on_driver(connection, driver_statement(statement, connection.dialect), values)


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
    # psycopg prepares a query it has run five times, and on every rollback
    # deallocates all the connection's prepared statements (DEALLOCATE ALL)
    # if it has prepared any: the driver statements' too, which
    # rows_on_driver prepares once per connection and would then find gone
    # mid-transaction. The statements that run often are driver statements.
    kwargs["connect_args"] = {"prepare_threshold": None, **kwargs.get("connect_args", {})}
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
