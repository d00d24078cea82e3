"""Recording a change that a member's card shows, and telling devices which
cards changed since they last asked (Apple's passesUpdatedSince tag).

Every such change, in the transaction that makes it: the membership's version
grows, its Last-Modified moves forward, it takes the transaction's change tag
(``Membership.change_seq``), and an outbox row asks the workers to re-render
and push.

The tag must never let a device miss a change, including one that commits
after a later-started change was already listed, and must never make card
changes of different members wait on each other:

- PostgreSQL: a change is tagged with the id of the transaction that makes
  it (``pg_current_xact_id()``, in the UPDATE itself). A listing hands out
  the xmin of its own snapshot: every transaction it could not see has an id
  at least that (the older ones had all ended), so "tag >= xmin" next time
  lists whatever committed late. Changes it did see may be listed once more;
  Apple allows that, the phone's fetch is then answered 304. No row is
  shared between two members' changes.
- SQLite: one writer at a time (BEGIN IMMEDIATE), so commit order is write
  order and a counter row taken in the write transaction is exact; it costs
  no waiting that the database's own write lock does not already impose.

Tags are opaque to devices: ``x<xmin>`` on PostgreSQL, ``<counter>`` on
SQLite. A tag in the other form, garbage, or one from the future (a restored
database whose transaction ids started again lower) means "everything".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, Interval, Select, String, Text, bindparam, case, cast, func, insert, inspect, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from wallet.db import any_of, execute_core, execute_core_all, mark_written, table_of, utcnow
from wallet.loyalty.models import ChangeCounter, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, require

PASS_COUNTER = "pass_changes"
_SEQ_KEY = "wallet.change_seq"
# Card changes of a club-wide change are written this many at a time.
PAGE = 1000


def _bigint(xid8: Any) -> Any:
    # xid8 has no direct cast to bigint; through text it is exact (64 bits).
    return cast(cast(xid8, Text), BigInteger)


# The id of the writing transaction (PostgreSQL), usable inside an UPDATE.
_TRANSACTION_ID = _bigint(func.pg_current_xact_id())
_SNAPSHOT_XMIN = _bigint(func.pg_snapshot_xmin(func.pg_current_snapshot()))
_SNAPSHOT_XMAX = _bigint(func.pg_snapshot_xmax(func.pg_current_snapshot()))


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _next_counter(session: Session) -> int:
    """SQLite: this transaction's counter value (the same for every call
    within one transaction)."""
    cached = session.info.get(_SEQ_KEY)
    if cached is not None and cached[0] is session.get_transaction():
        return cached[1]
    with session.no_autoflush:  # what is pending is written later, in one go
        value = session.execute(
            update(ChangeCounter)
            .where(ChangeCounter.name == PASS_COUNTER)
            .values(value=ChangeCounter.value + 1)
            .returning(ChangeCounter.value)
        ).scalar_one_or_none()
    if value is None:
        raise RuntimeError(
            f"change counter {PASS_COUNTER!r} is missing: the schema is not up to date "
            "(run any flask --app wsgi command to migrate)"
        )
    session.info[_SEQ_KEY] = (session.get_transaction(), value)
    return value


def change_tag(session: Session) -> Any:
    """The value a card changed in this transaction takes as its tag: a SQL
    expression on PostgreSQL (evaluated by the UPDATE, no statement of its
    own), a number on SQLite."""
    if _is_postgresql(session):
        return _TRANSACTION_ID
    return _next_counter(session)


def _next_modified_at(previous: datetime | None, now: datetime) -> datetime:
    # HTTP dates have whole seconds: two versions in one second would share a
    # Last-Modified and the second would be answered 304. Keep them apart.
    now = now.replace(microsecond=0)
    if previous is not None and now <= previous:
        return previous.replace(microsecond=0) + timedelta(seconds=1)
    return now


@dataclass(frozen=True)
class CardChange(OutboxPayload):
    """The payload of a card.changed row: the messages on the card whose
    delivery the workers record (``MessageDelivery.occasion``); empty for
    every other change (the row then carries no payload)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CARD_CHANGED

    occasions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(self.occasions, list, "occasions")
        for occasion in self.occasions:
            require(occasion, str, "occasions[]")


def _payload(occasions: Sequence[str]) -> dict[str, Any]:
    return CardChange(occasions=list(occasions)).to_json() if occasions else {}


_OUTBOX = table_of(OutboxEvent)
_QUEUE_CARD = insert(_OUTBOX).values(kind=OutboxKind.CARD_CHANGED.value, attempts=0)


def _queue_card(session: Session, membership_id: int, payload: dict[str, Any]) -> None:
    # A Core INSERT, written at once: the unit of work would cost more than
    # the row (wallet.jobs.nudge still sees it and wakes the workers).
    now = utcnow()
    session.execute(_QUEUE_CARD, {"membership_id": membership_id, "payload": payload, "available_at": now,
                                  "created_at": now})


# The columns a card change writes besides those the caller names.
_BUMPED = frozenset(("version", "card_modified_at", "change_seq"))


@cache
def _card_update(postgresql: bool, columns: tuple[str, ...], ahead: Any = None,
                 rider: Callable[[Any], Any] | None = None) -> Any:
    """UPDATE of a card's version, tag and Last-Modified with ``columns``,
    built once per set of columns. On PostgreSQL the card's outbox row is
    written by the same statement, one round trip instead of two: the UPDATE
    is a CTE whose returned id the outbox INSERT reads (SQLite has no UPDATE
    in a WITH: ``_queue_card`` writes the row there). ``ahead`` (PostgreSQL):
    an INSERT written by the same statement too, as a CTE before the
    UPDATE; the statement returns the first value it returns. ``rider``:
    builds, from the column of that value (without ``ahead``, from the
    parameter ``r_id``), one more INSERT written by the statement, whose
    first returned value (NULL when it wrote nothing) the statement returns
    next (without ``ahead``, alone). The values of ``columns`` are named
    ``c_<column>`` (``ahead`` may name columns of its own table alike)."""
    table = table_of(Membership)
    values: dict[str, Any] = {key: bindparam(f"c_{key}") for key in ("version", "card_modified_at", *columns)}
    values["change_seq"] = _TRANSACTION_ID if postgresql else bindparam("c_change_seq")
    bump = update(table).where(table.c.id == bindparam("b_id")).values(values)
    if not postgresql:
        return bump
    bumped = bump.returning(table.c.id).cte("bumped")
    rows = _card_changed_rows(bumped.c.id, bindparam("o_payload", type_=_OUTBOX.c.payload.type),
                              bindparam("o_at", type_=_OUTBOX.c.created_at.type))
    if ahead is None and rider is None:
        return rows.add_cte(bumped)
    if ahead is None:
        ridden = rider(bindparam("r_id", type_=BigInteger)).cte("ridden")  # type: ignore[misc]
        return rows.add_cte(bumped, ridden).returning(select(*ridden.c).scalar_subquery())
    written = ahead.cte("ahead")
    if rider is None:
        return rows.add_cte(written, bumped).returning(select(*written.c).scalar_subquery())
    ridden = rider(written.c[0]).cte("ridden")
    return rows.add_cte(written, bumped, ridden).returning(select(*written.c).scalar_subquery(),
                                                           select(*ridden.c).scalar_subquery())


def _card_changed_rows(membership_id: Any, payload: Any, at: Any, *where: Any) -> Any:
    """An INSERT of card.changed outbox rows made by the database, one per
    ``membership_id`` selected (``where``): no row of them built in Python."""
    return insert(_OUTBOX).from_select(
        ("kind", "membership_id", "payload", "attempts", "available_at", "created_at"),
        select(literal(OutboxKind.CARD_CHANGED.value, String), membership_id, payload, literal(0, Integer), at, at)
        .where(*where),
    )


def record_card_change(session: Session, membership: Membership, *, occasions: Sequence[str] = (),
                       columns: Sequence[str] = (), written_with: tuple[Any, Mapping[str, Any]] | None = None,
                       riding: tuple[Callable[[Any], Any], Mapping[str, Any]] | None = None,
                       ridden_id: int | None = None) -> Any:
    """Bump the card's version and queue its re-render and push. The row
    names only the membership (and the messages it delivers): the pushers
    render the card as it is when they run, so whatever changed meanwhile
    goes out too.

    Written at once, by Core statements, with the membership's ``columns``
    (its figures, after a booking) in the same UPDATE (and on PostgreSQL
    the outbox row in the same statement); what else changed on
    the object goes with the session's next flush. The membership must be
    locked and fresh (``ledger.get_member_for_update``), as every writer of
    a card holds it.

    ``written_with`` (PostgreSQL only): an INSERT returning one value and
    its parameters, written by the same statement (a booking's last entry:
    ledger.booking.book_and_finish); that value is returned. ``riding``
    (PostgreSQL only): ``_card_update``'s ``rider`` and its parameters,
    reading what ``written_with`` returns, or else ``ridden_id`` (an entry
    written before); then the rider's value is returned too (after
    ``written_with``'s), None when it wrote nothing."""
    postgresql = _is_postgresql(session)
    values: dict[str, Any] = {key: getattr(membership, key) for key in columns}
    values["version"] = (membership.version or 0) + 1
    values["card_modified_at"] = _next_modified_at(membership.card_modified_at, utcnow())
    if written_with is not None and not postgresql:
        raise ValueError("only PostgreSQL writes another INSERT with the card change")
    ahead, ahead_params = written_with if written_with is not None else (None, {})
    rider, rider_params = riding if riding is not None else (None, {})
    if rider is not None and (ahead is None) == (ridden_id is None):
        raise ValueError("a rider reads what written_with returns, or else ridden_id")
    if rider is not None and not postgresql:
        raise ValueError("only PostgreSQL writes a rider with the card change")
    if ridden_id is not None:
        rider_params = {**rider_params, "r_id": ridden_id}
    statement = _card_update(postgresql, tuple(columns), ahead, rider)
    params = {f"c_{key}": value for key, value in values.items()}
    returned = None
    if postgresql:  # the outbox row in the same statement
        row = execute_core(session, statement, {**ahead_params, **rider_params, **params, "b_id": membership.id,
                                                "o_payload": _payload(occasions), "o_at": utcnow()})
        if ahead is not None or rider is not None:
            returned = row if ahead is not None and rider is not None else row[0]  # type: ignore[index]
    else:
        values["change_seq"] = _next_counter(session)
        session.execute(statement, {**params, "c_change_seq": values["change_seq"], "b_id": membership.id})
    # What the UPDATE wrote is what the member holds now. Its figures were
    # set as committed values by the booking (ledger.booking.book), a
    # column changed on the object otherwise is committed here too, and the
    # member counted clean if nothing else is left (``mark_written``).
    state = inspect(membership)
    for key, value in values.items():
        if key in _BUMPED or state.modified:
            set_committed_value(membership, key, value)
    if postgresql:
        session.expire(membership, ["change_seq"])  # the transaction's id, known to the database
    mark_written(session, membership)
    if not postgresql:
        _queue_card(session, membership.id, _payload(occasions))
    return returned


def record_card_issued(session: Session, membership: Membership) -> None:
    """Queue the pushers for a new card without changing its version: the
    wallets that keep their own copy of a card on their servers (Google)
    are given it now, before anyone saves it."""
    _queue_card(session, membership.id, {})


_MEMBERSHIPS = Membership.__table__
_BUMP = (
    update(_MEMBERSHIPS)
    .where(_MEMBERSHIPS.c.id == bindparam("b_id"))
    .values(version=_MEMBERSHIPS.c.version + 1, card_modified_at=bindparam("b_modified"))
)


def _page_bump() -> Any:
    """PostgreSQL: a page of cards (``ids``) given their new version, tag
    and Last-Modified in one statement: the second ``second``, or a second
    after the last one if that is not earlier (as ``_next_modified_at``)."""
    modified = _MEMBERSHIPS.c.card_modified_at
    second = bindparam("second", type_=modified.type)
    return update(_MEMBERSHIPS).where(any_of(_MEMBERSHIPS.c.id, key="ids")).values(
        version=_MEMBERSHIPS.c.version + 1, change_seq=_TRANSACTION_ID,
        card_modified_at=case((modified >= second, func.date_trunc("second", modified, type_=DateTime(timezone=True))
                                                   + literal(timedelta(seconds=1), Interval())),
                              else_=second),
    )


# A page of a club-wide change on PostgreSQL: its rows locked, bumped, and
# their card.changed rows queued, each statement built once per process and
# run on the driver (wallet.db.execute_core_all, execute_core), the page's
# ids as one array parameter. Built for each page and run through the
# session's execution, a message's pages were about a quarter of the
# outbox workers' batch threads (py-spy --gil during bench.push).
_LOCK_PAGE = (select(_MEMBERSHIPS.c.id)
              .where(any_of(_MEMBERSHIPS.c.id, key="ids")).order_by(_MEMBERSHIPS.c.id)
              .with_for_update(key_share=True))
_BUMP_PAGE = _page_bump()
_QUEUE_PAGE = _card_changed_rows(_MEMBERSHIPS.c.id, bindparam("payload", type_=_OUTBOX.c.payload.type),
                                 bindparam("now", type_=_OUTBOX.c.created_at.type),
                                 any_of(_MEMBERSHIPS.c.id, key="ids"))


def among(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """``column`` is one of ``ids``: on PostgreSQL the ids as one array
    parameter (wallet.db.any_of), elsewhere an IN list. A page of a message
    or a campaign sent as expanded IN lists of 500 to 1,000 parameters was a
    new statement each time, rendered by SQLAlchemy and split by psycopg
    anew."""
    return any_of(column, ids) if _is_postgresql(session) else column.in_(ids)


def record_club_card_changes(
    session: Session,
    membership_ids: Sequence[int] | Iterable[int],
    *,
    occasion: str | None = None,
) -> int:
    """The same as ``record_card_change`` for many cards at once (a club
    message to 10,000 members), in set-based statements a page at a time.
    Each page's rows are locked (in ascending id order, as every writer
    locks members) before they are read, so a till's concurrent change is
    never overwritten with a stale version. ``occasion`` names the message
    the change delivers (``CardChange``). Returns the count."""
    ids = sorted(set(membership_ids))
    if not ids:
        return 0
    now = utcnow()
    payload = _payload([occasion] if occasion else [])
    count = 0
    if _is_postgresql(session):
        for start in range(0, len(ids), PAGE):
            locked = [row[0] for row in execute_core_all(session, _LOCK_PAGE, {"ids": ids[start : start + PAGE]})]
            if not locked:
                continue
            # Last-Modified moved on as _next_modified_at does, by the database.
            execute_core_all(session, _BUMP_PAGE, {"ids": locked, "second": now.replace(microsecond=0)})
            # execute_core notes the outbox written: the commit wakes the workers (wallet.jobs.nudge).
            execute_core(session, _QUEUE_PAGE, {"ids": locked, "payload": payload, "now": now})
            count += len(locked)
        return count
    bump = _BUMP.values(change_seq=change_tag(session))
    for start in range(0, len(ids), PAGE):
        query = (
            select(Membership.id, Membership.card_modified_at)
            .where(among(session, Membership.id, ids[start : start + PAGE]))
            .order_by(Membership.id)
            .with_for_update(key_share=True)
        )
        rows = session.execute(query).all()
        if not rows:
            continue
        locked = [member_id for member_id, _ in rows]
        session.connection().execute(bump, [{"b_id": member_id, "b_modified": _next_modified_at(modified, now)}
                                            for member_id, modified in rows])
        session.execute(_card_changed_rows(_MEMBERSHIPS.c.id, literal(payload, _OUTBOX.c.payload.type),
                                           literal(now, _OUTBOX.c.created_at.type),
                                           among(session, _MEMBERSHIPS.c.id, locked)))
        count += len(rows)
    return count


@dataclass(frozen=True)
class ChangedCards:
    """The answer to "which of these cards changed since the tag"."""

    serials: list[str]
    # The tag to hand out with the answer; None when there is nothing to list.
    tag: str | None


def listing(candidates: Select[tuple[str, int]], *, postgresql: bool) -> Select[Any]:
    """The statement that reads ``candidates`` (rows of serial number and
    ``Membership.change_seq``, e.g. a device's passes) for ``changed_among``:
    on PostgreSQL with the bounds of the statement's own snapshot."""
    return candidates.add_columns(_SNAPSHOT_XMIN, _SNAPSHOT_XMAX) if postgresql else candidates


def changed_among(rows: Sequence[Sequence[Any]], tag: str | None, *, postgresql: bool) -> ChangedCards:
    """Of the rows a ``listing`` read, the cards changed since ``tag``, in
    their order."""
    if not rows:
        return ChangedCards([], None)
    if postgresql:
        xmin, xmax = rows[0][2], rows[0][3]
        since = _parse(tag, "x")
        if since is not None and since > xmax:
            since = None  # not handed out by this database's clock
        # >=: the transaction whose id is xmin was still running.
        changed = [serial for serial, seq, *_ in rows if since is None or seq >= since]
        return ChangedCards(changed, f"x{xmin}")
    since = _parse(tag, "")
    changed = [serial for serial, seq in rows if since is None or seq > since]
    return ChangedCards(changed, str(max(seq for _serial, seq in rows)))


def _parse(tag: str | None, prefix: str) -> int | None:
    if tag is None or not tag.startswith(prefix):
        return None
    digits = tag[len(prefix):]
    # ASCII digits only: str.isdigit() also takes other scripts' digits.
    if not 0 < len(digits) <= 19 or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)
