"""The points ledger: purchases, redemptions, refunds, adjustments, bonuses.

Every operation runs in the caller's transaction and does the same things in
the same order: lock the member's row (SELECT ... FOR UPDATE on PostgreSQL;
SQLite write sessions already hold the database's write lock from BEGIN
IMMEDIATE), apply what time has made due for this member (pending lots whose
window ended, lots that expired), validate, write append-only ledger rows and
FIFO lot changes, update the cached figures on the membership, record the card
change and queue the webhook. The caller commits; nothing is half-booked.

Invariants (checked by ``recompute_figures`` in tests):
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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.cards import record_card_change
from wallet.loyalty.errors import Conflict, NotFound, RuleViolation
from wallet.loyalty.ledger_models import (
    ADJUST,
    BONUS,
    EXPIRE,
    PURCHASE,
    REDEEM,
    REFUND,
    RELEASE,
    REWARD,
    TIER,
    LedgerTransaction,
    PointLot,
)
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import MAX_EARN, MAX_MONEY, MAX_POINTS, Program, valid_text
from wallet.loyalty.webhooks import emit_event

# ---------------------------------------------------------------------------
# validation helpers


def _require_int(value: Any, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation(f"{name} must be an integer", code="invalid_amount")
    if value < low or value > high:
        raise RuleViolation(f"{name} must be between {low} and {high}", code="invalid_amount")
    return value


def _actor(actor: str) -> str:
    return valid_text(actor, "actor", max_len=200, code="invalid_actor")


# ---------------------------------------------------------------------------
# locking and figures


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


@dataclass(frozen=True)
class Figures:
    balance: int
    pending: int
    cash_balance: int
    stamps: int
    tier: str | None


def cached_figures(membership: Membership) -> Figures:
    return Figures(
        balance=membership.balance,
        pending=membership.pending,
        cash_balance=membership.cash_balance,
        stamps=membership.stamps,
        tier=membership.tier,
    )


def recompute_figures(session: Session, membership: Membership) -> Figures:
    """The member's figures derived from the ledger alone (a full replay;
    reads use the cached columns, tests compare the two)."""
    T = LedgerTransaction
    sums = session.execute(
        select(
            func.coalesce(func.sum(T.balance_delta), 0),
            func.coalesce(func.sum(T.pending_delta), 0),
            func.coalesce(func.sum(T.cash_delta), 0),
            func.coalesce(func.sum(T.stamps_delta), 0),
        ).where(T.membership_id == membership.id)
    ).one()
    tier = session.scalar(
        select(T.tier).where(T.membership_id == membership.id, T.type == TIER).order_by(T.id.desc()).limit(1)
    )
    return Figures(
        balance=int(sums[0]), pending=int(sums[1]), cash_balance=int(sums[2]), stamps=int(sums[3]), tier=tier
    )


def lot_totals(session: Session, membership: Membership) -> tuple[int, int]:
    """(points left in spendable lots, points left in pending lots)."""
    L = PointLot
    row = session.execute(
        select(
            func.coalesce(func.sum(case((L.released.is_(True), L.remaining), else_=0)), 0),
            func.coalesce(func.sum(case((L.released.is_(False), L.remaining), else_=0)), 0),
        ).where(L.membership_id == membership.id, L.exhausted.is_(False))
    ).one()
    return int(row[0]), int(row[1])


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


# ---------------------------------------------------------------------------
# booking primitives


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
        **fields,
    )
    session.add(txn)
    member.balance += balance
    member.pending += pending
    member.cash_balance += cash
    member.stamps += stamps
    if type_ == TIER:
        member.tier = fields.get("tier")
    # No flush here: entries, lots and figures go to the database together at
    # the next query or at _finish, one round of statements per booking.
    return txn


def _open_lot(
    session: Session,
    member: Membership,
    txn: LedgerTransaction,
    points: int,
    *,
    program: Program,
    now: datetime,
    pending: bool,
    balance_before: int,
) -> PointLot | None:
    """Open a lot for ``points`` credited by ``txn``. A spendable lot first
    pays off any debt (a negative balance), keeping lots == max(balance, 0)."""
    if points <= 0:
        return None
    rules = program.points
    pending_days = rules.pending_days if (rules and pending) else 0
    expiry_days = rules.expiry_days if rules else None
    spendable_at = now + timedelta(days=pending_days)
    released = spendable_at <= now
    remaining = points
    if released and balance_before < 0:
        remaining -= min(points, -balance_before)
    lot = PointLot(
        membership_id=member.id,
        source=txn,
        points=points,
        remaining=remaining,
        earned_at=now,
        spendable_at=spendable_at,
        released=released,
        expires_at=now + timedelta(days=expiry_days) if expiry_days else None,
        exhausted=remaining == 0,
    )
    session.add(lot)
    return lot


def _take(lot: PointLot, wanted: int) -> int:
    taken = min(lot.remaining, wanted)
    lot.remaining -= taken
    if lot.remaining == 0:
        lot.exhausted = True
    return taken


def _open_lots(session: Session, member: Membership, *, released: bool, limit: int) -> list[PointLot]:
    L = PointLot
    return list(
        session.scalars(
            select(L)
            .where(L.membership_id == member.id, L.exhausted.is_(False), L.released.is_(released))
            .order_by(L.earned_at, L.id)
            .limit(limit)
        )
    )


def _take_fifo(session: Session, member: Membership, wanted: int, *, released: bool) -> int:
    """Take up to ``wanted`` points from the member's lots, oldest first."""
    taken = 0
    # In pages: a member may hold thousands of small lots and a redemption
    # usually needs the first few. Exhausted lots drop out of the next page
    # (autoflush writes their flag first).
    while taken < wanted:
        page = _open_lots(session, member, released=released, limit=50)
        if not page:
            break
        for lot in page:
            taken += _take(lot, wanted - taken)
            if taken == wanted:
                break
    return taken


def _credit(
    session: Session,
    member: Membership,
    type_: str,
    points: int,
    *,
    program: Program,
    actor: str,
    now: datetime,
    **fields: Any,
) -> LedgerTransaction:
    """Book spendable points (a bonus, a positive adjustment) with their lot."""
    before = member.balance
    txn = _book(session, member, type_, actor=actor, now=now, balance=points, **fields)
    _open_lot(session, member, txn, points, program=program, now=now, pending=False, balance_before=before)
    return txn


def apply_due(session: Session, member: Membership, program: Program, now: datetime) -> list[LedgerTransaction]:
    """Book what time has made due for one (locked) member: pending lots whose
    window ended become spendable, lots past their expiry expire. Each lot is
    booked once (its flags change in the same transaction, and the entry's
    dedupe key would refuse a second)."""
    L = PointLot
    lots = session.scalars(
        select(L)
        .where(
            L.membership_id == member.id,
            L.exhausted.is_(False),
            or_(L.released.is_(False) & (L.spendable_at <= now), L.expires_at <= now),
        )
        .order_by(L.earned_at, L.id)
    ).all()
    booked: list[LedgerTransaction] = []
    for lot in lots:
        if not lot.released and lot.spendable_at <= now:
            points = lot.remaining
            before = member.balance
            lot.released = True
            if before < 0:
                _take(lot, -before)  # the debt is paid first
            booked.append(
                _book(session, member, RELEASE, actor="system:schedule", now=now, balance=points,
                      pending=-points, dedupe_key=f"release:lot:{lot.id}",
                      details={"lot_id": lot.id, "source_id": lot.source_id})
            )
        if lot.expires_at is not None and lot.expires_at <= now and not lot.exhausted:
            points = lot.remaining
            field = "balance" if lot.released else "pending"
            lot.remaining = 0
            lot.exhausted = True
            lot.expired_at = now
            booked.append(
                _book(session, member, EXPIRE, actor="system:schedule", now=now,
                      dedupe_key=f"expire:lot:{lot.id}",
                      details={"lot_id": lot.id, "source_id": lot.source_id,
                               "expires_at": lot.expires_at.isoformat()},
                      **{field: -points})
            )
    return booked


def _refresh_expiring(session: Session, member: Membership, program: Program, now: datetime) -> bool:
    """Recompute the card's "N points expire on D" after points left lots.
    Returns whether the figures changed."""
    if member.expiring_points == 0 and member.expiring_on is None:
        return False
    warning_days = program.points.warning_days if program.points else 0
    points, on = expiring_figures(session, member, as_of=now, warning_days=warning_days)
    if (points, on) == (member.expiring_points, member.expiring_on):
        return False
    member.expiring_points, member.expiring_on = points, on
    return True


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


def set_tier(
    session: Session, member: Membership, tier: str, *, actor: str, now: datetime, reason: str,
    dedupe_key: str | None = None, details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    return _book(session, member, TIER, actor=actor, now=now, tier=tier, reason=reason,
                 dedupe_key=dedupe_key, details={"from": member.tier, **(details or {})})


# ---------------------------------------------------------------------------
# public serialisation


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


def _finish(
    session: Session,
    member: Membership,
    club: Club,
    txns: list[LedgerTransaction],
    *,
    reason: str,
    change_message: str,
) -> None:
    session.flush()  # the entries' ids, for the webhook payloads
    for txn in txns:
        if txn.type in (TIER, RELEASE):
            continue
        emit_event(session, brand_id=club.brand_id, event_type="transaction.created",
                   data={"transaction": transaction_to_dict(txn), "member": member_figures(member)})
    # Last: the card change takes the global change counter's row lock, held
    # until commit, so as little as possible should happen after it.
    record_card_change(session, member, reason=reason, payload={"change_message": change_message})


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


def _prepare(session: Session, membership: Membership, now: datetime | None) -> tuple[Membership, Club, Program, datetime]:
    member = get_member_for_update(session, membership.id)
    if member.status != "active":
        raise RuleViolation(f"member {member.id} has left the club", code="membership_ended")
    club = member.club
    program = Program.of(club)
    now = now or utcnow()
    return member, club, program, now


# ---------------------------------------------------------------------------
# operations


def purchase(
    session: Session,
    membership: Membership,
    *,
    amount: int,
    receipt_id: str | None = None,
    actor: str,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Book a purchase: points (pending through the return window if the
    program has one), cashback, a stamp (and the reward when the card is
    full), the referral bonus on a referred member's first purchase, and an
    immediate tier upgrade if the rolling spend reached a higher tier."""
    amount = _require_int(amount, "amount", low=1, high=MAX_MONEY)
    actor = _actor(actor)
    if receipt_id is not None:
        receipt_id = valid_text(receipt_id, "receipt_id", max_len=100, code="invalid_receipt_id")
    _lock_referrer_first(session, membership)
    member, club, program, now = _prepare(session, membership, now)
    if receipt_id is not None:
        _check_receipt(session, club.id, receipt_id)
    booked = apply_due(session, member, program, now)
    _refresh_expiring(session, member, program, now)

    T = LedgerTransaction
    first_purchase = (
        member.referred_by_id is not None
        and session.scalar(select(T.id).where(T.membership_id == member.id, T.type == PURCHASE).limit(1)) is None
    )
    earned = program.points_for(amount, member.tier)
    if earned > MAX_EARN:
        raise RuleViolation(
            f"a purchase of {amount} would earn {earned} points under this club's rules; that is absurd",
            code="invalid_amount",
        )
    pending = bool(program.points and program.points.pending_days > 0)
    cash = program.cashback_for(amount)
    stamp = 1 if program.stamps_required else 0
    details: dict[str, Any] = {}
    if program.points:
        details.update(earn_points=program.earn_rate(member.tier), per_amount=program.points.per_amount,
                       rounding=program.points.rounding, tier=member.tier)
        if pending:
            details["spendable_at"] = (now + timedelta(days=program.points.pending_days)).isoformat()
    if program.cashback_percent is not None:
        details["cashback_percent"] = str(program.cashback_percent)
    before = member.balance

    def book_purchase() -> LedgerTransaction:
        return _book(
            session, member, PURCHASE, actor=actor, now=now,
            balance=0 if pending else earned, pending=earned if pending else 0,
            cash=cash, stamps=stamp, amount=amount, currency=club.currency,
            receipt_id=receipt_id, details=details,
        )

    if receipt_id is None:
        txn = book_purchase()
    else:
        try:
            with session.begin_nested():
                txn = book_purchase()
        except IntegrityError:
            # A concurrent purchase with the same receipt (another member's)
            # committed first; this member's row is ours, so nothing else clashes.
            session.expire(member)
            raise Conflict(f"receipt {receipt_id!r} is already booked in this club",
                           code="duplicate_receipt") from None
    _open_lot(session, member, txn, earned, program=program, now=now, pending=pending, balance_before=before)
    booked.append(txn)
    messages = [f"+{earned} points" if earned else "Purchase recorded"]

    if program.stamps_required and member.stamps >= program.stamps_required:
        session.flush()  # the purchase's id, recorded in the reward
        booked.append(_book(session, member, REWARD, actor=actor, now=now, stamps=-program.stamps_required,
                            reason=program.stamp_reward, details={"source_id": txn.id}))
        messages.append(f"Reward earned: {program.stamp_reward}")

    if first_purchase and program.referral_points > 0:
        booked.extend(_referral_bonus(session, member, program, now=now, source=txn))
        messages.append(f"+{program.referral_points} referral points")

    if program.tiers and program.tiers.rank(member.tier) < len(program.tiers.levels) - 1:
        spend = window_spend(session, member, days=program.tiers.window_days, as_of=now)
        target = program.tiers.for_spend(spend)
        if program.tiers.rank(target.name) > program.tiers.rank(member.tier):
            booked.append(set_tier(session, member, target.name, actor=actor, now=now, reason="upgrade",
                                   details={"window_spend": spend}))
            messages.append(f"Welcome to {target.name}")

    _finish(session, member, club, booked, reason="transaction", change_message="; ".join(messages))
    return txn


def _lock_referrer_first(session: Session, membership: Membership) -> None:
    """A referred member's first purchase also credits the referrer. Every
    writer that locks several members locks them in ascending id order (a
    club message locks its members so), and the referrer is the older, lower
    id: lock it before the member, or a message and a purchase could each hold
    one row and wait for the other."""
    if membership.referred_by_id is None:
        return
    T = LedgerTransaction
    paid = session.scalar(select(T.id).where(T.dedupe_key == f"referral:invitee:{membership.id}"))
    if paid is None:
        get_member_for_update(session, membership.referred_by_id)


def _check_receipt(session: Session, club_id: int, receipt_id: str) -> None:
    T = LedgerTransaction
    existing = session.scalar(select(T.id).where(T.club_id == club_id, T.receipt_id == receipt_id))
    if existing is not None:
        raise Conflict(
            f"receipt {receipt_id!r} is already booked in this club as transaction {existing}",
            code="duplicate_receipt",
        )


def _referral_bonus(
    session: Session, member: Membership, program: Program, *, now: datetime, source: LedgerTransaction
) -> list[LedgerTransaction]:
    """Both sides of a referral get the bonus once, at the invited member's
    first purchase. The referrer is always the older membership, so locks are
    taken newer -> older and two such purchases cannot deadlock."""
    points = program.referral_points
    session.flush()  # the purchase's id, recorded in the bonus
    booked = [
        _credit(session, member, BONUS, points, program=program, actor="system:referral", now=now,
                reason="referral", dedupe_key=f"referral:invitee:{member.id}",
                details={"bonus": "referral", "referrer_id": member.referred_by_id, "source_id": source.id})
    ]
    referrer = get_member_for_update(session, member.referred_by_id)  # type: ignore[arg-type]
    if referrer.status == "active" and referrer.club_id == member.club_id:
        apply_due(session, referrer, program, now)
        bonus = _credit(session, referrer, BONUS, points, program=program, actor="system:referral", now=now,
                        reason="referral", dedupe_key=f"referral:referrer:{member.id}",
                        details={"bonus": "referral", "invitee_id": member.id})
        club = referrer.club
        _finish(session, referrer, club, [bonus], reason="transaction",
                change_message=f"+{points} points for inviting a friend")
    return booked


def redeem(
    session: Session,
    membership: Membership,
    *,
    points: int,
    actor: str,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Spend points, oldest spendable lots first. Never more than the balance."""
    points = _require_int(points, "points", low=1, high=MAX_POINTS)
    actor = _actor(actor)
    member, club, program, now = _prepare(session, membership, now)
    booked = apply_due(session, member, program, now)
    if points > member.balance:
        raise RuleViolation(
            f"cannot redeem {points} points: the balance is {member.balance}", code="insufficient_balance"
        )
    redeem_value = program.points.redeem_value if program.points else 0
    taken = _take_fifo(session, member, points, released=True)
    assert taken == points, "spendable lots out of step with the balance"
    txn = _book(session, member, REDEEM, actor=actor, now=now, balance=-points,
                amount=points * redeem_value, currency=club.currency,
                details={"redeem_value": redeem_value})
    booked.append(txn)
    _refresh_expiring(session, member, program, now)
    _finish(session, member, club, booked, reason="transaction", change_message=f"-{points} points")
    return txn


def refund(
    session: Session,
    membership: Membership,
    *,
    refund_of: int,
    amount: int,
    actor: str,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Refund part or all of an earlier purchase, reversing its points and
    cashback in proportion: first from the purchase's own lot (pending or
    not), then from other spendable points, then other pending points."""
    refund_of = _require_int(refund_of, "refund_of", low=1, high=2**63 - 1)
    amount = _require_int(amount, "amount", low=1, high=MAX_MONEY)
    actor = _actor(actor)
    member, club, program, now = _prepare(session, membership, now)
    original = session.get(LedgerTransaction, refund_of)
    if original is None or original.membership_id != member.id or original.type != PURCHASE:
        raise NotFound(f"member {member.id} has no purchase {refund_of}", code="purchase_not_found")
    refundable = (original.amount or 0) - original.refunded_amount
    if amount > refundable:
        raise RuleViolation(
            f"cannot refund {amount}: only {refundable} of purchase {refund_of} is left to refund",
            code="refund_exceeds_purchase",
        )
    booked = apply_due(session, member, program, now)
    total = original.amount or 1
    before_cum, after_cum = original.refunded_amount, original.refunded_amount + amount
    points_due = original.points * after_cum // total - original.points * before_cum // total
    cash_due = original.cash_delta * after_cum // total - original.cash_delta * before_cum // total

    from_balance = from_pending = 0
    own = session.scalar(select(PointLot).where(PointLot.source_id == original.id))
    if own is not None and not own.exhausted and points_due > 0:
        taken = _take(own, points_due)
        if own.released:
            from_balance += taken
        else:
            from_pending += taken
    rest = points_due - from_balance - from_pending
    taken = _take_fifo(session, member, min(rest, max(member.balance - from_balance, 0)), released=True)
    from_balance += taken
    rest -= taken
    taken = _take_fifo(session, member, rest, released=False)
    from_pending += taken
    rest -= taken
    allow_negative = bool(program.points and program.points.allow_negative)
    details: dict[str, Any] = {"points_due": points_due, "cash_due": cash_due}
    if rest > 0:
        if allow_negative:
            from_balance += rest  # a debt the next spendable points pay off
        else:
            details["unreversed_points"] = rest
    cash = cash_due if allow_negative else min(cash_due, max(member.cash_balance, 0))
    if cash < cash_due:
        details["unreversed_cash"] = cash_due - cash
    original.refunded_amount = after_cum
    txn = _book(session, member, REFUND, actor=actor, now=now, balance=-from_balance, pending=-from_pending,
                cash=-cash, amount=amount, currency=club.currency, refund_of_id=original.id, details=details)
    booked.append(txn)
    _refresh_expiring(session, member, program, now)
    _finish(session, member, club, booked, reason="transaction",
            change_message=f"Refund: -{from_balance + from_pending} points")
    return txn


def adjust(
    session: Session,
    membership: Membership,
    *,
    points: int,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> LedgerTransaction:
    """A manual correction with a reason. A negative adjustment takes the
    oldest spendable points and may not go below zero unless the program
    allows a negative balance."""
    points = _require_int(points, "points", low=-MAX_POINTS, high=MAX_POINTS)
    if points == 0:
        raise RuleViolation("points must not be 0", code="invalid_amount")
    reason = valid_text(reason, "reason (an adjustment needs one)", max_len=500, code="invalid_reason",
                        multiline=True)
    actor = _actor(actor)
    member, club, program, now = _prepare(session, membership, now)
    booked = apply_due(session, member, program, now)
    if points > 0:
        txn = _credit(session, member, ADJUST, points, program=program, actor=actor, now=now,
                      reason=reason.strip())
    else:
        wanted = -points
        allow_negative = bool(program.points and program.points.allow_negative)
        if wanted > member.balance and not allow_negative:
            raise RuleViolation(
                f"cannot take {wanted} points: the balance is {member.balance}", code="insufficient_balance"
            )
        _take_fifo(session, member, min(wanted, max(member.balance, 0)), released=True)
        txn = _book(session, member, ADJUST, actor=actor, now=now, balance=points, reason=reason.strip())
        _refresh_expiring(session, member, program, now)
    booked.append(txn)
    _finish(session, member, club, booked, reason="transaction",
            change_message=f"{'+' if points > 0 else ''}{points} points")
    return txn


def grant_bonus(
    session: Session,
    member: Membership,
    points: int,
    *,
    kind: str,
    dedupe_key: str,
    actor: str,
    program: Program,
    now: datetime,
) -> LedgerTransaction | None:
    """A one-off bonus (welcome, birthday) for a locked member, booked at most
    once per ``dedupe_key``. Returns None if it was booked before. The caller
    records the card change."""
    T = LedgerTransaction
    if points <= 0 or session.scalar(select(T.id).where(T.dedupe_key == dedupe_key)) is not None:
        return None
    return _credit(session, member, BONUS, points, program=program, actor=actor, now=now, reason=kind,
                   dedupe_key=dedupe_key, details={"bonus": kind})


def list_transactions(
    session: Session, membership_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[LedgerTransaction]:
    """Newest first, keyset-paginated by id."""
    T = LedgerTransaction
    query = select(T).where(T.membership_id == membership_id)
    if before_id is not None:
        query = query.where(T.id < before_id)
    return list(session.scalars(query.order_by(T.id.desc()).limit(limit)))


__all__ = [
    "Figures",
    "adjust",
    "apply_due",
    "cached_figures",
    "expiring_figures",
    "get_member_for_update",
    "grant_bonus",
    "list_transactions",
    "lot_totals",
    "member_figures",
    "purchase",
    "recompute_figures",
    "redeem",
    "refund",
    "transaction_to_dict",
    "window_spend",
]
