"""The ledger's operations: a purchase (with its stamp reward, referral bonus
and tier upgrade), a stamp without a purchase (with its reward), a
redemption, a refund, a manual adjustment, a one-off bonus, and the member's
list of entries. Each runs in the caller's
transaction; the caller commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import table_of
from wallet.loyalty.errors import Conflict, NotFound, RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.ledger.booking import (Rider, book, book_and_finish, book_reading_spend, finish_booking,
                                           prepare, require_int, set_tier, valid_actor)
from wallet.loyalty.ledger.club_rules import ClubRules
from wallet.loyalty.ledger.figures import get_member_for_update, locked_club
from wallet.loyalty.ledger.lots import apply_due, credit, new_lot, refresh_expiring, take, take_fifo
from wallet.loyalty.ledger_models import (ADJUST, BONUS, PURCHASE, REDEEM, REFUND, REWARD, STAMP, LedgerTransaction,
                                          PointLot)
from wallet.loyalty.models import Membership
from wallet.loyalty.program import MAX_EARN, MAX_MONEY, MAX_POINTS, Program

# Statements of the hot path, built once (see figures._lock_statement), in
# Core on the table's columns (see figures.WINDOW_SPEND): entries are
# written at once by Core INSERTs, so no flush is owed before they read.
_ENTRY = table_of(LedgerTransaction).c
_A_PURCHASE = select(_ENTRY.id).where(_ENTRY.membership_id == bindparam("member_id"), _ENTRY.type == PURCHASE).limit(1)


def purchase(
    session: Session,
    membership: Membership,
    *,
    amount: int,
    receipt_id: str | None = None,
    actor: str,
    now: datetime | None = None,
    rider: Rider | None = None,
) -> LedgerTransaction:
    """Book a purchase: points (pending through the return window if the
    program has one), cashback, a stamp (and the reward when the card is
    full), the referral bonus on a referred member's first purchase, and an
    immediate tier upgrade if the rolling spend reached a higher tier.
    ``rider``: a row to write with the card change (PostgreSQL), made for
    the purchase's entry (it is told if it was)."""
    amount = require_int(amount, "amount", low=1, high=MAX_MONEY)
    actor = valid_actor(actor)
    if receipt_id is not None:
        receipt_id = valid_text(receipt_id, "receipt_id", max_len=100, code="invalid_receipt_id")
    # The referrer too (lower id, locked first): a first purchase credits it.
    member, club, program, now = prepare(session, membership, now, with_referrer=True)
    if receipt_id is not None:
        _check_receipt(session, club.id, receipt_id)
    booked = apply_due(session, member, program, now)
    refresh_expiring(session, member, program, now)

    first_purchase = (
        member.referred_by_id is not None
        and session.scalar(_A_PURCHASE, {"member_id": member.id}) is None
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
    # The rolling spend before this purchase, read with its entry, while a
    # higher tier is within reach.
    upgrade_possible = bool(program.tiers and program.tiers.rank(member.tier) < len(program.tiers.levels) - 1)
    lot = new_lot(member, earned, program=program, now=now, pending=pending, balance_before=member.balance)
    entry: dict[str, Any] = dict(
        actor=actor, now=now, balance=0 if pending else earned, pending=earned if pending else 0,
        cash=cash, stamps=stamp, amount=amount, currency=club.currency,
        receipt_id=receipt_id, details=details, lot=lot,
    )
    reward_due = bool(program.stamps_required and member.stamps + stamp >= program.stamps_required)
    referral_due = first_purchase and program.referral_points > 0
    if not (upgrade_possible or reward_due or referral_due or receipt_id is not None):
        # Nothing needs the entry's id or the rolling spend before the card
        # changes: the entry goes with the card change (one statement on
        # PostgreSQL).
        return book_and_finish(session, member, club, PURCHASE, booked=booked, rider=rider, **entry)

    def book_purchase() -> tuple[LedgerTransaction, int]:
        if program.tiers and upgrade_possible:
            return book_reading_spend(session, member, PURCHASE, spend_days=program.tiers.window_days, **entry)
        return book(session, member, PURCHASE, **entry), 0

    if receipt_id is None:
        txn, spend_before = book_purchase()
    else:
        try:
            with session.begin_nested():
                txn, spend_before = book_purchase()
        except IntegrityError:
            # A concurrent purchase with the same receipt (another member's)
            # committed first; this member's row is ours, so nothing else clashes.
            session.expire(member)
            raise Conflict(f"receipt {receipt_id!r} is already booked in this club",
                           code="duplicate_receipt") from None
    booked.append(txn)

    booked.extend(_reward_if_full(session, member, program, txn, actor=actor, now=now))

    if referral_due:
        booked.extend(_referral_bonus(session, member, program, now=now, source=txn))

    if program.tiers and upgrade_possible:
        spend = spend_before + amount
        target = program.tiers.for_spend(spend)
        if program.tiers.rank(target.name) > program.tiers.rank(member.tier):
            booked.append(set_tier(session, member, target.name, actor=actor, now=now, reason="upgrade",
                                   details={"window_spend": spend}))

    finish_booking(session, member, club, booked, rider=rider, ridden=txn)
    return txn


def _reward_if_full(session: Session, member: Membership, program: Program, source: LedgerTransaction, *,
                    actor: str, now: datetime) -> list[LedgerTransaction]:
    """The reward, when ``source`` (a purchase or a stamp) filled the card."""
    if not program.stamps_required or member.stamps < program.stamps_required:
        return []
    return [book(session, member, REWARD, actor=actor, now=now, stamps=-program.stamps_required,
                 reason=program.stamp_reward, details={"source_id": source.id})]


def stamp(session: Session, membership: Membership, *, actor: str, now: datetime | None = None) -> LedgerTransaction:
    """A stamp without a purchase to book: what a cashier gives for a coffee
    the point-of-sale has already rung up. The reward follows when the card
    is full, as after a purchase. A club that runs no stamps refuses it."""
    actor = valid_actor(actor)
    member, club, program, now = prepare(session, membership, now)
    if not program.stamps_required:
        raise RuleViolation("this club gives no stamps", code="no_stamps")
    booked = apply_due(session, member, program, now)
    txn = book(session, member, STAMP, actor=actor, now=now, stamps=1)
    booked.append(txn)
    booked.extend(_reward_if_full(session, member, program, txn, actor=actor, now=now))
    finish_booking(session, member, club, booked)
    return txn


_RECEIPT = select(_ENTRY.id).where(_ENTRY.club_id == bindparam("club_id"), _ENTRY.receipt_id == bindparam("receipt_id"))


def _check_receipt(session: Session, club_id: int, receipt_id: str) -> None:
    existing = session.scalar(_RECEIPT, {"club_id": club_id, "receipt_id": receipt_id})
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
    booked = [
        credit(session, member, BONUS, points, program=program, actor="system:referral", now=now,
               reason="referral", dedupe_key=f"referral:invitee:{member.id}",
               details={"bonus": "referral", "referrer_id": member.referred_by_id, "source_id": source.id})
    ]
    referrer = get_member_for_update(session, member.referred_by_id)  # type: ignore[arg-type]
    if referrer.status == "active" and referrer.club_id == member.club_id:
        apply_due(session, referrer, program, now)
        bonus = credit(session, referrer, BONUS, points, program=program, actor="system:referral", now=now,
                       reason="referral", dedupe_key=f"referral:referrer:{member.id}",
                       details={"bonus": "referral", "invitee_id": member.id})
        # The member's club: the referrer's is the same.
        finish_booking(session, referrer, locked_club(session, member), [bonus])
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
    points = require_int(points, "points", low=1, high=MAX_POINTS)
    actor = valid_actor(actor)
    member, club, program, now = prepare(session, membership, now)
    booked = apply_due(session, member, program, now)
    if points > member.balance:
        raise RuleViolation(
            f"cannot redeem {points} points: the balance is {member.balance}", code="insufficient_balance"
        )
    redeem_value = program.points.redeem_value if program.points else 0
    taken = take_fifo(session, member, points, released=True)
    assert taken == points, "spendable lots out of step with the balance"
    txn = book(session, member, REDEEM, actor=actor, now=now, balance=-points,
               amount=points * redeem_value, currency=club.currency,
               details={"redeem_value": redeem_value})
    return _after_points_left(session, member, club, now, booked, txn)


def _after_points_left(session: Session, member: Membership, club: ClubRules, now: datetime,
                       booked: list[LedgerTransaction], txn: LedgerTransaction) -> LedgerTransaction:
    """The end of a booking that took points: the member's expiring figures
    read again (the lots taken may have been the expiring ones), then the
    booking finished with ``txn`` last."""
    booked.append(txn)
    refresh_expiring(session, member, club.rules, now)
    finish_booking(session, member, club, booked)
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
    refund_of = require_int(refund_of, "refund_of", low=1, high=2**63 - 1)
    amount = require_int(amount, "amount", low=1, high=MAX_MONEY)
    actor = valid_actor(actor)
    member, club, program, now = prepare(session, membership, now)
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
        taken = take(own, points_due)
        if own.released:
            from_balance += taken
        else:
            from_pending += taken
    rest = points_due - from_balance - from_pending
    taken = take_fifo(session, member, min(rest, max(member.balance - from_balance, 0)), released=True)
    from_balance += taken
    rest -= taken
    taken = take_fifo(session, member, rest, released=False)
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
    txn = book(session, member, REFUND, actor=actor, now=now, balance=-from_balance, pending=-from_pending,
               cash=-cash, amount=amount, currency=club.currency, refund_of_id=original.id, details=details)
    return _after_points_left(session, member, club, now, booked, txn)


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
    points = require_int(points, "points", low=-MAX_POINTS, high=MAX_POINTS)
    if points == 0:
        raise RuleViolation("points must not be 0", code="invalid_amount")
    reason = valid_text(reason, "reason (an adjustment needs one)", max_len=500, code="invalid_reason",
                        multiline=True)
    actor = valid_actor(actor)
    member, club, program, now = prepare(session, membership, now)
    booked = apply_due(session, member, program, now)
    if points > 0:
        txn = credit(session, member, ADJUST, points, program=program, actor=actor, now=now,
                     reason=reason.strip())
    else:
        wanted = -points
        allow_negative = bool(program.points and program.points.allow_negative)
        if wanted > member.balance and not allow_negative:
            raise RuleViolation(
                f"cannot take {wanted} points: the balance is {member.balance}", code="insufficient_balance"
            )
        take_fifo(session, member, min(wanted, max(member.balance, 0)), released=True)
        txn = book(session, member, ADJUST, actor=actor, now=now, balance=points, reason=reason.strip())
        refresh_expiring(session, member, program, now)
    booked.append(txn)
    finish_booking(session, member, club, booked)
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
    return credit(session, member, BONUS, points, program=program, actor=actor, now=now, reason=kind,
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
