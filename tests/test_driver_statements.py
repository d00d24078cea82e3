"""wallet.db.execute_core: a Core statement compiled once and run on the
driver's cursor (PostgreSQL) gives what session.execute gives, on every
backend: values through the columns' types both ways, a constraint's
error as SQLAlchemy's, and the statement seen by the engine's events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError

from wallet.db import Database, driver_statement, execute_core, table_of
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
