"""A generated history for the demo's points club (``demo --history``), so
its numbers page shows every figure: 14 months of members joining from
every source, purchases, redemptions, refunds, points expiring, cards added
to and removed from each wallet, and survey answers with comments.

Everything is booked through the core with ``now`` in the past, day by
day in time order, and the time rules run at each month's start, so the
history obeys the club's rules as live bookings would. The same seed gives
the same history; it is made once per club.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, select

from wallet.db import Database, utcnow
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.ledger import purchase, redeem, refund
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.nps import answer_survey
from wallet.loyalty.numbers_models import NpsAnswer
from wallet.loyalty.schedule import run_time_rules

DAYS = 420
MEMBERS = 160
SEED = 20261202
FIRST_NAMES = ("Anna", "Ivan", "Maria", "Oleg", "Elena", "Dmitry", "Olga", "Sergey", "Natalia", "Pavel")
LAST_NAMES = ("Petrova", "Smirnov", "Ivanova", "Kuznetsov", "Popova", "Volkov", "Sokolova", "Lebedev")
SOURCES = ("join_page", "join_page", "api", "api", "import")
WALLETS = ("apple", "apple", "google", "google", "walletpasses", "walletunion", "walletunion_hms")
COMMENTS = {
    "promoter": ("The best flat white in town", "Friendly baristas", "Love collecting points"),
    "passive": ("Good coffee, long queue in the mornings", "Fine, but the app could remind me"),
    "detractor": ("Prices went up", "My points expired without warning", "Too noisy to work there"),
}


def load_history(db: Database, club_id: int, *, members_count: int = MEMBERS, days: int = DAYS) -> int:
    """Makes the club's history unless it has one; returns its members."""
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(NpsAnswer).where(NpsAnswer.club_id == club_id)):
            return 0
    rng = random.Random(SEED)
    today = utcnow().date()
    start = today - timedelta(days=days)
    joins = sorted(rng.randrange(days - 7) for _ in range(members_count))
    members: list[int] = []
    loyal: dict[int, float] = {}
    receipts: dict[int, list[int]] = {}
    for offset in range(days + 1):
        day = start + timedelta(days=offset)
        if day.day == 1 and offset:
            run_time_rules(db, datetime.combine(day, time(0, 5), tzinfo=timezone.utc))
        moment = datetime.combine(day, time(9), tzinfo=timezone.utc)
        with db.transaction() as session:
            club = session.get(Club, club_id)
            for _ in range(joins.count(offset)):
                number = len(members) + 1
                referrer = session.get(Membership, rng.choice(members)) if members and rng.random() < 0.15 else None
                member, _created = enrol(
                    session, club, email=f"guest{number}@history.example", locale=rng.choice(("en", "ru")),
                    name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", now=moment,
                    source=rng.choice(SOURCES), referral_code=referrer.referral_code if referrer else None)
                members.append(member.id)
                loyal[member.id] = rng.choice((0.004, 0.01, 0.03, 0.06, 0.12))
                if rng.random() < 0.7:
                    wallet = rng.choice(WALLETS)
                    record_card_changes(session, member, before=[], after=[wallet], now=moment)
                    if rng.random() < 0.12:
                        gone = moment + timedelta(days=rng.randrange(1, 90))
                        if gone.date() < today:
                            record_card_changes(session, member, before=[wallet], after=[], now=gone)
            for member_id in members:
                if rng.random() >= loyal[member_id]:
                    continue
                member = session.get(Membership, member_id)
                at = moment + timedelta(minutes=rng.randrange(600))
                kind = rng.random()
                if kind < 0.08 and member.balance >= 50:
                    redeem(session, member, points=rng.randrange(50, max(51, member.balance // 2 + 1)), actor="demo", now=at)
                elif kind < 0.11 and receipts.get(member_id):
                    try:
                        refund(session, member, refund_of=receipts[member_id].pop(), amount=10_000,
                               actor="demo", now=at)
                    except RuleViolation:
                        pass  # a refund above what is left of the purchase: the till would refuse it too
                else:
                    amount = rng.choice((12_000, 25_000, 40_000, 65_000, 120_000, 250_000, 450_000))
                    booked = purchase(session, member, amount=amount, actor="demo", now=at)
                    receipts.setdefault(member_id, []).append(booked.id)
                if rng.random() < 0.04:
                    _answer(session, member, rng, at)
    return len(members)


def _answer(session, member: Membership, rng: random.Random, at: datetime) -> None:  # type: ignore[no-untyped-def]
    score = rng.choice((10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3))
    group = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    comment = rng.choice(COMMENTS[group]) if rng.random() < 0.5 else ""
    try:
        with session.begin_nested():
            answer_survey(session, member, score=score, comment=comment, now=at)
    except RuleViolation:
        pass  # answered this quarter already
