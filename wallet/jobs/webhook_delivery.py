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

import logging
import ssl
import time

from wallet.db import Database
from wallet.jobs.webhook_http import READ_TIMEOUT, DeliveryFailed, post
from wallet.jobs.outbox import Claimed
from wallet.loyalty.outbox import MalformedPayload
from wallet.loyalty.webhook_targets import TargetPolicy
from wallet.loyalty.webhooks import SIGNATURE_HEADER, DeliveryError, Webhook, WebhookDelivery, WebhookPayload, sign

log = logging.getLogger(__name__)

USER_AGENT = "WalletClubs-Webhooks/1"


class RetryLater(Exception):
    """The endpoint did not take the event (no answer, or not a 2xx); the
    dispatcher retries the outbox row with back-off."""


def deliver(db: Database, outbox_event: Claimed, *, targets: TargetPolicy,
            ssl_context: ssl.SSLContext | None = None, timeout: float = READ_TIMEOUT) -> None:
    """POST the event to its webhook, to an address ``targets`` allows.
    Returns when the endpoint answered 2xx (or the webhook is gone: nothing
    left to deliver to); raises RetryLater otherwise. A 410 Gone answer
    switches the webhook off; a redirect is not followed (a failure)."""
    try:
        payload = WebhookPayload.of(outbox_event)
    except MalformedPayload as exc:
        log.warning("dropping outbox row %s: %s", outbox_event.id, exc)
        return
    event, webhook_id = payload.event, payload.webhook_id
    with db.session() as session:
        hook = session.get(Webhook, webhook_id)
        if hook is None or not hook.active:
            log.info("webhook %s is gone; dropping outbox row %s", webhook_id, outbox_event.id)
            return
        url, secret = hook.url, hook.secret
    body = event.body()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Wallet-Event": event.type,
        "Wallet-Delivery": event.id,
    }
    attempt = (outbox_event.attempts or 0) + 1
    status: int | None = None
    answer: str | None = None
    error: DeliveryError | None = None
    started = time.monotonic()
    try:
        reply = post(url, body, headers, policy=targets, ssl_context=ssl_context, timeout=timeout)
        status, answer = reply.status, reply.head
    except DeliveryFailed as failed:
        error = failed.reason
    succeeded = status is not None and 200 <= status < 300
    with db.transaction() as session:
        session.add(WebhookDelivery(
            webhook_id=webhook_id, outbox_id=outbox_event.id, event_id=event.id[:64],
            event_type=event.type[:64], attempt=attempt, url=url,
            response_status=status, response_body=answer, error=error, succeeded=succeeded,
            duration_ms=int((time.monotonic() - started) * 1000),
        ))
        if status == 410:
            live = session.get(Webhook, webhook_id)
            if live is not None:
                live.active = False
    if succeeded or status == 410:
        return
    raise RetryLater(f"webhook {webhook_id}: " + (f"HTTP {status}" if status is not None else str(error)))
