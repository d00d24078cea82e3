"""The test app: which databases and Redis a run uses, the configuration of
the app under test, and how its tables are emptied between tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from wallet.db import Database, import_all_models

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")

TEST_PASS_TYPE = "pass.test.walletclubs"
TEST_TEAM = "TESTTEAM01"


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema(prefix: str = "t") -> Iterator[str]:
    """The URL of a PostgreSQL schema of its own (TEST_DATABASE_URL), dropped
    afterwards, so parallel runs never see each other's rows."""
    assert PG_URL
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def empty_tables(url: str) -> None:
    """Delete every row and put back the change counter."""
    metadata = import_all_models()
    db = Database(url)
    try:
        with db.transaction() as session:
            names = [t.name for t in metadata.sorted_tables]
            if db.is_sqlite:
                for table in reversed(metadata.sorted_tables):
                    session.execute(table.delete())
            else:
                session.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names)
                                     + " RESTART IDENTITY CASCADE"))
            session.execute(text("INSERT INTO change_counters (name, value) VALUES ('pass_changes', 0)"))
    finally:
        db.dispose()


def make_test_config(database_url: str, instance: Path, dev_certs_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "CERTS_DIR": str(instance / "no-certs"),
        "DEV_CERTS_DIR": str(dev_certs_dir),
        "PASS_TYPE_IDENTIFIER": TEST_PASS_TYPE,
        "TEAM_IDENTIFIER": TEST_TEAM,
        "PUBLIC_BASE_URL": "https://wallet.test",
        "EMBEDDED_WORKER": False,
        "BROKER_URL": None,
        "RATELIMIT_ENABLED": True,
        **extra,
    }
