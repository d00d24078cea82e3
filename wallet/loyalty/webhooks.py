"""Outbound webhooks: a brand's endpoints and the events queued for them.

Events are written to the outbox in the transaction that causes them; the
workers deliver them (see wallet.jobs), signed and retried with back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, bindparam, func, insert, select
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import Mapped, Session, mapped_column

from wallet.db import Base, table_of, utcnow
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.models import BigId, OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, from_fields, require
from wallet.loyalty.webhook_targets import TargetPolicy

EVENT_TYPES = (
    "member.enrolled",
    "transaction.created",
    "points.expiring",
    "card.installed",
    "card.removed",
    "survey.answered",
)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Signs every delivery (HMAC-SHA256); shown to the brand once.
    secret: Mapped[str] = mapped_column(String(64), default=lambda: "whsec_" + secrets.token_hex(24))
    # Subscribed event types; empty means all.
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def emit_event(session: Session, *, brand_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Queue ``event_type`` for every active webhook of the brand that wants
    it, in the caller's transaction. Returns how many deliveries were queued."""
    return emit_events(session, brand_id=brand_id, event_type=event_type, items=[data])


_ACTIVE_HOOKS = select(Webhook.id, Webhook.events).where(Webhook.brand_id == bindparam("brand_id"),
                                                         Webhook.active.is_(True))


def subscribers(session: Session, *, brand_id: int, event_type: str) -> list[int]:
    """The brand's active webhooks that want ``event_type``: a caller whose
    event is costly to describe asks first and describes it only for them."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    return [hook_id for hook_id, events in session.execute(_ACTIVE_HOOKS, {"brand_id": brand_id})
            if not events or event_type in events]


_QUEUE_WEBHOOK = insert(table_of(OutboxEvent)).values(kind=OutboxKind.WEBHOOK.value, attempts=0)


def emit_events(session: Session, *, brand_id: int, event_type: str, items: list[dict[str, Any]],
                hooks: list[int] | None = None) -> int:
    """``emit_event`` for several events of one type, reading the brand's
    webhooks once (or given them: ``hooks``, from ``subscribers``)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not items:
        return 0
    if hooks is None:
        hooks = subscribers(session, brand_id=brand_id, event_type=event_type)
    now = utcnow()
    created = now.isoformat()
    rows = [
        {"payload": WebhookPayload(webhook_id=hook_id, event=WebhookEvent(
            id="evt_" + secrets.token_hex(12), type=event_type, created_at=created, data=data)).to_json(),
         "brand_id": brand_id, "available_at": now, "created_at": now}
        for data in items for hook_id in hooks
    ]
    if rows:
        # Core INSERTs, as a card change's row (wallet.loyalty.cards).
        session.execute(_QUEUE_WEBHOOK, rows)
    return len(rows)


@dataclass(frozen=True)
class WebhookEvent:
    """What a webhook receives: the body of the POST, byte for byte what is
    signed (see ``body``)."""

    id: str
    type: str
    created_at: str
    data: dict[str, Any]

    def __post_init__(self) -> None:
        for name in ("id", "type", "created_at"):
            require(getattr(self, name), str, name)
        require(self.data, dict, "data")

    def body(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class WebhookPayload(OutboxPayload):
    """An outbox row of kind webhook: one event for one webhook."""

    kind: ClassVar[OutboxKind] = OutboxKind.WEBHOOK

    webhook_id: int
    event: WebhookEvent

    def __post_init__(self) -> None:
        require(self.webhook_id, int, "webhook_id")
        if isinstance(self.event, dict):
            # Read back from JSON: the event comes as an object of its own.
            object.__setattr__(self, "event", from_fields(WebhookEvent, self.event))
        require(self.event, WebhookEvent, "event")


class DeliveryError(StrEnum):
    """Why a delivery got no HTTP answer, in words a brand may see. A fixed
    vocabulary: the socket's own error text would tell a prober which ports
    answer and how."""

    PRIVATE_ADDRESS = "refused: private address"
    INVALID_URL = "refused: invalid URL"
    NOT_RESOLVED = "DNS lookup failed"
    CONNECTION_FAILED = "connection failed"
    TIMED_OUT = "timed out"
    TLS_ERROR = "TLS error"
    INVALID_RESPONSE = "invalid HTTP response"


class WebhookDelivery(Base):
    """One attempt to deliver one event to one webhook: what was sent, what
    came back. Every attempt is a row, so a brand can see its retries."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    url: Mapped[str] = mapped_column(String(2000))
    # None when no HTTP answer came (connection refused, timeout).
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[DeliveryError | None] = mapped_column(SqlEnum(
        DeliveryError, name="delivery_error", native_enum=False, create_constraint=True, length=32,
        values_callable=lambda kinds: [k.value for k in kinds]))
    succeeded: Mapped[bool] = mapped_column(default=False)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- a brand's webhooks --------------------------------------------------------

MAX_WEBHOOKS_PER_BRAND = 20


def _clean_events(events: Any) -> list[str]:
    if events is None:
        return []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise RuleViolation("events must be a list of event types", code="invalid_events")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise RuleViolation(
            f"unknown event type {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})", code="invalid_events"
        )
    return sorted(set(events), key=EVENT_TYPES.index)


def create_webhook(session: Session, brand_id: int, *, url: Any, targets: TargetPolicy,
                   events: Any = None) -> Webhook:
    """A new endpoint for the brand; its ``secret`` is shown to the brand once.
    The URL must pass ``targets`` (public addresses only); it is checked,
    DNS included, before the session's transaction starts."""
    cleaned = _clean_events(events)
    url = targets.check_url(url).url
    count = session.scalar(
        select(func.count(Webhook.id)).where(Webhook.brand_id == brand_id, Webhook.active.is_(True))
    )
    if (count or 0) >= MAX_WEBHOOKS_PER_BRAND:
        raise RuleViolation(f"at most {MAX_WEBHOOKS_PER_BRAND} webhooks per brand", code="too_many_webhooks")
    hook = Webhook(brand_id=brand_id, url=url, events=cleaned, active=True)
    session.add(hook)
    session.flush()
    return hook


def get_webhook(session: Session, webhook_id: int, *, brand_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id) if 0 < webhook_id < 2**63 else None
    if hook is None or hook.brand_id != brand_id or not hook.active:
        raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
    return hook


def list_webhooks(session: Session, brand_id: int, *, limit: int = 50, after_id: int | None = None) -> list[Webhook]:
    query = select(Webhook).where(Webhook.brand_id == brand_id, Webhook.active.is_(True))
    if after_id is not None:
        query = query.where(Webhook.id > after_id)
    return list(session.scalars(query.order_by(Webhook.id).limit(limit)))


def delete_webhook(session: Session, webhook_id: int, *, brand_id: int) -> None:
    """Deactivate the endpoint: queued events for it are dropped, its
    delivery history stays."""
    get_webhook(session, webhook_id, brand_id=brand_id).active = False


# --- signatures ----------------------------------------------------------------------

SIGNATURE_HEADER = "Wallet-Signature"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept a timestamp for


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Wallet-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">``. The timestamp is signed too, so a captured delivery
    cannot be replayed later with a fresh timestamp."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int,
                     tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """What a receiver does: parse the header, check the timestamp is recent,
    compare the MAC in constant time (any v1 value may match, for rotation)."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))
