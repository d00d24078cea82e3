"""A stand-in for an Android wallet app's push API (WalletPasses, WalletUnion):
plain HTTP on a loopback socket that checks the provider key in the
Authorization header, keeps every body it accepts, answers scripted
statuses first (``script(429, ...)``) and lists the tokens it is told are
dead (``expired``) as WalletUnion does."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from tests.support.http import JsonServer


class AndroidPushStandIn:
    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.expired: set[str] = set()
        self._script: list[int] = []
        self._lock = threading.Lock()
        self.http = JsonServer(self._handle, name="android-push")

    @property
    def url(self) -> str:
        return self.http.url + "/api/v1/push"

    def script(self, *statuses: int) -> None:
        with self._lock:
            self._script.extend(statuses)

    def _handle(self, _method: str, _path: str, headers: Mapping[str, str], raw: bytes
                ) -> tuple[int, Any, dict[str, str]]:
        status, payload = self._answer(headers.get("Authorization"), raw)
        return status, payload, {"Retry-After": "0"} if status == 429 else {}

    def _answer(self, authorization: str | None, raw: bytes) -> tuple[int, Any]:
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
            if authorization != self.api_key:
                status, payload = 401, {"status": "ERROR", "message": "bad API key"}
            elif scripted is not None:
                status, payload = scripted, {"status": "ERROR"}
            else:
                body = json.loads(raw)
                tokens = body.get("pushTokens") or []
                dead = [t for t in tokens if t in self.expired]
                self.received.append(body)
                status, payload = 200, {"status": "ERROR" if dead else "OK", "unknown_push_tokens": [],
                                        "expired_push_tokens": dead}
            self.statuses.append(status)
            return status, payload

    def __enter__(self) -> AndroidPushStandIn:
        self.http.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.stop()
