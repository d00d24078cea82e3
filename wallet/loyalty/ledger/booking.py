"""Booking primitives every operation shares: checking its input, locking
the member, writing an append-only entry with the figures it moves, and
finishing (webhooks, then the card change) once the entries are written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from wallet.db import table_of, utcnow
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.ledger.club_rules import ClubRules
from wallet.loyalty.ledger.figures import get_member_for_update, has_webhooks, locked_club
from wallet.loyalty.ledger.serialise import member_to_dict, transaction_to_dict
from wallet.loyalty.ledger_models import RELEASE, TIER, LedgerTransaction
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
    member = get_member_for_update(session, membership.id, with_referrer=with_referrer)
    if member.status != "active":
        raise RuleViolation(f"member {member.id} has left the club", code="membership_ended")
    club = locked_club(session, member)
    return member, club, club.rules, now or utcnow()


_ENTRY_COLUMNS = tuple(column.key for column in table_of(LedgerTransaction).c if column.key != "id")
# An entry's optional columns, None unless the booking names them.
_NO_FIELDS = {key: None for key in ("amount", "currency", "receipt_id", "refund_of_id", "tier", "reason",
                                    "dedupe_key")}
_INSERT_ENTRY = insert(table_of(LedgerTransaction)).returning(table_of(LedgerTransaction).c.id)


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
    **fields: Any,
) -> LedgerTransaction:
    txn = LedgerTransaction(
        membership_id=member.id,
        club_id=member.club_id,
        type=type_,
        points=balance + pending,
        balance_delta=balance,
        pending_delta=pending,
        cash_delta=cash,
        stamps_delta=stamps,
        actor=actor,
        created_at=now,
        refunded_amount=0,
        details=fields.pop("details", None) or {},
        **{**_NO_FIELDS, **fields},
    )
    # Written now by a Core INSERT (its id at once, no unit of work to sort
    # it out later), then kept in the session as a loaded entry.
    txn.id = session.execute(_INSERT_ENTRY, {key: getattr(txn, key) for key in _ENTRY_COLUMNS}).scalar_one()
    make_transient_to_detached(txn)
    session.add(txn)
    member.balance += balance
    member.pending += pending
    member.cash_balance += cash
    member.stamps += stamps
    if type_ == TIER:
        member.tier = fields.get("tier")
    # The member's figures go to the database once, at finish_booking().
    return txn


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
    if not new_card:
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
