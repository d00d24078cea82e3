"""Shared fixtures.

Every test that takes ``app`` runs on SQLite, and on PostgreSQL too when
TEST_DATABASE_URL is set. Each pytest run gets a schema of its own on
PostgreSQL, so parallel runs never see each other's rows. Tables are emptied
after every test; the schema itself is migrated once per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.android_push import AndroidPushStandIn
from tests.support.apns_standin import ApnsStandIn
from tests.support.app import PG_URL, TEST_PASS_TYPE, TEST_TEAM, empty_tables, make_test_config, pg_schema
from wallet import create_app
from wallet.apple.certs import write_dev_chain
from wallet.db import Database
from wallet.schema import upgrade_schema

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def dev_certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development chain for the whole run: key generation is slow."""
    path = tmp_path_factory.mktemp("dev-certs")
    write_dev_chain(path, pass_type_identifier=TEST_PASS_TYPE, team_identifier=TEST_TEAM)
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        upgrade_schema(url)
        yield url
        return
    with pg_schema() as url:
        upgrade_schema(url)
        yield url


@pytest.fixture
def app_config(database_url: str, tmp_path: Path, dev_certs_dir: Path) -> dict[str, Any]:
    """The test app's configuration; a test may change it before using ``app``."""
    return make_test_config(database_url, tmp_path / "instance", dev_certs_dir)


@pytest.fixture
def hosts() -> Any:
    """What webhook host names resolve to in this test (no network DNS)."""
    from tests.support.webhooks import Hosts

    return Hosts()


@pytest.fixture
def app(app_config: dict[str, Any], database_url: str, hosts: Any) -> Iterator[Flask]:
    application = create_app(app_config)
    targets = application.extensions["wallet.webhook_targets"]
    application.extensions["wallet.webhook_targets"] = dataclasses.replace(targets, resolve=hosts)
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
    with ApnsStandIn(client_ca_file=dev_certs_dir / "dev-ca-bundle.pem", workdir=tmp_path / "standin",
                     expected_topic=TEST_PASS_TYPE) as server:
        yield server


GOOGLE_ISSUER = "3388000000022222222"


@pytest.fixture(scope="session")
def service_account(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Google service account key for the run: RSA keys are slow to make."""
    from tests.support.google_standin import make_service_account

    return make_service_account(tmp_path_factory.mktemp("google") / "service-account.json")


@pytest.fixture
def google(app_config: dict[str, Any], service_account: Any) -> Iterator[Any]:
    """A Google Wallet stand-in (REST API and token endpoint) the app under
    test is configured to use; ask for it before ``app``."""
    from tests.support.google_standin import GoogleStandIn

    with GoogleStandIn(issuer_id=GOOGLE_ISSUER, client_email=service_account.client_email,
                       public_key=service_account.private_key.public_key(),
                       key_id=service_account.key_id) as server:
        app_config.update(GOOGLE_ISSUER_ID=GOOGLE_ISSUER, GOOGLE_SERVICE_ACCOUNT_FILE=str(service_account.path),
                          GOOGLE_WALLET_API_URL=server.api_url, GOOGLE_TOKEN_URL=server.token_url)
        yield server


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def walletpasses(app_config: dict[str, Any]) -> Iterator[AndroidPushStandIn]:
    """WalletPasses' push API on loopback, and the app pointed at it."""
    with AndroidPushStandIn(api_key="wp-key") as server:
        app_config.update(WALLETPASSES_PUSH_URL=server.url, WALLETPASSES_API_KEY="wp-key",
                          APNS_BACKOFF_BASE=0.01)
        yield server
