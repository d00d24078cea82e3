"""The phones of bench/push.py: each device fetches its changed pass as soon
as its push arrives, as an iPhone does.

    python -m bench.phones --listen SOCKET --base URL --pass-type T --tag TAG
        --database-url URL --club-id ID --devices N [--concurrency 16]

The APNs stand-in forwards every push it accepted (its token, a line each)
to the Unix socket SOCKET. For each, the device asks our web service for
its list of updated passes (GET /apple/v1/devices/<device>/registrations/
<type>?passesUpdatedSince=TAG, TAG being a tag the phones held before the
message) and then GETs each pass listed, with the pass's authentication
token. Up to ``concurrency`` devices are in flight at once.

One process, one thread, non-blocking sockets and HTTP/1.1 written by hand
(gunicorn's sync workers close each connection after its answer), so the
phones' own CPU is small and reported apart, like the stand-in's: with
httpx threads in the bench's process the clients' Python took a good part
of the cores it measured.

Before the message it loads the cards' serial numbers and authentication
tokens (fixed-width records in two byte arrays: 49 bytes a card) and prints
``{"ready": true}``; at the end one JSON line of counts, times and its CPU.
"""

from __future__ import annotations

import argparse
import errno
import json
import selectors
import socket
import sys
import time
from collections import deque
from urllib.parse import quote, urlsplit

from sqlalchemy import create_engine, select

from bench.common import answer_of

from wallet.loyalty.models import Membership


class Cards:
    """Serial number and authentication token by card number (the bench's
    member i has card number i, device ``device%08d`` and push token i in
    hexadecimal: tests/support/push.py)."""

    def __init__(self, database_url: str, club_id: int, count: int) -> None:
        self.serial_width = self.token_width = 0
        self.serials = bytearray()
        self.tokens = bytearray()
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                    select(Membership.card_number, Membership.serial_number, Membership.auth_token)
                    .where(Membership.club_id == club_id).order_by(Membership.card_number))
                for expected, (number, serial, token) in enumerate(rows):
                    if int(number) != expected:
                        raise SystemExit(f"card number {number} where {expected} was expected")
                    if not self.serial_width:
                        self.serial_width, self.token_width = len(serial), len(token)
                    if len(serial) != self.serial_width or len(token) != self.token_width:
                        raise SystemExit("serial numbers and tokens of the bench's cards are of one width")
                    self.serials += serial.encode()
                    self.tokens += token.encode()
        finally:
            engine.dispose()
        if len(self.serials) != count * self.serial_width:
            raise SystemExit(f"{len(self.serials) // max(self.serial_width, 1)} cards where {count} were expected")

    def serial(self, n: int) -> bytes:
        return bytes(self.serials[n * self.serial_width:(n + 1) * self.serial_width])

    def token(self, n: int) -> bytes:
        return bytes(self.tokens[n * self.token_width:(n + 1) * self.token_width])


class Exchange:
    """One HTTP/1.1 request on a connection of its own, read to its close."""

    __slots__ = ("phone", "sock", "request", "buffer", "step")

    def __init__(self, phone: int, step: int, request: bytes) -> None:
        self.phone, self.step, self.request = phone, step, request
        self.buffer = bytearray()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--pass-type", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--club-id", type=int, required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle-timeout", type=float, default=120.0,
                        help="give up after this many seconds without a push or an answer")
    args = parser.parse_args(argv)

    cards = Cards(args.database_url, args.club_id, args.devices)
    base = urlsplit(args.base)
    address = (base.hostname or "127.0.0.1", base.port or 80)
    host = base.netloc.encode()
    pass_type = args.pass_type.encode()
    since = quote(args.tag).encode()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.listen)
    listener.listen(1)
    print(json.dumps({"ready": True}), flush=True)
    feed, _ = listener.accept()  # the stand-in, before any push
    feed.setblocking(False)
    cpu0 = time.process_time()

    selector = selectors.DefaultSelector()
    selector.register(feed, selectors.EVENT_READ, None)
    waiting: deque[int] = deque()  # pushed devices not yet started
    partial = b""
    in_flight = 0
    done = bytearray(args.devices)  # 1 once a device has its pass
    fetched = pushes = lists = failures = 0
    first_push_at = last_pass_at = 0.0
    errors: dict[str, int] = {}
    last_progress = time.monotonic()

    def start(phone: int, step: int) -> None:
        nonlocal in_flight
        if step == 0:
            request = (b"GET /apple/v1/devices/device%08d/registrations/%s?passesUpdatedSince=%s HTTP/1.1\r\n"
                       b"Host: %s\r\n\r\n" % (phone, pass_type, since, host))
        else:
            request = (b"GET /apple/v1/passes/%s/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: ApplePass %s\r\n\r\n"
                       % (pass_type, cards.serial(phone), host, cards.token(phone)))
        exchange = Exchange(phone, step, request)
        code = exchange.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            exchange.sock.close()
            failed(phone, f"connect {errno.errorcode.get(code, code)}")
            return
        selector.register(exchange.sock, selectors.EVENT_WRITE, exchange)
        in_flight += 1

    def failed(phone: int, why: str) -> None:
        nonlocal failures
        failures += 1
        errors[why] = errors.get(why, 0) + 1

    def finished(exchange: Exchange) -> None:
        nonlocal in_flight, fetched, lists, last_pass_at
        selector.unregister(exchange.sock)
        exchange.sock.close()
        in_flight -= 1
        status, headers, body = answer_of(bytes(exchange.buffer))
        phone = exchange.phone
        if exchange.step == 0:
            lists += 1
            serial = cards.serial(phone).decode()
            if status != 200 or serial not in json.loads(body).get("serialNumbers", ()):
                failed(phone, f"list {status}")
                return
            start(phone, 1)
        elif (status != 200 or headers.get(b"content-type") != b"application/vnd.apple.pkpass"
              or len(body) != int(headers.get(b"content-length", b"-1"))):
            failed(phone, f"pass {status}")
        else:
            if not done[phone]:
                done[phone] = 1
                fetched += 1
            last_pass_at = time.time()

    while fetched + failures < args.devices:
        while waiting and in_flight < args.concurrency:
            start(waiting.popleft(), 0)
        events = selector.select(timeout=1.0)
        if events:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > args.idle_timeout:
            errors["idle timeout"] = args.devices - fetched - failures
            break
        for key, mask in events:
            exchange = key.data
            if exchange is None:  # pushes forwarded by the stand-in
                chunk = feed.recv(1 << 16)
                if not chunk:
                    selector.unregister(feed)
                    continue
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                if not first_push_at:
                    first_push_at = time.time()
                for token in lines:
                    pushes += 1
                    waiting.append(int(token, 16))
            else:
                try:
                    if mask & selectors.EVENT_WRITE:
                        exchange.sock.send(exchange.request)  # a few hundred bytes: one send
                        selector.modify(exchange.sock, selectors.EVENT_READ, exchange)
                        continue
                    chunk = exchange.sock.recv(1 << 18)
                except OSError as exc:
                    selector.unregister(exchange.sock)
                    exchange.sock.close()
                    in_flight -= 1
                    failed(exchange.phone, type(exc).__name__)
                    continue
                if chunk:
                    exchange.buffer += chunk
                else:
                    finished(exchange)
    print(json.dumps({
        "fetched": fetched, "pushes": pushes, "lists": lists, "failures": failures, "errors": errors,
        "first_push_at": first_push_at, "last_pass_at": last_pass_at,
        "cpu_seconds": time.process_time() - cpu0,
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
