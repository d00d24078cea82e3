"""The one shape of a member and of a ledger entry, as everything outside sees
them: the API's answers (which add the card links), webhook payloads and the
OpenAPI document are all these schemas. Every field is always sent.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields

from wallet.loyalty.ledger_models import PURCHASE, TYPES, LedgerTransaction
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.models import Membership

MEMBER_STATUSES = ("active", "ended")


def _always(field: type[fields.Field], description: str = "", **kwargs: Any) -> Any:
    metadata = {"description": description} if description else {}
    return field(required=True, metadata={**metadata, **kwargs.pop("metadata", {})}, **kwargs)


class ExpiringSchema(ma.Schema):
    """The points that run out first within the club's warning window."""

    points = _always(fields.Integer, "points that expire on date")
    date = _always(fields.Date, "the day they expire")


class MemberSchema(ma.Schema):
    """A membership: one card in one club, with the profile its brand was given."""

    id = _always(fields.Integer)
    club_id = _always(fields.Integer)
    card_number = _always(fields.String, "shown as the card's barcode")
    serial_number = _always(fields.String, "the pass's serial number")
    name = _always(fields.String)
    email = _always(fields.String, "lowercased", allow_none=True)
    phone = _always(fields.String, "E.164", allow_none=True)
    birthday = _always(fields.Date, allow_none=True)
    locale = _always(fields.String, "language of the card and of messages", validate=ma.validate.OneOf(LOCALES))
    status = _always(fields.String, "ended: the member left; the card is void",
                     validate=ma.validate.OneOf(MEMBER_STATUSES))
    balance = _always(fields.Integer, "spendable points")
    pending = _always(fields.Integer, "points not yet spendable")
    cash_balance = _always(fields.Integer, "cashback, minor units of the club's currency")
    stamps = _always(fields.Integer, "stamps towards the next reward")
    tier = _always(fields.String, "null: the club has no tiers", allow_none=True)
    expiring = _always(fields.Nested, "null: nothing expires within the warning window",
                       nested=ExpiringSchema, allow_none=True)
    referral_code = _always(fields.String, "enrolled with it, a new member counts as referred by this one",
                            allow_none=True)
    created_at = _always(fields.DateTime)


class TransactionSchema(ma.Schema):
    """One ledger entry. ``points`` is the signed change of balance + pending."""

    id = _always(fields.Integer)
    member_id = _always(fields.Integer)
    club_id = _always(fields.Integer)
    type = _always(fields.String, validate=ma.validate.OneOf(TYPES))
    points = _always(fields.Integer, "signed change of balance + pending")
    balance_change = _always(fields.Integer)
    pending_change = _always(fields.Integer)
    cash_change = _always(fields.Integer, "minor units")
    stamps_change = _always(fields.Integer)
    amount = _always(fields.Integer, "money of a purchase or refund, minor units", allow_none=True)
    currency = _always(fields.String, "ISO 4217, with amount", allow_none=True)
    receipt_id = _always(fields.String, allow_none=True)
    refund_of = _always(fields.Integer, "the purchase a refund returns", allow_none=True)
    refunded_amount = _always(fields.Integer, "of a purchase: how much of it was refunded", allow_none=True)
    tier = _always(fields.String, "the member's tier after this entry", allow_none=True)
    reason = _always(fields.String, allow_none=True)
    actor = _always(fields.String, "who booked it: api:<key prefix>, portal:<staff>, system")
    details = _always(fields.Dict, "which rule produced it (rates, bonus kind, source ids)")
    created_at = _always(fields.DateTime)


_MEMBER = MemberSchema()
_TRANSACTION = TransactionSchema()


def member_values(member: Membership) -> dict[str, Any]:
    """The member's fields as Python values (dates as dates), for a schema
    that extends ``MemberSchema`` to dump."""
    return {
        "id": member.id,
        "club_id": member.club_id,
        "card_number": member.card_number,
        "serial_number": member.serial_number,
        "name": member.name,
        "email": member.email,
        "phone": member.phone,
        "birthday": member.birthday,
        "locale": member.locale,
        "status": member.status,
        "balance": member.balance,
        "pending": member.pending,
        "cash_balance": member.cash_balance,
        "stamps": member.stamps,
        "tier": member.tier,
        "expiring": {"points": member.expiring_points, "date": member.expiring_on}
        if member.expiring_points and member.expiring_on else None,
        "referral_code": member.referral_code,
        "created_at": member.created_at,
    }


def member_to_dict(member: Membership) -> dict[str, Any]:
    """The member as JSON data, as webhooks carry it."""
    return _MEMBER.dump(member_values(member))


def transaction_to_dict(txn: LedgerTransaction) -> dict[str, Any]:
    """The transaction as JSON data, as webhooks carry it."""
    return _TRANSACTION.dump(transaction_values(txn))


def transaction_values(txn: LedgerTransaction) -> dict[str, Any]:
    """The entry's fields as Python values, for ``TransactionSchema`` to dump."""
    return {
        "id": txn.id,
        "member_id": txn.membership_id,
        "club_id": txn.club_id,
        "type": txn.type,
        "points": txn.points,
        "balance_change": txn.balance_delta,
        "pending_change": txn.pending_delta,
        "cash_change": txn.cash_delta,
        "stamps_change": txn.stamps_delta,
        "amount": txn.amount,
        "currency": txn.currency,
        "receipt_id": txn.receipt_id,
        "refund_of": txn.refund_of_id,
        "refunded_amount": txn.refunded_amount if txn.type == PURCHASE else None,
        "tier": txn.tier,
        "reason": txn.reason,
        "actor": txn.actor,
        "details": txn.details or {},
        "created_at": txn.created_at,
    }
