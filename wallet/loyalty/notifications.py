"""Email and SMS to people, sent after the commit that decided to send them.

``queue_email`` and ``queue_sms`` write an outbox row of kind
``notification`` in the caller's transaction: the message goes out only if
that transaction commits, and once it has committed it is not lost (a worker
that dies mid-send leaves the row to another; see wallet.jobs). The workers
deliver it (wallet.jobs.notify): email through SMTP when SMTP_HOST is set,
otherwise, and for SMS until a provider is plugged in, the message is
written to the log, which is how development reads its sign-in links.

The payload is ``NotificationPayload``: the channel, the address, the
subject (empty for SMS), the plain text and, for email, an optional HTML
alternative. Addresses are checked and made canonical here, so a bad one
fails the caller, not the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, require
from wallet.loyalty.fields import valid_text

MAX_SUBJECT = 200
MAX_BODY = 20_000
MAX_SMS_BODY = 1_000  # about six concatenated SMS parts of Cyrillic text


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True)
class NotificationPayload(OutboxPayload):
    """An outbox row of kind notification: one message to one address."""

    kind: ClassVar[OutboxKind] = OutboxKind.NOTIFICATION

    channel: Channel
    to: str
    subject: str
    body: str
    html: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel", Channel(self.channel))
        for name in ("to", "subject", "body"):
            require(getattr(self, name), str, name)
        if self.html is not None:
            require(self.html, str, "html")


def _queue(session: Session, payload: NotificationPayload, *, brand_id: int | None,
           membership_id: int | None) -> OutboxEvent:
    row = OutboxEvent.carrying(payload, brand_id=brand_id, membership_id=membership_id)
    session.add(row)
    return row


def queue_email(session: Session, *, to: str, subject: str, body: str, html: str | None = None,
                brand_id: int | None = None, membership_id: int | None = None) -> OutboxEvent:
    """Send an email (plain text ``body``, optionally an ``html``
    alternative) once the caller's transaction commits.

    ``brand_id`` / ``membership_id`` say on whose behalf, for the record and
    for ``recent_notifications``; they change nothing in delivery."""
    payload = NotificationPayload(
        channel=Channel.EMAIL,
        to=normalize_email(to, field="to"),
        subject=valid_text(subject, "subject", max_len=MAX_SUBJECT, code="invalid_notification"),
        body=valid_text(body, "body", max_len=MAX_BODY, code="invalid_notification", multiline=True),
        html=None if html is None else valid_text(html, "html", max_len=MAX_BODY * 4, code="invalid_notification",
                                                  multiline=True),
    )
    return _queue(session, payload, brand_id=brand_id, membership_id=membership_id)


def queue_sms(session: Session, *, to: str, body: str, brand_id: int | None = None,
              membership_id: int | None = None) -> OutboxEvent:
    """Send a text message to ``to`` (E.164, or with "+" and a country
    code) once the caller's transaction commits."""
    payload = NotificationPayload(
        channel=Channel.SMS,
        to=normalize_phone(to, field="to"),
        subject="",
        body=valid_text(body, "body", max_len=MAX_SMS_BODY, code="invalid_notification", multiline=True),
    )
    return _queue(session, payload, brand_id=brand_id, membership_id=membership_id)


def recent_notifications(session: Session, membership_id: int, *, within: timedelta,
                         now: datetime | None = None) -> int:
    """How many notifications were queued about one membership lately:
    callers that send on a stranger's request (a join form typed with
    someone's email) cap how often that person can be written to."""
    since = (now or utcnow()) - within
    return session.scalar(
        select(func.count(OutboxEvent.id)).where(
            OutboxEvent.membership_id == membership_id,
            OutboxEvent.kind == OutboxKind.NOTIFICATION,
            OutboxEvent.created_at > since,
        )
    ) or 0
