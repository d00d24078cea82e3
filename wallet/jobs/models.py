"""Tables of the background work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId


class ScheduleRun(Base):
    """One scheduled job's run for one slot (an instant on the schedule's grid).

    Every scheduler (the embedded timer of each web process, Celery beat,
    a second beat started by mistake) tries to insert the row for the
    current slot; the unique (job, slot) constraint lets exactly one of them
    win, and only the winner runs the job. ``finished_at`` stays empty if the
    winner died: the next slot does the work, as the time rules are
    cumulative."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_schedule_runs_job_slot"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[datetime]
    runner: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
