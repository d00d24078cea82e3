"""Booking primitives every operation shares: checking its input, locking
the member, writing an append-only entry with the figures it moves, and
finishing (webhooks, then the card change) once the entries are written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from wallet.db import execute_core, loaded_detached, table_of, utcnow
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.ledger.club_rules import ClubRules
from wallet.loyalty.ledger.figures import (WINDOW_SPEND, get_member_for_update, has_webhooks, locked_club, locked_here,
                                           lot_opened, window_spend, window_spend_params)
from wallet.loyalty.ledger.serialise import member_to_dict, transaction_to_dict
from wallet.loyalty.ledger_models import BONUS, RELEASE, TIER, LedgerTransaction, PointLot
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import Program
from wallet.loyalty.webhooks import emit_events, subscribers

TRANSACTION_CREATED = "transaction.created"
# What a booking may change on the member, written with its card change.
FIGURES = ("balance", "pending", "cash_balance", "stamps", "tier", "expiring_points", "expiring_on", "message",
           "message_at")


def require_int(value: Any, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation(f"{name} must be an integer", code="invalid_amount")
    if value < low or value > high:
        raise RuleViolation(f"{name} must be between {low} and {high}", code="invalid_amount")
    return value


def valid_actor(actor: str) -> str:
    return valid_text(actor, "actor", max_len=200, code="invalid_actor")


def prepare(
    session: Session, membership: Membership, now: datetime | None, *, with_referrer: bool = False
) -> tuple[Membership, ClubRules, Program, datetime]:
    """The member locked and active (``with_referrer``: its referrer locked
    too, see ``get_member_for_update``), its club's rules and the time."""
    # The caller usually locked it already (the API does, with its club).
    member = (membership if locked_here(session, membership, with_referrer=with_referrer)
              else get_member_for_update(session, membership.id, with_referrer=with_referrer))
    if member.status != "active":
        raise RuleViolation(f"member {member.id} has left the club", code="membership_ended")
    club = locked_club(session, member)
    return member, club, club.rules, now or utcnow()


_ENTRIES, _LOTS = table_of(LedgerTransaction), table_of(PointLot)
_ENTRY_COLUMNS = tuple(column.key for column in _ENTRIES.c if column.key != "id")
# A lot's columns but its id and its entry's (``lots.new_lot`` gives them).
_LOT_COLUMNS = tuple(column.key for column in _LOTS.c if column.key not in ("id", "source_id"))
# Their parameters' names in the entry's INSERT with its lot (``_entry_with_lot``).
_LOT_PARAMS = tuple((f"lot_{key}", key) for key in _LOT_COLUMNS)
# An entry's optional columns, None unless the booking names them.
_NO_FIELDS = {key: None for key in ("amount", "currency", "receipt_id", "refund_of_id", "tier", "reason",
                                    "dedupe_key")}
# Every column named (a bare insert() takes its columns from each
# execution's parameters): compiled once for the driver (wallet.db.execute_core).
_INSERT_ENTRY = (insert(_ENTRIES).values({key: bindparam(key, type_=_ENTRIES.c[key].type) for key in _ENTRY_COLUMNS})
                 .returning(_ENTRIES.c.id))
_INSERT_LOT = insert(_LOTS)


def _entry_with_lot(*returning: Any) -> Insert:
    """PostgreSQL: an entry and the lot it opens in one statement, one round
    trip instead of two: the entry's INSERT is a CTE whose id the lot's
    INSERT reads (SQLite has no INSERT in a WITH: two statements there)."""
    entry = _INSERT_ENTRY.cte("entry")
    lot = select(entry.c.id, *(bindparam(f"lot_{key}", type_=_LOTS.c[key].type) for key in _LOT_COLUMNS))
    return (insert(_LOTS).add_cte(entry).from_select(("source_id", *_LOT_COLUMNS), lot)
            .returning(_LOTS.c.source_id, *returning))


_INSERT_ENTRY_WITH_LOT = _entry_with_lot()
# PostgreSQL: the same two, also returning the member's rolling spend before
# this entry (``figures.window_spend``): every part of one statement reads
# the same snapshot, so the subquery cannot see the entry its CTE inserts.
# A purchase that may lift the tier saves the spend's own round trip.
_SPEND = WINDOW_SPEND.scalar_subquery().correlate(None)  # not to the entry's own table
_INSERT_ENTRY_READING_SPEND = _INSERT_ENTRY.returning(_SPEND)
_INSERT_ENTRY_WITH_LOT_READING_SPEND = _entry_with_lot(_SPEND)


def book(
    session: Session,
    member: Membership,
    type_: str,
    *,
    actor: str,
    now: datetime,
    balance: int = 0,
    pending: int = 0,
    cash: int = 0,
    stamps: int = 0,
    lot: dict[str, Any] | None = None,
    **fields: Any,
) -> LedgerTransaction:
    """Write an entry moving the member's figures, and ``lot``, the point
    lot it opens (``lots.new_lot``), if any."""
    return _book(session, member, type_, actor=actor, now=now, balance=balance, pending=pending, cash=cash,
                 stamps=stamps, lot=lot, spend_days=None, **fields)[0]


def book_reading_spend(session: Session, member: Membership, type_: str, *, now: datetime, spend_days: int,
                       **kwargs: Any) -> tuple[LedgerTransaction, int]:
    """``book``, and the member's rolling spend over the ``spend_days``
    before this entry (``figures.window_spend``), read by the entry's own
    statement on PostgreSQL (a statement of its own on SQLite)."""
    return _book(session, member, type_, now=now, spend_days=spend_days, **kwargs)  # type: ignore[return-value]


def _book(
    session: Session,
    member: Membership,
    type_: str,
    *,
    actor: str,
    now: datetime,
    balance: int = 0,
    pending: int = 0,
    cash: int = 0,
    stamps: int = 0,
    lot: dict[str, Any] | None = None,
    spend_days: int | None,
    **fields: Any,
) -> tuple[LedgerTransaction, int | None]:
    values = _entry_values(member, type_, actor=actor, now=now, balance=balance, pending=pending, cash=cash,
                           stamps=stamps, fields=fields)
    # Written now by a Core INSERT (its id at once, no unit of work to sort
    # it out later). The entry returned is a detached copy with every column
    # loaded: nothing changes it after it is booked, so keeping it in the
    # session would only cost its bookkeeping (a refund reads its purchase
    # with session.get).
    postgresql = session.get_bind().dialect.name == "postgresql"
    spend: int | None = None
    if spend_days is not None and not postgresql:
        spend = window_spend(session, member, days=spend_days, as_of=now)
    params = _entry_params(values, lot) if postgresql else values
    if spend_days is not None and postgresql:
        params = {**params, **window_spend_params(member, days=spend_days, as_of=now)}
        statement = _INSERT_ENTRY_READING_SPEND if lot is None else _INSERT_ENTRY_WITH_LOT_READING_SPEND
        entry_id, spend = execute_core(session, statement, params)  # type: ignore[misc]
        spend = int(spend or 0)
    elif lot is None or postgresql:
        entry_id = execute_core(session, _entry_statement(lot), params)[0]  # type: ignore[index]
    else:
        entry_id = session.execute(_INSERT_ENTRY, values).scalar_one()
        session.execute(_INSERT_LOT, {**lot, "source_id": entry_id})
    _move_figures(member, values)
    return _entry_booked(session, member, entry_id, values, lot), spend


def _entry_values(member: Membership, type_: str, *, actor: str, now: datetime, balance: int, pending: int,
                  cash: int, stamps: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The columns of an entry but its id."""
    return {
        **_NO_FIELDS,
        "membership_id": member.id,
        "club_id": member.club_id,
        "type": type_,
        "points": balance + pending,
        "balance_delta": balance,
        "pending_delta": pending,
        "cash_delta": cash,
        "stamps_delta": stamps,
        "actor": actor,
        "created_at": now,
        "refunded_amount": 0,
        **fields,
        "details": fields.get("details") or {},
    }


def _entry_params(values: dict[str, Any], lot: dict[str, Any] | None) -> dict[str, Any]:
    """PostgreSQL: the parameters of the entry's INSERT with its lot (``_entry_statement``)."""
    return values if lot is None else {**values, **{name: lot[key] for name, key in _LOT_PARAMS}}


def _entry_statement(lot: dict[str, Any] | None) -> Insert:
    """PostgreSQL: the entry's INSERT (with its lot's, if it opens one), returning the entry's id."""
    return _INSERT_ENTRY if lot is None else _INSERT_ENTRY_WITH_LOT


def _move_figures(member: Membership, values: dict[str, Any]) -> None:
    """The member's figures as the entry ``values`` leaves them.

    They go to the database once, by the Core UPDATE of the card change
    (write_figures() for a card made in this transaction), so they are set
    as the database will hold them, not as changes: a changed member would
    cost the unit of work a walk at every flush, or making it clean again
    after the UPDATE (``mark_written``)."""
    moved = {"balance": member.balance + values["balance_delta"], "pending": member.pending + values["pending_delta"],
             "cash_balance": member.cash_balance + values["cash_delta"],
             "stamps": member.stamps + values["stamps_delta"]}
    if values["type"] == TIER:
        moved["tier"] = values["tier"]
    for key, value in moved.items():
        set_committed_value(member, key, value)


def _entry_booked(session: Session, member: Membership, entry_id: int, values: dict[str, Any],
                  lot: dict[str, Any] | None) -> LedgerTransaction:
    """A written entry as a detached loaded object, the lot it opened counted."""
    if lot is not None and lot["remaining"]:  # an exhausted lot is never due
        lot_opened(session, member, None if lot["released"] else lot["spendable_at"], lot["expires_at"])
    return loaded_detached(LedgerTransaction, {"id": entry_id, **values})


class Rider(Protocol):
    """A row the caller wants written by a booking's own last statement, its
    card change (PostgreSQL: ``book_and_finish``, ``finish_booking``), a
    round trip less than a statement after it: the API's Idempotency-Key
    with its answer, which names the entry's id
    (wallet.api.idempotency.AnswerRider)."""

    def riding(self, member: Membership, entry: Any) -> tuple[Callable[[Any], Any], dict[str, Any]] | None:
        """Given the member as the booking leaves it and the entry's columns
        as attributes, its id None (not an ORM object: nothing keeps it):
        ``record_card_change``'s ``riding`` (an INSERT built from the column
        or parameter of the entry's id, and its parameters), or None to
        ride nothing."""

    def ridden(self, entry: LedgerTransaction, returned: Any) -> None:
        """After the statement: the entry booked, and what the rider's
        INSERT returned (None: it wrote nothing)."""


def book_and_finish(
    session: Session,
    member: Membership,
    club: ClubRules,
    type_: str,
    *,
    booked: list[LedgerTransaction],
    actor: str,
    now: datetime,
    balance: int = 0,
    pending: int = 0,
    cash: int = 0,
    stamps: int = 0,
    lot: dict[str, Any] | None = None,
    rider: Rider | None = None,
    **fields: Any,
) -> LedgerTransaction:
    """``book`` the last entry of a booking, then ``finish_booking`` it with
    the entries ``booked`` before it. On PostgreSQL the entry and its lot
    are written by the card change's own statement (``record_card_change``'s
    ``written_with``): one round trip instead of two; ``rider``'s row too,
    if it has one. For an entry whose id nothing needs before the booking
    finishes, and of a type that puts no message on the card
    (``ledger_occasions``: a tier reached, a bonus)."""
    if type_ in (TIER, BONUS):
        raise ValueError(f"a {type_} entry may put a message on the card: book it, then finish_booking")
    if session.get_bind().dialect.name != "postgresql":
        txn = book(session, member, type_, actor=actor, now=now, balance=balance, pending=pending, cash=cash,
                   stamps=stamps, lot=lot, **fields)
        finish_booking(session, member, club, [*booked, txn])
        return txn
    values = _entry_values(member, type_, actor=actor, now=now, balance=balance, pending=pending, cash=cash,
                           stamps=stamps, fields=fields)
    _move_figures(member, values)
    riding = None if rider is None else _riding(session, rider, member, values)
    returned = _change_card(session, member, club, booked,
                            written_with=(_entry_statement(lot), _entry_params(values, lot)), riding=riding)
    entry_id = returned if riding is None else returned[0]
    txn = _entry_booked(session, member, entry_id, values, lot)
    if riding is not None:
        rider.ridden(txn, returned[1])  # type: ignore[union-attr]
    _after_card_change(session, member, club, [*booked, txn])
    return txn


def _riding(session: Session, rider: Rider, member: Membership,
            values: dict[str, Any]) -> tuple[Callable[[Any], Any], dict[str, Any]] | None:
    """``rider``'s row for the entry of ``values`` (its id to come)."""
    # What the rider reads must not flush the booking's changes ahead of its statement.
    with session.no_autoflush:
        return rider.riding(member, SimpleNamespace(**values, id=None))


def write_figures(session: Session, member: Membership) -> None:
    """Write the figures that ``book`` moved on a card made in this
    transaction, which takes no card change (``finish_booking``'s
    ``new_card``): its first render shows them."""
    session.execute(_WRITE_FIGURES, {"m_id": member.id, **{key: getattr(member, key) for key in FIGURES}})


_MEMBERS = table_of(Membership)
_WRITE_FIGURES = (update(_MEMBERS).where(_MEMBERS.c.id == bindparam("m_id"))
                  .values({key: bindparam(key) for key in FIGURES}))


def set_tier(
    session: Session, member: Membership, tier: str, *, actor: str, now: datetime, reason: str,
    dedupe_key: str | None = None, details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    return book(session, member, TIER, actor=actor, now=now, tier=tier, reason=reason,
                dedupe_key=dedupe_key, details={"from": member.tier, **(details or {})})


def finish_booking(
    session: Session,
    member: Membership,
    club: Club | ClubRules,
    txns: list[LedgerTransaction],
    *,
    new_card: bool = False,
    occasions: Sequence[str] = (),
    rider: Rider | None = None,
    ridden: LedgerTransaction | None = None,
) -> None:
    """After the entries of one booking: the card change (none for a card
    made in this same transaction, ``new_card``: no wallet holds it yet, and
    its first render shows the booking), then a webhook event for each entry
    that the member sees as a transaction. ``occasions``: automatic
    messages the change puts on the card (wallet.loyalty.automessages).
    ``rider`` (PostgreSQL): a row written by the card change's statement,
    made for the entry ``ridden`` of ``txns`` (it is told if it was)."""
    # The member's row is written once, with its figures and its new version
    # (tagging the change takes no lock: cards.py).
    if new_card:
        write_figures(session, member)
    elif rider is None or ridden is None or session.get_bind().dialect.name != "postgresql":
        _change_card(session, member, club, txns, occasions=occasions)
    else:
        riding = _riding(session, rider, member, {key: getattr(ridden, key) for key in _ENTRY_COLUMNS})
        returned = _change_card(session, member, club, txns, occasions=occasions, riding=riding,
                                ridden_id=None if riding is None else ridden.id)
        if riding is not None:
            rider.ridden(ridden, returned)
    _after_card_change(session, member, club, txns)


def _change_card(session: Session, member: Membership, club: Club | ClubRules, txns: list[LedgerTransaction], *,
                 occasions: Sequence[str] = (), written_with: tuple[Insert, dict[str, Any]] | None = None,
                 riding: tuple[Callable[[Any], Any], dict[str, Any]] | None = None,
                 ridden_id: int | None = None) -> Any:
    """The card change of a booking of ``txns``, with the automatic messages
    they call for; ``written_with``, ``riding``, ``ridden_id``: see
    ``record_card_change``."""
    from wallet.loyalty.automessages import ledger_occasions

    occasions = [*occasions, *ledger_occasions(session, member, club, txns)]
    return record_card_change(session, member, occasions=occasions, columns=FIGURES, written_with=written_with,
                              riding=riding, ridden_id=ridden_id)


def _after_card_change(session: Session, member: Membership, club: Club | ClubRules,
                       txns: list[LedgerTransaction]) -> None:
    """The end of a booking: what else changed flushed, and a webhook event
    for each entry that the member sees as a transaction."""
    session.flush()  # what else changed (a lot taken, a new card's row)
    shown = [txn for txn in txns if txn.type not in (TIER, RELEASE)]
    if not shown or not has_webhooks(session, member):
        return
    # Described only for the webhooks that want it: most brands have none.
    hooks = subscribers(session, brand_id=club.brand_id, event_type=TRANSACTION_CREATED)
    if hooks:
        figures = member_to_dict(member)
        emit_events(session, brand_id=club.brand_id, event_type=TRANSACTION_CREATED, hooks=hooks,
                    items=[{"transaction": transaction_to_dict(txn), "member": figures} for txn in shown])
