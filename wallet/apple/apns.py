"""An APNs client for Wallet pass updates: HTTP/2, many streams on one connection.

A pass update push is POST {APNS_URL}/3/device/<pushToken> with apns-topic =
the pass type identifier and the payload "{}"; the device then asks our web
service what changed. Apple's Wallet documentation asks for nothing more (no
apns-push-type: the push carries no alert, badge or content for an app).

One client per pass type per process holds one long-lived HTTP/2 connection
on an asyncio loop running in a thread of its own, so worker
threads of any kind call ``send()`` and many pushes share one connection as
concurrent streams, the way APNs wants to be used. The connection is h2's
protocol state machine on an asyncio TLS transport
(wallet.apple.apns_connection): every stream started in one turn of the
loop leaves in one TLS write, and every answer that arrived together is read in one. httpcore (under httpx)
wrote each frame of each push as a TLS record and a system call of its own,
behind per-request locks and cancel scopes: three quarters of a push's CPU
(py-spy, 10,000 devices); a push needs none of what it adds (pools,
HTTP/1.1, redirects).

Answers: 200 sent; 410 Unregistered and 400 BadDeviceToken mean the token is
dead and its registration should go; 429 and 5xx are retried with exponential
back-off and full jitter; 403 is a problem with our certificate or key, which
no retry fixes: the batch stops and the problem is logged once, not per device.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hpack import NeverIndexedHeaderTuple

from wallet.apple.apns_connection import ApnsConnectionError, Http2Connection, Stream

log = logging.getLogger(__name__)

PAYLOAD = b"{}"
DEAD_TOKEN_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
# Apple rejects provider tokens older than an hour and throttles refreshes
# more often than every 20 minutes.
TOKEN_LIFETIME = 50 * 60


class ApnsCertificateError(RuntimeError):
    """APNs refused our credentials (403): fix the certificate or key."""


@dataclass
class PushReport:
    sent: list[str] = field(default_factory=list)
    # Tokens APNs called dead (410, or 400 BadDeviceToken): drop their registrations.
    unregistered: list[str] = field(default_factory=list)
    # Tokens still failing after every retry, with the last reason.
    failed: dict[str, str] = field(default_factory=dict)
    # Set when APNs answered 403: nothing more was sent.
    certificate_error: str | None = None
    not_attempted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApnsSettings:
    url: str
    topic: str
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    # Token (.p8) authentication instead of the client certificate.
    auth_key_file: str | None = None
    auth_key_id: str | None = None
    team_id: str | None = None
    max_streams: int = 100
    max_retries: int = 5
    backoff_base: float = 0.25
    backoff_cap: float = 20.0
    timeout: float = 30.0


class _ProviderToken:
    """ES256 JWT for token authentication, re-signed before it turns an hour old."""

    def __init__(self, key_file: str, key_id: str, team_id: str) -> None:
        self._key = Path(key_file).read_text()
        self._key_id = key_id
        self._team_id = team_id
        self._token: str | None = None
        self._issued = 0.0

    def get(self, *, force: bool = False) -> str:
        now = time.time()
        if force or self._token is None or now - self._issued > TOKEN_LIFETIME:
            import jwt

            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._issued = now
        return self._token


class _LoopThread:
    """One asyncio loop per process, in a daemon thread, for every client."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="apns-loop", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            # A forked child (Celery prefork, gunicorn) inherits no running thread.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
            return cls._instance

    def run(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


class _Push:
    """One token's push in a ``send()``: its attempts so far."""

    __slots__ = ("batch", "token", "path", "attempt", "refreshed")

    def __init__(self, batch: _Batch, token: str, path: bytes) -> None:
        self.batch = batch
        self.token = token
        self.path = path
        self.attempt = 0
        self.refreshed = False


class _Batch:
    """The pushes of one ``send()``: those waiting for a stream, and the
    report, handed over when the last push has its outcome."""

    def __init__(self, finished: asyncio.Future[PushReport]) -> None:
        self.finished = finished
        self.report = PushReport()
        self.waiting: deque[_Push] = deque()
        self.left = 0
        self.stopped = False

    def settled(self) -> None:
        self.left -= 1
        if not self.left and not self.finished.done():
            self.finished.set_result(self.report)


class ApnsClient:
    """Pushes to APNs for one topic (pass type identifier).

    The pushes of every ``send()`` wait in one queue, first come first
    started, and up to ``max_streams`` of them are on the connection at
    once; each answer is dealt with where it is read, and the pushes it made
    room for leave in the same write. A task and a future per push, a
    semaphore and a gather were a fifth of the loop thread's CPU."""

    def __init__(self, settings: ApnsSettings) -> None:
        self.settings = settings
        self._connection: Http2Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        # Batches with pushes waiting for a stream, oldest first.
        self._queue: deque[_Batch] = deque()
        self._in_flight = 0
        self._token = (
            _ProviderToken(settings.auth_key_file, settings.auth_key_id or "", settings.team_id or "")
            if settings.auth_key_file
            else None
        )
        self._topic = settings.topic.encode()
        url = urlsplit(settings.url)
        self._host = url.hostname or ""
        self._port = url.port or 443
        self._authority = url.netloc.encode()
        self._path_prefix = (url.path.rstrip("/") + "/3/device/").encode()
        self._head = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", self._authority)]
        self._loop_thread = _LoopThread.get()

    # -- public, blocking ------------------------------------------------
    def send(self, tokens: Sequence[str]) -> PushReport:
        """Push to every token; blocks until each is sent, dead or given up."""
        if self._loop_thread.pid != os.getpid():
            self._loop_thread = _LoopThread.get()
            self._connection = None
            self._connecting = None
            self._queue = deque()
            self._in_flight = 0
        return self._loop_thread.run(self.send_async(tokens)).result()

    def close(self) -> None:
        connection = self._connection
        if connection is not None and self._loop_thread.pid == os.getpid():
            try:
                self._loop_thread.loop.call_soon_threadsafe(connection.close)
            except RuntimeError:  # the loop is gone; so is the connection
                pass
        self._connection = None

    # -- async -----------------------------------------------------------
    async def send_async(self, tokens: Sequence[str]) -> PushReport:
        batch = _Batch(asyncio.get_running_loop().create_future())
        prefix = self._path_prefix
        batch.waiting.extend(_Push(batch, token, prefix + token.encode()) for token in dict.fromkeys(tokens))
        batch.left = len(batch.waiting)
        if not batch.left:
            return batch.report
        self._queue.append(batch)
        self._pump()
        return await batch.finished

    def _pump(self) -> None:
        """Start waiting pushes while this client and the server have room
        for them (opening the connection if there is none), and send them."""
        queue = self._queue
        while queue and not queue[0].waiting:
            queue.popleft()
        if not queue:
            return
        connection = self._connection
        if connection is None or connection.closed:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._reconnect())
            return
        common = [(b"apns-topic", self._topic), (b"content-type", b"application/json")]
        if self._token is not None:
            common.append((b"authorization", b"bearer " + self._token.get().encode()))
        limit = self.settings.max_streams
        while queue and self._in_flight < limit and connection.has_room():
            batch = queue[0]
            push = batch.waiting.popleft()
            if not batch.waiting:
                queue.popleft()
            # A device token is sent once: never put in HPACK's table.
            headers = [*self._head, NeverIndexedHeaderTuple(b":path", push.path), *common]
            try:
                connection.start(headers, PAYLOAD, self._answered, push)
            except ApnsConnectionError as exc:  # the connection closed under it: a new one is opened
                # The streams started before it on this connection (out of
                # stream ids, it is still open) still leave, or they would
                # wait for the sweeper's timeout and be sent again.
                connection.flush()
                self._outcome(push, 0, f"{type(exc).__name__}: {exc}")
                self._pump()
                return
            self._in_flight += 1
        # One write for every stream started (and whatever h2 has to say),
        # also when called from another connection's read.
        connection.flush()

    async def _reconnect(self) -> None:
        """Open the connection and start the waiting pushes on it. If it
        cannot be opened, each push that would have gone first counts a
        failed attempt (and comes back after its back-off); if none will come
        back, the next ones try at once."""
        try:
            await self._connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # network, TLS, no HTTP/2, timeout
            self._connecting = None
            reason = f"{type(exc).__name__}: {exc}"
            coming_back = False
            room = self.settings.max_streams - self._in_flight
            while room > 0 and self._queue:
                batch = self._queue[0]
                if not batch.waiting:
                    self._queue.popleft()
                    continue
                coming_back |= not self._outcome(batch.waiting.popleft(), 0, reason)
                room -= 1
            if not coming_back:
                asyncio.get_running_loop().call_soon(self._pump)
            return
        self._connecting = None
        self._pump()

    async def _connect(self) -> None:
        s = self.settings
        context = ssl.create_default_context()
        if s.ca_file:
            context.load_verify_locations(s.ca_file)
        if self._token is None and s.cert_file:
            context.load_cert_chain(s.cert_file, s.key_file)
        context.set_alpn_protocols(["h2"])
        loop = asyncio.get_running_loop()
        transport, connection = await asyncio.wait_for(
            loop.create_connection(lambda: Http2Connection(loop, s.timeout, self._pump),
                                   self._host, self._port, ssl=context, server_hostname=self._host),
            s.timeout,
        )
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.close()
            raise ApnsConnectionError(f"{s.url} does not speak HTTP/2")
        self._connection = connection

    def _answered(self, stream: Stream, error: Exception | None) -> None:
        self._in_flight -= 1
        if error is not None:
            self._outcome(stream.push, 0, f"{type(error).__name__}: {error}")
        else:
            # Only a refusal's body says why; a push sent needs no JSON parsed.
            self._outcome(stream.push, stream.status, "" if stream.status == 200 else _reason(stream.body))

    def _outcome(self, push: _Push, status: int, reason: str) -> bool:
        """What an answer (status 0: none, the connection failed) means for
        its push: settled (True), or to be tried again, now or after a
        back-off."""
        batch, report, s = push.batch, push.batch.report, self.settings
        if status == 200:
            report.sent.append(push.token)
        elif status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
            report.unregistered.append(push.token)
        elif status == 403 and self._token is not None and reason == "ExpiredProviderToken" and not push.refreshed:
            self._token.get(force=True)
            push.refreshed = True
            if push.attempt >= s.max_retries:
                report.failed[push.token] = reason
            else:
                push.attempt += 1
                self._again(push)
                return False
        elif status == 403:
            if report.certificate_error is None:
                report.certificate_error = f"403 {reason}".strip()
            report.not_attempted.append(push.token)
            self._stop(batch)
        elif status == 429 or status >= 500 or status == 0:
            if batch.stopped:
                report.not_attempted.append(push.token)
            elif push.attempt < s.max_retries:
                # Exponential back-off with full jitter spreads retries of
                # thousands of streams instead of replaying them together.
                delay = random.uniform(0, min(s.backoff_cap, s.backoff_base * (2**push.attempt)))
                push.attempt += 1
                asyncio.get_running_loop().call_later(delay, self._again, push)
                return False
            else:
                report.failed[push.token] = f"{status or 'connection'} {reason}".strip()
        else:
            report.failed[push.token] = f"{status} {reason}".strip()
        batch.settled()
        return True

    def _again(self, push: _Push) -> None:
        """A push tried again, first in line."""
        batch = push.batch
        if batch.stopped:
            batch.report.not_attempted.append(push.token)
            batch.settled()
            return
        batch.waiting.appendleft(push)
        if batch not in self._queue:
            self._queue.appendleft(batch)
        self._pump()

    def _stop(self, batch: _Batch) -> None:
        """APNs refused our credentials: the batch's pushes not yet started are not attempted."""
        batch.stopped = True
        while batch.waiting:
            batch.report.not_attempted.append(batch.waiting.popleft().token)
            batch.settled()


def _reason(content: bytes) -> str:
    try:
        body = json.loads(content or b"{}")
    except ValueError:
        return ""
    return str(body.get("reason", "")) if isinstance(body, dict) else ""


# ----------------------------------------------------------------------
# Per-app clients
# ----------------------------------------------------------------------

_clients_lock = threading.Lock()


def settings_from_app(app: Any) -> ApnsSettings:
    from wallet.apple.certs import get_identity
    from wallet.config import get_settings

    identity = get_identity(app)
    settings = get_settings(app)
    return ApnsSettings(
        url=settings.apns_url,
        topic=identity.pass_type_identifier,
        cert_file=str(identity.tls_cert_file),
        key_file=str(identity.tls_key_file),
        ca_file=str(settings.apns_ca_file) if settings.apns_ca_file else None,
        auth_key_file=str(settings.apns_key_file) if settings.apns_key_file else None,
        auth_key_id=settings.apns_key_id,
        team_id=identity.team_identifier or settings.team_identifier,
        max_streams=settings.apns_max_streams,
        max_retries=settings.apns_max_retries,
        backoff_base=settings.apns_backoff_base,
    )


def client_for(app: Any) -> ApnsClient:
    """The app's long-lived client for its pass type (one per process)."""
    with _clients_lock:
        client = app.extensions.get("wallet.apple.apns")
        if client is None or client._loop_thread.pid != os.getpid():
            client = ApnsClient(settings_from_app(app))
            app.extensions["wallet.apple.apns"] = client
        return client
