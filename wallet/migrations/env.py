"""Alembic environment: the URL (or a connection) comes from the caller,
wallet.schema; the metadata is every model module's."""

from __future__ import annotations

from alembic import context
from sqlalchemy import event

from wallet.db import import_all_models, make_engine

config = context.config
target_metadata = import_all_models()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations; run them with "
                           "`flask --app wsgi db upgrade`")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), sqlite_immediate=True)
    if engine.dialect.name == "sqlite":
        # Batch mode rebuilds a table by copying it and dropping the old
        # one; with foreign keys on, that DROP would cascade into every row
        # that points at it (a membership's ledger, lots, registrations).
        # SQLite's own procedure for such changes: keys off, rebuild, then
        # foreign_key_check before commit (see _run).
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.execute("PRAGMA foreign_keys=OFF")
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
