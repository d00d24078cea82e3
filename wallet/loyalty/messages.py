"""Club-wide messages shown on members' cards (the pass's news field)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.cards import record_club_card_changes
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.fields import valid_text
from wallet.loyalty.program import Program

MAX_MESSAGE = 500


def send_club_message(session: Session, club: Club, *, text: str, tier: str | None = None) -> int:
    """Put ``text`` on the cards of every active member (of ``tier`` only, if
    given) and queue their pushes. Returns how many cards were bumped.

    A message to everyone is the club's; a message to one tier is stored on
    each targeted membership (membership.message), since other tiers must not
    see it. Set-based, so 10,000 members cost a few statements per thousand.
    """
    text = valid_text(text, "text", max_len=MAX_MESSAGE, code="invalid_text", multiline=True)
    now = utcnow()
    query = select(Membership.id).where(Membership.club_id == club.id, Membership.status == "active")
    if tier is not None:
        program = Program.of(club)
        if not program.tiers or program.tiers.rank(tier) < 0:
            raise RuleViolation(f"the club has no tier {tier!r}", code="unknown_tier")
        query = query.where(Membership.tier == tier)
    if tier is not None:
        return put_message(session, list(session.scalars(query.order_by(Membership.id))), text=text, now=now)
    # Lock the targeted rows in ascending id order, the order every ledger
    # writer uses, so a message never deadlocks a till.
    ids = list(session.scalars(query.order_by(Membership.id).with_for_update(key_share=True)))
    club.message = text
    club.message_at = now
    return record_club_card_changes(session, ids)


def put_message(session: Session, membership_ids: Sequence[int], *, text: str, now: datetime,
                occasion: str | None = None) -> int:
    """Put ``text`` on these cards only (membership.message) and queue
    their pushes; ``occasion`` names the delivery the workers record
    (wallet.loyalty.campaigns). The rows are locked in ascending id order,
    the order every ledger writer uses, so a message never deadlocks a till.
    Returns how many cards were bumped."""
    ids = sorted(set(membership_ids))
    for start in range(0, len(ids), 1000):
        page = ids[start : start + 1000]
        session.execute(select(Membership.id).where(Membership.id.in_(page)).order_by(Membership.id)
                        .with_for_update(key_share=True)).all()
        session.execute(
            update(Membership).where(Membership.id.in_(page)).values(message=text, message_at=now)
            .execution_options(synchronize_session=False)
        )
    return record_club_card_changes(session, ids, occasion=occasion)
