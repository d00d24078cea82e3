"""Outbound webhooks: a brand's endpoints and the events queued for them.

Events are written to the outbox in the transaction that causes them; the
workers deliver them (see wallet.jobs), signed and retried with back-off.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId, OutboxEvent

EVENT_TYPES = (
    "member.enrolled",
    "transaction.created",
    "points.expiring",
    "card.installed",
    "card.removed",
)
WEBHOOK = "webhook"


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
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    hooks = session.scalars(
        select(Webhook).where(Webhook.brand_id == brand_id, Webhook.active.is_(True))
    ).all()
    queued = 0
    created = utcnow()
    for hook in hooks:
        if hook.events and event_type not in hook.events:
            continue
        session.add(
            OutboxEvent(
                kind=WEBHOOK,
                brand_id=brand_id,
                payload={
                    "webhook_id": hook.id,
                    "event": {
                        "id": "evt_" + secrets.token_hex(12),
                        "type": event_type,
                        "created_at": created.isoformat(),
                        "data": data,
                    },
                },
            )
        )
        queued += 1
    return queued
