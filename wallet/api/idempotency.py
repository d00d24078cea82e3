"""Idempotency-Key: a retried write is answered, not booked again.

``write_endpoint`` wraps every API view that changes something. It runs the
view in the request's unit of work (wallet.extensions): the view only does
its work in ``get_session()``; the work commits on success and rolls back
on any error.

With an Idempotency-Key (required where the view says so):
1. A key row is inserted and committed first, in its own short transaction,
   before any work. The unique (brand, key) constraint decides between
   concurrent duplicates on every backend: the second insert fails, and that
   request answers 409 while the first is in flight, or replays the stored
   answer once it is done, or 409 if its body differs.
2. The view runs; its answer is written to the key row *in the same
   transaction* as what it booked, so "done" and "booked" commit together.
3. A client error (4xx) is stored too, after rolling the work back: the same
   request gets the same answer. An unexpected failure deletes the key row,
   so the client may retry with it.
A request that dies mid-flight leaves the key locked until ``LEASE``; after
that a retry takes the key over (its owner token changes, so the late
original could no longer store an answer for it).
Keys are kept ``RETENTION`` (at least 24 hours) and then may be reused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Response, g, make_response, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from wallet.api.auth import current_brand_id
from wallet.api.errors import ApiError, error_response, response_for
from wallet.api.models import DONE, IN_FLIGHT, IdempotencyKey
from wallet.db import utcnow
from wallet.extensions import get_db, unit_of_work
from wallet.loyalty.errors import LoyaltyError

HEADER = "Idempotency-Key"
LEASE = timedelta(seconds=60)
RETENTION = timedelta(hours=48)
MAX_KEY = 255
REPLAY_HEADER = "Idempotent-Replayed"

F = TypeVar("F", bound=Callable[..., Any])


def _fingerprint() -> str:
    """Method, path and body: the body canonicalised when it is JSON, so
    whitespace or key order does not make a retry look different."""
    body = g.get("api_json", None)
    if body is None:
        canonical = request.get_data(cache=True)
    else:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode("utf-8", "surrogatepass") + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def _read_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (a UUID is ideal)")
    return key


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.response_body or "", status=row.response_status or 200,
                        mimetype="application/json")
    response.headers[REPLAY_HEADER] = "true"
    return response


def _claim(brand_id: int, key: str, fingerprint: str) -> tuple[str, Response | None]:
    """Take the key: returns (owner token, None) to go ahead, or
    ("", stored answer) to replay it. ApiError 409 on a conflict."""
    db = get_db()
    owner = secrets.token_hex(16)
    for _ in range(3):
        now = utcnow()
        try:
            with db.transaction() as session:
                session.add(IdempotencyKey(
                    brand_id=brand_id, key=key, request_hash=fingerprint, method=request.method,
                    path=request.path[:500], state=IN_FLIGHT, owner=owner, locked_until=now + LEASE,
                    created_at=now,
                ))
            return owner, None
        except IntegrityError:
            pass
        with db.transaction() as session:
            row = session.scalar(
                select(IdempotencyKey).where(IdempotencyKey.brand_id == brand_id, IdempotencyKey.key == key)
            )
            if row is None:
                continue  # deleted meanwhile (a failed first attempt): try again
            if row.created_at < now - RETENTION:
                session.delete(row)  # an old key may be used afresh
                continue
            if row.request_hash != fingerprint:
                raise ApiError(409, "idempotency_key_reused",
                               f"{HEADER} {key!r} was used for a different request")
            if row.state == DONE:
                return "", _replay(row)
            if row.locked_until > now:
                raise ApiError(409, "request_in_flight",
                               f"a request with {HEADER} {key!r} is still in progress; retry shortly",
                               {"Retry-After": "1"})
            taken = session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == row.id, IdempotencyKey.owner == row.owner,
                       IdempotencyKey.state == IN_FLIGHT)
                .values(owner=owner, locked_until=now + LEASE)
            ).rowcount
            if taken == 1:
                return owner, None
    raise ApiError(409, "request_in_flight", f"{HEADER} {key!r} is contended; retry shortly",
                   {"Retry-After": "1"})


def _store(session: Any, brand_id: int, key: str, owner: str, response: Response) -> bool:
    stored = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.brand_id == brand_id, IdempotencyKey.key == key,
               IdempotencyKey.owner == owner, IdempotencyKey.state == IN_FLIGHT)
        .values(state=DONE, response_status=response.status_code,
                response_body=response.get_data(as_text=True), completed_at=utcnow())
    ).rowcount
    return stored == 1


def _release(brand_id: int, key: str, owner: str) -> None:
    with get_db().transaction() as session:
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.brand_id == brand_id, IdempotencyKey.key == key,
                                         IdempotencyKey.owner == owner)
        )


def _client_error(exc: BaseException) -> Response | None:
    if isinstance(exc, (ApiError, LoyaltyError, HTTPException)):
        return response_for(exc)
    return None


class _TakenOver(Exception):
    """A retry took the key over while this request worked: its work is
    rolled back and the retry's answer stands."""


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
            owner = ""
            if key is not None:
                owner, replay = _claim(brand_id, key, _fingerprint())
                if replay is not None:
                    return replay
            try:
                with unit_of_work() as session:
                    response = make_response(view(*args, **kwargs))
                    if key is not None and not _store(session, brand_id, key, owner, response):
                        raise _TakenOver
            except _TakenOver:
                return error_response(409, "request_in_flight",
                                      f"{HEADER} {key!r} was taken over by a retry; nothing was booked here")
            except Exception as exc:  # noqa: BLE001 - sorted below: client error or crash
                # The unit of work has rolled back what the view wrote.
                answer = _client_error(exc)
                if answer is None:
                    # A crash, or the commit failed: nothing was booked. Free
                    # the key at once rather than make the retry wait out the lease.
                    if key is not None:
                        _release(brand_id, key, owner)
                    raise
                if key is not None and answer.status_code not in (401, 429):
                    with get_db().transaction() as other:
                        _store(other, brand_id, key, owner, answer)
                return answer
            return response

        return wrapper  # type: ignore[return-value]

    return decorator


def purge_expired(session: Any, *, now: datetime | None = None) -> int:
    """Delete keys past their retention; returns how many. The scheduler
    runs it (wallet.jobs.scheduler); safe to run any time."""
    cutoff = (now or utcnow()) - RETENTION
    return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)).rowcount or 0

