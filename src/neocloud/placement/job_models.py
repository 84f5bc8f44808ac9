"""What the shared pools' job queue stores: each job and what happened to it.

The queue itself (`placement.queue`) lives in memory and decides; these rows are the truth it
is rebuilt from on every scheduling pass (`placement.job_pass`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.core.timeutil import utcnow
from neocloud.db.base import Base, UTCDateTime, str_enum


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    UNPLACEABLE = "unplaceable"

    @property
    def done(self) -> bool:
        return self in (JobState.FINISHED, JobState.CANCELLED, JobState.UNPLACEABLE)


class Job(Base):
    """A job of a shared pool (on-demand, spot, internal), run under one of its tenant's
    contracts at one site.

    `placement` holds the GPUs of the current run as [node id, GPU index] pairs, each taking
    `gpu_milli` milli-GPUs (null unless running). A preempted job goes back to `queued` with
    its `submitted_at`, so it keeps its place in the queue.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    pool: Mapped[str] = mapped_column(sa.String(16))
    """internal, spot or on-demand: the contract's type when the job was submitted."""
    gpus: Mapped[int] = mapped_column(sa.Integer)
    gpu_milli: Mapped[int] = mapped_column(sa.Integer)
    gpu_types: Mapped[list[str]] = mapped_column(sa.JSON)
    priority: Mapped[int] = mapped_column(sa.Integer, default=0)
    preemptible: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    """Expected run time (a time limit or an estimate); backfill plans with it."""
    state: Mapped[JobState] = mapped_column(str_enum(JobState, 16), index=True)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    placement: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    preemptions: Mapped[int] = mapped_column(sa.Integer, default=0)


class JobEvent(Base):
    """One thing that happened to a job: submitted, started, preempted (with the reason),
    finished, cancelled, unplaceable."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
