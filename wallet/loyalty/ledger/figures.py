"""A member's row, locked for booking, and the figures read from the ledger:
the points about to expire and the rolling spend that decides the tier."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import BindParameter, Select, bindparam, case, exists, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from wallet.loyalty.errors import NotFound
from wallet.loyalty.ledger_models import PURCHASE, REFUND, LedgerTransaction, PointLot
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.webhooks import Webhook

_LOCKED = "wallet.ledger.locked_members"

_ID: BindParameter[int] = bindparam("member_id")


@cache
def _lock_statement(with_referrer: bool, of_brand: bool) -> Select[tuple[Membership, bool]]:
    """The lock query of ``get_member_for_update``, built once per variant:
    a statement object used again keeps its cache key and compiled form, so
    a booking pays neither for building it nor for looking it up. It also
    says whether the brand has an active webhook: most have none, and their
    bookings then skip the webhooks' query (``has_webhooks``)."""
    M = Membership
    wanted = M.id == _ID
    if with_referrer:
        wanted = or_(wanted, M.id == select(M.referred_by_id).where(M.id == _ID).scalar_subquery())
    hooks = exists().where(Webhook.brand_id == Club.brand_id, Webhook.active.is_(True))
    query = (
        select(M, hooks)
        .join(M.club)
        .join(Club.brand)
        .options(contains_eager(M.club).contains_eager(Club.brand))
        .where(wanted)
        .order_by(M.id)  # locked in this order
        .with_for_update(key_share=True, of=M)
        .execution_options(populate_existing=True)
    )
    if of_brand:
        query = query.where(Club.brand_id == bindparam("brand_id"))
    return query


def get_member_for_update(
    session: Session, membership_id: int, *, brand_id: int | None = None, with_referrer: bool = False
) -> Membership:
    """The membership with its row locked until the transaction ends, its
    attributes fresh from the database (another transaction may have changed
    them since this session loaded the object), and its club and brand, in
    one statement.

    ``brand_id`` answers another brand's member as unknown (NotFound), and
    never locks it. ``with_referrer`` also locks the member's referrer,
    first: every writer that locks several members locks them in ascending
    id order (a club message does), the referrer is the older, lower id, and
    a referred member's first purchase credits it too. A member locked
    before in this transaction is returned as it is."""
    locked = _locked(session)
    if membership_id in locked:
        member = session.get(Membership, membership_id)
        if member is not None and (not with_referrer or member.referred_by_id in (None, *locked)):
            return member
    params: dict[str, int] = {"member_id": membership_id}
    if brand_id is not None:
        params["brand_id"] = brand_id
    rows = session.execute(_lock_statement(with_referrer, brand_id is not None), params).unique().all()
    session.info[_LOCKED] = (session.get_transaction(), {**locked, **{row.id: hooks for row, hooks in rows}})
    member = next((row for row, _hooks in rows if row.id == membership_id), None)
    if member is None:
        raise NotFound(f"no member {membership_id}", code="member_not_found")
    return member


def _locked(session: Session) -> dict[int, bool]:
    """The members locked in this transaction, each with whether its brand
    had an active webhook when it was locked."""
    memo = session.info.get(_LOCKED)
    transaction = session.get_transaction()
    return memo[1] if memo is not None and transaction is not None and memo[0] is transaction else {}


def has_webhooks(session: Session, member: Membership) -> bool:
    """Whether the member's brand had an active webhook when this
    transaction locked the member (True when it did not lock it here: ask
    ``webhooks.subscribers``)."""
    return _locked(session).get(member.id, True)


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


_T = LedgerTransaction
_WINDOW_SPEND = select(
    func.coalesce(func.sum(case((_T.type == PURCHASE, _T.amount), else_=-_T.amount)), 0)
).where(
    _T.membership_id == _ID,
    _T.type.in_((PURCHASE, REFUND)),
    _T.created_at > bindparam("since"),
    _T.created_at <= bindparam("as_of"),
)


def window_spend(session: Session, member: Membership, *, days: int, as_of: datetime) -> int:
    """Purchases minus refunds over the rolling window ending at ``as_of``."""
    value = session.scalar(_WINDOW_SPEND,
                           {"member_id": member.id, "since": as_of - timedelta(days=days), "as_of": as_of})
    return int(value or 0)
