"""A member's row, locked for booking, and the figures read from the ledger:
the points about to expire and the rolling spend that decides the tier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import BindParameter, Select, bindparam, case, exists, func, inspect, or_, select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from wallet.db import execute_core_all, loaded_detached, table_of
from wallet.loyalty.errors import NotFound
from wallet.loyalty.ledger.club_rules import ClubRules, club_rules
from wallet.loyalty.ledger_models import PURCHASE, REFUND, LedgerTransaction, PointLot
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.webhooks import Webhook

_LOCKED = "wallet.ledger.locked_members"

_ID: BindParameter[int] = bindparam("member_id")


@dataclass
class _Locked:
    """What the lock query learnt besides a member's row: whether its brand
    has an active webhook, the earliest time one of its open lots becomes
    due (its pending window ends or it expires; None: never), and its
    club's ``updated_at`` (which state of the club's rules applies:
    ``locked_club``)."""

    has_webhooks: bool
    next_due: datetime | None
    club_updated_at: datetime


_MEMBERS = table_of(Membership)
# The membership's mapped attributes and their columns, in the order the
# driver's lock selects them.
_MEMBER_ATTRS = tuple((prop.key, prop.columns[0]) for prop in inspect(Membership).column_attrs)
_MEMBER_KEYS = tuple(key for key, _column in _MEMBER_ATTRS)
_ID_AT = _MEMBER_KEYS.index("id")
# Its mapper, for the identity key of a locked row (orm.util.identity_key
# looks the class's mapper up on every call).
_MEMBER_MAPPER = inspect(Membership)


@cache
def _lock_statement(with_referrer: bool, of_brand: bool) -> Select[Any]:
    """The lock query of ``get_member_for_update``, built once per variant:
    a statement object used again keeps its cache key and compiled form, so
    a booking pays neither for building it nor for looking it up.

    It also reads what spares a booking two queries in the usual case
    (``_Locked``): most brands have no webhook, and most members have no
    lot due. Other transactions cannot make either stale in a way that
    matters: lots change only under this lock, and a lot another booking
    opened becomes due a day after it at the earliest.

    A Core select of the member's columns (not the ORM entity): on
    PostgreSQL it runs on the driver (``wallet.db.execute_core_all``), as
    SQLAlchemy's execution and the ORM's loading of the row were most of a
    lock's Python time (psycopg describing its 35 columns for them alone
    about a fifth); ``_member_from_row`` makes the ORM object. Only the
    member is loaded: a booking takes its club's rules from ``club_rules``
    by the club's ``updated_at``, read here."""
    club = table_of(Club)
    M, C, L, W = _MEMBERS.c, club.c, table_of(PointLot).c, table_of(Webhook).c
    wanted = M.id == _ID
    if with_referrer:
        referrer = _MEMBERS.alias("referred")
        wanted = or_(wanted, M.id == select(referrer.c.referred_by_id).where(referrer.c.id == _ID)
                     .scalar_subquery())
    # The club's columns by the member's club_id, not a join: joined, the
    # planner without statistics walked the whole club's members through
    # an index on club_id for the member's id (a brand's lock: 400 rows
    # read for one), where with the member's table alone only its primary
    # key finds the ids.
    def of_club(column: Any) -> Any:
        return select(column).where(C.id == M.club_id).correlate_except(club).scalar_subquery()

    brand = of_club(C.brand_id)
    hooks = exists().where(W.brand_id == brand, W.active.is_(True))
    open_lots = (L.membership_id == M.id, L.exhausted.is_(False))
    next_release = select(func.min(L.spendable_at)).where(*open_lots, L.released.is_(False)).scalar_subquery()
    next_expiry = select(func.min(L.expires_at)).where(*open_lots).scalar_subquery()
    query = (select(*(column for _key, column in _MEMBER_ATTRS), of_club(C.updated_at), hooks, next_release,
                    next_expiry)
             .where(wanted).order_by(M.id).with_for_update(key_share=True, of=_MEMBERS))
    if of_brand:
        query = query.where(brand == bindparam("brand_id"))
    return query


def _member_from_row(session: Session, values: tuple[Any, ...]) -> Membership:
    """The session's object of a member whose row the driver's lock read,
    with the row's values as committed (as the ORM's populate_existing
    would leave it): the object already in the session, or a new one."""
    found = session.identity_map.get(_MEMBER_MAPPER.identity_key_from_primary_key([values[_ID_AT]]))
    if found is not None:
        for (key, _column), value in zip(_MEMBER_ATTRS, values):
            set_committed_value(found, key, value)
        return cast(Membership, found)
    member = loaded_detached(Membership, dict(zip(_MEMBER_KEYS, values)))
    session.add(member)
    return member


def get_member_for_update(
    session: Session, membership_id: int, *, brand_id: int | None = None, with_referrer: bool = False,
) -> Membership:
    """The membership with its row locked until the transaction ends, its
    attributes fresh from the database (another transaction may have changed
    them since this session loaded the object), in one statement (its
    club is not loaded: a booking takes the club's rules from
    ``locked_club``).

    ``brand_id`` answers another brand's member as unknown (NotFound), and
    never locks it. ``with_referrer`` also locks the member's referrer,
    first: every writer that locks several members locks them in ascending
    id order (a club message does), the referrer is the older, lower id, and
    a referred member's first purchase credits it too. A member locked
    before in this transaction is returned as it is."""
    locked = _locked(session)
    if membership_id in locked:
        member = session.get(Membership, membership_id)
        if member is not None and _with_referrer_locked(member, locked, with_referrer):
            return member
    params: dict[str, int] = {"member_id": membership_id}
    if brand_id is not None:
        params["brand_id"] = brand_id
    if session.autoflush:
        # What this session changed is written first, as the ORM's own
        # query would autoflush it, rather than overwritten by the row.
        session.flush()
    width = len(_MEMBER_ATTRS)
    rows = [(_member_from_row(session, row[:width]), *row[width:])
            for row in execute_core_all(session, _lock_statement(with_referrer, brand_id is not None), params)]
    learnt = {row.id: _Locked(hooks, _earliest(release, expiry), club_at)
              for row, club_at, hooks, release, expiry in rows}
    session.info[_LOCKED] = (session.get_transaction(), {**locked, **learnt})
    member = next((row for row, *_learnt in rows if row.id == membership_id), None)
    if member is None:
        raise NotFound(f"no member {membership_id}", code="member_not_found")
    return member


def locked_here(session: Session, member: Membership, *, with_referrer: bool = False) -> bool:
    """Whether ``member`` is this session's object with its row locked in
    this transaction (and its referrer's, with ``with_referrer``): what
    ``get_member_for_update`` would return as it is, without looking it up."""
    locked = _locked(session)
    return (member.id in locked and object_session(member) is session
            and _with_referrer_locked(member, locked, with_referrer))


def _with_referrer_locked(member: Membership, locked: dict[int, _Locked], with_referrer: bool) -> bool:
    return not with_referrer or member.referred_by_id in (None, *locked)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def _locked(session: Session) -> dict[int, _Locked]:
    """The members locked in this transaction and what was learnt with each."""
    memo = session.info.get(_LOCKED)
    transaction = session.get_transaction()
    return memo[1] if memo is not None and transaction is not None and memo[0] is transaction else {}


def locked_club(session: Session, member: Membership) -> ClubRules:
    """The rules of the club of a member locked in this transaction, in the
    state the lock read (or newer)."""
    locked = _locked(session).get(member.id)
    if locked is None:
        raise RuntimeError(f"member {member.id} is not locked in this transaction: get_member_for_update first")
    return club_rules(session, member.club_id, locked.club_updated_at)


def has_webhooks(session: Session, member: Membership) -> bool:
    """Whether the member's brand had an active webhook when this
    transaction locked the member (True when it did not lock it here: ask
    ``webhooks.subscribers``)."""
    locked = _locked(session).get(member.id)
    return locked is None or locked.has_webhooks


def may_have_due_lots(session: Session, member: Membership, now: datetime) -> bool:
    """Whether one of the member's lots may be due at ``now`` (False only
    when this transaction locked the member and knows its lots: see
    ``lot_opened``)."""
    locked = _locked(session).get(member.id)
    return locked is None or (locked.next_due is not None and locked.next_due <= now)


def lot_opened(session: Session, member: Membership, release_at: datetime | None,
               expires_at: datetime | None) -> None:
    """A lot of the member's, opened in this transaction, becomes spendable
    at ``release_at`` (None: it is) and expires at ``expires_at``:
    ``may_have_due_lots`` counts it from now on."""
    locked = _locked(session).get(member.id)
    if locked is not None:
        locked.next_due = _earliest(locked.next_due, release_at, expires_at)


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


# Core, on the table's columns: a select of ORM attributes runs through
# the ORM's execution (its compile state, autoflush, result loading), which
# cost this one number about as much as a Core INSERT with its CTE. Every
# entry is written by a Core INSERT at once, so nothing waits for a flush.
# Aliased: the entry's INSERT returns it too (booking), beside its own table.
_T = table_of(LedgerTransaction).alias("spent").c
WINDOW_SPEND = select(
    func.coalesce(func.sum(case((_T.type == PURCHASE, _T.amount), else_=-_T.amount)), 0)
).where(
    _T.membership_id == bindparam("w_member_id"),
    # Not IN (...): a list's placeholders are rendered at each execution,
    # and the entry's INSERT that reads it is compiled once for the driver.
    or_(_T.type == PURCHASE, _T.type == REFUND),
    _T.created_at > bindparam("w_since"),
    _T.created_at <= bindparam("w_as_of"),
)


def window_spend_params(member: Membership, *, days: int, as_of: datetime) -> dict[str, Any]:
    """The parameters of ``WINDOW_SPEND``: the window of ``days`` ending at ``as_of``."""
    return {"w_member_id": member.id, "w_since": as_of - timedelta(days=days), "w_as_of": as_of}


def window_spend(session: Session, member: Membership, *, days: int, as_of: datetime) -> int:
    """Purchases minus refunds over the rolling window ending at ``as_of``."""
    return int(session.scalar(WINDOW_SPEND, window_spend_params(member, days=days, as_of=as_of)) or 0)
