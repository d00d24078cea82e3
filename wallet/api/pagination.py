"""Keyset pagination with opaque cursors.

A cursor is the id the next page starts after (or before, for lists that
run newest first), wrapped so clients treat it as opaque; a cursor that was
not made here is a 400, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from wallet.api.errors import ApiError
from wallet.db import MAX_ID

T = TypeVar("T")


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"k": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["k"]
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return value


def page(rows: Sequence[T], limit: int, dump: Callable[[T], Any], key: Callable[[T], int]) -> dict[str, Any]:
    """``rows`` fetched with ``limit + 1``: the extra row only says there is more."""
    more = len(rows) > limit
    items = list(rows[:limit])
    return {
        "items": [dump(r) for r in items],
        "next_cursor": encode_cursor(key(items[-1])) if more and items else None,
    }


def listed(query: Mapping[str, Any], fetch: Callable[[int, int | None], Sequence[T]],
           dump: Callable[[T], Any]) -> dict[str, Any]:
    """The page a list endpoint answers for its ``query`` (a ListQuery):
    ``fetch(count, cursor_id)`` reads ``count`` rows (one more than the page
    holds) after, or before, the cursor's id (None: from the start)."""
    limit = query["limit"]
    return page(fetch(limit + 1, decode_cursor(query.get("cursor"))), limit, dump, lambda row: row.id)


def selected(session: Session, stmt: Select[Any], column: InstrumentedAttribute[int], query: Mapping[str, Any],
             dump: Callable[[Any], Any], *, newest_first: bool = False) -> dict[str, Any]:
    """``listed`` of the rows ``stmt`` selects, keyset-paginated by ``column``
    (an id), oldest or ``newest_first``."""

    def fetch(count: int, cursor: int | None) -> list[Any]:
        where = stmt if cursor is None else stmt.where(column < cursor if newest_first else column > cursor)
        rows = session.scalars(where.order_by(column.desc() if newest_first else column).limit(count))
        return list(rows.unique())

    return listed(query, fetch, dump)
