"""An APNs client for Wallet pass updates: HTTP/2, many streams on one connection.

A pass update push is POST {APNS_URL}/3/device/<pushToken> with apns-topic =
the pass type identifier and the payload "{}"; the device then asks our web
service what changed. Apple's Wallet documentation asks for nothing more (no
apns-push-type: the push carries no alert, badge or content for an app).

One client per pass type per process holds one long-lived HTTP/2 connection
on an asyncio loop running in a thread of its own, so worker
threads of any kind call ``send()`` and many pushes share one connection as
concurrent streams, the way APNs wants to be used. The connection is
httpcore's (the transport under httpx, with h2): going through httpx's
request/response models cost two thirds more CPU per push, and a push needs
none of what they add (redirects, cookies, auth flows).

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore

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


class ApnsClient:
    """Pushes to APNs for one topic (pass type identifier)."""

    def __init__(self, settings: ApnsSettings, *, sleep: Callable[[float], Any] | None = None) -> None:
        self.settings = settings
        self._client: httpcore.AsyncConnectionPool | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._token = (
            _ProviderToken(settings.auth_key_file, settings.auth_key_id or "", settings.team_id or "")
            if settings.auth_key_file
            else None
        )
        self._sleep = sleep or asyncio.sleep
        self._topic = settings.topic.encode()
        self._timeouts = {"connect": settings.timeout, "read": settings.timeout,
                          "write": settings.timeout, "pool": settings.timeout}
        self._loop_thread = _LoopThread.get()

    # -- public, blocking ------------------------------------------------
    def send(self, tokens: Sequence[str]) -> PushReport:
        """Push to every token; blocks until each is sent, dead or given up."""
        if self._loop_thread.pid != os.getpid():
            self._loop_thread = _LoopThread.get()
            self._client = None
        return self._loop_thread.run(self.send_async(tokens)).result()

    def close(self) -> None:
        if self._client is not None and self._loop_thread.pid == os.getpid():
            try:
                self._loop_thread.run(self._client.aclose()).result(timeout=5)
            except Exception:  # closing a broken connection may fail; nothing to do
                pass
        self._client = None

    # -- async -----------------------------------------------------------
    async def send_async(self, tokens: Sequence[str]) -> PushReport:
        report = PushReport()
        stop = asyncio.Event()
        client = self._ensure_client()
        assert self._semaphore is not None

        async def one(token: str) -> None:
            async with self._semaphore:  # type: ignore[union-attr]
                if stop.is_set():
                    report.not_attempted.append(token)
                    return
                outcome, reason = await self._push_with_retries(client, token, stop)
            if outcome == "sent":
                report.sent.append(token)
            elif outcome == "dead":
                report.unregistered.append(token)
            elif outcome == "forbidden":
                if report.certificate_error is None:
                    report.certificate_error = reason
                report.not_attempted.append(token)
                stop.set()
            elif outcome == "stopped":
                report.not_attempted.append(token)
            else:
                report.failed[token] = reason

        await asyncio.gather(*(one(t) for t in dict.fromkeys(tokens)))
        return report

    def _ensure_client(self) -> httpcore.AsyncConnectionPool:
        if self._client is None:
            s = self.settings
            context = ssl.create_default_context()
            if s.ca_file:
                context.load_verify_locations(s.ca_file)
            if self._token is None and s.cert_file:
                context.load_cert_chain(s.cert_file, s.key_file)
            # One HTTP/2 connection; its streams carry the concurrency.
            self._client = httpcore.AsyncConnectionPool(
                ssl_context=context,
                http1=False,
                http2=True,
                max_connections=1,
                max_keepalive_connections=1,
                keepalive_expiry=3600,
            )
            self._semaphore = asyncio.Semaphore(s.max_streams)
        return self._client

    async def _push_with_retries(
        self, client: httpcore.AsyncConnectionPool, token: str, stop: asyncio.Event
    ) -> tuple[str, str]:
        s = self.settings
        reason = ""
        refreshed = False
        for attempt in range(s.max_retries + 1):
            if stop.is_set():
                return "stopped", ""
            headers = [
                (b"apns-topic", self._topic),
                (b"content-type", b"application/json"),
            ]
            if self._token is not None:
                headers.append((b"authorization", b"bearer " + self._token.get().encode()))
            try:
                response = await client.request(
                    "POST", f"{s.url}/3/device/{token}", headers=headers, content=PAYLOAD,
                    extensions={"timeout": self._timeouts},
                )
                status = response.status
                reason = _reason(response.content)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # httpcore's network, TLS and protocol errors
                status, reason = 0, f"{type(exc).__name__}: {exc}"
            if status == 200:
                return "sent", ""
            if status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
                return "dead", reason
            if status == 403:
                if self._token is not None and reason == "ExpiredProviderToken" and not refreshed:
                    self._token.get(force=True)
                    refreshed = True
                    continue
                return "forbidden", f"403 {reason}".strip()
            if status == 429 or status >= 500 or status == 0:
                if attempt < s.max_retries:
                    # Exponential back-off with full jitter spreads retries of
                    # thousands of streams instead of replaying them together.
                    delay = random.uniform(0, min(s.backoff_cap, s.backoff_base * (2**attempt)))
                    await self._sleep(delay)
                    continue
                return "failed", f"{status or 'connection'} {reason}".strip()
            return "failed", f"{status} {reason}".strip()
        return "failed", reason


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
