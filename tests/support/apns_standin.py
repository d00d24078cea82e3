"""A local APNs stand-in: HTTP/2 over TLS on loopback, as strict as APNs where
our client could go wrong.

It requires a client certificate signed by the given CA (the development
chain), checks the method, the :path /3/device/<hex token>, that apns-topic is
present and equals the certificate's UID (the pass type identifier, as APNs
does for Pass Type ID certificates), and answers as scripted per token:
200, 410 Unregistered, 400 BadDeviceToken, 429, 500, 403. It records every
request, thread-safely, for assertions. It makes its own CA and server
certificate; clients trust it through APNS_CA_FILE = ``standin.ca_file``.

In-process: ``with ApnsStandIn(ca_file=..., workdir=...) as standin: ...``.
As a process (bench/push.py): ``python -m tests.support.apns_standin --client-ca F
--workdir D`` prints one JSON line {"url", "ca_file"} and serves until killed;
GET /_standin/stats (same TLS rules) answers counts and the wall-clock time
of the last accepted push.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_PATH = re.compile(r"/3/device/([0-9A-Fa-f]{8,200})")

REASONS = {
    400: "BadDeviceToken",
    403: "BadCertificate",
    410: "Unregistered",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Received:
    token: str
    topic: str | None
    method: str
    path: str
    status: int
    body: bytes
    certificate_uid: str | None
    authorization: str | None
    at: float


def _write_server_cert(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA of its own and a 127.0.0.1/localhost certificate under it."""
    workdir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "APNs stand-in CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = workdir / "standin-ca.pem", workdir / "standin.pem", workdir / "standin.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _uid_of(peercert: dict[str, Any] | None) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "userId":
                return value
    return None


class _Connection(asyncio.Protocol):
    def __init__(self, standin: ApnsStandIn) -> None:
        self.standin = standin
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, dict[str, Any]] = {}
        self.uid: str | None = None
        self.has_cert = False
        self.answered = 0
        self.going_away = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        peercert = ssl_object.getpeercert() if ssl_object is not None else None
        self.has_cert = bool(peercert)
        self.uid = _uid_of(peercert)
        self.standin._connection_opened()
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.standin.max_streams})
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except Exception:
            assert self.transport is not None
            self.transport.close()
            return
        for event in events:
            if self.going_away:
                break
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = {"headers": dict(event.headers), "body": b""}
            elif isinstance(event, h2.events.DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream["body"] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    self._answer(event.stream_id, stream)
            elif isinstance(event, h2.events.ConnectionTerminated):
                assert self.transport is not None
                self.transport.close()
        assert self.transport is not None
        self.transport.write(self.conn.data_to_send())
        if self.going_away:
            self.transport.close()

    def _answer(self, stream_id: int, stream: dict[str, Any]) -> None:
        headers = stream["headers"]
        status, body = self.standin._handle(headers, stream["body"], self.uid, self.has_cert)
        payload = json.dumps(body).encode() if body is not None else b""
        response = [(":status", str(status)), ("apns-id", f"standin-{stream_id}")]
        if payload:
            response.append(("content-type", "application/json"))
            response.append(("content-length", str(len(payload))))
        self.conn.send_headers(stream_id, response, end_stream=not payload)
        if payload:
            self.conn.send_data(stream_id, payload, end_stream=True)
        self.answered += 1
        if self.standin.goaway_after is not None and self.answered >= self.standin.goaway_after:
            # As APNs may: GOAWAY naming the last stream answered, then close;
            # the client must send the streams it left unanswered again.
            self.conn.close_connection(last_stream_id=stream_id)
            self.going_away = True


class ApnsStandIn:
    """See the module docstring. ``script`` maps a token to a list of statuses
    answered in turn (the last one repeats); other tokens get ``default``."""

    def __init__(
        self,
        *,
        client_ca_file: str | Path | None,
        workdir: str | Path,
        expected_topic: str | None = None,
        default: int = 200,
        max_streams: int = 1000,
        jwt_public_key: Any = None,
        delay: float = 0.0,
        record: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.client_ca_file = client_ca_file
        self.expected_topic = expected_topic
        self.default = default
        self.max_streams = max_streams
        self.jwt_public_key = jwt_public_key
        self.delay = delay
        # Without records only the counts per token are kept (a bench's million pushes).
        self.record = record
        self._script: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.accepted: Counter[str] = Counter()
        self.connections = 0
        self.last_accept_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self.ca_file, self._cert_file, self._key_file = _write_server_cert(self.workdir)
        self.on_push: Callable[[Received], None] | None = None
        # Answer this many requests per connection, then GOAWAY and close it.
        self.goaway_after: int | None = None

    # -- scripting and inspection ---------------------------------------
    def script(self, token: str, *statuses: int) -> None:
        with self._lock:
            self._script[token.lower()] = list(statuses)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def accepted_tokens(self) -> Counter[str]:
        with self._lock:
            return Counter(self.accepted)

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self.accepted.clear()
            self._script.clear()

    def wait_for(self, predicate: Callable[[ApnsStandIn], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    # -- serving ---------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._cert_file, self._key_file)
        context.set_alpn_protocols(["h2"])
        if self.client_ca_file is not None:
            context.load_verify_locations(str(self.client_ca_file))
            # Token authentication needs no client certificate; certificate
            # authentication needs one signed by the CA.
            context.verify_mode = ssl.CERT_OPTIONAL if self.jwt_public_key is not None else ssl.CERT_REQUIRED
        return context

    def start(self) -> ApnsStandIn:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, ssl=self._ssl_context())
            )
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="apns-standin", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ApnsStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _connection_opened(self) -> None:
        with self._lock:
            self.connections += 1

    def _handle(
        self, headers: dict[str, str], body: bytes, uid: str | None, has_cert: bool
    ) -> tuple[int, dict[str, Any] | None]:
        method, path = headers.get(":method", ""), headers.get(":path", "")
        if path == "/_standin/stats" and method == "GET":
            with self._lock:
                return 200, {
                    "accepted": sum(self.accepted.values()),
                    "distinct": len(self.accepted),
                    "received": len(self._received),
                    "connections": self.connections,
                    "last_accept_at": self.last_accept_at,
                    "cpu_seconds": time.process_time(),
                }
        match = _PATH.fullmatch(path)
        topic = headers.get("apns-topic")
        authorization = headers.get("authorization")
        token = match.group(1).lower() if match else ""
        status, reason = self._decide(method, match is not None, topic, uid, has_cert, authorization, token)
        record = Received(token, topic, method, path, status, body, uid, authorization, time.time())
        with self._lock:
            if self.record:
                self._received.append(record)
            if status == 200:
                self.accepted[token] += 1
                self.last_accept_at = record.at
        if self.on_push is not None:
            self.on_push(record)
        return status, ({"reason": reason} if reason else None)

    def _decide(
        self, method: str, path_ok: bool, topic: str | None, uid: str | None,
        has_cert: bool, authorization: str | None, token: str,
    ) -> tuple[int, str]:
        if method != "POST":
            return 405, "MethodNotAllowed"
        if not path_ok:
            return 404, "BadPath"
        if not topic:
            return 400, "MissingTopic"
        if has_cert and uid is not None and topic != uid:
            return 400, "TopicDisallowed"
        if self.expected_topic is not None and topic != self.expected_topic:
            return 400, "BadTopic"
        if not has_cert:
            problem = self._check_jwt(authorization)
            if problem:
                return 403, problem
        with self._lock:
            statuses = self._script.get(token)
            if statuses:
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            else:
                status = self.default
        if status == 200:
            return 200, ""
        return status, REASONS.get(status, "Error")

    def _check_jwt(self, authorization: str | None) -> str:
        if self.jwt_public_key is None:
            return "MissingProviderToken"
        if not authorization or not authorization.lower().startswith("bearer "):
            return "MissingProviderToken"
        import jwt

        try:
            jwt.decode(authorization[7:], self.jwt_public_key, algorithms=["ES256"],
                       options={"require": ["iat", "iss"]})
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        return ""


def _forwarder(standin: ApnsStandIn, path: str) -> Callable[[Received], None]:
    """An on_push that writes the tokens of accepted pushes to a Unix
    socket: those the loop's turn accepted, in one write after it (a
    device told of its push as APNs would tell it)."""
    import socket

    sock: socket.socket | None = None  # connected at the first push: the phones start last
    pending: list[str] = []

    def flush() -> None:
        nonlocal sock
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
        data = "\n".join(pending).encode() + b"\n"
        pending.clear()
        sock.sendall(data)

    def forward(record: Received) -> None:
        if record.status != 200:
            return
        if not pending:
            assert standin._loop is not None
            standin._loop.call_soon(flush)
        pending.append(record.token)

    return forward


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client-ca", required=True, help="CA bundle that signs client certificates")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--topic", default=None)
    parser.add_argument("--counts-only", action="store_true", help="keep counts per token, not every request")
    parser.add_argument("--forward", help="Unix socket to write each accepted push's token to, a line each "
                                          "(the phones of bench/push.py)")
    args = parser.parse_args(argv)
    standin = ApnsStandIn(client_ca_file=args.client_ca, workdir=args.workdir, expected_topic=args.topic,
                          record=not args.counts_only)
    if args.forward:
        standin.on_push = _forwarder(standin, args.forward)
    standin.start()
    print(json.dumps({"url": standin.url, "ca_file": str(standin.ca_file)}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    sys.exit(main())
