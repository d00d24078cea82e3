"""The log of cards added to and removed from phones' wallets, which the
club's numbers count (installs, removals, cards on a phone now)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.models import Membership
from wallet.loyalty.numbers_models import CardEvent, CardWallet


def record_card_changes(session: Session, membership: Membership, *, before: Iterable[str],
                        after: Iterable[str], now: datetime | None = None) -> None:
    """Log the wallets the member's card entered (in ``after``, not in
    ``before``) and left, given the wallets (``CardWallet`` values) holding
    it before and after a change. The caller holds the member's row lock, so
    installs and removals of one wallet alternate."""
    held_before, held_after = set(before), set(after)
    at = now or utcnow()
    for wallet in sorted(held_after - held_before):
        session.add(CardEvent(club_id=membership.club_id, membership_id=membership.id,
                              wallet=CardWallet(wallet), installed=True, created_at=at))
    for wallet in sorted(held_before - held_after):
        session.add(CardEvent(club_id=membership.club_id, membership_id=membership.id,
                              wallet=CardWallet(wallet), installed=False, created_at=at))
