"""A database (or broker) that cannot be reached: 503 with Retry-After on
every route, JSON on the API, a plain page elsewhere, /healthz naming what
is down, and CLI commands that say so in one line and exit non-zero."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from tests.support.api import Api, make_brand
from tests.support.app import empty_tables, make_test_config
from wallet import create_app
from wallet.config import PROJECT_ROOT
from wallet.db import Database
from wallet.schema import DatabaseUnavailable


FLASK = str(Path(sys.executable).with_name("flask"))
# Nothing listens on port 1 of this machine: connections are refused at once.
UNREACHABLE_PG = "postgresql+psycopg://wallet:s3cret-pw@127.0.0.1:1/wallet"


def unreachable_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'gone.sqlite3'}"
    return UNREACHABLE_PG


@pytest.fixture
def outage(app: Flask, backend: str, tmp_path: Path) -> Iterator[Database]:
    """The app's database becomes unreachable after start (the server went
    away): the app keeps its real Database layer, pointed where nothing
    answers. Yields the working database, for setting up before."""
    working = app.extensions["wallet.db"]
    gone = Database(unreachable_url(backend, tmp_path))
    app.extensions["wallet.db"] = gone
    yield working
    gone.dispose()
    app.extensions["wallet.db"] = working


def test_the_api_answers_503_json_with_retry_after(app: Flask, outage: Database) -> None:
    key = make_brand(outage).key
    response = app.test_client().get("/api/v1/clubs", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["code"] == "database_unavailable"


def test_a_write_through_the_api_answers_503_too(app: Flask, outage: Database) -> None:
    api = Api(app.test_client(), make_brand(outage).key)
    response = api.post("/clubs", {"name": "Coffee"})
    assert response.status_code == 503 and "Retry-After" in response.headers


def test_other_routes_answer_a_plain_page(app: Flask, outage: Database) -> None:
    response = app.test_client().get("/apple/v1/devices/abc/registrations/pass.test.walletclubs")
    assert response.status_code == 503
    assert response.mimetype == "text/plain" and "unavailable" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_pass_fetch_answers_503_too(app: Flask, outage: Database) -> None:
    """The pass's read goes to the driver directly on PostgreSQL (wallet.apple.serving):
    its errors still are the outage's, not a 500."""
    response = app.test_client().get("/apple/v1/passes/pass.test.walletclubs/abc",
                                     headers={"Authorization": "ApplePass 0123456789abcdef"})
    assert response.status_code == 503 and "Retry-After" in response.headers


def test_the_logged_path_is_escaped(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    # Routes check their arguments before they reach the database, so the
    # outage is raised where a view would meet it, for a path of any shape.
    with caplog.at_level(logging.WARNING, logger="wallet.outage"), \
            app.test_request_context("/clubs/a%0A%1B%5B2Jforged%0D/x"):
        down = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        response = app.make_response(app.handle_user_exception(down))
    assert response.status_code == 503
    [record] = [r for r in caplog.records if r.name == "wallet.outage"]
    assert record.getMessage().isprintable()
    assert "/clubs/a\\n\\x1b[2Jforged\\r/x" in record.getMessage()


def test_healthz_names_the_database_when_it_is_down(app: Flask, outage: Database) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert response.get_json() == {"status": "down", "down": ["database"], "database": "unreachable"}


def test_healthz_names_the_broker_when_it_is_down(database_url: str, tmp_path: Path, dev_certs_dir: Path) -> None:
    app = create_app(make_test_config(database_url, tmp_path / "instance", dev_certs_dir,
                                      BROKER_URL="redis://127.0.0.1:1/0"))
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json() == {"status": "down", "down": ["broker"], "database": "ok",
                                       "broker": "unreachable"}
        # The rate limits counted in that Redis fall back to memory: the API still answers.
        api = Api(app.test_client(), make_brand(app.extensions["wallet.db"]).key)
        assert api.get("/clubs").status_code == 200
    finally:
        app.extensions["wallet.db"].dispose()
        empty_tables(database_url)


def test_a_web_process_does_not_start_without_its_database(tmp_path: Path, dev_certs_dir: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1/wallet") as caught:
        create_app(make_test_config(UNREACHABLE_PG, tmp_path / "instance", dev_certs_dir))
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize("args", [
    ["db", "upgrade"],
    ["create-brand", "--name", "B", "--email", "b@example.test", "--password", "long enough pw"],
    ["expire-points"],
])
def test_cli_commands_say_in_one_line_which_database_they_cannot_reach(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(DATABASE_URL=UNREACHABLE_PG, INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run([FLASK, "--app", "wsgi", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach the database postgresql+psycopg://wallet:***@127.0.0.1:1/wallet" in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
