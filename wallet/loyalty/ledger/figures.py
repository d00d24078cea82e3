"""A member's row, locked for booking, and the figures read from the ledger:
the points about to expire and the rolling spend that decides the tier."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from wallet.loyalty.errors import NotFound
from wallet.loyalty.ledger_models import PURCHASE, REFUND, LedgerTransaction, PointLot
from wallet.loyalty.models import Membership


def get_member_for_update(session: Session, membership_id: int) -> Membership:
    """The membership with its row locked until the transaction ends, and its
    attributes fresh from the database (another transaction may have changed
    them since this session loaded the object)."""
    member = session.execute(
        select(Membership)
        .where(Membership.id == membership_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if member is None:
        raise NotFound(f"no member {membership_id}", code="member_not_found")
    return member


def expiring_figures(
    session: Session, membership: Membership, *, as_of: datetime, warning_days: int
) -> tuple[int, date | None]:
    """The points that run out first within the warning window and their date:
    the card says "350 points expire on 1 Dec"."""
    L = PointLot
    horizon = as_of + timedelta(days=warning_days)
    lots = session.execute(
        select(L.remaining, L.expires_at)
        .where(
            L.membership_id == membership.id,
            L.exhausted.is_(False),
            L.remaining > 0,
            L.expires_at.is_not(None),
            L.expires_at > as_of,
            L.expires_at <= horizon,
        )
        .order_by(L.expires_at)
    ).all()
    if not lots or warning_days <= 0:
        return 0, None
    first = lots[0][1].date()
    return sum(r for r, at in lots if at.date() == first), first


def window_spend(session: Session, member: Membership, *, days: int, as_of: datetime) -> int:
    """Purchases minus refunds over the rolling window ending at ``as_of``."""
    T = LedgerTransaction
    value = session.scalar(
        select(
            func.coalesce(
                func.sum(case((T.type == PURCHASE, T.amount), else_=-T.amount)), 0
            )
        ).where(
            T.membership_id == member.id,
            T.type.in_((PURCHASE, REFUND)),
            T.created_at > as_of - timedelta(days=days),
            T.created_at <= as_of,
        )
    )
    return int(value or 0)
