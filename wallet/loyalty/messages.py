"""Club-wide messages shown on members' cards (the pass's news field).

``send_club_message`` stores the message and queues an outbox row of kind
``club.message``; the workers (wallet.jobs.dispatch) put it on the cards
``PAGE`` members at a time (``run_message_page``), each page in its own
transaction that also queues the next, as a campaign's pages go
(wallet.loyalty.campaigns). So a message to 100,000 members never holds
the club's member rows, and its tills, for more than one page. The step's
outbox row is marked done in the page's own transaction (the workers'
``_step_by_step``), so a worker that dies after committing a page never
writes it again. A page queues the next behind its own pushes, so a
message to a million cards keeps about two pages of rows in the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from wallet.db import execute_core_all, utcnow
from wallet.loyalty.cards import among, record_club_card_changes
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, require
from wallet.loyalty.program import Program

MAX_MESSAGE = 500
# Members written per transaction.
PAGE = 500


@dataclass(frozen=True)
class ClubMessagePayload(OutboxPayload):
    """An outbox row of kind club.message: the page of the club's members
    after membership id ``after_id``, of whom the active ones (of ``tier``
    only, if given) get the message.
    A message to everyone is the club's (``club.message``: the cards only
    change version); a tier's ``text`` goes on each of its members' cards
    (``membership.message``), dated ``sent_at`` (ISO 8601)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CLUB_MESSAGE

    club_id: int
    after_id: int
    sent_at: str
    tier: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        require(self.club_id, int, "club_id")
        require(self.after_id, int, "after_id")
        require(self.sent_at, str, "sent_at")
        datetime.fromisoformat(self.sent_at)
        if self.tier is not None:
            require(self.tier, str, "tier")
            require(self.text, str, "text")


_NO_BITMAP_SCAN = sql_text("SET LOCAL enable_bitmapscan = off")


def _targeted(tier: Any) -> ColumnElement[bool]:
    """Which of a club's members a message goes to."""
    active = Membership.status == "active"
    return active if tier is None else and_(active, Membership.tier == tier)


def send_club_message(session: Session, club: Club, *, text: str, tier: str | None = None) -> int:
    """Put ``text`` on the cards of every active member (of ``tier`` only, if
    given): store it and queue the pages that bump the cards and queue their
    pushes. Returns how many cards will show it (the active members now).

    A message to everyone is the club's; a message to one tier is stored on
    each targeted membership (membership.message), since other tiers must not
    see it.
    """
    text = valid_text(text, "text", max_len=MAX_MESSAGE, code="invalid_text", multiline=True)
    now = utcnow()
    if tier is not None:
        program = Program.of(club)
        if not program.tiers or program.tiers.rank(tier) < 0:
            raise RuleViolation(f"the club has no tier {tier!r}", code="unknown_tier")
    else:
        club.message = text
        club.message_at = now
    cards = session.scalar(select(func.count()).where(Membership.club_id == club.id, _targeted(tier))) or 0
    if cards:
        session.add(OutboxEvent.carrying(
            ClubMessagePayload(club_id=club.id, after_id=0, sent_at=now.isoformat(), tier=tier,
                               text=text if tier is not None else None), club_id=club.id))
    return cards


def club_page(session: Session, club_id: int, after_id: int,
              targeted: ColumnElement[bool]) -> list[tuple[int, bool]]:
    """The club's next ``PAGE`` members after ``after_id`` by id, each with
    whether ``targeted`` holds for it: how a message, a campaign and the
    members' export walk a club. Read through the index of (club_id, id), a page costs the same
    wherever it falls in a club of any size, whatever share of it is
    targeted.

    The targets' conditions are not in the page's WHERE, where they would
    let the planner, without statistics of the table, take an index of the
    club's active members and sort the whole club for each page (0.25 to
    1.4 s a page at 300,000 members, a message's time growing with the
    square of its size), or, with statistics, walk the club until it has
    found a page of targets (0.7 s in one transaction for a segment that
    holds few). They are tested on the page's rows alone, joined back by
    primary key, so the planner expects ``PAGE`` rows and probes a
    segment's other tables (registrations, ledger, lots) per row rather
    than hashing all of them for each page. For the same reason as the
    first (no autovacuum, so no ANALYZE) PostgreSQL is told not to gather
    the rest of the club as a bitmap and sort it either."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NO_BITMAP_SCAN)
    rows = session.execute(_page_of(club_id, after_id, targeted)).all()
    return [(member_id, bool(chosen)) for member_id, chosen in rows]


def _page_of(club_id: Any, after_id: Any, targeted: ColumnElement[bool]) -> Select[tuple[int, bool]]:
    """``club_page``'s statement."""
    page = (select(Membership.id).where(Membership.club_id == club_id, Membership.id > after_id)
            .order_by(Membership.id).limit(PAGE).subquery())
    return select(Membership.id, targeted).join(page, Membership.id == page.c.id).order_by(Membership.id)


# A message's page on PostgreSQL (to everyone, to a tier), built once per
# process and run on the driver (wallet.db.execute_core_all): built for
# each page and run through the session's execution, with the page's
# writes (wallet.loyalty.cards.record_club_card_changes) about a quarter of
# the outbox workers' batch threads (py-spy --gil during bench.push).
_MESSAGE_PAGES = {tiered: _page_of(bindparam("club_id"), bindparam("after_id"),
                                   _targeted(bindparam("tier") if tiered else None))
                  for tiered in (False, True)}


def _message_page(session: Session, payload: ClubMessagePayload) -> list[tuple[int, bool]]:
    """``club_page`` for a message's page."""
    if session.get_bind().dialect.name != "postgresql":
        return club_page(session, payload.club_id, payload.after_id, _targeted(payload.tier))
    session.execute(_NO_BITMAP_SCAN)
    rows = execute_core_all(session, _MESSAGE_PAGES[payload.tier is not None],
                            {"club_id": payload.club_id, "after_id": payload.after_id, "tier": payload.tier})
    return [(member_id, bool(chosen)) for member_id, chosen in rows]


def run_message_page(session: Session, payload: ClubMessagePayload) -> int:
    """Write the page the payload names and queue the next, in the caller's
    transaction (in which the workers mark the step's row done).
    Returns how many cards were bumped.

    A page is the club's next ``PAGE`` members by id (``club_page``),
    those the message targets among them bumped."""
    page = _message_page(session, payload)
    ids = [member_id for member_id, targeted in page if targeted]
    if payload.tier is not None and payload.text is not None:
        count = put_message(session, ids, text=payload.text, now=datetime.fromisoformat(payload.sent_at))
    else:
        count = record_club_card_changes(session, ids)
    if len(page) == PAGE:
        # Queued after this page's card rows (and dated after them): the
        # workers, oldest first, take this page's pushes before the next
        # page, so the outbox holds about two pages of a message whatever
        # its size.
        session.add(OutboxEvent.carrying(
            ClubMessagePayload(club_id=payload.club_id, after_id=page[-1][0], sent_at=payload.sent_at,
                               tier=payload.tier, text=payload.text), club_id=payload.club_id))
    return count


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
        session.execute(select(Membership.id).where(among(session, Membership.id, page)).order_by(Membership.id)
                        .with_for_update(key_share=True)).all()
        session.execute(
            update(Membership).where(among(session, Membership.id, page)).values(message=text, message_at=now)
            .execution_options(synchronize_session=False)
        )
    return record_club_card_changes(session, ids, occasion=occasion)
