"""Who is calling, for rate limits: the socket's address unless a reverse
proxy we were told to trust says otherwise (PROXY_X_FOR, werkzeug's
ProxyFix); and with BROKER_URL the counts live in Redis, shared by every
process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.api import make_brand
from tests.support.app import REDIS_URL, TEST_PASS_TYPE, empty_tables, make_test_config
from wallet import create_app
from wallet.config import PROJECT_ROOT


PROXY = "10.0.0.2"  # the reverse proxy, as the socket sees it
WRONG = {"Authorization": "ApplePass wrong-token-0000000"}
PATH = f"/apple/v1/passes/{TEST_PASS_TYPE}/no-such-serial"


def failures_until_limited(app: Flask, forwarded_for: list[str]) -> list[int]:
    client = app.test_client()
    # The proxy connects to us and adds the address its client came from.
    return [client.get(PATH, headers={**WRONG, "X-Forwarded-For": address},
                       environ_base={"REMOTE_ADDR": PROXY}).status_code
            for address in forwarded_for]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["APPLE_AUTH_FAILURE_LIMIT"] = "3 per minute"
    return app_config


def test_a_forwarded_address_is_ignored_unless_the_proxy_is_trusted(app: Flask) -> None:
    # Each request claims another address: without trust, all are the proxy's.
    statuses = failures_until_limited(app, [f"203.0.113.{i}" for i in range(5)])
    assert statuses == [401, 401, 401, 429, 429]


class TestBehindOneTrustedProxy:
    @pytest.fixture
    def app_config(self, app_config: dict[str, Any]) -> dict[str, Any]:
        app_config["PROXY_X_FOR"] = 1
        return app_config

    def test_each_client_behind_the_proxy_has_its_own_budget(self, app: Flask) -> None:
        assert failures_until_limited(app, ["203.0.113.7"] * 4) == [401, 401, 401, 429]
        assert failures_until_limited(app, ["198.51.100.9"]) == [401]

    def test_only_the_hop_the_proxy_added_is_believed(self, app: Flask) -> None:
        # A client's own X-Forwarded-For arrives before the proxy's entry:
        # with one trusted hop only the last entry (the real client) counts.
        client = app.test_client()
        statuses = [client.get(PATH, headers={**WRONG, "X-Forwarded-For": f"1.2.3.{i}, 203.0.113.7"},
                               environ_base={"REMOTE_ADDR": PROXY}).status_code for i in range(4)]
        assert statuses == [401, 401, 401, 429]


_OTHER_PROCESS = """
import json, sys
from wallet import create_app
app = create_app()
client = app.test_client()
print(json.dumps([client.get("/api/v1/clubs", headers={"Authorization": "Bearer " + sys.argv[1]}).status_code
                  for _ in range(3)]))
"""


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_with_a_broker_every_process_counts_in_the_same_redis(
    database_url: str, tmp_path: Path, dev_certs_dir: Path
) -> None:
    # An hour's window: a window opens at its first hit, and starting the other
    # process on a loaded machine may take longer than a minute.
    config = make_test_config(database_url, tmp_path / "instance", dev_certs_dir, BROKER_URL=REDIS_URL,
                              API_RATE_LIMIT="4 per hour")
    app = create_app(config)
    try:
        assert app.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
        key = make_brand(app.extensions["wallet.db"]).key  # a new key: a bucket of its own
        client = app.test_client()
        here = [client.get("/api/v1/clubs", headers={"Authorization": f"Bearer {key}"}).status_code
                for _ in range(3)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update({name: str(value) for name, value in config.items()
                    if value is not None and name not in {"TESTING", "RATELIMIT_ENABLED"}})
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        other = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, key], cwd=PROJECT_ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        assert here == [200, 200, 200]
        assert json.loads(other.stdout.strip().splitlines()[-1]) == [200, 429, 429]
    finally:
        app.extensions["wallet.db"].dispose()
        empty_tables(database_url)
