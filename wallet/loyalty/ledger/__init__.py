"""The points ledger: purchases, redemptions, refunds, adjustments, bonuses.

Every operation runs in the caller's transaction and does the same things in
the same order: lock the member's row (SELECT ... FOR UPDATE on PostgreSQL;
SQLite write sessions already hold the database's write lock from BEGIN
IMMEDIATE), apply what time has made due for this member (pending lots whose
window ended, lots that expired), validate, write append-only ledger rows and
FIFO lot changes, update the cached figures on the membership, record the card
change and queue the webhook. The caller commits; nothing is half-booked.

Invariants (the tests check them by replaying the ledger, tests/support/ledger.py):
- balance / pending / cash_balance / stamps == the sums of the ledger deltas,
  tier == the last tier entry;
- the remaining points of spendable open lots == max(balance, 0) and of
  pending lots == pending. A negative balance (only if the program allows it)
  is a debt that the next points to become spendable pay off first.

Decisions:
- A purchase's ``receipt_id`` is unique within a club: a repeat raises
  Conflict("duplicate_receipt") naming the earlier transaction. Retried
  requests are answered by the API's Idempotency-Key layer, not here.
- A purchase earns at the tier held before it; the upgrade it causes applies
  from the next purchase.
- A refund reverses points and cashback in proportion to the refunded share,
  cumulatively (floor of points * refunded_total / amount), so several partial
  refunds never reverse more than the purchase earned. If the member has
  already spent them and the program does not allow a negative balance, the
  shortfall is forgiven (recorded in ``details.unreversed_points``); a refund
  of money is never refused for lack of points. Stamps are not taken back.

The package by what it does: ``figures`` reads a member's row and figures,
``booking`` writes entries and finishes a booking, ``lots`` keeps the FIFO
point lots, ``operations`` are the till's transactions and bonuses, and
``serialise`` is how entries and figures are shown outside.
"""

from __future__ import annotations

from wallet.loyalty.ledger.booking import finish_booking, set_tier, write_figures
from wallet.loyalty.ledger.figures import expiring_figures, get_member_for_update, window_spend
from wallet.loyalty.ledger.lots import apply_due
from wallet.loyalty.ledger.operations import (adjust, grant_bonus, list_transactions, purchase, redeem, refund,
                                              stamp)
from wallet.loyalty.ledger.serialise import member_to_dict, transaction_to_dict

__all__ = [
    "adjust",
    "apply_due",
    "expiring_figures",
    "finish_booking",
    "get_member_for_update",
    "grant_bonus",
    "list_transactions",
    "member_to_dict",
    "purchase",
    "redeem",
    "refund",
    "set_tier",
    "stamp",
    "transaction_to_dict",
    "window_spend",
    "write_figures",
]
