"""What the planner stores: runs of `POST /v1/plans`, done in the background by whichever
API process claims them (see `neocloud.planning.runs`)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.core.timeutil import utcnow
from neocloud.db.base import Base, UTCDateTime, str_enum


class PlanStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PlanRun(Base):
    """One plan asked for: its scenario text, its state and, once done, the report.

    A run is claimed with a conditional UPDATE (`status = 'queued'`, or `running` with a
    heartbeat gone stale because its process died), so several API processes never run one
    twice; the claimer keeps `heartbeat_at` fresh and writes only while `claimed_by` is its own.
    """

    __tablename__ = "plan_runs"
    __table_args__ = (sa.Index("ix_plan_runs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[str] = mapped_column(sa.String(120))
    status: Mapped[PlanStatus] = mapped_column(str_enum(PlanStatus, 16), default=PlanStatus.QUEUED)
    progress: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")
    message: Mapped[str] = mapped_column(sa.String(500), default="queued")
    name: Mapped[str | None] = mapped_column(sa.String(120))
    """The scenario's name (and the compared one's), for listings."""
    scenario: Mapped[str] = mapped_column(sa.Text)
    compare: Mapped[str | None] = mapped_column(sa.Text)
    runs: Mapped[int] = mapped_column(sa.Integer)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.String(4000))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
