"""A worker killed with -9 in the middle of a 10,000-device club message loses
nothing: after another worker starts, every device has had its push, and the
only repeats are pushes the dead worker had in flight (at most one leased
batch per worker thread).

With TEST_REDIS_URL the workers (`flask --app wsgi worker`) are Celery
workers on Redis, and the club message itself publishes the wake-up. Without
it they are the plain polling workers of the same command.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support.apns_standin import ApnsStandIn
from tests.support.app import REDIS_URL, TEST_PASS_TYPE, TEST_TEAM
from tests.support.push import club_with_registered_devices
from wallet.config import PROJECT_ROOT, get_settings
from wallet.db import Database
from wallet.loyalty.messages import send_club_message
from wallet.loyalty.models import Club, OutboxEvent

DEVICES = 10_000
BATCH = 100
CONCURRENCY = 2
LEASE_SECONDS = 4

pytestmark = pytest.mark.timeout(900)


def _redis_url() -> str | None:
    if not REDIS_URL:
        return None
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL.rstrip("/")
    return base + "/3"


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"wallet-test-{os.getpid()}-{secrets.token_hex(3)}"
    yield name
    if _redis_url():
        import redis

        client = redis.Redis.from_url(_redis_url())  # type: ignore[arg-type]
        client.delete(name)
        client.close()


@pytest.fixture
def app_config(app_config: dict[str, Any], standin: ApnsStandIn, queue: str) -> dict[str, Any]:
    app_config.update(APNS_URL=standin.url, APNS_CA_FILE=str(standin.ca_file))
    if _redis_url():
        app_config.update(BROKER_URL=_redis_url(), CELERY_QUEUE=queue)
    return app_config


def _worker_env(app: Flask, database_url: str, standin: ApnsStandIn, queue: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "BROKER_URL"))}
    env.update(
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(tmp_path / "worker-instance"),
        CERTS_DIR=str(tmp_path / "no-certs"),
        DEV_CERTS_DIR=str(get_settings(app).dev_certs_dir),
        PASS_TYPE_IDENTIFIER=TEST_PASS_TYPE,
        TEAM_IDENTIFIER=TEST_TEAM,
        SECRET_KEY="test-secret",
        APNS_URL=standin.url,
        APNS_CA_FILE=str(standin.ca_file),
        OUTBOX_BATCH_SIZE=str(BATCH),
        OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        OUTBOX_POLL_SECONDS="1",
        CELERY_QUEUE=queue,
        EMBEDDED_WORKER="0",
    )
    if _redis_url():
        env["BROKER_URL"] = _redis_url()  # type: ignore[assignment]
    return env


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _done_rows(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_not(None))) or 0


def test_killed_worker_loses_no_push_and_repeats_only_its_batches(
    app: Flask, db: Database, database_url: str, standin: ApnsStandIn, queue: str, tmp_path: Path
) -> None:
    _brand, club_id, tokens = club_with_registered_devices(db, DEVICES, pass_type=TEST_PASS_TYPE)
    with db.transaction() as session:
        club = session.get(Club, club_id)
        assert club is not None
        assert send_club_message(session, club, text="Double points this weekend") == DEVICES

    env = _worker_env(app, database_url, standin, queue, tmp_path)
    flask_bin = str(Path(sys.executable).with_name("flask"))
    first = _start([flask_bin, "--app", "wsgi", "worker", "--concurrency", str(CONCURRENCY)], env,
                   tmp_path / "worker1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        reached = standin.wait_for(lambda s: len(s.accepted_tokens()) >= DEVICES // 4, timeout=300)
        assert reached, (tmp_path / "worker1.log").read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(standin.accepted_tokens())
        assert at_kill < DEVICES, "the worker finished before it could be killed"

        second = _start([flask_bin, "--app", "wsgi", "worker", "--concurrency", str(CONCURRENCY)], env,
                        tmp_path / "worker2.log")

        everyone = standin.wait_for(lambda s: len(s.accepted_tokens()) >= DEVICES, timeout=600)
        assert everyone, (tmp_path / "worker2.log").read_text()[-3000:]
        assert standin.wait_for(lambda _s: _done_rows(db) >= DEVICES, timeout=120)
    finally:
        first.kill() if first.poll() is None else None
        if second is not None:
            _stop(second)

    accepted = standin.accepted_tokens()
    assert set(accepted) == set(tokens)
    repeats = sum(count - 1 for count in accepted.values())
    # What the dead worker had leased: one batch per thread at most.
    assert repeats <= BATCH * CONCURRENCY
    with db.transaction() as session:
        pending = session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None)))
    assert pending == 0
