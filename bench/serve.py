"""A pass fetched by phones, under gunicorn, next to its floors.

    .venv/bin/python -m bench.serve [--passes 9000] [--rounds 3] [--web-workers 4] [--clients 8]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

In a schema of its own: one club, N members. gunicorn (sync workers) serves
the app; client processes (the load generator shares the cores) fetch:

1. each member's pass once: GET /apple/v1/passes/<type>/<serial> with the
   pass's token, a card state nobody fetched before, so each answer is
   signed afresh (the per-process cache of signed passes does not help);
2. the same passes again with If-Modified-Since = the newest card's
   Last-Modified: 304;
3. each member's device asking which of its passes changed since a tag
   older than every card ("list updated passes"): 200 with the serial.

Floors, in the same run: a minimal Flask app (bench/bare_app.py) under the
same gunicorn answering the same URL with the same bytes (and 304), and the
bare RSA-2048 signature (PKCS#1 v1.5, SHA-256) in one process per core. A
pass costs at least one answer of the web floor plus one signature, so

    ratio = pass_per_s / (1 / (1/web_floor_per_s + 1/sign_per_s))
    ratio_304 = not_modified_per_s / web_floor_per_s

Both servers run side by side and the members are taken in --rounds parts:
a part's passes from the app, then from the bare app, then their 304s from
each, then a second of signatures; a rate is its answers over its seconds
in all the rounds.
The host is shared, and its speed moves within a minute; measured one after
the other, each side once, the ratio followed it (0.63 to 0.79 in runs a
few minutes apart).

The listing has no floor of its own: its rate and CPU per answer are printed
beside the bare app's 304 (a small answer too), not in the last line.

Beside the rates it prints the server's CPU per answer (gunicorn's processes,
from /proc) against the bare app's and one signature's: on a machine others
share, rates follow their load, CPU per answer much less. The last line is
    pass_per_s=<a> not_modified_per_s=<b> web_floor_per_s=<c> sign_per_s=<d> ratio=<e> ratio_304=<f>
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import func, select
from werkzeug.http import http_date

from bench.common import (DEFAULT_POSTGRES, PASS_TYPE, ROOT, address_of, app_environment, application_name,
                          backend_cpu, cpu_spent, exchange, http_request, machine, postgres_schema, start_gunicorn,
                          stop, tree_cpu, wait_http)
from tests.support.push import club_with_registered_devices
from wallet import create_app
from wallet.apple.certs import get_identity
from wallet.apple.models import DeviceRegistration
from wallet.loyalty.models import Membership
from wallet.schema import upgrade_schema

Request = tuple[str, dict[str, str]]


def _fetch(job: tuple[str, list[Request], int]) -> tuple[int, float, int]:
    """One client: its requests in turn; (answers, seconds, bytes)."""
    base, requests, expected = job
    address = address_of(base)
    size = 0
    start = time.perf_counter()
    for path, headers in requests:
        status, _headers, body = exchange(address, http_request("GET", address, path, headers))
        size += len(body)
        if status != expected:
            # Not SystemExit: a pool worker that exits leaves map() waiting forever.
            raise RuntimeError(f"{path} answered {status}, not {expected}")
    return len(requests), time.perf_counter() - start, size


def fetch(base: str, requests: list[Request], clients: int, expected: int) -> tuple[int, float]:
    """The requests from ``clients`` processes at once: (answers, seconds)."""
    jobs = [(base, requests[i::clients], expected) for i in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        started = time.perf_counter()
        results = pool.map(_fetch, jobs)
        elapsed = time.perf_counter() - started
    return sum(count for count, _seconds, _size in results), elapsed


_KEY: list[Any] = []  # inherited by the forked signers (a key object does not pickle)


def _sign(seconds: float) -> tuple[int, float]:
    key = _KEY[0]
    data = secrets.token_bytes(600)
    done = 0
    deadline = time.perf_counter() + seconds
    started = time.process_time()
    while time.perf_counter() < deadline:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        done += 1
    return done, time.process_time() - started


def sign_rate(key: Any, seconds: float) -> tuple[float, float]:
    """Bare signatures per second, one process per core, and the CPU
    seconds of one signature."""
    cores = os.cpu_count() or 1
    _KEY[:] = [key]
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        results = pool.map(_sign, [seconds] * cores)
    count = sum(done for done, _cpu in results)
    return count / seconds, sum(cpu for _done, cpu in results) / count


@dataclass
class Served:
    """Answers of one kind over the rounds: their seconds, and the server's
    CPU seconds (gunicorn's master and workers, and the PostgreSQL backends
    serving them, from /proc): on a machine others share, the rate follows
    their load, the CPU per answer much less."""

    answers: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    database: float = 0.0

    @property
    def rate(self) -> float:
        return self.answers / self.seconds

    @property
    def cpu_each(self) -> float:
        return self.cpu / self.answers

    @property
    def database_each(self) -> float:
        return self.database / self.answers


def serve(tally: Served, base: str, server: Any, requests: list[Request], clients: int, expected: int,
          database_url: str | None = None) -> None:
    """The requests answered by ``server``, added to ``tally``."""
    name = application_name(database_url) if database_url else None
    before, backends = tree_cpu(server.pid), backend_cpu(database_url, name) if database_url and name else {}
    answers, seconds = fetch(base, requests, clients, expected)
    spent = tree_cpu(server.pid) - before
    database = cpu_spent(backends, backend_cpu(database_url, name)) if database_url and name else 0.0
    tally.answers += answers
    tally.seconds += seconds
    tally.cpu += spent + database
    tally.database += database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=9000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES))
    args = parser.parse_args()

    with postgres_schema(args.postgres) as url, tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        root = Path(tmp)
        upgrade_schema(url)
        config, env = app_environment(root, url)
        app = create_app(config)
        db = app.extensions["wallet.db"]
        _brand, club_id, _tokens = club_with_registered_devices(
            db, args.passes + 8, pass_type=PASS_TYPE,
            program={"points": {"earn_points": 5, "per_amount": 10000}, "cashback": {"percent": "2"}})
        with db.session() as s:
            members = s.execute(select(Membership.serial_number, Membership.auth_token)
                                .where(Membership.club_id == club_id).order_by(Membership.id)).all()
            # If-Modified-Since of the 304s: the newest card's Last-Modified.
            since = http_date(s.scalar(select(func.max(Membership.card_modified_at))
                                       .where(Membership.club_id == club_id)).replace(microsecond=0))
            devices = s.scalars(select(DeviceRegistration.device_library_identifier)
                                .join(Membership, DeviceRegistration.membership_id == Membership.id)
                                .where(Membership.club_id == club_id).order_by(Membership.id)).all()[8:]
        warm, members = members[:8], members[8:]
        key = get_identity(app).private_key
        db.dispose()

        def request(serial: str, token: str, since: str | None = None) -> Request:
            headers = {"Authorization": f"ApplePass {token}"}
            if since:
                headers["If-Modified-Since"] = since
            return f"/apple/v1/passes/{PASS_TYPE}/{serial}", headers

        print(f"{args.passes} passes in {args.rounds} rounds, gunicorn -w {args.web_workers}, "
              f"{args.clients} client processes; {machine()}", flush=True)
        passes, not_modified, bare_passes, bare_not_modified, listing = (Served() for _ in range(5))
        signs = sign_cpu = 0.0
        web, base = start_gunicorn(env, args.web_workers)
        bare: Any = None
        try:
            wait_http(base + "/healthz")
            # Every worker renders the club's artwork once, as a running server has.
            fetch(base, [request(s, t) for s, t in warm] * args.web_workers, args.clients, 200)
            path, headers = request(*warm[0])
            _status, _headers, sample = exchange(address_of(base), http_request("GET", address_of(base), path,
                                                                                headers))
            (root / "sample.pkpass").write_bytes(sample)
            bare, bare_base = start_gunicorn({**env, "BENCH_PASS_FILE": str(root / "sample.pkpass")},
                                             args.web_workers, app="bench.bare_app:app", extra_path=str(ROOT))
            wait_http(bare_base + "/apple/v1/passes/x/y")
            for part in (members[i::args.rounds] for i in range(args.rounds)):
                # Each member's pass once: a card state no worker signed before.
                serve(passes, base, web, [request(s, t) for s, t in part], args.clients, 200, url)
                serve(bare_passes, bare_base, bare, [request(s, t) for s, t in part], args.clients, 200)
                serve(not_modified, base, web, [request(s, t, since) for s, t in part], args.clients, 304, url)
                serve(bare_not_modified, bare_base, bare, [request(s, t, since) for s, t in part], args.clients,
                      304)
                rate, cpu = sign_rate(key, 1.0)
                signs, sign_cpu = signs + rate / args.rounds, sign_cpu + cpu / args.rounds
            # A tag of PostgreSQL's form from before every card: each device's pass is listed.
            serve(listing, base, web, [(f"/apple/v1/devices/{device}/registrations/{PASS_TYPE}?passesUpdatedSince=x0",
                                        {}) for device in devices], args.clients, 200, url)
        finally:
            stop(web)
            if bare is not None:
                stop(bare)

    pass_rate, not_modified_rate, web_floor = passes.rate, not_modified.rate, bare_passes.rate
    floor = 1 / (1 / web_floor + 1 / signs)
    ratio, ratio_304 = pass_rate / floor, not_modified_rate / web_floor
    print(f"  changed pass ({len(sample)} bytes): {pass_rate:.0f}/s; floor: web {web_floor:.0f}/s with one "
          f"signature each ({signs:.0f}/s on {os.cpu_count()} cores) = {floor:.0f}/s; ratio {ratio:.2f}")
    print(f"  304: {not_modified_rate:.0f}/s; bare app's 304 {bare_not_modified.rate:.0f}/s; "
          f"ratio to the web floor {ratio_304:.2f}")
    print(f"  server CPU per answer (gunicorn + PostgreSQL): changed pass {passes.cpu_each * 1e3:.2f} ms "
          f"({passes.database_each * 1e3:.2f} ms PostgreSQL's) against the bare app's "
          f"{bare_passes.cpu_each * 1e3:.2f} ms + one signature {sign_cpu * 1e3:.2f} ms (ratio "
          f"{(bare_passes.cpu_each + sign_cpu) / passes.cpu_each:.2f}); 304 {not_modified.cpu_each * 1e3:.2f} ms "
          f"({not_modified.database_each * 1e3:.2f} ms PostgreSQL's) against "
          f"{bare_not_modified.cpu_each * 1e3:.2f} ms (ratio {bare_not_modified.cpu_each / not_modified.cpu_each:.2f})")
    print(f"  list updated passes: {listing.rate:.0f}/s, {listing.cpu_each * 1e3:.2f} ms CPU per answer "
          f"({listing.database_each * 1e3:.2f} ms PostgreSQL's), the bare app's 304 "
          f"{bare_not_modified.cpu_each * 1e3:.2f} ms")
    print(f"  after: {machine()}")
    print(f"pass_per_s={pass_rate:.0f} not_modified_per_s={not_modified_rate:.0f} web_floor_per_s={web_floor:.0f} "
          f"sign_per_s={signs:.0f} ratio={ratio:.2f} ratio_304={ratio_304:.2f}")


if __name__ == "__main__":
    main()
