"""Delivering one queued webhook event: a signed POST, recorded.

The outbox dispatcher (wallet.jobs.dispatch) calls ``deliver`` for every row
of kind "webhook" and owns retries: returning means done, raising means try
again later with back-off. Every attempt, successful or not, is a
WebhookDelivery row written in its own transaction, so the record survives
whatever the dispatcher does next.

The body is the event as JSON, byte for byte what is signed:
``Wallet-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Receivers check it with ``wallet.loyalty.webhooks.verify_signature``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from wallet.db import Database
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.webhooks import SIGNATURE_HEADER, Webhook, WebhookDelivery, sign

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_STORED_BODY = 2000
USER_AGENT = "WalletClubs-Webhooks/1"


class RetryLater(Exception):
    """The endpoint did not take the event (no answer, or not a 2xx); the
    dispatcher retries the outbox row with back-off."""


def _body(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def deliver(db: Database, outbox_event: OutboxEvent, *, client: httpx.Client | None = None) -> None:
    """POST the event to its webhook. Returns when the endpoint answered 2xx
    (or the webhook is gone: nothing left to deliver to); raises RetryLater
    otherwise. A 410 Gone answer switches the webhook off."""
    payload = outbox_event.payload or {}
    event = payload.get("event") or {}
    webhook_id = payload.get("webhook_id")
    with db.session() as session:
        hook = session.get(Webhook, webhook_id) if isinstance(webhook_id, int) else None
        if hook is None or not hook.active:
            log.info("webhook %s is gone; dropping outbox row %s", webhook_id, outbox_event.id)
            return
        url, secret = hook.url, hook.secret
    body = _body(event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Wallet-Event": str(event.get("type", "")),
        "Wallet-Delivery": str(event.get("id", "")),
    }
    attempt = (outbox_event.attempts or 0) + 1
    status: int | None = None
    answer: str | None = None
    error: str | None = None
    started = time.monotonic()
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
    try:
        # Streamed, and only the start kept: an endpoint answering with a
        # huge body must not fill the worker's memory.
        with http.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
            head = b""
            for chunk in response.iter_bytes():
                head += chunk
                if len(head) >= MAX_STORED_BODY:
                    break
            answer = head[:MAX_STORED_BODY].decode("utf-8", "replace")
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_STORED_BODY]
    finally:
        if own_client:
            http.close()
    succeeded = status is not None and 200 <= status < 300
    with db.transaction() as session:
        session.add(WebhookDelivery(
            webhook_id=webhook_id, outbox_id=outbox_event.id, event_id=str(event.get("id", ""))[:64],
            event_type=str(event.get("type", ""))[:64], attempt=attempt, url=url,
            response_status=status, response_body=answer, error=error, succeeded=succeeded,
            duration_ms=int((time.monotonic() - started) * 1000),
        ))
        if status == 410:
            live = session.get(Webhook, webhook_id)
            if live is not None:
                live.active = False
    if succeeded or status == 410:
        return
    raise RetryLater(f"webhook {webhook_id} at {url}: " + (f"HTTP {status}" if status is not None else str(error)))
