"""Creating the app does only what serving needs; the schema is brought up to
date by a command (and by every command of the contract, and `flask run`);
development keys are written by `dev-certs` or on first use; a web server
refuses a database whose schema is older than its code, in one line."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup

from tests.support.app import TEST_PASS_TYPE, TEST_TEAM, make_test_config
from wallet import create_app
from wallet.config import PROJECT_ROOT
from wallet.schema import SchemaOutdated, current_revision, head_revision, upgrade_schema


FLASK = str(Path(sys.executable).with_name("flask"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _fresh(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """A configuration on an empty SQLite file and an empty instance folder."""
    return make_test_config(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", tmp_path / "instance",
                            tmp_path / "dev-certs", **extra)


def _cli(config: dict[str, Any]) -> FlaskGroup:
    """The `flask` command line over an app built from ``config``, as
    `flask --app wsgi` builds it."""
    return FlaskGroup(create_app=lambda: create_app(config))


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_") and k not in {"DATABASE_URL", "BROKER_URL", "INSTANCE_PATH"}}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


def test_creating_the_app_changes_nothing_and_refuses_an_empty_database(tmp_path: Path) -> None:
    config = _fresh(tmp_path)
    with pytest.raises(SchemaOutdated, match="is empty .*run `flask --app wsgi db upgrade`"):
        create_app(config)
    assert not (tmp_path / "fresh.sqlite3").exists()
    assert not (tmp_path / "dev-certs").exists()


def test_db_upgrade_brings_an_empty_database_to_the_codes_revision(tmp_path: Path) -> None:
    config = _fresh(tmp_path)
    result = CliRunner().invoke(_cli(config), ["db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert current_revision(config["DATABASE_URL"]) == head_revision()
    assert head_revision() in result.output
    app = create_app(config)  # now the schema is current
    app.extensions["wallet.db"].dispose()
    # The app made no keys: they come with the first pass or `dev-certs`.
    assert not (tmp_path / "dev-certs").exists()


@pytest.mark.parametrize("args", [
    ["create-brand", "--name", "Brew", "--email", "owner@brew.test", "--password", "long enough pw"],
    ["expire-points", "--as-of", "2027-01-31T00:00"],
    ["apple", "device-logs"],
    ["demo"],
])
def test_every_command_works_on_an_empty_database(tmp_path: Path, args: list[str]) -> None:
    config = _fresh(tmp_path)
    result = CliRunner().invoke(_cli(config), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert current_revision(config["DATABASE_URL"]) == head_revision()
    if args[0] in {"create-brand", "demo"}:
        assert "api_key" in json.loads(result.output)


def test_the_first_pass_writes_the_development_chain(tmp_path: Path) -> None:
    config = _fresh(tmp_path)
    upgrade_schema(config["DATABASE_URL"])
    app = create_app(config)
    try:
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        member = json.loads(result.output)["members"][0]
        assert (tmp_path / "dev-certs" / "google-service-account.json").exists()  # signed the save link
        response = app.test_client().get(member["apple_pass_url"].removeprefix("https://wallet.test"))
        assert response.status_code == 200
        assert response.mimetype == "application/vnd.apple.pkpass"
        assert (tmp_path / "dev-certs" / "pass.key").exists()
    finally:
        app.extensions["wallet.db"].dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_the_readmes_first_command_works_on_a_fresh_machine(
    tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    """`flask --app wsgi demo && flask --app wsgi run`, nothing set up before."""
    env = _clean_env(tmp_path)
    demo = subprocess.run([FLASK, "--app", "wsgi", "demo"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    member = json.loads(demo.stdout)["members"][0]
    port = _free_port()
    server = subprocess.Popen([FLASK, "--app", "wsgi", "run", "--port", str(port)], cwd=PROJECT_ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop_later.append(server)
    path = member["apple_pass_url"].removeprefix("http://127.0.0.1:5000")
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            break
        except httpx.TransportError:
            assert server.poll() is None and time.monotonic() < deadline, "flask run did not come up"
            time.sleep(0.3)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.pkpass"
    assert_private(tmp_path / "instance")


def assert_private(instance: Path) -> None:
    """The database, secrets and keys are readable by the service's user only."""
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(instance) == 0o700
    assert mode(instance / "dev-certs") == 0o700
    private = [instance / "wallet.sqlite3", instance / "secret_key",
               instance / "dev-certs" / "google-service-account.json",
               *instance.glob("wallet.sqlite3-*"), *(instance / "dev-certs").glob("*.key")]
    assert len(private) >= 6
    assert {str(p.relative_to(instance)): oct(mode(p)) for p in private} == {
        str(p.relative_to(instance)): oct(0o600) for p in private}


@pytest.mark.slow
def test_gunicorn_refuses_an_outdated_schema_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    env = _clean_env(tmp_path, DATABASE_URL=url, DEV_CERTS_DIR=str(tmp_path / "dev"),
                     PASS_TYPE_IDENTIFIER=TEST_PASS_TYPE, TEAM_IDENTIFIER=TEST_TEAM)
    web = subprocess.run([GUNICORN, "-w", "2", "-b", f"127.0.0.1:{_free_port()}", "wsgi:app"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert web.returncode != 0
    said = [line for line in web.stderr.splitlines() if "cannot start" in line]
    assert len(said) == 1 and "run `flask --app wsgi db upgrade`" in said[0], web.stderr
    assert "Traceback" not in web.stderr
