"""Every API error as ``{"error": {"code", "message"}}`` with the right status.

Three sources of errors meet here: the loyalty core's exceptions (by class),
HTTP exceptions from Flask, Werkzeug, webargs and Flask-Limiter (by status),
and ``ApiError`` raised by this package. Nothing a client sends may become a
5xx, so each is mapped to a 4xx that says what to fix.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Response, json
from werkzeug.exceptions import HTTPException

from wallet.config import get_settings
from wallet.loyalty.errors import Conflict, LoyaltyError, NotAuthenticated, NotFound, RateLimited, RuleViolation
from wallet.loyalty.fields import UNKNOWN_FIELD, invalid_fields

_LOYALTY_STATUS: tuple[tuple[type[LoyaltyError], int], ...] = (
    (NotFound, 404),
    (RuleViolation, 422),
    (Conflict, 409),
    (NotAuthenticated, 401),
    (RateLimited, 429),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
}


class ApiError(Exception):
    """An error answer decided by the API layer itself."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    response = Response(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def invalid_body(messages: Any) -> ApiError:
    """A body that breaks its schema: 422, naming each field as the core's
    rule sets do."""
    found = invalid_fields(messages, code="validation_error")
    unknown = any(text in ("Unknown field.", UNKNOWN_FIELD) for texts in found.errors.values() for text in texts)
    return ApiError(422, "unknown_field" if unknown else "validation_error", found.message)


def _validation_error(exc: HTTPException) -> Response:
    """webargs' 422 (and 400 for bad JSON): query and header problems are a
    bad request (400), a body that breaks the schema is a rule broken (422)."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or {}
    locations = set(messages) if isinstance(messages, dict) else set()
    if exc.code == 400:
        return error_response(400, "malformed_json", "the body is not valid JSON")
    if locations & {"query", "querystring", "headers", "view_args", "path"}:
        text = invalid_fields({k: messages[k] for k in locations if k != "json"}, code="invalid_query").message
        return error_response(400, "invalid_query", text)
    error = invalid_body(messages.get("json", messages) if isinstance(messages, dict) else messages)
    return error_response(error.status, error.code, error.message)


def _retry_after() -> str:
    """Seconds until the breached limit's window resets, from Flask-Limiter's
    public ``current_limit``."""
    from wallet.extensions import limiter

    current = limiter.current_limit
    if current is None:  # a 429 that no limit of ours raised
        return "60"
    return str(max(1, int(current.reset_at - time.time()) + 1))


def response_for(exc: BaseException) -> Response | None:
    """The error answer for ``exc``, or None when it is not a client error
    (the caller lets it become a logged 500)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, LoyaltyError):
        for cls, status in _LOYALTY_STATUS:
            if isinstance(exc, cls):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                if isinstance(exc, RateLimited):
                    headers = {"Retry-After": str(exc.retry_after)}
                return error_response(status, exc.code, exc.message, headers)
        return error_response(422, exc.code, exc.message)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status >= 500:
            return None
        if getattr(exc, "data", None) and "messages" in exc.data:  # type: ignore[attr-defined]
            return _validation_error(exc)
        code = _HTTP_CODES.get(status, "client_error")
        headers: dict[str, str] = {}
        message = exc.description or code
        if status == 429:
            headers["Retry-After"] = _retry_after()
            message = f"rate limit exceeded ({exc.description}); retry after {headers['Retry-After']} s"
        elif status == 405:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
            message = "this method is not allowed here"
        elif status == 404:
            message = "no such resource"
        elif status == 413:
            message = f"the body is too large (at most {get_settings().api_max_body} bytes)"
        return error_response(status, code, message, headers)
    return None
