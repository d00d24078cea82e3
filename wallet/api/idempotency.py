"""Idempotency-Key: a retried write is answered, not booked again.

``write_endpoint`` wraps every API view that changes something. It runs the
view in the request's unit of work (wallet.extensions): the view only does
its work in ``get_session()``; the work commits on success and rolls back
on any error.

With an Idempotency-Key (required where the view says so), in that one
transaction:
1. The view runs.
2. The key row is inserted with the view's answer, the transaction's last
   statement before the commit, unless the brand has the key (the unique
   (brand, key) constraint decides between duplicates on every backend), so
   "done" and "booked" commit together, and a request that dies (or a
   commit that fails) leaves no key behind: the retry simply runs. Claiming
   the key first and storing the answer after took a statement more per
   write (a seventh of an API purchase's CPU).
   A key the brand has rolls the view's work back, and is replayed (same
   body) or refused with 409 (another body). A duplicate sent while the
   first was still in flight is 409 too: on PostgreSQL the row is dated by
   the database's clock, and a row completed after the duplicate's
   transaction began was in flight when it came (the duplicate of a
   booking waits on the member's lock, then finds the row); the insert
   also tries a transaction-scoped advisory lock on the key without
   waiting, which a claim still being committed holds. On SQLite writers
   run one at a time, so the duplicate finds the answer.
   A request that took its API key as proven without looking it up
   (wallet.api.auth) has the key checked by this same INSERT: a key revoked
   since is 401, and the work is rolled back.
   A till's purchase answered directly (wallet.api.direct) writes the row
   in the booking's own last statement where it can (``AnswerRider``): a
   row not written there rolls the work back and the route claims the key
   afresh, answering as above.
3. A client error (4xx) is stored too, after rolling the work back, in a
   transaction of its own: the same request gets the same answer (or, if
   the key has an answer already, that one).
The portal's booking forms claim a key before their work and store the
answer after (``claim`` and ``store``): a second submit then waits for the
first rather than booking in parallel.
Keys are kept ``RETENTION`` (at least 24 hours) and then may be reused. Rows
left "in flight" by an older version of this code are honoured until their
lease (``locked_until``) runs out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, make_response, request
from sqlalchemy import BigInteger, Text, bindparam, cast, delete, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from wallet.api.answers import JsonAnswer
from wallet.api.auth import current_brand_id, forget_proven_key, unchecked_key_id
from wallet.api.errors import ApiError, error_response, response_for
from wallet.api.models import DONE, IN_FLIGHT, IdempotencyKey
from wallet.db import execute_core, utcnow
from wallet.extensions import get_db, unit_of_work
from wallet.loyalty.errors import LoyaltyError, NotAuthenticated
from wallet.loyalty.models import ApiKey

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=48)
MAX_KEY = 255
REPLAY_HEADER = "Idempotent-Replayed"

F = TypeVar("F", bound=Callable[..., Any])


def _fingerprint() -> str:
    body = g.get("api_json", None)
    return request_fingerprint(request.method, request.path, request.get_data(cache=True) if body is None else body)


# json.dumps given any option makes an encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """Method, path and body: the body canonicalised when it is JSON (bytes
    when it is not), so whitespace or key order does not make a retry look
    different."""
    if isinstance(body, bytes):
        canonical = body
    else:
        canonical = _CANONICAL.encode(body).encode("utf-8")
    digest = hashlib.sha256()
    digest.update(method.encode() + b" " + path.encode("utf-8", "surrogatepass") + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def _read_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not valid_key(key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (a UUID is ideal)")
    return key


def valid_key(key: str) -> bool:
    """1 to MAX_KEY visible ASCII characters: 0x21-0x7E, printable ASCII but
    the space (str methods, not a loop over the characters)."""
    return bool(key) and len(key) <= MAX_KEY and key.isascii() and key.isprintable() and " " not in key


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.response_body or "", status=row.response_status or 200,
                        mimetype="application/json")
    response.headers[REPLAY_HEADER] = "true"
    return response


class Answered(Exception):
    """The key settles the request without running the view: a replay, or a
    409. Raised out of the unit of work, which then writes nothing."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class KeyNotWritten(Exception):
    """The key's row did not ride with the work (AnswerRider): raised out of
    the unit of work, which rolls the work back, so that ``claim`` can
    answer the request afresh (a replay, a 409, a 401)."""


def _advisory_key(brand_id: int, key: str) -> int:
    digest = hashlib.sha256(f"{brand_id}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_KEYS = IdempotencyKey.__table__
_COLUMNS = ("brand_id", "key", "request_hash", "method", "path", "state", "owner", "locked_until", "created_at",
            "response_status", "response_body", "completed_at")
_BINDS = [bindparam(name, type_=_KEYS.c[name].type) for name in _COLUMNS]
# Written out rather than built with the dialects' insert(): SQLAlchemy
# caches no compiled form of a dialect's INSERT ... ON CONFLICT, so that
# statement was compiled anew by every request (about 2 ms of CPU).
_NAMES = ", ".join(f'"{name}"' for name in _COLUMNS)
_VALUES = ", ".join(f":{name}" for name in _COLUMNS)
# A SELECT list's parameters have no column to take a type from: cast each.
_PG_TYPES = {"brand_id": "BIGINT", "locked_until": "TIMESTAMP WITH TIME ZONE",
             "created_at": "TIMESTAMP WITH TIME ZONE", "completed_at": "TIMESTAMP WITH TIME ZONE",
             "response_status": "INTEGER", "response_body": "TEXT"}
# A stored answer is dated by the database's clock, which a duplicate
# compares with the start of its own transaction (claim): web processes'
# clocks may differ.
_PG_VALUES = {"completed_at": "CASE WHEN CAST(:completed_at AS TIMESTAMP WITH TIME ZONE) IS NOT NULL "
                              "THEN clock_timestamp() END"}
_TYPED_VALUES = ", ".join(_PG_VALUES.get(name, f"CAST(:{name} AS {_PG_TYPES.get(name, 'VARCHAR')})")
                          for name in _COLUMNS)
_ON_CONFLICT = 'ON CONFLICT (brand_id, "key") DO NOTHING RETURNING id'
# With an API key id, the row is inserted only while that key of the brand
# is live: the request took the key as proven without looking it up
# (wallet.api.auth), and this is its check, in the transaction that books.
_INSERT_LOCKED = text(
    f"INSERT INTO api_idempotency_keys ({_NAMES}) SELECT {_TYPED_VALUES} "
    f"WHERE pg_try_advisory_xact_lock(CAST(:advisory AS BIGINT)) AND (CAST(:api_key_id AS BIGINT) IS NULL OR "
    f"EXISTS (SELECT 1 FROM api_keys WHERE id = CAST(:api_key_id AS BIGINT) AND brand_id = CAST(:brand_id AS BIGINT) "
    f"AND revoked_at IS NULL)) {_ON_CONFLICT}"
).bindparams(*_BINDS, bindparam("advisory", type_=BigInteger),
             bindparam("api_key_id", type_=BigInteger)).columns(id=BigInteger)
_INSERT = text(f"INSERT INTO api_idempotency_keys ({_NAMES}) VALUES ({_VALUES}) {_ON_CONFLICT}").bindparams(
    *_BINDS).columns(id=BigInteger)


def _typed(name: str) -> Any:
    # Its column's type: psycopg's dialect writes it as the parameter's cast
    # (a SELECT list's parameter has no column to take it from).
    return bindparam(f"k_{name}", type_=_KEYS.c[name].type)


_RIDER_COLUMNS = ("brand_id", "key", "request_hash", "method", "path", "state", "owner", "locked_until", "created_at",
                  "response_status")


def _key_row_with_answer(entry_id: Any) -> Any:
    """PostgreSQL: the key's row with its answer, the answer's text put
    together by the database around ``entry_id`` (the column of a booked
    entry's id, in the booking's own statement: AnswerRider), on the same
    terms as ``_INSERT_LOCKED``: the key's advisory lock taken without
    waiting, the API key live, the brand without the key. Its id, or no
    row."""
    body = bindparam("k_head", type_=Text) + cast(entry_id, Text) + bindparam("k_tail", type_=Text)
    live = exists().where(ApiKey.id == bindparam("k_api_key_id", type_=BigInteger),
                          ApiKey.brand_id == _typed("brand_id"), ApiKey.revoked_at.is_(None))
    row = select(*(_typed(name) for name in _RIDER_COLUMNS), body, func.clock_timestamp()).where(
        func.pg_try_advisory_xact_lock(bindparam("k_advisory", type_=BigInteger)), live)
    return (pg_insert(_KEYS).from_select((*_RIDER_COLUMNS, "response_body", "completed_at"), row)
            .on_conflict_do_nothing(index_elements=[_KEYS.c.brand_id, _KEYS.c.key]).returning(_KEYS.c.id))


# The answer's one unknown when it is made ahead of the booking's statement:
# the entry's id. JSON strings escape their quotes, so no text in the
# answer can hold this; only a key named "id" can.
_NO_ID = '"id":null'


class AnswerRider:
    """The Idempotency-Key's row with the answer, written by the booking's
    own last statement (wallet.loyalty.ledger.booking.Rider) rather than by
    ``claim`` after it: a round trip and a statement less per purchase.
    ``answer(member, entry)`` makes the answer; it is made once the booking
    has moved the member's figures, with the entry's id unknown (null), and
    the database writes the answer's text around the id it gives the
    entry. An answer with another null "id" is not ridden.

    After the booking: ``written`` tells whether the row rode with it; if
    so, ``row_id`` is its id, None when the INSERT wrote nothing (the
    brand has the key, a request with it is in flight, or the API key was
    revoked): the caller rolls the work back, and ``claim`` finds out which;
    ``response`` is the answer, its id filled in (its Response made once,
    from the final text)."""

    def __init__(self, answer: Callable[[Any, Any], JsonAnswer], brand_id: int, key: str, fingerprint: str, *,
                 api_key_id: int, method: str, path: str) -> None:
        self._answer = answer
        self._params: dict[str, Any] = {
            "k_brand_id": brand_id, "k_key": key, "k_request_hash": fingerprint, "k_method": method,
            "k_path": path[:500], "k_state": DONE, "k_owner": "", "k_api_key_id": api_key_id,
            "k_advisory": _advisory_key(brand_id, key),
        }
        self.response: Response | None = None
        self._made: JsonAnswer | None = None
        self._head = self._tail = ""
        self.written = False
        self.row_id: int | None = None

    def riding(self, member: Any, entry: Any) -> tuple[Callable[[Any], Any], dict[str, Any]] | None:
        answer = self._answer(member, entry)
        head, found, tail = answer.text.partition(_NO_ID)
        if not found or _NO_ID in tail:
            return None
        now = utcnow()
        self._made, self._head, self._tail = answer, head + '"id":', tail
        return _key_row_with_answer, {**self._params, "k_response_status": answer.status,
                                      "k_locked_until": now, "k_created_at": now, "k_head": self._head,
                                      "k_tail": tail}

    def ridden(self, entry: Any, returned: Any) -> None:
        self.written, self.row_id = True, returned
        self.response = self._made.response(f"{self._head}{entry.id}{self._tail}")  # type: ignore[union-attr]


_LIVE_KEY_ID = select(ApiKey.id).where(ApiKey.id == bindparam("key_id"), ApiKey.revoked_at.is_(None))
_STORE = (
    update(_KEYS).where(_KEYS.c.id == bindparam("row_id"))
    .values(state=DONE, response_status=bindparam("status"), response_body=bindparam("body"),
            completed_at=bindparam("done_at"))
)


def _insert(session: Session, values: dict[str, Any], advisory: int, api_key_id: int | None) -> int | None:
    """Insert the key row unless the brand has the key; its id, or None.
    PostgreSQL: only while holding the key's advisory lock, taken without
    waiting (None when another transaction holds it); and only while the
    API key ``api_key_id`` is live, if given."""
    if session.get_bind().dialect.name == "postgresql":
        # On the driver, compiled once (wallet.db.execute_core): SQLAlchemy's
        # execution of it cost about twice psycopg's own work.
        row = execute_core(session, _INSERT_LOCKED, {**values, "advisory": advisory, "api_key_id": api_key_id})
        return None if row is None else row[0]
    if api_key_id is not None and session.execute(_LIVE_KEY_ID, {"key_id": api_key_id}).first() is None:
        return None
    return session.execute(_INSERT, values).scalar_one_or_none()


def rechecks_api_key() -> bool:
    """Whether the request's claim checks its API key itself (a POST with an
    Idempotency-Key to a ``write_endpoint``, on PostgreSQL), so that the
    key need not be looked up before."""
    view = current_app.view_functions.get(request.endpoint or "")
    return (request.method == "POST" and HEADER in request.headers and getattr(view, "claims_idempotency_key", False)
            and get_db().write_engine.dialect.name == "postgresql")


def claim(session: Session, brand_id: int, key: str, fingerprint: str, *,
          answer: Response | None = None, api_key_id: int | None = None,
          method: str | None = None, path: str | None = None) -> int | None:
    """Take the key in the session's transaction: returns the new row's id
    (None when ``answer`` was given and stored at once: the answer of the
    work done in this transaction, or of a refusal). Raises Answered with
    the stored answer to replay, or with a 409 (another body; or the key's
    first request still in flight, or completed since this transaction
    began); NotAuthenticated when ``api_key_id`` (an API key taken as
    proven) is no longer live. ``method`` and ``path`` are the request's
    (by default Flask's). The portal's booking forms go through this too
    (wallet.web.portal.members_booking)."""
    now = utcnow()
    values: dict[str, Any] = {
        "brand_id": brand_id, "key": key, "request_hash": fingerprint, "method": method or request.method,
        "path": (path or request.path)[:500], "state": IN_FLIGHT, "owner": "", "locked_until": now, "created_at": now,
        "response_status": None, "response_body": None, "completed_at": None,
    }
    if answer is not None:
        values.update(state=DONE, response_status=answer.status_code,
                      response_body=answer.get_data(as_text=True), completed_at=now)
    advisory = _advisory_key(brand_id, key)
    for _ in range(2):
        row_id = _insert(session, values, advisory, api_key_id)
        if row_id is not None:
            return None if answer is not None else row_id
        if api_key_id is not None and session.execute(_LIVE_KEY_ID, {"key_id": api_key_id}).first() is None:
            raise NotAuthenticated("unknown or revoked API key", code="invalid_api_key")
        row = session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.brand_id == brand_id, IdempotencyKey.key == key)
        )
        if row is None:
            # Not committed yet: its first request is still working.
            break
        if row.created_at < now - RETENTION or (row.state == IN_FLIGHT and row.locked_until <= now):
            # An old key may be used afresh; an older version's abandoned claim is taken over.
            session.delete(row)
            session.flush()
            continue
        if row.request_hash != fingerprint:
            raise Answered(error_response(409, "idempotency_key_reused",
                                          f"{HEADER} {key!r} was used for a different request"))
        if row.state == DONE and not (answer is not None and _completed_since_we_began(session, row)):
            raise Answered(_replay(row))
        break
    raise Answered(error_response(409, "request_in_flight",
                                  f"a request with {HEADER} {key!r} is still in progress; retry shortly",
                                  {"Retry-After": "1"}))


def _completed_since_we_began(session: Session, row: IdempotencyKey) -> bool:
    """Whether the key's answer was stored (by the database's clock) after
    this transaction began: its request was in flight when ours came. Only
    PostgreSQL runs writers side by side."""
    if session.get_bind().dialect.name != "postgresql" or row.completed_at is None:
        return False
    return bool(session.scalar(select(func.transaction_timestamp() <= row.completed_at)))


def store(session: Session, row_id: int, response: Response) -> None:
    session.execute(_STORE, {"row_id": row_id, "status": response.status_code,
                             "body": response.get_data(as_text=True), "done_at": utcnow()})


def _store_refusal(brand_id: int, key: str, fingerprint: str, answer: Response,
                   api_key_id: int | None) -> Response:
    """A client error's answer, stored for the retry in a transaction of its
    own; if the brand has the key already, the key's answer (a replay, or a
    409) is the one; if the request's unchecked API key was revoked, 401."""
    try:
        with get_db().transaction() as session:
            claim(session, brand_id, key, fingerprint, answer=answer, api_key_id=api_key_id)
    except Answered as settled:
        return settled.response
    except NotAuthenticated as exc:
        forget_proven_key()
        return response_for(exc) or answer
    return answer


def _client_error(exc: BaseException) -> Response | None:
    if isinstance(exc, (ApiError, LoyaltyError, HTTPException)):
        return response_for(exc)
    return None


def write_endpoint(idempotency: str = "optional") -> Callable[[F], F]:
    """Wrap a view that writes. ``idempotency``: "required" (a missing key
    is a 400) or "optional"; either way a given key is honoured."""
    if idempotency not in ("required", "optional"):
        raise ValueError(idempotency)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = _read_key() if request.method == "POST" else None
            if key is None and idempotency == "required" and request.method == "POST":
                raise ApiError(400, "idempotency_key_required",
                               f"this request needs an {HEADER} header (a fresh UUID per operation)")
            brand_id = current_brand_id()
            fingerprint = _fingerprint() if key is not None else ""
            try:
                with unit_of_work() as session:
                    response = make_response(view(*args, **kwargs))
                    if key is not None:
                        # The key with its answer, or Answered (a replay or a
                        # 409), which rolls the work back.
                        claim(session, brand_id, key, fingerprint, answer=response, api_key_id=unchecked_key_id())
            except Answered as settled:
                return settled.response
            except Exception as exc:  # noqa: BLE001 - sorted below: client error or crash
                # The unit of work has rolled back what the view wrote: after a
                # crash no key is left, and the retry simply runs.
                answer = _client_error(exc)
                if answer is None:
                    raise
                if isinstance(exc, NotAuthenticated):
                    forget_proven_key()
                if key is not None and answer.status_code not in (401, 429):
                    return _store_refusal(brand_id, key, fingerprint, answer, unchecked_key_id())
                return answer
            return response

        wrapper.claims_idempotency_key = True  # type: ignore[attr-defined]  (rechecks_api_key)
        return wrapper  # type: ignore[return-value]

    return decorator


def purge_expired(session: Any, *, now: datetime | None = None) -> int:
    """Delete keys past their retention; returns how many. The scheduler
    runs it (wallet.jobs.scheduler); safe to run any time."""
    cutoff = (now or utcnow()) - RETENTION
    return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)).rowcount or 0

