"""When the database cannot be reached, requests get 503 with Retry-After:
JSON in the API's error format under /api, a plain page elsewhere, one log
line, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from wallet.db import UNAVAILABLE, describe_unavailable
from wallet.logtext import printable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


def init_app(app: Flask) -> None:
    for cls in UNAVAILABLE:
        app.register_error_handler(cls, _database_unavailable)


def _database_unavailable(exc: Exception) -> Response:
    log.warning("database unavailable for %s %s: %s", request.method, printable(request.path),
                describe_unavailable(exc))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    message = f"the database cannot be reached; retry in {RETRY_AFTER_SECONDS} seconds"
    if (request.path + "/").startswith("/api/"):
        from wallet.api.errors import error_response

        return error_response(503, "database_unavailable", message, headers)
    return Response(f"Service temporarily unavailable: {message}.\n", status=503, headers=headers,
                    mimetype="text/plain")
