"""A health check for load balancers and people: names what is down."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from wallet.config import get_settings
from wallet.db import UNAVAILABLE
from wallet.extensions import get_db
from wallet.outage import RETRY_AFTER_SECONDS

bp = Blueprint("web", __name__)


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    """200 when the database (and the broker, in scale mode) answer; else
    503 naming what is down, for a load balancer or a person to read."""
    checks = {"database": _database_answers()}
    broker = get_settings().broker_url
    if broker:
        checks["broker"] = _broker_answers(broker)
    down = sorted(name for name, ok in checks.items() if not ok)
    body = {"status": "down" if down else "ok", "down": down,
            **{name: "ok" if ok else "unreachable" for name, ok in checks.items()}}
    if down:
        return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return jsonify(body)


def _database_answers() -> bool:
    try:
        with get_db().session() as session:
            session.execute(text("SELECT 1"))
        return True
    except UNAVAILABLE:
        return False


def _broker_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
