"""A client of the Google Wallet REST API (walletobjects v1), for loyalty
classes and objects.

Google documents a limit of 20 calls a second per project and asks for
truncated exponential back-off on 429 and 5xx. So calls of one process are
spaced at least 1/20 s apart, and a 429, a 5xx or a broken connection is
tried again a few times after 1, 2, 4 s (plus up to a second of jitter;
Retry-After when Google sends one) before the caller is told to try later.
A 401 fetches a new token once. Any other 4xx is Google refusing what we
sent: GoogleApiError with Google's message and ``retryable`` False.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from wallet.google.auth import ServiceAccountTokens
from wallet.google.errors import GoogleApiError

log = logging.getLogger(__name__)

CALLS_PER_SECOND = 20
MAX_RETRIES = 3
BACKOFF_BASE = 1.0
MAX_BACKOFF = 32.0


def _google_message(response: httpx.Response) -> str:
    """Google's own words from an error answer ({"error": {"message"}})."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:1000]
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason_phrase


class _Pacer:
    """Spaces the calls of this process to Google's documented rate."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


_pacer = _Pacer(CALLS_PER_SECOND)


class WalletApi:
    """Calls of walletobjects v1 for one issuer's service account."""

    def __init__(self, base_url: str, tokens: ServiceAccountTokens, http: httpx.Client, *,
                 max_retries: int = MAX_RETRIES, backoff_base: float = BACKOFF_BASE,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.http = http
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.sleep = sleep

    # -- resources ---------------------------------------------------------
    def insert_class(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/loyaltyClass", body)

    def patch_class(self, class_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PATCH", f"/loyaltyClass/{quote(class_id, safe='')}", body)

    def insert_object(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/loyaltyObject", body)

    def patch_object(self, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PATCH", f"/loyaltyObject/{quote(object_id, safe='')}", body)

    def add_message(self, object_id: str, message: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/loyaltyObject/{quote(object_id, safe='')}/addMessage", {"message": message})

    # -- transport ---------------------------------------------------------
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after is not None and retry_after.strip().isdigit():
            return min(MAX_BACKOFF, float(retry_after))
        return min(MAX_BACKOFF, self.backoff_base * 2**attempt + random.uniform(0, self.backoff_base))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call, tried again as the module docstring says."""
        url = self.base_url + path
        renewed = False
        attempt = 0
        while True:
            token = self.tokens.token()
            _pacer.wait()
            try:
                response = self.http.request(method, url, json=body,
                                             headers={"Authorization": f"Bearer {token}"})
            except httpx.TransportError as exc:
                if attempt < self.max_retries:
                    self.sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                raise GoogleApiError(f"{method} {path}: Google cannot be reached ({type(exc).__name__})",
                                     status=0, retryable=True) from exc
            status = response.status_code
            if 200 <= status < 300:
                try:
                    answer = response.json() if response.content else {}
                except ValueError:
                    answer = {}
                return answer if isinstance(answer, dict) else {}
            if status == 401 and not renewed:
                self.tokens.forget(token)
                renewed = True
                continue
            if (status == 429 or status >= 500) and attempt < self.max_retries:
                delay = self._delay(attempt, response)
                log.info("Google answered %s to %s %s; trying again in %.1f s", status, method, path, delay)
                self.sleep(delay)
                attempt += 1
                continue
            raise GoogleApiError(f"{method} {path}: {status} {_google_message(response)}", status=status,
                                 retryable=status in (401, 429) or status >= 500)
