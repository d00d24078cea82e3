"""A health check that proves the database answers, for load balancers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from wallet.extensions import get_read_session

bp = Blueprint("web", __name__)


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    get_read_session().execute(text("SELECT 1"))
    return jsonify(status="ok")
