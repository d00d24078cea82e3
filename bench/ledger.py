"""Purchases per second on PostgreSQL: the core, the HTTP API, and the floor.

    .venv/bin/python -m bench.ledger [--seconds 6] [--rounds 3] [--tills 1,2,4] [--http-clients 8]
        [--web-workers 4] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--http-only]

In a schema of its own, with one club (points, tiers, cashback, stamps):

1. core: 1, 2 and 4 till processes, each on members of its own, book
   purchases through ``wallet.loyalty.ledger`` for a fixed time. Card changes
   of different members share no row, so throughput grows with the tills
   (up to the cores).
2. floor: the same processes doing the minimal equivalent transaction with
   psycopg directly on the same tables and indexes: lock the member, insert
   the ledger row, update the balance, insert the outbox row, commit. The
   core and the floor run in turn, --rounds rounds each, --seconds in all:
   the host is shared and its speed moves within a minute.
3. http: gunicorn (sync workers) and client processes POSTing purchases with
   a fresh Idempotency-Key each (a replay would be answered without booking
   and flatter the figure), beside the floor with as many clients, and
   beside the web's own floor: the same clients POSTing the same requests
   to a bare Flask app under the same gunicorn (bench/bare_api.py) that
   answers 201 with a JSON body of the real answer's size. The server's
   CPU is read over the timed round only: a worker's first requests
   (compiling statements, loading keys) are start-up, not a purchase.
   As in production, a Google service account is configured and every
   card is already in Google Wallet (its object inserted and its skinny
   save link stored, as the workers' sync leaves it after a card's first
   change), so an answer's save link carries the object's id only and is
   read from the card's row, once per card and worker. With
   --development-google there is no service account: every answer then
   carries the full object, balance included, signed anew (one RSA
   signature per purchase).

Every till and client is a process of its own, as tills are in production
(threads would measure the GIL). The load generator shares the cores: its
clients write HTTP/1.1 by hand on a socket (bench.common.exchange), and
their CPU per purchase is printed beside gunicorn's and PostgreSQL's. The
cached figures of the members are checked against their ledger at the end.
The last line is

    core_per_s=<x> floor_per_s=<y> ratio=<x/y> http_per_s=<z> http_floor_per_s=<w>

for 4 tills (the largest of --tills) and --http-clients clients; w is the
bare Flask app's rate. With --http-only only the HTTP figures are run (the
short run for profiling a gunicorn worker): the last line is then

    http_per_s=<z> http_floor_per_s=<w>
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import event, select

from bench.common import (DEFAULT_POSTGRES, ROOT, address_of, app_environment, application_name, backend_cpu,
                          cpu_seconds, cpu_spent, exchange, http_request, machine, postgres_schema, start_gunicorn,
                          stop, tree_cpu, wait_http)
from tests.support.ledger import cached_figures, recompute_figures
from wallet import create_app
from wallet.db import Database, utcnow
from wallet.config import get_settings
from wallet.google.identity import get_identity, write_service_account
from wallet.google.links import stored_link
from wallet.google.models import GoogleObject
from wallet.google.objects import object_id
from wallet.loyalty import ledger
from wallet.loyalty.brands import create_brand
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import validate_program
from wallet.schema import upgrade_schema

PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 365},
    "tiers": {"levels": [{"name": "Silver", "min_spend": 0},
                         {"name": "Gold", "min_spend": 3_000_000, "earn_points": 7}]},
    "cashback": {"percent": "1"},
    "stamps": {"required": 10, "reward": "Free coffee"},
}

Counted = tuple[int, float, float]  # purchases, CPU seconds of the process, of its database server processes


def _core_till(url: str, ids: list[int], deadline: float, seed: int) -> Counted:
    db = Database(url)
    backends: set[int] = set()
    event.listen(db.engine, "connect", lambda conn, _record: backends.add(conn.info.backend_pid))
    rng = random.Random(seed)
    done = 0
    cpu = time.process_time()
    try:
        while time.time() < deadline:
            with db.transaction() as s:
                member = ledger.get_member_for_update(s, rng.choice(ids), with_referrer=True)
                ledger.purchase(s, member, amount=rng.randrange(1_000, 500_000), actor="bench")
            done += 1
        return done, time.process_time() - cpu, sum(cpu_seconds(pid) for pid in backends)
    finally:
        db.dispose()


def _floor_till(url: str, ids: list[int], deadline: float, seed: int) -> Counted:
    """The minimal equivalent transaction, by hand."""
    rng = random.Random(seed)
    conninfo, _, query = url.replace("postgresql+psycopg://", "postgresql://").partition("?")
    options = dict(part.split("=", 1) for part in query.split("&") if part)
    done = 0
    cpu = time.process_time()
    with psycopg.connect(conninfo, options=options.get("options", "").replace("%3D", "="),
                         application_name=options.get("application_name", "")) as conn:
        while time.time() < deadline:
            member_id, amount = rng.choice(ids), rng.randrange(1_000, 500_000)
            points = amount * 5 // 10000
            with conn.transaction():
                club_id = conn.execute("SELECT club_id FROM memberships WHERE id = %s FOR NO KEY UPDATE",
                                       (member_id,)).fetchone()[0]
                conn.execute(
                    "INSERT INTO ledger_transactions (membership_id, club_id, type, points, balance_delta,"
                    " pending_delta, cash_delta, stamps_delta, amount, currency, refunded_amount, actor, details,"
                    " created_at) VALUES (%s, %s, 'purchase', %s, %s, 0, 0, 1, %s, 'RUB', 0, 'bench', '{}', now())"
                    " RETURNING id", (member_id, club_id, points, points, amount)).fetchone()
                conn.execute("UPDATE memberships SET balance = balance + %s, stamps = stamps + 1,"
                             " version = version + 1 WHERE id = %s", (points, member_id))
                conn.execute("INSERT INTO outbox (kind, membership_id, payload, attempts, available_at, created_at)"
                             " VALUES ('card.changed', %s, '{}', 0, now(), now())", (member_id,))
            done += 1
        return done, time.process_time() - cpu, cpu_seconds(conn.info.backend_pid)


def _http_client(base: str, key: str, ids: list[int], deadline: float, seed: int, passes: int = 0) -> Counted:
    """Purchases on random members of ``ids`` until ``deadline``; with
    ``passes``, each of them read that many times first (the warm-up)."""
    rng = random.Random(seed)
    address = address_of(base)
    if passes:  # the warm-up: the reads, then half a second of purchases
        for member_id in [member_id for _ in range(passes) for member_id in ids]:
            status, _headers, answer = exchange(address, http_request(
                "GET", address, f"/api/v1/members/{member_id}", {"Authorization": f"Bearer {key}"}))
            if status != 200:
                raise SystemExit(f"a member's read answered {status}: {answer[:200]!r}")
        deadline = time.time() + 0.5
    done = 0
    cpu = time.process_time()
    while time.time() < deadline:
        body = json.dumps({"type": "purchase", "amount": rng.randrange(1_000, 500_000)}).encode()
        member_id = rng.choice(ids)
        status, _headers, answer = exchange(address, http_request(
            "POST", address, f"/api/v1/members/{member_id}/transactions", {
                "Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json"}, body))
        if status != 201 or not answer.startswith(b"{"):
            raise SystemExit(f"purchase answered {status}: {answer[:200]!r}")
        done += 1
    return done, time.process_time() - cpu, 0.0  # the server's CPU is read from its processes


def _run(job: tuple[str, Any, list[int], float, int]) -> Counted:
    kind, target, ids, deadline, seed = job
    if kind == "core":
        return _core_till(target, ids, deadline, seed)
    if kind == "floor":
        return _floor_till(target, ids, deadline, seed)
    return _http_client(*target[:2], ids, deadline, seed, *target[2:])


@dataclass
class Rate:
    per_s: float
    # CPU milliseconds per purchase: the tills' own and their database server processes'.
    client_ms: float
    server_ms: float
    # Under gunicorn: client_ms is gunicorn's, and this the load generator's own.
    load_ms: float = 0.0
    done: int = 0
    elapsed: float = 0.0

    def __str__(self) -> str:
        return f"{self.per_s:.0f}/s (CPU per purchase {self.client_ms:.2f} ms + database {self.server_ms:.2f} ms)"


def rate(kind: str, target: Any, groups: list[list[int]], seconds: float,
         warm: Callable[[], None] | None = None, warm_target: Any = None) -> Rate:
    """Purchases per second of len(groups) processes, each on its own members;
    ``warm`` is called between the warm-up round and the timed one, which
    goes to ``warm_target`` if given."""
    context = multiprocessing.get_context("fork")
    with context.Pool(len(groups)) as pool:
        # A short round first: connections, caches and the code are warm.
        pool.map(_run, [(kind, warm_target or target, ids, time.time() + 0.5, i) for i, ids in enumerate(groups)])
        if warm is not None:
            warm()
        start = time.time()
        counted = pool.map(_run, [(kind, target, ids, start + seconds, 100 + i) for i, ids in enumerate(groups)])
        elapsed = time.time() - start
    done = sum(c[0] for c in counted) or 1
    return Rate(done / elapsed, 1000 * sum(c[1] for c in counted) / done, 1000 * sum(c[2] for c in counted) / done,
                done=done, elapsed=elapsed)


def combined(rounds: list[Rate]) -> Rate:
    """One rate of several rounds: their purchases over their seconds."""
    done, elapsed = sum(r.done for r in rounds), sum(r.elapsed for r in rounds)
    return Rate(done / elapsed, sum(r.client_ms * r.done for r in rounds) / done,
                sum(r.server_ms * r.done for r in rounds) / done, done=done, elapsed=elapsed)


def core_and_floor(url: str, groups: list[list[int]], seconds: float, rounds: int) -> tuple[Rate, Rate]:
    """The core's rate and the floor's, in rounds taken in turn: the host is
    shared, and its speed moves within a minute."""
    taken = [(rate("core", url, groups, seconds / rounds), rate("floor", url, groups, seconds / rounds))
             for _ in range(rounds)]
    return combined([core for core, _ in taken]), combined([floor for _, floor in taken])


def served_rate(env: dict[str, str], workers: int, app: str, target: tuple[str | None, str],
                groups: list[list[int]], seconds: float) -> Rate:
    """Purchases per second through ``app`` under gunicorn, with the CPU per
    purchase of gunicorn's processes and of the database's (``target``: the
    database URL, None for an app that has none, and the API key), read
    over the timed round."""
    url, key = target
    web, base = start_gunicorn(env, workers, app=app, extra_path=str(ROOT))
    cpu: dict[str, Any] = {}

    def warm() -> None:
        cpu["web"] = tree_cpu(web.pid)
        cpu["db"] = backend_cpu(url, application_name(url)) if url else {}
        cpu["at"] = time.time()

    try:
        wait_http(base + "/healthz")
        wait_booted(web.pid, workers)
        # Each worker reads a card's stored Google save link at its first
        # answer for the card and keeps a few thousand: the warm-up reads
        # every card six times per worker (a connection goes to whichever
        # worker accepts it: a worker misses a card with a chance of
        # (1 - 1/workers)^(6 workers), 0.1 % for 4), so the timed round
        # measures purchases of cards the worker showed before, and the
        # members' tiers are where purchases alone leave them. After two
        # passes of purchases, 41 of 148 purchases of a timed round had read
        # a card's link for the first time in their worker (statement logs).
        served = rate("http", (base, key), groups, seconds, warm, warm_target=(base, key, 6 * workers))
        requests = served.per_s * (time.time() - cpu["at"]) or 1
        served.load_ms = served.client_ms
        served.client_ms = 1000 * (tree_cpu(web.pid) - cpu["web"]) / requests
        if url:
            served.server_ms = 1000 * cpu_spent(cpu["db"], backend_cpu(url, application_name(url))) / requests
    finally:
        stop(web)
    return served


def wait_booted(pid: int, workers: int, timeout: float = 120) -> None:
    """Until gunicorn's every worker has started (idle, their CPU no longer
    growing): /healthz answers once one has, and the others, importing and
    creating the app (several seconds of CPU each where Python may not write
    its bytecode cache), would otherwise do it during the rounds, their
    start counted as the purchases' CPU and taken from the clients' cores."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        started = len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()) >= workers
        cpu = tree_cpu(pid)
        if started and 0 <= cpu - last < 0.05:
            return
        last = cpu
        time.sleep(0.5)


def google_account(root: Path) -> dict[str, str]:
    """A Google service account's settings, its key written under ``root``."""
    path = root / "google-service-account.json"
    write_service_account(path, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                          client_email="bench@wallet-bench.iam.gserviceaccount.com", key_id="bench-key",
                          project_id="wallet-bench")
    return {"GOOGLE_SERVICE_ACCOUNT_FILE": str(path), "GOOGLE_ISSUER_ID": "3388000000000000001"}


def in_google_wallet(app: Any, ids: list[int]) -> None:
    """The cards' objects as Google has them after the workers' first sync,
    their skinny save links stored."""
    db, identity = app.extensions["wallet.db"], get_identity(app)
    public_base_url = get_settings(app).public_base_url
    with db.transaction() as s:
        for member in s.scalars(select(Membership).where(Membership.id.in_(ids))):
            s.add(GoogleObject(membership_id=member.id, object_id=object_id(identity.issuer_id, member),
                               club_id=member.club_id, inserted_at=utcnow(),
                               **stored_link(identity, member, public_base_url, None)))


def split(ids: list[int], parts: int) -> list[list[int]]:
    return [ids[i::parts] for i in range(parts)]


def check(db: Database, ids: list[int]) -> None:
    with db.session() as s:
        for member_id in ids[:: max(1, len(ids) // 50)]:
            m = s.get(Membership, member_id)
            assert cached_figures(m) == recompute_figures(s, m), f"member {member_id} out of step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="the core's and the floor's rounds, taken in turn")
    parser.add_argument("--tills", default="1,2,4")
    parser.add_argument("--members", type=int, default=400)
    parser.add_argument("--http-clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--http-only", action="store_true",
                        help="only the HTTP purchase and the bare app beside it")
    parser.add_argument("--development-google", action="store_true",
                        help="no Google service account: every answer's save link is signed anew")
    args = parser.parse_args()
    tills = [int(n) for n in args.tills.split(",")]

    with postgres_schema(args.postgres) as url, tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        google = {} if args.development_google else google_account(Path(tmp))
        config, env = app_environment(Path(tmp), url, **google)
        upgrade_schema(url)
        app = create_app(config)
        db = app.extensions["wallet.db"]
        with db.transaction() as s:
            brand, key = create_brand(s, name="Bench", email="bench@brand.test", password="bench-password")
            club = Club(brand_id=brand.id, name="Bench club", program=validate_program(PROGRAM))
            s.add(club)
            s.flush()
            club_id = club.id
        from wallet.loyalty.members import enrol

        with db.transaction() as s:
            club_row = s.get(Club, club_id)
            ids = [enrol(s, club_row, email=f"m{i}@bench.test")[0].id for i in range(args.members)]
        if google:
            in_google_wallet(app, ids)

        print(f"PostgreSQL, {args.members} members, {args.seconds:.0f}s per figure, "
              f"{'a development Google key' if args.development_google else 'cards in Google Wallet'}; "
              f"{machine()}", flush=True)
        core: dict[int, Rate] = {}
        floor: dict[int, Rate] = {}
        for n in [] if args.http_only else tills:
            core[n], floor[n] = core_and_floor(url, split(ids, n), args.seconds, args.rounds)
            print(f"  {n} till(s) on distinct members: core {core[n]}, floor {floor[n]}, "
                  f"ratio {core[n].per_s / floor[n].per_s:.2f}", flush=True)

        clients = split(ids, args.http_clients)
        http_rate = served_rate(env, args.web_workers, "wsgi:app", (url, key), clients, args.seconds)
        web_floor = served_rate(env, args.web_workers, "bench.bare_api:app", (None, key), clients, args.seconds)
        if args.http_only:
            print(f"  HTTP, gunicorn -w {args.web_workers}, {args.http_clients} client processes: {http_rate} "
                  f"(gunicorn's CPU; the clients' {http_rate.load_ms:.2f} ms); a bare Flask app "
                  f"{web_floor.per_s:.0f}/s ({web_floor.client_ms:.2f} ms of gunicorn's CPU each, the clients' "
                  f"{web_floor.load_ms:.2f} ms)", flush=True)
            check(db, ids)
            db.dispose()
            print(f"  after: {machine()}")
            print(f"http_per_s={http_rate.per_s:.0f} http_floor_per_s={web_floor.per_s:.0f}")
            return
        http_floor = rate("floor", url, clients, args.seconds)
        print(f"  HTTP, gunicorn -w {args.web_workers}, {args.http_clients} client processes, fresh "
              f"Idempotency-Keys: {http_rate} (gunicorn's CPU; the clients' {http_rate.load_ms:.2f} ms); floor "
              f"with {args.http_clients} clients {http_floor}, ratio {http_rate.per_s / http_floor.per_s:.2f}; a bare Flask app answering "
              f"the same requests {web_floor.per_s:.0f}/s ({web_floor.client_ms:.2f} ms of gunicorn's CPU "
              f"each), ratio {http_rate.per_s / web_floor.per_s:.2f}", flush=True)
        n = max(tills)
        cpu_core = core[n].client_ms + core[n].server_ms
        cpu_floor = floor[n].client_ms + floor[n].server_ms
        cpu_http = http_rate.client_ms + http_rate.server_ms + http_rate.load_ms
        print(f"  CPU per purchase, all processes: core {cpu_core:.2f} ms, floor {cpu_floor:.2f} ms, HTTP "
              f"{cpu_http:.2f} ms with its clients: on {os.cpu_count()} otherwise idle cores "
              f"about {1000 * (os.cpu_count() or 1) / cpu_core:.0f}, {1000 * (os.cpu_count() or 1) / cpu_floor:.0f} "
              f"and {1000 * (os.cpu_count() or 1) / cpu_http:.0f} purchases/s", flush=True)
        check(db, ids)
        with db.session() as s:
            booked = len(s.scalars(select(Membership.id).where(Membership.club_id == club_id)).all())
        assert booked == args.members
        db.dispose()
        print(f"  after: {machine()}")
        print(f"core_per_s={core[n].per_s:.0f} floor_per_s={floor[n].per_s:.0f} "
              f"ratio={core[n].per_s / floor[n].per_s:.2f} http_per_s={http_rate.per_s:.0f} "
              f"http_floor_per_s={web_floor.per_s:.0f}")


if __name__ == "__main__":
    main()
