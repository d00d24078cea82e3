"""Ledger entries and a member's figures as the API and webhooks show them."""

from __future__ import annotations

from typing import Any

from wallet.loyalty.ledger_models import PURCHASE, LedgerTransaction
from wallet.loyalty.models import Membership


def transaction_to_dict(txn: LedgerTransaction) -> dict[str, Any]:
    """The transaction as the API and webhooks show it."""
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
        "created_at": txn.created_at.isoformat(),
    }


def member_figures(member: Membership) -> dict[str, Any]:
    return {
        "id": member.id,
        "club_id": member.club_id,
        "card_number": member.card_number,
        "balance": member.balance,
        "pending": member.pending,
        "cash_balance": member.cash_balance,
        "stamps": member.stamps,
        "tier": member.tier,
        "expiring": {"points": member.expiring_points, "date": member.expiring_on.isoformat()}
        if member.expiring_points and member.expiring_on else None,
    }
