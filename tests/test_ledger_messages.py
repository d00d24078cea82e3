"""A brand's message reaches every targeted card with a push."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from tests.support.ledger import TIERS, add_members, buy, join, make_club, member, page_messages
from wallet.db import Database
from wallet.jobs.outbox import drain
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.messages import PAGE, send_club_message
from wallet.loyalty.models import Club, Membership, OutboxEvent


def test_a_club_message_bumps_every_active_members_card(db: Database) -> None:
    club_id = make_club(db)
    ids = [join(db, club_id) for _ in range(5)]
    with db.transaction() as s:
        s.get(Membership, ids[0]).status = "ended"
        # Each card's issue queued its pushers already; count what the message adds.
        before = s.scalar(select(func.max(OutboxEvent.id)))
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club_id), text="Double points this weekend") == 4
    assert page_messages(db) == 1
    with db.session() as s:
        club = s.get(Club, club_id)
        assert club.message == "Double points this weekend" and club.message_at is not None
        pushes = s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.kind == "card.changed", OutboxEvent.id > before))
        assert pushes == 4
    assert [member(db, mid).version for mid in ids] == [1, 2, 2, 2, 2]


def test_a_message_to_one_tier_reaches_only_that_tier(db: Database) -> None:
    club_id = make_club(db, {"points": {"earn_points": 1, "per_amount": 100}, "tiers": TIERS})
    silver, gold = join(db, club_id), join(db, club_id)
    buy(db, gold, 300_000)
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club_id), text="Gold lounge is open", tier="Gold") == 1
    assert member(db, gold).message is None  # the workers put it on the card
    assert page_messages(db) == 1
    assert member(db, gold).message == "Gold lounge is open"
    assert member(db, silver).message is None
    with db.session() as s:
        assert s.get(Club, club_id).message is None


def test_a_tier_message_pages_through_the_whole_club_however_few_of_a_page_it_targets(db: Database) -> None:
    # A page is the club's next PAGE members, of whom the message's targets
    # get it: one Gold member in three, and some of them gone, so no page
    # holds PAGE targets, and the pages still go on to the club's last member.
    club_id = make_club(db, {"points": {"earn_points": 1, "per_amount": 100}, "tiers": TIERS})
    with db.transaction() as s:
        add_members(s, club_id, 2 * PAGE + 10)
        ids = list(s.scalars(select(Membership.id).where(Membership.club_id == club_id).order_by(Membership.id)))
        gold = ids[::3]
        ended = set(gold[::10])
        s.execute(update(Membership).where(Membership.id.in_(gold)).values(tier="Gold"))
        s.execute(update(Membership).where(Membership.id.in_(ended)).values(status="ended"))
    targeted = [mid for mid in gold if mid not in ended]
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club_id), text="Gold lounge", tier="Gold") == len(targeted)
    assert page_messages(db) == 3
    with db.session() as s:
        got = set(s.scalars(select(Membership.id).where(Membership.message == "Gold lounge")))
    assert got == set(targeted)
    assert member(db, ids[-1]).message is None and member(db, targeted[-1]).message == "Gold lounge"


def test_a_message_needs_text_and_a_known_tier(db: Database) -> None:
    club_id = make_club(db, {"tiers": TIERS})
    with db.transaction() as s:
        with pytest.raises(RuleViolation):
            send_club_message(s, s.get(Club, club_id), text="  ")
        with pytest.raises(RuleViolation) as err:
            send_club_message(s, s.get(Club, club_id), text="hi", tier="Diamond")
        assert err.value.code == "unknown_tier"


def test_a_message_to_ten_thousand_members_is_set_based_and_paged(db: Database) -> None:
    club_id = make_club(db)
    with db.transaction() as s:
        add_members(s, club_id, 10_000)
    with db.session() as s:
        first, last = s.execute(select(func.min(Membership.id), func.max(Membership.id))).one()
    before = [member(db, mid).version for mid in (first, last)]
    statements: list[str] = []
    from sqlalchemy import event

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    with db.transaction() as s:
        event.listen(s.connection(), "before_cursor_execute", count)
        assert send_club_message(s, s.get(Club, club_id), text="Hello all") == 10_000
    assert len(statements) < 10  # the request only stores the message and queues its first page
    statements.clear()
    event.listen(db.write_engine, "before_cursor_execute", count)
    try:
        assert page_messages(db) == 10_000 // PAGE + 1  # the last one finds nobody left
    finally:
        event.remove(db.write_engine, "before_cursor_execute", count)
    assert len(statements) < 15 * (10_000 // PAGE)  # a handful per page, not one per member
    assert [member(db, mid).version for mid in (first, last)] == [v + 1 for v in before]


def test_a_message_to_more_than_a_page_reaches_every_card_once_while_the_tills_go_on(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wallet.jobs.dispatch import handle_club_message
    from wallet.loyalty import messages

    club_id = make_club(db)
    early = join(db, club_id)
    with db.transaction() as s:
        add_members(s, club_id, PAGE + 3)
    late = join(db, club_id)
    with db.session() as s:
        versions = dict(s.execute(select(Membership.id, Membership.version).where(Membership.club_id == club_id)).all())
        queued_before = s.scalar(select(func.max(OutboxEvent.id)))
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club_id), text="Everyone") == PAGE + 5
    bought = {early: 0, late: 0}
    assert page_messages(db, pages=1) == 1
    # Between pages a till books on a member the message has not reached yet.
    buy(db, late, 10_000)
    bought[late] += 1
    if not db.is_sqlite:
        # And while a page's transaction is open, a till of the same club
        # commits on a member outside that page (SQLite has one writer).
        write_page = messages.record_club_card_changes
        till_done: list[bool] = []

        def page_with_a_till(session: Any, ids: Any, **kw: Any) -> int:
            count = write_page(session, ids, **kw)
            till = threading.Thread(target=lambda: till_done.append(bool(buy(db, early, 10_000))))
            till.start()
            till.join(timeout=20)
            assert till_done == [True], "the till waited for the message's page"
            return count

        monkeypatch.setattr(messages, "record_club_card_changes", page_with_a_till)
        bought[early] += 1
    assert page_messages(db) == 1  # the second page has 5 members: the last
    monkeypatch.undo()
    # A worker that died after committing a page: its row is taken again, nothing is written twice.
    with db.session() as s:
        steps = list(s.scalars(select(OutboxEvent).where(OutboxEvent.kind == "club.message").order_by(OutboxEvent.id)))
    assert len(steps) == 2
    for step in steps:
        assert handle_club_message(None, db, [step]).done == {step.id}
    with db.session() as s:
        now = dict(s.execute(select(Membership.id, Membership.version).where(Membership.club_id == club_id)).all())
        pushes = dict(s.execute(select(OutboxEvent.membership_id, func.count(OutboxEvent.id))
                                .where(OutboxEvent.kind == "card.changed", OutboxEvent.id > queued_before)
                                .group_by(OutboxEvent.membership_id)).all())
    assert {mid: now[mid] - v for mid, v in versions.items()} == {mid: 1 + bought.get(mid, 0) for mid in versions}
    assert pushes == {mid: 1 + bought.get(mid, 0) for mid in versions}


def test_a_messages_next_page_waits_for_the_pushes_of_the_page_before(app: Flask, db: Database) -> None:
    """The workers take rows oldest first and a page queues the next behind
    its own cards' rows, so the outbox holds about two pages of a message
    whatever its size (a million-card message never puts a million rows in it)."""
    club_id = make_club(db)
    with db.transaction() as s:
        add_members(s, club_id, 5 * PAGE)
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club_id), text="Everyone") == 5 * PAGE
    most_pending = 0
    while drain(app, max_batches=1):
        with db.session() as s:
            pending = s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None)))
        most_pending = max(most_pending, pending or 0)
    assert PAGE < most_pending <= 2 * PAGE + 1
    with db.session() as s:
        pushed = s.scalar(select(func.count(func.distinct(OutboxEvent.membership_id)))
                          .where(OutboxEvent.kind == "card.changed", OutboxEvent.done_at.is_not(None)))
    assert pushed == 5 * PAGE
