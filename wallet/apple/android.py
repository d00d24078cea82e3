"""Pushes to Android wallet apps that hold Apple-format passes.

WalletPasses and WalletUnion's Wallet speak Apple's web-service protocol
and differ only in the Authorization scheme they register with (see
WalletApp). A card change reaches them through their own push APIs instead
of APNs: a JSON POST of {"passTypeIdentifier", "pushTokens": [...]} with
the provider's key in the Authorization header; the app then fetches the
pass from the web service as Apple Wallet does. WalletUnion takes at most 50
Firebase or 1,000 Huawei tokens a request ("hms": true for the latter) and
lists the tokens it no longer knows (``unknown_push_tokens``,
``expired_push_tokens``): their registrations are dropped, as APNs 410s are.
429 and 5xx are tried again with the APNs settings' back-off (Retry-After
when given); what still fails is reported so the outbox row comes back.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from wallet.apple.apns import PushReport
from wallet.apple.models import WalletApp

log = logging.getLogger(__name__)

BACKOFF_CAP = 20.0
_unconfigured_logged: set[WalletApp] = set()


@dataclass(frozen=True)
class PushApi:
    """One app's push endpoint."""

    url: str | None
    api_key: str | None
    batch_size: int
    extra: dict[str, Any] = field(default_factory=dict)


def push_api(settings: Any, app: WalletApp) -> PushApi:
    if app is WalletApp.WALLETPASSES:
        return PushApi(settings.walletpasses_push_url, settings.walletpasses_api_key, 50)
    if app is WalletApp.WALLETUNION:
        return PushApi(settings.walletunion_push_url, settings.walletunion_api_key, 50, {"hms": False})
    if app is WalletApp.WALLETUNION_HMS:
        return PushApi(settings.walletunion_push_url, settings.walletunion_api_key, 1000, {"hms": True})
    raise ValueError(f"{app} is pushed through APNs")


def _dead_tokens(response: httpx.Response) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return set()
    if not isinstance(body, dict):
        return set()
    dead: set[str] = set()
    for key in ("unknown_push_tokens", "expired_push_tokens"):
        listed = body.get(key)
        if isinstance(listed, list):
            dead.update(token for token in listed if isinstance(token, str))
    return dead


class AndroidPusher:
    """Sends one app's pushes for one pass type identifier."""

    def __init__(self, api: PushApi, topic: str, *, max_retries: int, backoff_base: float,
                 http: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api
        self.topic = topic
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.http = http
        self.sleep = sleep

    def send(self, app: WalletApp, tokens: list[str]) -> PushReport:
        report = PushReport()
        if not tokens:
            return report
        if not self.api.url:
            if app not in _unconfigured_logged:
                _unconfigured_logged.add(app)
                log.warning("no push URL is set for %s: its devices update their passes when the app opens", app)
            report.sent.extend(tokens)
            return report
        http = self.http or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        try:
            for start in range(0, len(tokens), self.api.batch_size):
                self._send_batch(http, tokens[start:start + self.api.batch_size], report)
        finally:
            if self.http is None:
                http.close()
        return report

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.strip().isdigit():
            return min(BACKOFF_CAP, float(retry_after))
        return min(BACKOFF_CAP, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)

    def _send_batch(self, http: httpx.Client, batch: list[str], report: PushReport) -> None:
        assert self.api.url is not None
        body = {"passTypeIdentifier": self.topic, "pushTokens": batch, **self.api.extra}
        headers = {"Authorization": self.api.api_key} if self.api.api_key else {}
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = http.post(self.api.url, json=body, headers=headers)
                reason = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                reason = f"cannot be reached ({type(exc).__name__})"
            if response is not None and 200 <= response.status_code < 300:
                dead = _dead_tokens(response) & set(batch)
                report.unregistered.extend(t for t in batch if t in dead)
                report.sent.extend(t for t in batch if t not in dead)
                return
            retryable = response is None or response.status_code == 429 or response.status_code >= 500
            if retryable and attempt < self.max_retries:
                self.sleep(self._delay(attempt, response))
                attempt += 1
                continue
            log.warning("push to %s failed: %s", self.api.url, reason)
            report.failed.update({token: reason for token in batch})
            return
