"""A till's transaction (POST /api/v1/members/<id>/transactions) answered
before Flask makes a request of it (wallet.http_rules.answer_directly).

Every till's purchase comes this way, and Flask's request and application
machinery (the request object, URL matching, hooks, flask-smorest's
wrappers, the response's finishing) cost it about as much as the bare
Flask app's whole request. Here the environ is read directly and the
request goes through the same steps as the route's, in the same order,
with the same functions: the rate limit (wallet.api.auth), the API key, the
body, then the view's work (wallet.api.views.book_transaction) and the
Idempotency-Key with its answer (wallet.api.idempotency.claim) in one unit
of work. On PostgreSQL a purchase's card change writes the key's row in
its own statement (wallet.api.idempotency.AnswerRider; ledger.booking's
book_and_finish and finish_booking): a round trip less. The answer is the
route's Response, sent as werkzeug sends it.

Only the plain case is taken: a key proven live before (its claim checks it
again, as ``authenticate(rechecked=True)`` relies on), a JSON body with its
length, a fresh Idempotency-Key, a booking that succeeds. Anything else
(a missing or malformed header, a key to look up or whose use is due to be
recorded, a body to refuse, a replay or a 409, a revoked key, a rule
broken, the database failing) leaves the request to Flask from the start
after the unit of work has rolled back what it did, so every error is the
route's own, stored for a retry as the route stores it; the Idempotency-Key
makes running the route after a rolled-back attempt safe. The request is
counted against the rate limit once: the count is left in the environ for
the route. The body read here is put back for it.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Flask

from wallet.api.auth import RATE_COUNTED, bearer_token, json_body, proven_key, spend_rate_limit, use_key
from wallet.api.errors import ApiError
from wallet.api.idempotency import AnswerRider, KeyNotWritten, claim, request_fingerprint, valid_key
from wallet.api.views import book_transaction, transaction_json
from wallet.config import get_settings
from wallet.db import MAX_ID
from wallet.extensions import unit_of_work
from wallet.http_rules import Answer, answer_directly

PREFIX = "/api/v1/members/"
SUFFIX = "/transactions"


def _member_id(path: str) -> int | None:
    """The id as the route's converter reads it (ASCII digits within 64
    bits); None for what the direct path leaves to Flask (leading zeros
    too, which the route takes)."""
    if not path.endswith(SUFFIX):
        return None
    digits = path[len(PREFIX):-len(SUFFIX)]
    if not digits or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return None
    member_id = int(digits)
    return member_id if member_id <= MAX_ID else None


def transaction_directly(app: Flask, environ: dict[str, Any]) -> Answer | None:
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING"):
        return None
    path = environ.get("PATH_INFO", "")
    member_id = _member_id(path)
    length = environ.get("CONTENT_LENGTH", "")
    key = environ.get("HTTP_IDEMPOTENCY_KEY")
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    token = bearer_token(authorization)
    if (member_id is None or token is None or key is None or not valid_key(key)
            or environ.get("CONTENT_TYPE") != "application/json" or not length.isascii() or not length.isdigit()):
        return None
    size = int(length)
    with app.app_context():
        proven = proven_key(token)
        if proven is None or size > get_settings().api_max_body:
            return None
        breach = spend_rate_limit(authorization)
        environ[RATE_COUNTED] = (breach,)
        if breach is not None:
            return None
        raw = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(raw)
        if len(raw) != size:
            return None
        try:
            body = json_body(raw)
        except ApiError:
            return None
        digest, api_key = proven
        use_key(digest, api_key)
        fingerprint = request_fingerprint("POST", path, body)
        # What raises here (rolled back by the unit of work) leaves the
        # request to the route, which answers it, whatever it was.
        with unit_of_work() as session:
            rider = AnswerRider(transaction_json, api_key.brand_id, key, fingerprint, api_key_id=api_key.id,
                                method="POST", path=path)
            response = book_transaction(member_id, body, rider)
            if not rider.written:
                claim(session, api_key.brand_id, key, fingerprint, answer=response, api_key_id=api_key.id,
                      method="POST", path=path)
            elif rider.row_id is None:
                raise KeyNotWritten(key)
        body_parts, _status, headers = response.get_wsgi_response(environ)
        return Answer(response.status_code, headers, body_parts)


def init_app(app: Flask) -> None:
    answer_directly(app, PREFIX, transaction_directly)
