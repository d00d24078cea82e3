"""Booking primitives every operation shares: checking its input, locking
the member, writing an append-only entry with the figures it moves, and
finishing (webhooks, then the card change) once the entries are written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
from wallet.loyalty.ledger_models import RELEASE, TIER, LedgerTransaction, PointLot
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
    values: dict[str, Any] = {
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
    # Written now by a Core INSERT (its id at once, no unit of work to sort
    # it out later). The entry returned is a detached copy with every column
    # loaded: nothing changes it after it is booked, so keeping it in the
    # session would only cost its bookkeeping (a refund reads its purchase
    # with session.get).
    postgresql = session.get_bind().dialect.name == "postgresql"
    spend: int | None = None
    if spend_days is not None and not postgresql:
        spend = window_spend(session, member, days=spend_days, as_of=now)
    params = values if lot is None or not postgresql else {**values, **{name: lot[key] for name, key in _LOT_PARAMS}}
    if spend_days is not None and postgresql:
        params = {**params, **window_spend_params(member, days=spend_days, as_of=now)}
        statement = _INSERT_ENTRY_READING_SPEND if lot is None else _INSERT_ENTRY_WITH_LOT_READING_SPEND
        entry_id, spend = execute_core(session, statement, params)  # type: ignore[misc]
        spend = int(spend or 0)
    elif lot is None or postgresql:
        entry_id = execute_core(session, _INSERT_ENTRY if lot is None else _INSERT_ENTRY_WITH_LOT,  # type: ignore[index]
                                params)[0]
    else:
        entry_id = session.execute(_INSERT_ENTRY, values).scalar_one()
        session.execute(_INSERT_LOT, {**lot, "source_id": entry_id})
    if lot is not None and lot["remaining"]:  # an exhausted lot is never due
        lot_opened(session, member, None if lot["released"] else lot["spendable_at"], lot["expires_at"])
    txn = loaded_detached(LedgerTransaction, {"id": entry_id, **values})
    # The member's figures go to the database once, by the Core UPDATE of
    # finish_booking() (write_figures() for a card made in this
    # transaction), so they are set as the database will hold them, not as
    # changes: a changed member would cost the unit of work a walk at every
    # flush, or making it clean again after the UPDATE (``mark_written``).
    moved = {"balance": member.balance + balance, "pending": member.pending + pending,
             "cash_balance": member.cash_balance + cash, "stamps": member.stamps + stamps}
    if type_ == TIER:
        moved["tier"] = fields.get("tier")
    for key, value in moved.items():
        set_committed_value(member, key, value)
    return txn, spend


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
) -> None:
    """After the entries of one booking: the card change (none for a card
    made in this same transaction, ``new_card``: no wallet holds it yet, and
    its first render shows the booking), then a webhook event for each entry
    that the member sees as a transaction. ``occasions``: automatic
    messages the change puts on the card (wallet.loyalty.automessages)."""
    # The member's row is written once, with its figures and its new version
    # (tagging the change takes no lock: cards.py).
    if new_card:
        write_figures(session, member)
    else:
        from wallet.loyalty.automessages import ledger_occasions

        occasions = [*occasions, *ledger_occasions(session, member, club, txns)]
        record_card_change(session, member, occasions=occasions, columns=FIGURES)
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
