"""Who is calling, and is the request well-formed enough to read.

Runs before every API view: the API key's rate limit (429); the Bearer API
key names the brand (401 otherwise); a body must be JSON (415), small (413) and parse (400); nothing
in it or in the query may hold characters the databases cannot store (NUL,
lone surrogates), which would otherwise surface as a database error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from flask import g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from wallet.api.errors import ApiError
from wallet.config import get_settings
from wallet.db import utcnow
from wallet.extensions import get_db, limiter, request_session
from wallet.loyalty.brands import (AuthenticatedKey, authenticate_api_key, hash_api_key, key_use_is_stale,
                                  record_key_use)
from wallet.loyalty.errors import NotAuthenticated
from wallet.lru import LRU
from wallet.ratelimit import Breach, parse_limits, spend

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The scope of the API's counters in the rate-limit storage (the blueprint's
# name, as Flask-Limiter scoped the limit when it kept it).
RATE_LIMIT_SCOPE = "api_v1"
MAX_DEPTH = 32


def current_brand_id() -> int:
    return g.api_brand_id


def bearer_token(header: str) -> str | None:
    """The API key of an Authorization header, None when it names none."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _bearer_token() -> str:
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        raise ApiError(401, "not_authenticated", "send the API key as 'Authorization: Bearer <key>'",
                       {"WWW-Authenticate": "Bearer"})
    return token


def rate_limit_key(header: str) -> str:
    """One bucket per API key (its hash, never the key), counted before the
    key is looked up: a wrong key spends its own bucket."""
    return "api:" + hashlib.sha256(header.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# The environ's record of a request already counted against API_RATE_LIMIT
# (by wallet.api.direct, before it left the request to Flask), as a
# 1-tuple of what ``spend_rate_limit`` gave: a request is counted once.
RATE_COUNTED = "wallet.api.rate_counted"


def spend_rate_limit(authorization: str) -> Breach | None:
    """One request of the key in ``authorization`` (the header as sent)
    counted against API_RATE_LIMIT, in the rate-limit storage directly
    (Redis with BROKER_URL, shared by every process); the limit it went
    over, if any. Flask-Limiter's generic per-request check, which resolved
    the blueprint's limits anew on every request, cost a purchase more than
    its Idempotency-Key claim."""
    if not limiter.enabled:
        return None
    return spend(limiter.limiter, parse_limits(get_settings().api_rate_limit), rate_limit_key(authorization),
                 RATE_LIMIT_SCOPE)


def check_rate_limit() -> None:
    """429 with Retry-After once a window's count is spent."""
    counted = request.environ.get(RATE_COUNTED)
    breach = counted[0] if counted else spend_rate_limit(request.headers.get("Authorization", ""))
    if breach is not None:
        raise ApiError(429, "rate_limited",
                       f"rate limit exceeded ({breach.limit}); retry after {breach.retry_after} s",
                       {"Retry-After": str(breach.retry_after)})


# API keys that proved live, by digest, for writes whose claim re-checks
# the key in its own statement (wallet.api.idempotency.rechecks_api_key): such
# a write skips the lookup, a statement of every purchase. A key revoked
# since is refused by that claim with 401 and forgotten here, before the
# view runs; every other request looks its key up.
_proven: LRU[AuthenticatedKey] = LRU(10_000)


def authenticate(*, rechecked: bool = False) -> None:
    """The brand of the request's API key, or 401. ``rechecked``: the
    request's Idempotency-Key claim checks the key again in the same
    transaction, so a key proven live before is not looked up."""
    token = _bearer_token()
    session = request_session()
    digest = hash_api_key(token)
    key = _proven.get(digest) if rechecked else None
    if key is None:
        try:
            key = authenticate_api_key(session, token)
        except NotAuthenticated as exc:
            raise ApiError(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"}) from None
        _proven.put(digest, key)
        g.api_key_unchecked = None
    else:
        g.api_key_unchecked = key.id
    use_key(digest, key)
    now = utcnow()
    if key_use_is_stale(key, now):
        # Our transaction ends first: on SQLite a second writer would wait on it.
        session.rollback()
        _record_use(key.id, now)
        if _proven.pop(digest) is not None:
            _proven.put(digest, key._replace(last_used_at=now))


def use_key(digest: str, key: AuthenticatedKey) -> None:
    """The request is the brand's, by ``key`` (whose token has ``digest``)."""
    g.api_key_digest = digest
    g.api_brand_id = key.brand_id
    g.api_key_prefix = key.prefix  # names the key in ledger actors


def proven_key(token: str) -> tuple[str, AuthenticatedKey] | None:
    """The digest of ``token`` and its key, when the key proved live before
    and its last use needs no write: a write whose claim re-checks the key
    may take it so (``authenticate(rechecked=True)`` would). None when it
    must be looked up."""
    digest = hash_api_key(token)
    key = _proven.get(digest)
    if key is None or key_use_is_stale(key, utcnow()):
        return None
    return digest, key


def forget_proven_key() -> None:
    """The request's key turned out revoked: look it up again next time."""
    _proven.pop(g.get("api_key_digest", ""))


def unchecked_key_id() -> int | None:
    """The id of the request's API key when it was taken as proven, not looked up."""
    return g.get("api_key_unchecked")


def _record_use(key_id: int, now: datetime) -> None:
    """At most one short write per key a minute, apart from the request's
    own transaction: a request that reads only stays a read, and one whose
    work is rolled back still counts as a use."""
    try:
        with get_db().transaction() as session:
            record_key_use(session, key_id, now)
    except SQLAlchemyError:
        # A busy database must not fail the request over a bookkeeping field.
        log.warning("could not record the use of API key %s", key_id, exc_info=True)


def _storable(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k, depth + 1) and _storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v, depth + 1) for v in value)
    return True


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads given any option makes a decoder, and its scanner, on every
# call: about two fifths of reading a till's purchase.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def check_request() -> None:
    """Shape checks that come before any schema: 400/413/415."""
    # Most requests (every till's POST) have no query: nothing to parse.
    if request.environ.get("QUERY_STRING"):
        for values in request.args.listvalues():
            if not all(_storable(v) for v in values):
                raise ApiError(400, "invalid_query", "query parameters must not contain NUL characters")
    if request.method not in BODY_METHODS:
        return
    # A Content-Length over the limit is refused before reading. A chunked
    # body has none, and werkzeug cuts its stream at max_content_length
    # without a word; reading one byte more tells a body over the limit
    # from one that just fits.
    limit = get_settings().api_max_body
    request.max_content_length = limit + 1
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    if not raw and not request.mimetype:
        return  # no body at all: the schema says what is missing
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    g.api_json = json_body(raw)


def json_body(raw: bytes) -> Any:
    """A JSON body as the API reads it: 400 if it is not JSON, 422 if it
    holds what the databases cannot store."""
    try:
        # As json.loads reads bytes: UTF-8, -16 or -32, by their first bytes.
        body = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not _storable(body):
        raise ApiError(422, "invalid_characters",
                       "strings must be valid Unicode without NUL characters, nested at most 32 deep")
    return body
