"""How long a club's numbers take as its history grows, on PostgreSQL.

    .venv/bin/python -m bench.dashboard [--members 2000] [--recent 10000] [--large 1000000] [--rounds 5]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

In a schema of its own, two clubs with the same program, members and recent
life, built with bulk SQL (INSERT ... SELECT generate_series):

- small: --members members who joined in the last year and --recent ledger
  entries (purchases, redemptions, bonuses, expiries) over the last year,
  a card on a phone for most members, survey answers;
- large: the same recent year, plus older history up to --large ledger
  entries in all: entries, members and answers of the ten years before.

The dashboard (wallet.loyalty.numbers.compute, every figure of the portal's
numbers page, the default period of the last 90 days) is computed --rounds
times for each club and the best time kept: a figure that read the club's
whole history would take about --large / --recent times longer on the large
club. The last line is

    small_ms=<x> large_ms=<y> ratio=<y/x> entries_small=<n> entries_large=<m>

and the ratio should stay under 3.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.common import DEFAULT_POSTGRES, app_environment, machine, postgres_schema
from wallet import create_app
from wallet.db import Database
from wallet.loyalty.brands import create_brand
from wallet.loyalty.models import Club
from wallet.loyalty.numbers import compute, period_of
from wallet.loyalty.program import validate_program
from wallet.schema import upgrade_schema
from wallet.db import utcnow

PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 365},
    "tiers": {"levels": [{"name": "Silver", "min_spend": 0},
                         {"name": "Gold", "min_spend": 3_000_000, "earn_points": 7}]},
}
YEAR = "365 days"
OLD = "3650 days"  # the ten years before the last one

MEMBERS = """
INSERT INTO memberships (club_id, card_number, serial_number, auth_token, download_token, name, locale, status,
    balance, pending, cash_balance, stamps, expiring_points, tier, version, change_seq, card_modified_at, created_at,
    source)
SELECT :club, lpad((:club * 10000000 + n)::text, 12, '0'), md5(:club || '-' || n), md5('a' || :club || n),
    md5('d' || :club || n), 'Member ' || n, 'en', 'active', (random() * 500)::int, 0, 0, 0, 0,
    CASE WHEN n % 5 = 0 THEN 'Gold' ELSE 'Silver' END, 1, 0, now(), {joined}, 'api'
FROM generate_series(:start, :start + :count - 1) AS n
"""

# One ledger entry per n: mostly purchases, some redemptions, bonuses and expiries.
ENTRIES = """
INSERT INTO ledger_transactions (membership_id, club_id, type, points, balance_delta, pending_delta, cash_delta,
    stamps_delta, amount, currency, refunded_amount, actor, details, created_at)
SELECT m, :club, kind, pts, pts, 0, 0, 0, amount, 'RUB', 0, 'bench', '{{}}', at
FROM (
    SELECT :first + (random() * (:members - 1))::int AS m,
           CASE WHEN r < 0.80 THEN 'purchase' WHEN r < 0.90 THEN 'redeem' WHEN r < 0.97 THEN 'bonus'
                ELSE 'expire' END AS kind,
           CASE WHEN r < 0.80 THEN (random() * 100)::int WHEN r < 0.90 THEN -(random() * 100)::int
                WHEN r < 0.97 THEN 100 ELSE -(random() * 20)::int END AS pts,
           CASE WHEN r < 0.80 THEN 10000 + (random() * 500000)::int ELSE NULL END AS amount,
           {at} AS at
    FROM (SELECT random() AS r FROM generate_series(1, :count)) AS draws
) AS entries
"""

CARDS = """
INSERT INTO card_events (club_id, membership_id, wallet, installed, created_at)
SELECT club_id, id, CASE WHEN id % 3 = 0 THEN 'google' ELSE 'apple' END, TRUE, created_at
FROM memberships WHERE club_id = :club AND id % 4 <> 0
"""

ANSWERS = """
INSERT INTO nps_answers (club_id, membership_id, period, score, comment, tier, created_at)
SELECT :club, id, 'Q' || q, (random() * 10)::int, CASE WHEN id % 7 = 0 THEN 'A comment' ELSE '' END, tier,
       now() - (q * 90 + 1) * interval '1 day' + random() * interval '80 days'
FROM memberships, generate_series(0, :quarters - 1) AS q
WHERE club_id = :club AND id % 3 = 0
"""


def _club(db: Database, brand_id: int, name: str) -> int:
    with db.transaction() as session:
        club = Club(brand_id=brand_id, name=name, currency="RUB", program=validate_program(PROGRAM))
        session.add(club)
        session.flush()
        return club.id


def _members(db: Database, club_id: int, count: int, joined: str, *, start: int = 1) -> int:
    """Adds ``count`` members (numbered from ``start``); returns the first
    one's id (their ids follow)."""
    with db.engine.begin() as conn:
        conn.execute(text(MEMBERS.format(joined=joined)), {"club": club_id, "count": count, "start": start})
        return int(conn.execute(text("SELECT max(id) FROM memberships WHERE club_id = :club"),
                                {"club": club_id}).scalar_one()) - count + 1


def _entries(db: Database, club_id: int, first: int, members: int, count: int, at: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(ENTRIES.format(at=at)), {"club": club_id, "first": first, "members": members,
                                                   "count": count})


def build(db: Database, brand_id: int, name: str, *, members: int, recent: int, total: int) -> int:
    """A club whose last year is the same whatever ``total``; the rest of its
    ``total`` entries, and half its members, are older."""
    club_id = _club(db, brand_id, name)
    old_members = members // 2 if total > recent else 0
    if old_members:
        first_old = _members(db, club_id, old_members, f"now() - interval '{YEAR}' - random() * interval '{OLD}'")
    first = _members(db, club_id, members - old_members, f"now() - random() * interval '{YEAR}'",
                     start=old_members + 1)
    if old_members:
        first = first_old  # recent entries come from every member, old ones from the old members
    _entries(db, club_id, first, members, recent, f"now() - random() * interval '{YEAR}'")
    left = total - recent
    chunk = 200_000
    while left > 0:
        _entries(db, club_id, first, old_members or members, min(chunk, left),
                 f"now() - interval '{YEAR}' - random() * interval '{OLD}'")
        left -= chunk
    with db.engine.begin() as conn:
        conn.execute(text(CARDS), {"club": club_id})
        conn.execute(text(ANSWERS), {"club": club_id, "quarters": 44 if old_members else 4})
    return club_id


def dashboard_ms(db: Database, club_id: int, rounds: int) -> float:
    """The best of ``rounds`` computations of the club's numbers, in ms."""
    best = float("inf")
    today = utcnow().date()
    for _ in range(rounds):
        with db.session() as session:
            club = session.get(Club, club_id)
            started = time.perf_counter()
            compute(session, [club], period_of(None, None, today=today))
            best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--recent", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES))
    args = parser.parse_args()

    with postgres_schema(args.postgres) as url, tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        config, _env = app_environment(Path(tmp), url)
        upgrade_schema(url)
        db: Database = create_app(config).extensions["wallet.db"]
        with db.transaction() as session:
            brand, _key = create_brand(session, name="Bench", email="bench@brand.test", password="bench-password")
            brand_id = brand.id
        started = time.perf_counter()
        small = build(db, brand_id, "Small", members=args.members, recent=args.recent, total=args.recent)
        large = build(db, brand_id, "Large", members=args.members, recent=args.recent, total=args.large)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
            counts = dict(conn.execute(text("SELECT club_id, count(*) FROM ledger_transactions GROUP BY club_id"))
                          .tuples().all())
        print(f"PostgreSQL; built {counts[small]} and {counts[large]} ledger entries, {args.members} members each, "
              f"in {time.perf_counter() - started:.0f} s; {machine()}", flush=True)
        small_ms = dashboard_ms(db, small, args.rounds)
        large_ms = dashboard_ms(db, large, args.rounds)
        print(f"  dashboard of the last 90 days, best of {args.rounds}: {counts[small]} entries {small_ms:.1f} ms, "
              f"{counts[large]} entries {large_ms:.1f} ms")
        print(f"  after: {machine()}")
        print(f"small_ms={small_ms:.1f} large_ms={large_ms:.1f} ratio={large_ms / small_ms:.2f} "
              f"entries_small={counts[small]} entries_large={counts[large]}")


if __name__ == "__main__":
    main()
