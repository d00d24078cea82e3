"""Ledger throughput: a stream of purchases against many members.

Each purchase is its own transaction, as a till's API call is: lock the
member, book the entry and lot, update the cached figures, bump the card and
write the outbox row, commit. Runs on a fresh SQLite file and on PostgreSQL
(a schema of its own, dropped afterwards) and prints transactions per second;
the last line is ``sqlite_tps=<x> postgres_tps=<y>``.

    .venv/bin/python -m bench.ledger [--members 500] [--purchases 3000] [--workers 4]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import secrets
import tempfile
import time

from sqlalchemy import create_engine, text

from tests.support.ledger import cached_figures, recompute_figures
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.program import validate_program
from wallet.schema import upgrade_schema

PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 365},
    "tiers": {"levels": [{"name": "Silver", "min_spend": 0},
                         {"name": "Gold", "min_spend": 3_000_000, "earn_points": 7}]},
    "cashback": {"percent": "1"},
    "stamps": {"required": 10, "reward": "Free coffee"},
}


def setup(db: Database, members: int) -> list[int]:
    with db.transaction() as s:
        brand = Brand(name="Bench", email=f"bench-{secrets.token_hex(4)}@example.test")
        s.add(brand)
        s.flush()
        club = Club(brand_id=brand.id, name="Bench club", program=validate_program(PROGRAM))
        s.add(club)
        s.flush()
        ids = [enrol(s, club, email=f"m{i}@bench.test")[0].id for i in range(members)]
    return ids


def _worker(job: tuple[str, list[int], int, int]) -> int:
    """One till process: its own engine, a stream of purchases."""
    url, ids, count, seed = job
    db = Database(url)
    rng = random.Random(seed)
    try:
        for _ in range(count):
            with db.transaction() as s:
                member = s.get(Membership, rng.choice(ids))
                ledger.purchase(s, member, amount=rng.randrange(1_000, 500_000), actor="bench")
    finally:
        db.dispose()
    return count


def stream(url: str, ids: list[int], purchases: int, workers: int) -> float:
    """Purchases from ``workers`` processes at once (tills are separate
    processes in production, and Python threads would measure the GIL)."""
    per_worker = max(1, purchases // workers)
    jobs = [(url, ids, per_worker, seed) for seed in range(workers)]
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        started = time.perf_counter()
        done = sum(pool.map(_worker, jobs))
        elapsed = time.perf_counter() - started
    return done / elapsed


def check(db: Database, ids: list[int]) -> None:
    with db.session() as s:
        for mid in ids[:50]:
            m = s.get(Membership, mid)
            assert cached_figures(m) == recompute_figures(s, m), f"member {mid} out of step"


def run(url: str, args: argparse.Namespace, label: str) -> float:
    upgrade_schema(url)
    db = Database(url)
    try:
        ids = setup(db, args.members)
    finally:
        db.dispose()
    stream(url, ids, min(100, args.purchases), args.workers)  # warm up
    tps = stream(url, ids, args.purchases, args.workers)
    db = Database(url)
    try:
        check(db, ids)
    finally:
        db.dispose()
    print(f"{label}: {args.purchases} purchases, {args.members} members, {args.workers} workers: "
          f"{tps:.0f} transactions/s", flush=True)
    return tps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--purchases", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4, help="till processes")
    parser.add_argument("--postgres", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_tps = run(f"sqlite:///{tmp}/bench.sqlite3", args, "sqlite")

    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.postgres else "?"
        postgres_tps = run(f"{args.postgres}{sep}options=-csearch_path%3D{schema}", args, "postgres")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    print(f"sqlite_tps={sqlite_tps:.0f} postgres_tps={postgres_tps:.0f}")


if __name__ == "__main__":
    main()
