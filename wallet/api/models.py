"""Tables of the JSON API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId

IN_FLIGHT = "in_flight"
DONE = "done"


class IdempotencyKey(Base):
    """One Idempotency-Key of one brand.

    The row is inserted in the transaction of the request's work, before the
    work, so the unique (brand, key) constraint, not a read-then-write check,
    decides which of two duplicates runs (wallet.api.idempotency). It is
    committed with the work and its answer, state "done", or not at all.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("brand_id", "key", name="uq_api_idempotency_keys_brand_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path and the canonical JSON body.
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default=IN_FLIGHT)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    # Only rows an older version left "in flight" use these: such a claim is
    # abandoned at ``locked_until``.
    owner: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None]
