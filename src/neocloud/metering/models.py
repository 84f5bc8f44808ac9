"""What metering stores: usage intervals as received (the measured ledger), the parts of
them that are not billable and why (the excluded ledger), and node telemetry samples.

The billable ledger is what is left: each interval carries `gpu_seconds` (measured) and
`billable_gpu_seconds`, and its exclusion rows hold the rest, so that for every interval
`billable_gpu_seconds + sum(exclusions.gpu_seconds) == gpu_seconds`, in integers. Billing
sums `billable_gpu_seconds` per contract (or splits the billable stretches by hour); it
never sees a float.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.db.base import Base, UTCDateTime, str_enum

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class ExclusionReason(enum.StrEnum):
    """Why GPU-seconds that were measured are not billed."""

    OUTSIDE_TERM = "outside-term"
    """Before the contract's start or after its end."""
    NODE_DOWN = "node-down"
    """The contract did not hold the node then (it had failed, or was not allocated to it)."""
    MAINTENANCE = "maintenance"
    """An operator recorded planned maintenance."""
    OPERATOR_FAULT = "operator-fault"
    """An operator recorded a fault of the operator's making."""


class UsageInterval(Base):
    """A stretch of time during which a contract used GPUs of a node, as an engine or agent
    reported it. Deduplicated by (tenant, source, event id): a resent event is not stored
    again. Times are kept to the second, so GPU-seconds are exact integers."""

    __tablename__ = "usage_intervals"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "source", "event_id"),
        sa.Index("ix_usage_intervals_contract_start", "contract_id", "start_at"),
        sa.CheckConstraint("gpus > 0", name="gpus"),
        sa.CheckConstraint("end_at > start_at", name="order"),
        sa.CheckConstraint(
            "billable_gpu_seconds >= 0 AND billable_gpu_seconds <= gpu_seconds", name="billable"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on the three references, on purpose: this is the hottest table, and
    # PostgreSQL's per-row foreign-key triggers were half of its CPU per ingested event
    # (docs/metering.md, "Benchmark"). The ingest checks every reference in bulk before it
    # writes (unknown contract, node or tenant: the event is rejected with its reason), and
    # tenants, contracts and nodes are never deleted (a site with nodes cannot be), so a
    # reference can't dangle; tests/metering/test_references.py holds both to it.
    tenant_id: Mapped[int] = mapped_column(sa.Integer)
    contract_id: Mapped[int] = mapped_column(sa.Integer)
    node_id: Mapped[int] = mapped_column(sa.Integer)
    gpus: Mapped[int] = mapped_column(sa.Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger)
    """Measured: gpus x (end - start) in seconds."""
    billable_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger)
    """Measured less every exclusion of this interval."""
    source: Mapped[str] = mapped_column(sa.String(200))
    event_id: Mapped[str] = mapped_column(sa.String(200))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageExclusion(Base):
    """A part of a usage interval that is not billed, and why. Written at ingest for
    `outside-term` and `node-down`; an operator may add `maintenance` or `operator-fault`
    later (the interval's `billable_gpu_seconds` is lowered in the same transaction)."""

    __tablename__ = "usage_exclusions"
    __table_args__ = (
        sa.Index("ix_usage_exclusions_contract_start", "contract_id", "start_at"),
        sa.CheckConstraint("end_at > start_at", name="order"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    interval_id: Mapped[int] = mapped_column(
        sa.ForeignKey("usage_intervals.id", ondelete="CASCADE"), index=True
    )
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id", ondelete="CASCADE"))
    reason: Mapped[ExclusionReason] = mapped_column(str_enum(ExclusionReason))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(500))


class UsageAdjustment(Base):
    """An operator's record that a contract's usage in [start, end) is not billed, for
    `maintenance` or an `operator-fault` (on one node, or on all of the contract's). It
    applies to the intervals already stored when it is recorded and to those that arrive
    later."""

    __tablename__ = "usage_adjustments"
    __table_args__ = (
        sa.CheckConstraint("end_at > start_at", name="order"),
        sa.CheckConstraint("reason IN ('maintenance', 'operator-fault')", name="reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[int | None] = mapped_column(sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(sa.String(32))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(sa.String(500))
    actor: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetrySample(Base):
    """One GPU's readings at one instant, from a node agent. Telemetry is the operator's own
    data (only operator tokens send it), so its dedupe key (operator, source, event id) is
    the unique pair (source, event id)."""

    __tablename__ = "telemetry_samples"
    __table_args__ = (
        sa.UniqueConstraint("source", "event_id"),
        sa.Index("ix_telemetry_samples_node_time", "node_id", "event_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    node_id: Mapped[int] = mapped_column(sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    gpu_index: Mapped[int] = mapped_column(sa.Integer)
    utilization_pct: Mapped[float] = mapped_column(sa.Float)
    memory_used_mib: Mapped[int] = mapped_column(sa.BigInteger)
    power_w: Mapped[float] = mapped_column(sa.Float)
    temperature_c: Mapped[float] = mapped_column(sa.Float)
    source: Mapped[str] = mapped_column(sa.String(200))
    event_id: Mapped[str] = mapped_column(sa.String(200))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageRollup(Base):
    """One hour of a contract at one site on one accelerator: what it used (measured,
    billable, excluded by reason — added to at ingest, so late events land in their own
    hour), and what it held and drew (allocated GPU-seconds and energy — set when the hour
    is closed, from placement's allocations and the nodes' telemetry). GPU-seconds are
    integers; energy is in watt-hours."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        sa.PrimaryKeyConstraint("hour", "contract_id", "site_id", "accelerator_id"),
        sa.Index("ix_usage_rollups_contract_hour", "contract_id", "hour"),
    )

    hour: Mapped[int] = mapped_column(sa.Integer)
    """Hours since the epoch (UTC)."""
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    accelerator_id: Mapped[int] = mapped_column(sa.ForeignKey("accelerators.id"))
    measured_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    billable_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    outside_term_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    node_down_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    maintenance_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    operator_fault_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    allocated_gpu_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    energy_wh: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class NodeHour(Base):
    """A node's telemetry summed per hour (samples of all its GPUs), added to at ingest:
    the mean utilization and power of an hour are the sums over the count."""

    __tablename__ = "node_hours"
    __table_args__ = (sa.PrimaryKeyConstraint("node_id", "hour"),)

    node_id: Mapped[int] = mapped_column(sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    hour: Mapped[int] = mapped_column(sa.Integer)
    samples: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    utilization_pct_sum: Mapped[float] = mapped_column(sa.Float, default=0.0)
    power_w_sum: Mapped[float] = mapped_column(sa.Float, default=0.0)


class RollupHour(Base):
    """An hour whose allocated GPU-seconds and energy have been worked out (closed). Telemetry
    that arrives for it later marks it `stale`, and the next closing pass works it out again."""

    __tablename__ = "rollup_hours"

    hour: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stale: Mapped[bool] = mapped_column(sa.Boolean, default=False)
