"""Recording a change that a member's card shows.

Every such change, in the transaction that makes it: the membership's version
grows, its Last-Modified moves forward, it takes the transaction's change
sequence number, and an outbox row asks the workers to re-render and push.

Why a locked counter rather than a timestamp or a database sequence: Apple's
devices ask "which of my passes changed since tag T". If two transactions
took numbers 10 and 11 and 11 committed first, a device that read 11 as its
tag would never see 10. Taking the number from a row that stays locked until
commit hands numbers out in commit order. The number is taken once per
transaction, as late as possible, so the lock is held only for the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.models import ChangeCounter, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind

PASS_COUNTER = "pass_changes"
_SEQ_KEY = "wallet.change_seq"


def next_change_seq(session: Session) -> int:
    """This transaction's change sequence number (the same for every call
    within one transaction)."""
    cached = session.info.get(_SEQ_KEY)
    if cached is not None and cached[0] is session.get_transaction():
        return cached[1]
    value = session.execute(
        update(ChangeCounter)
        .where(ChangeCounter.name == PASS_COUNTER)
        .values(value=ChangeCounter.value + 1)
        .returning(ChangeCounter.value)
    ).scalar_one_or_none()
    if value is None:
        raise RuntimeError(
            f"change counter {PASS_COUNTER!r} is missing: the schema is not up to date "
            "(run any flask --app wsgi command to migrate)"
        )
    session.info[_SEQ_KEY] = (session.get_transaction(), value)
    return value


def _next_modified_at(previous: datetime | None, now: datetime) -> datetime:
    # HTTP dates have whole seconds: two versions in one second would share a
    # Last-Modified and the second would be answered 304. Keep them apart.
    now = now.replace(microsecond=0)
    if previous is not None and now <= previous:
        return previous.replace(microsecond=0) + timedelta(seconds=1)
    return now


def record_card_change(session: Session, membership: Membership) -> OutboxEvent:
    """Bump the card's version and queue its re-render and push. The row
    names only the membership: the pushers render the card as it is when
    they run, so whatever changed meanwhile goes out too."""
    seq = next_change_seq(session)
    membership.version = (membership.version or 0) + 1
    membership.change_seq = seq
    membership.card_modified_at = _next_modified_at(membership.card_modified_at, utcnow())
    event = OutboxEvent(kind=OutboxKind.CARD_CHANGED, membership_id=membership.id)
    session.add(event)
    return event


def record_club_card_changes(
    session: Session,
    membership_ids: Sequence[int] | Iterable[int],
) -> int:
    """The same as ``record_card_change`` for many cards at once (a club
    message to 10,000 members), in set-based statements. Returns the count."""
    ids = list(membership_ids)
    if not ids:
        return 0
    seq = next_change_seq(session)
    now = utcnow().replace(microsecond=0)
    count = 0
    for chunk_start in range(0, len(ids), 1000):
        chunk = ids[chunk_start : chunk_start + 1000]
        rows = session.execute(
            select(Membership.id, Membership.version, Membership.card_modified_at).where(
                Membership.id.in_(chunk)
            )
        ).all()
        updates = []
        events = []
        for member_id, version, modified_at in rows:
            updates.append(
                {
                    "id": member_id,
                    "version": version + 1,
                    "change_seq": seq,
                    "card_modified_at": _next_modified_at(modified_at, now),
                }
            )
            events.append(
                {
                    "kind": OutboxKind.CARD_CHANGED,
                    "membership_id": member_id,
                    "payload": {},
                    "available_at": utcnow(),
                    "created_at": utcnow(),
                    "attempts": 0,
                }
            )
        if updates:
            session.execute(update(Membership), updates)
            session.execute(insert(OutboxEvent), events)
        count += len(updates)
    return count
