"""Shared fixtures.

Every test that takes ``app`` runs on SQLite, and on PostgreSQL too when
TEST_DATABASE_URL is set. Each pytest run gets a schema of its own on
PostgreSQL, so parallel runs never see each other's rows. Tables are emptied
after every test; the schema itself is migrated once per run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from wallet import create_app
from wallet.db import Database, import_all_models
from wallet.schema import upgrade_schema

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def dev_certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development chain for the whole run: key generation is slow."""
    from wallet.apple.certs import write_dev_chain

    path = tmp_path_factory.mktemp("dev-certs")
    write_dev_chain(path, pass_type_identifier=TEST_PASS_TYPE, team_identifier=TEST_TEAM)
    return path


TEST_PASS_TYPE = "pass.test.walletclubs"
TEST_TEAM = "TESTTEAM01"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        upgrade_schema(url)
        yield url
        return
    assert PG_URL
    schema = f"t_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(PG_URL, schema)
    try:
        upgrade_schema(url)
        yield url
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
        "AUTO_MIGRATE": False,
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


@pytest.fixture
def app_config(database_url: str, tmp_path: Path, dev_certs_dir: Path) -> dict[str, Any]:
    """The test app's configuration; a test may change it before using ``app``."""
    return make_test_config(database_url, tmp_path / "instance", dev_certs_dir)


@pytest.fixture
def app(app_config: dict[str, Any], database_url: str) -> Iterator[Flask]:
    application = create_app(app_config)
    try:
        yield application
    finally:
        application.extensions["wallet.db"].dispose()
        empty_tables(database_url)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["wallet.db"]


@pytest.fixture
def standin(dev_certs_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """A local APNs stand-in (HTTP/2 over TLS) that trusts the development
    chain's client certificates and expects the test pass type as topic."""
    from apns_standin import ApnsStandIn

    with ApnsStandIn(client_ca_file=dev_certs_dir / "dev-ca-bundle.pem", workdir=tmp_path / "standin",
                     expected_topic=TEST_PASS_TYPE) as server:
        yield server


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"
