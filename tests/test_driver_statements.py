"""wallet.db.execute_core: a Core statement compiled once and run on the
driver (PostgreSQL: libpq, prepared once per connection) gives what
session.execute gives, on every backend: values through the columns'
types both ways, a constraint's error as SQLAlchemy's, and the statement
seen by the engine's events. On PostgreSQL a transaction's BEGIN leaves
with its first statement, on one round trip."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pathlib import Path
from typing import Any

import pytest
from psycopg import pq
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import IntegrityError

from wallet.db import Database, driver_statement, execute_core, rows_on_driver, table_of
from wallet.loyalty.models import ChangeCounter, OutboxEvent

_OUTBOX = table_of(OutboxEvent)
_COUNTERS = table_of(ChangeCounter)
_QUEUE = (insert(_OUTBOX).values(kind="card.changed", attempts=0, membership_id=None,
                                 payload=bindparam("payload", type_=_OUTBOX.c.payload.type),
                                 available_at=bindparam("at", type_=_OUTBOX.c.available_at.type),
                                 created_at=bindparam("at", type_=_OUTBOX.c.created_at.type))
          .returning(_OUTBOX.c.id, _OUTBOX.c.payload, _OUTBOX.c.available_at))
_NEW_COUNTER = insert(_COUNTERS).values(name=bindparam("name"), value=0)


def test_values_go_through_the_columns_types_both_ways(db: Database) -> None:
    at = datetime(2026, 12, 3, 9, 30, tzinfo=timezone(timedelta(hours=3)))
    seen: list[str] = []
    event.listen(db.write_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with db.transaction() as session:
        row = execute_core(session, _QUEUE, {"payload": {"occasions": ["tier"]}, "at": at})
    assert row is not None
    row_id, payload, available_at = row
    assert payload == {"occasions": ["tier"]}
    assert available_at == at and available_at.tzinfo == timezone.utc
    assert any(sql.startswith("INSERT INTO outbox") for sql in seen)
    with db.session() as session:
        assert session.execute(select(_OUTBOX.c.payload).where(_OUTBOX.c.id == row_id)).scalar_one() == payload


def test_a_constraint_fails_as_sqlalchemys_error_and_a_savepoint_recovers(db: Database) -> None:
    with db.transaction() as session:
        assert execute_core(session, _NEW_COUNTER, {"name": "once"}) is None
        with pytest.raises(IntegrityError):
            with session.begin_nested():
                execute_core(session, _NEW_COUNTER, {"name": "once"})
        execute_core(session, _NEW_COUNTER, {"name": "twice"})
    with db.session() as session:
        names = set(session.scalars(select(_COUNTERS.c.name)))
    assert {"once", "twice"} <= names


def test_a_list_bound_at_execution_is_refused(db: Database) -> None:
    with pytest.raises(ValueError):
        driver_statement(select(_COUNTERS.c.value).where(_COUNTERS.c.name.in_(("a", "b"))),
                         db.engine.dialect.__class__())


def test_a_card_change_written_on_the_driver_still_wakes_the_outbox_workers(db: Database) -> None:
    from tests.support.apple import make_club, make_member
    from wallet.jobs.nudge import register_waker
    from wallet.loyalty import ledger

    woken: list[int] = []
    register_waker(db.write_engine, lambda: woken.append(1))
    member_id = make_member(db, make_club(db))
    woken.clear()
    with pytest.raises(RuntimeError), db.transaction() as session:
        ledger.purchase(session, ledger.get_member_for_update(session, member_id), amount=10_000, actor="till")
        raise RuntimeError("the till gave up: rolled back")
    with db.transaction() as session:
        session.execute(select(_COUNTERS.c.value))
    assert woken == []  # nothing was committed to the outbox
    with db.transaction() as session:
        ledger.purchase(session, ledger.get_member_for_update(session, member_id), amount=10_000, actor="till")
    assert woken == [1]


def _round_trips(raw: Any, trace: Path, work: Any) -> list[list[str]]:
    """What ``work`` sent on ``raw``'s socket (libpq's protocol trace),
    one list of message names per flight sent before an answer came."""
    with trace.open("w") as out:
        raw.pgconn.trace(out.fileno())
        raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            work()
        finally:
            raw.pgconn.untrace()
    flights: list[list[str]] = []
    answered = True
    for line in trace.read_text().splitlines():
        side, _length, message = line.split("\t")[:3]
        if side == "F":
            if answered:
                flights.append([])
            flights[-1].append(message + (" " + line.split("\t")[3].split()[0] if message == "Parse" else ""))
        answered = side == "B"
    return flights


def test_a_transaction_begins_on_the_round_trip_of_its_first_statement(
        db: Database, backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no round trips")
    with db.transaction() as session:
        raw = session.connection().connection.dbapi_connection

        def work() -> None:
            execute_core(session, _NEW_COUNTER, {"name": "first"})
            execute_core(session, _NEW_COUNTER, {"name": "second"})

        flights = _round_trips(raw, tmp_path / "trace", work)
    # BEGIN, the statement's PREPARE and its execution in one flight; then
    # the prepared statement alone, in the same transaction.
    assert len(flights) == 2
    assert flights[0][:2] == ['Parse ""', "Bind"] and flights[0].count("Execute") == 2 and flights[0][-1] == "Sync"
    assert flights[1] == ["Bind", "Describe", "Execute", "Sync"]
    with db.session() as session:
        assert {"first", "second"} <= set(session.scalars(select(_COUNTERS.c.name)))


def test_a_first_statement_that_fails_leaves_its_transaction_to_roll_back(db: Database, backend: str) -> None:
    with db.transaction() as session:
        execute_core(session, _NEW_COUNTER, {"name": "taken"})
    # A pooled connection back from an autocommit read names its isolation
    # level in BEGIN: the same statement then opens the transaction.
    with db.session() as session:
        session.execute(select(_COUNTERS.c.name)).all()
    with pytest.raises(IntegrityError), db.transaction() as session:
        execute_core(session, _NEW_COUNTER, {"name": "taken"})
    with db.transaction() as session:
        execute_core(session, _NEW_COUNTER, {"name": "after"})
        if backend == "postgresql":
            assert session.execute(text("SELECT current_setting('transaction_isolation')")).scalar_one() == \
                "read committed"
        execute_core(session, _NEW_COUNTER, {"name": "rolled back"})
        session.rollback()
    with db.session() as session:
        names = set(session.scalars(select(_COUNTERS.c.name)))
    assert "after" not in names and "rolled back" not in names and "taken" in names


def test_a_rollback_leaves_the_driver_statements_prepared(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite prepares nothing on a server")
    with db.write_engine.connect() as connection:
        statement = driver_statement(_NEW_COUNTER, connection.dialect)
        with connection.begin():
            rows_on_driver(connection, statement, {"name": "prepared"})
        # A query run often, then a rollback: psycopg, had it prepared that
        # query, would have deallocated every prepared statement here.
        with connection.begin() as transaction:
            for _ in range(6):
                connection.execute(text("SELECT 1")).all()
            transaction.rollback()
        with connection.begin():
            rows_on_driver(connection, statement, {"name": "still prepared"})
    with db.session() as session:
        assert {"prepared", "still prepared"} <= set(session.scalars(select(_COUNTERS.c.name)))


def test_past_its_bound_a_connection_runs_statements_unprepared(
        db: Database, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite prepares nothing on a server")
    import wallet.db

    held = text("SELECT count(*) FROM pg_prepared_statements")
    with db.write_engine.connect() as connection:
        with connection.begin():
            rows_on_driver(connection, driver_statement(_NEW_COUNTER, connection.dialect), {"name": "first"})
            prepared = connection.execute(held).scalar_one()
        monkeypatch.setattr(wallet.db, "PREPARED_PER_CONNECTION", prepared)
        unprepared = driver_statement(select(_COUNTERS.c.name).where(_COUNTERS.c.name == bindparam("name")),
                                      connection.dialect)
        for _ in range(2):
            with connection.begin():  # first in its transaction (with BEGIN), then after another
                assert rows_on_driver(connection, unprepared, {"name": "first"}) == [("first",)]
                assert rows_on_driver(connection, unprepared, {"name": "none"}) == []
        assert connection.execute(held).scalar_one() == prepared
