"""What neocloud stores about engines: which engine manages each fabric, how the last
reconciles went, and what the operator manages by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.core.timeutil import utcnow
from neocloud.db.base import Base, Timestamped, UTCDateTime


class EngineFabric(Timestamped, Base):
    """A fabric whose nodes an engine manages, with the state of its reconcile.

    The state is kept per fabric so that several API processes share it: a reconcile claims
    the fabric with a lease (`lease_until`, a conditional UPDATE), so one process at a time
    talks to the engine, without holding a database transaction while the engine answers.
    """

    __tablename__ = "engine_fabrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    fabric_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fabrics.id", ondelete="CASCADE"), unique=True
    )
    engine: Mapped[str] = mapped_column(sa.String(32))
    """slurm, kueue, ..."""
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    """The engine's settings (for Slurm: cluster, conf, users, ...)."""
    source: Mapped[str] = mapped_column(sa.String(16), default="api")
    """Who set it: `api`, or `fleet` (the fleet file; it may unset only what it set)."""

    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    """Reconciles failed in a row (the engine unreachable): the backoff grows with it."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.String(2000))
    changes: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    """What the last successful reconcile changed on the engine."""
    drift: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    """Differences it left: on objects marked manual, or that the engine refused."""
    health: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    """Node reports already acted on (`engines.health.HealthMemory`)."""
    usage_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Accounting was read up to here (the next read overlaps it)."""
    usage_events: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    """Usage events accepted from the engine's accounting, all told."""


class EngineMark(Base):
    """An engine object the operator manages by hand: reconcile reports drift on it and
    never changes it."""

    __tablename__ = "engine_marks"
    __table_args__ = (sa.UniqueConstraint("engine_fabric_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_fabric_id: Mapped[int] = mapped_column(
        sa.ForeignKey("engine_fabrics.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
