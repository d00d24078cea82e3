"""What the OpenAPI document says beyond the schemas: each operation's id,
every error status it can answer with that status's codes as an enum, and
the headers (Retry-After, Idempotent-Replayed) a client must read.

A till integrator generates a client from the document, so each answer must
parse into a typed model: the error statuses are the ones our handlers can
give for the operation's method and path (see ``wallet.api.errors``,
``auth.check_request``, ``idempotency`` and ``wallet.outage``), and every
code the API can answer is in one of the enums below (a test checks the
sources against them).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from marshmallow import fields

from wallet.api.auth import BODY_METHODS
from wallet.api.idempotency import HEADER, REPLAY_HEADER

# The codes each error status carries in the API.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("malformed_json", "invalid_query", "invalid_cursor", "idempotency_key_required",
          "invalid_idempotency_key", "bad_request"),
    401: ("not_authenticated", "invalid_api_key"),
    404: ("not_found", "club_not_found", "member_not_found", "purchase_not_found", "webhook_not_found",
          "api_key_not_found", "campaign_not_found"),
    409: ("idempotency_key_reused", "request_in_flight", "duplicate_receipt", "already_revoked", "conflict",
          "campaign_started"),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: (
        # the body against its schema
        "validation_error", "unknown_field", "invalid_characters",
        # the core's rule sets
        "invalid_club", "invalid_program", "invalid_member", "invalid_name", "invalid_email", "invalid_phone",
        "invalid_country", "invalid_birthday", "invalid_locale", "invalid_referral_code",
        "email_or_phone_required",
        # the core's rules
        "unknown_referral_code", "card_number_conflict", "currency_locked", "barcode_format_locked",
        "invalid_amount", "membership_ended", "insufficient_balance", "refund_exceeds_purchase", "invalid_reason",
        "invalid_receipt_id", "no_stamps", "invalid_actor", "invalid_card_number", "invalid_text", "unknown_tier",
        "invalid_events",
        "too_many_webhooks", "invalid_url", "private_address", "unresolvable_host", "rule_violation",
        "invalid_segment", "invalid_send_at",
    ),
    429: ("rate_limited",),
    503: ("database_unavailable",),
}
DESCRIPTIONS = {
    400: "malformed JSON, a bad query parameter or Idempotency-Key",
    401: "no API key, or a wrong or revoked one",
    404: "no such id, or another brand's",
    409: "the Idempotency-Key was used for another request, or its first request is still in flight; "
         "or the operation conflicts with what is there",
    413: "the body is over the size limit",
    415: "the body is not application/json",
    422: "a well-formed request that breaks a rule; the message names each field",
    429: "rate limited: retry after Retry-After seconds",
    503: "the database cannot be reached: retry after Retry-After seconds",
}
RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
REPLAYED = {"description": "true when this is the stored answer to an earlier request with the same "
                           f"{HEADER}: nothing was done again",
            "schema": {"type": "string", "enum": ["true"]}}


def error_schemas() -> dict[str, type[ma.Schema]]:
    """One component per status: ``Error<status>`` with its codes as an enum."""
    out: dict[str, type[ma.Schema]] = {}
    for status, codes in ERROR_CODES.items():
        detail = ma.Schema.from_dict({
            "code": fields.String(required=True, validate=ma.validate.OneOf(codes),
                                  metadata={"description": "snake_case error code"}),
            "message": fields.String(required=True, metadata={"description": "what to fix, for a person"}),
        }, name=f"ErrorDetail{status}")
        out[f"Error{status}"] = ma.Schema.from_dict(
            {"error": fields.Nested(detail, required=True)}, name=f"Error{status}")
    return out


def statuses(method: str, path: str) -> list[int]:
    """The error statuses an API operation can answer."""
    method = method.upper()
    found = {400, 401, 429, 503}
    if "{" in path:
        found.add(404)
    if method in BODY_METHODS:
        found |= {413, 415, 422}
    if method in ("POST", "PATCH", "PUT", "DELETE"):
        found.add(409)  # every write is an idempotent write endpoint
    return sorted(found)


def nullable_ref(converter: Any, field: ma.fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
    """A nullable nested object as ``nullable`` beside ``allOf: [$ref]``
    (OpenAPI 3.0), not apispec's anyOf with a bare object, which client
    generators read as an untyped dict."""
    any_of = ret.get("anyOf")
    if field.allow_none and isinstance(any_of, list):
        refs = [item for item in any_of if "$ref" in item]
        if len(refs) == 1 and len(any_of) == 2:
            del ret["anyOf"]
            return {"allOf": refs, "nullable": True}
    return {}


class OperationsPlugin(BasePlugin):
    """Completes each operation of the API blueprint: operationId (the view's
    name), its error answers and headers."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations or not (path or "").startswith("/api/"):
            return
        for method, operation in operations.items():
            operation["operationId"] = f"{rule.endpoint.rsplit('.', 1)[-1]}"
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            for status in list(responses):
                if int(status) < 300 and method.upper() in ("POST", "PATCH", "DELETE"):
                    answer = responses[status]
                    if isinstance(answer, dict):
                        answer.setdefault("headers", {})[REPLAY_HEADER] = REPLAYED
                elif int(status) >= 400:
                    del responses[status]
            for status in statuses(method, path or ""):
                answer = {"description": DESCRIPTIONS[status], "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/Error{status}"}}}}
                if status in (429, 503):
                    answer["headers"] = {"Retry-After": RETRY_AFTER}
                responses[str(status)] = answer
