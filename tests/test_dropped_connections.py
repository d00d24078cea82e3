"""Pooled PostgreSQL connections that the server drops (a restart, a
terminated backend): the next request takes a fresh one and succeeds. A
till's purchase whose connection is lost in the middle is tried once more
(its direct path rolls back and leaves it to the route, wallet.api.direct)
and books once; lost again, it answers 503 like any outage, books nothing,
and the request after it succeeds. A healthy pooled connection is taken
without a round trip (wallet.db: no ping per transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from tests.support.api import Api, make_brand
from tests.support.app import PG_URL
from wallet.db import Database


@pytest.fixture
def pg_db(db: Database, backend: str) -> Database:
    if backend != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    return db


def _terminate(pids: set[int]) -> None:
    """Ends these backends and waits until each is gone (its socket closed)."""
    admin = create_engine(str(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture
def backends(pg_db: Database) -> Iterator[set[int]]:
    """The server processes behind the app's pooled connections so far."""
    seen: set[int] = set()

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        seen.add(dbapi_conn.info.backend_pid)

    event.listen(pg_db.engine, "checkout", on_checkout)
    yield seen
    event.remove(pg_db.engine, "checkout", on_checkout)


def _member_with_a_purchase(app: Flask, db: Database) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """The brand's API, a member of its club, and the answer of the member's first purchase."""
    api = Api(app.test_client(), make_brand(db).key)
    member = api.member(api.club()["id"])
    return api, member, api.purchase(member["id"], 10_000)


def test_connections_the_server_dropped_while_pooled_are_replaced_unnoticed(
        app: Flask, pg_db: Database, backends: set[int]) -> None:
    api, member, first = _member_with_a_purchase(app, pg_db)
    dropped = set(backends)
    assert dropped
    _terminate(dropped)
    backends.clear()
    answer = api.purchase(member["id"], 20_000)  # 201, asserted by the helper
    assert answer["member"]["balance"] == first["member"]["balance"] + answer["transaction"]["points"] > 0
    assert api.get(f"/members/{member['id']}").status_code == 200
    assert backends and not backends & dropped


def _purchase_losing_connections(api: Api, db: Database, member_id: int, amount: int, times: int) -> Any:
    """A purchase during which the connection writing the ledger is lost,
    up to ``times`` times; returns the answer and the backends lost."""
    lost: list[int] = []

    def drop(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if len(lost) < times and "ledger_transactions" in statement:
            lost.append(conn.connection.dbapi_connection.info.backend_pid)
            _terminate({lost[-1]})

    event.listen(db.engine, "before_cursor_execute", drop)
    try:
        response = api.post(f"/members/{member_id}/transactions", {"type": "purchase", "amount": amount})
    finally:
        event.remove(db.engine, "before_cursor_execute", drop)
    return response, lost


def test_a_purchase_whose_connection_is_lost_once_is_tried_again_and_booked_once(app: Flask, pg_db: Database) -> None:
    api, member, first = _member_with_a_purchase(app, pg_db)
    response, lost = _purchase_losing_connections(api, pg_db, member["id"], 20_000, times=1)
    assert len(lost) == 1
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["member"]["balance"] == first["member"]["balance"] + answer["transaction"]["points"] > 0
    assert len(api.get(f"/members/{member['id']}/transactions").get_json()["items"]) == 2


def test_a_connection_lost_on_every_try_answers_503_and_the_next_request_succeeds(
        app: Flask, pg_db: Database) -> None:
    api, member, first = _member_with_a_purchase(app, pg_db)
    response, lost = _purchase_losing_connections(api, pg_db, member["id"], 20_000, times=10)
    assert len(lost) == 2  # the direct path's try and the route's
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    # Nothing of the lost request was booked; the next one is.
    answer = api.purchase(member["id"], 30_000)
    assert answer["member"]["balance"] == first["member"]["balance"] + answer["transaction"]["points"] > 0
    assert len(api.get(f"/members/{member['id']}/transactions").get_json()["items"]) == 2


def test_a_healthy_pooled_connection_is_taken_without_a_round_trip(pg_db: Database, tmp_path: Path) -> None:
    with pg_db.transaction() as session:
        session.execute(text("SELECT 1"))
        pooled = session.connection().connection.dbapi_connection
    # libpq's own trace of the protocol: what the client sends ("F" lines).
    with (tmp_path / "trace").open("w+") as trace:
        pooled.pgconn.trace(trace.fileno())
        try:
            with pg_db.transaction() as session:
                assert session.connection().connection.dbapi_connection is pooled
                session.execute(text("SELECT 2"))
        finally:
            pooled.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t")[3:] for line in trace.read().splitlines() if line.split("\t")[1:2] == ["F"]]
    assert sent == [["Query", ' "BEGIN"'], ["Query", ' "SELECT 2"'], ["Query", ' "COMMIT"']]
