"""A brand's message reaches every targeted card with a push."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.ledger import TIERS, buy, join, make_club, member
from wallet.db import Database
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.messages import send_club_message
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
    assert member(db, gold).message == "Gold lounge is open"
    assert member(db, silver).message is None
    with db.session() as s:
        assert s.get(Club, club_id).message is None


def test_a_message_needs_text_and_a_known_tier(db: Database) -> None:
    club_id = make_club(db, {"tiers": TIERS})
    with db.transaction() as s:
        with pytest.raises(RuleViolation):
            send_club_message(s, s.get(Club, club_id), text="  ")
        with pytest.raises(RuleViolation) as err:
            send_club_message(s, s.get(Club, club_id), text="hi", tier="Diamond")
        assert err.value.code == "unknown_tier"


def test_a_message_to_ten_thousand_members_is_set_based(db: Database) -> None:
    club_id = make_club(db)
    with db.transaction() as s:
        club = s.get(Club, club_id)
        s.add_all(
            Membership(club_id=club_id, email=f"c{i}@example.test", card_number=str(10**11 + i),
                       serial_number=f"s{i}", auth_token=f"t{i:020d}", download_token=f"d{i:020d}")
            for i in range(10_000)
        )
    statements: list[str] = []
    from sqlalchemy import event

    with db.transaction() as s:
        event.listen(s.connection(), "before_cursor_execute",
                     lambda *a: statements.append(a[2]))
        assert send_club_message(s, s.get(Club, club_id), text="Hello all") == 10_000
    assert len(statements) < 60  # a handful per thousand members, not one per member
