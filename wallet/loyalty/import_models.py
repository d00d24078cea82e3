"""Tables of member imports: a brand's CSV file of existing members and the
job that books it (see ``wallet.loyalty.imports``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class MemberImport(Base):
    """One uploaded file and how far its rows are booked.

    The file is kept whole (``content``) so that the job, run by whichever
    worker takes its outbox row, reads the rows the brand uploaded. Rows are
    booked in chunks; each chunk's bookings and the new ``rows_done`` commit
    together, so a worker that dies mid-chunk leaves nothing of that chunk,
    and the next one starts again where the last commit left off. ``errors``
    holds one entry per refused row: ``{"row", "code", "values"}``."""

    __tablename__ = "member_imports"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s.value}'" for s in ImportStatus) + ")", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    club_id: Mapped[int] = mapped_column(ForeignKey("clubs.id", ondelete="CASCADE"), index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    file_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED.value)
    total_rows: Mapped[int] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)  # new members
    existing: Mapped[int] = mapped_column(Integer, default=0)  # already members: left as they are
    points_booked: Mapped[int] = mapped_column(Integer, default=0)  # starting balances booked
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
