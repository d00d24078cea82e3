"""The front door: what this service is and where its API lives, and a
health check that proves the database answers."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from wallet.extensions import get_read_session

bp = Blueprint("web", __name__)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    base = current_app.config["PUBLIC_BASE_URL"]
    return jsonify(
        service="Wallet Clubs",
        api=f"{base}/api/v1",
        openapi=f"{base}/api/v1/openapi.json",
        apple_web_service=f"{base}/apple",
    )


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    get_read_session().execute(text("SELECT 1"))
    return jsonify(status="ok")
