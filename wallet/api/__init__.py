"""The point-of-sale JSON API under /api/v1.

flask-smorest builds the OpenAPI document (/api/v1/openapi.json) from the
same marshmallow schemas that validate requests. Its app-wide JSON error
handler is not installed: only /api answers in JSON, through our handlers,
so HTML pages keep their own error pages.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from wallet.http_rules import mark_for_machines

API_PREFIX = "/api/"


class _Api(Api):
    def _register_error_handlers(self) -> None:
        """Errors are answered by the API blueprint and ``_routing_errors``."""


def _routing_errors() -> Any:
    """Unknown paths and wrong methods under /api answer JSON like every other
    API error. Routing fails before any blueprint is chosen, so a blueprint
    error handler never sees these; a before_request hook does, whatever
    error pages other parts of the app register."""
    exc = request.routing_exception
    if exc is None or not (request.path + "/").startswith(API_PREFIX):
        return None
    if isinstance(exc, HTTPException) and (exc.code or 0) >= 400:
        from wallet.api.errors import response_for

        return response_for(exc)
    return None


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
    from wallet.api.docs import OperationsPlugin, error_schemas, nullable_ref
    from wallet.api.schemas import TRANSACTION_REQUESTS, ErrorSchema
    from wallet.api.views import bp
    import wallet.api.campaigns  # noqa: F401  (its routes register on bp)
    import wallet.api.numbers  # noqa: F401  (its routes register on bp)

    app.config.setdefault("API_TITLE", "Wallet Clubs point-of-sale API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
        "info": {"description": (
            "Bearer API key per brand; JSON in and out; money in integer minor units of the club's "
            "currency, points as integers. Errors: {\"error\": {\"code\", \"message\"}}. Every POST "
            "takes an Idempotency-Key (required for transactions): the same key and body replays the "
            "first answer, another body or a request still in flight is 409. Lists: {\"items\", "
            "\"next_cursor\"} with ?limit (<= 500) and ?cursor. Webhook deliveries are POSTed with "
            "Wallet-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>."
        )},
    })
    api = _Api(spec_kwargs={"extra_plugins": [OperationsPlugin()]})
    api.ERROR_SCHEMA = ErrorSchema
    # Each operation documents its own error statuses (wallet.api.docs).
    api.DEFAULT_ERROR_RESPONSE_NAME = None
    api.init_app(app)
    api.ma_plugin.converter.add_attribute_function(nullable_ref)
    for name, schema in error_schemas().items():
        api.spec.components.schema(name, schema=schema)
    for kind, schema in TRANSACTION_REQUESTS.items():
        api.spec.components.schema(f"{kind.capitalize()}Request", schema=schema)
    api.register_blueprint(bp)
    # The API answers machines only (Bearer keys; no cookies, sign-ins nor
    # CSRF; its rate limit kept by its own hook, wallet.api.auth): its
    # requests skip the app-wide hooks as wallet.http_rules.for_machines'
    # blueprints do.
    mark_for_machines(app, bp.name)
    app.extensions["wallet.api"] = api
    app.before_request(_routing_errors)
    from wallet.api import direct

    direct.init_app(app)
