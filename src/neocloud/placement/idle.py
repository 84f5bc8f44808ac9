"""Which nodes of `lendable` contracts are idle, from their GPUs' telemetry (see spot lending).

A node is idle when its telemetry over the last `window` (NEOCLOUD_SPOT_IDLE_MINUTES,
default 30) shows every GPU below `util_pct` (NEOCLOUD_SPOT_IDLE_UTIL_PCT, default 5) with
near-empty memory, and there are enough samples to be sure: every GPU reported, at least
`MIN_SAMPLES_PER_GPU` samples per GPU, and the samples span the window (an agent that has
only just started, or has gone quiet, proves nothing). No telemetry is never idle: we do not
lend what we cannot see. The caller adds what telemetry cannot say (no job of ours runs on
it, it is not lent already).

The decision (`is_idle`, `is_busy`) is pure, over one aggregate per node; `load` reads the
aggregates of a site's nodes held by lendable contracts with one grouped query.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.contracts.models import Contract
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Node
from neocloud.metering.models import TelemetrySample
from neocloud.placement.models import Allocation

MIN_SAMPLES_PER_GPU = 3
IDLE_MEMORY_MIB = 1024
"""A GPU with at most this much memory in use holds no workload (the driver's and an idle
context's own share stay below it)."""
COVER = 4
"""The samples must start within the window's first 1/COVER and end within its last."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    window: timedelta = timedelta(minutes=30)
    util_pct: float = 5.0
    memory_mib: int = IDLE_MEMORY_MIB


def thresholds_from_env() -> Thresholds:
    """NEOCLOUD_SPOT_IDLE_MINUTES (default 30) and NEOCLOUD_SPOT_IDLE_UTIL_PCT (default 5)."""
    return Thresholds(
        window=timedelta(minutes=float(os.environ.get("NEOCLOUD_SPOT_IDLE_MINUTES", "30"))),
        util_pct=float(os.environ.get("NEOCLOUD_SPOT_IDLE_UTIL_PCT", "5")),
    )


@dataclass(frozen=True, slots=True)
class NodeTelemetry:
    """A node's samples over the window, summed up."""

    samples: int
    gpus_seen: int
    max_util_pct: float
    max_memory_mib: int
    first_at: datetime
    last_at: datetime


def is_busy(t: NodeTelemetry | None, th: Thresholds) -> bool:
    """Some GPU worked (or held memory) during the window."""
    return t is not None and (t.max_util_pct >= th.util_pct or t.max_memory_mib > th.memory_mib)


def is_idle(t: NodeTelemetry | None, gpus: int, th: Thresholds, now: datetime) -> bool:
    """Every GPU of the node sat idle throughout the window, and enough samples show it."""
    if t is None or t.gpus_seen < gpus or t.samples < MIN_SAMPLES_PER_GPU * gpus:
        return False
    since, slack = now - th.window, th.window / COVER
    if as_utc(t.first_at) > since + slack or as_utc(t.last_at) < now - slack:
        return False
    return not is_busy(t, th)


def load(session: Session, site_id: int, now: datetime, th: Thresholds) -> dict[int, NodeTelemetry]:
    """Node id -> its telemetry over [now - window, now], for the site's nodes that lendable
    contracts hold now (one grouped query; the (node, time) index serves it)."""
    since = now - th.window
    rows = session.execute(
        sa.select(
            TelemetrySample.node_id,
            sa.func.count(),
            sa.func.count(sa.distinct(TelemetrySample.gpu_index)),
            sa.func.max(TelemetrySample.utilization_pct),
            sa.func.max(TelemetrySample.memory_used_mib),
            sa.func.min(TelemetrySample.event_time),
            sa.func.max(TelemetrySample.event_time),
        )
        .join(Node, Node.id == TelemetrySample.node_id)
        .join(
            Allocation,
            sa.and_(Allocation.node_id == TelemetrySample.node_id, Allocation.until.is_(None)),
        )
        .join(Contract, Contract.id == Allocation.contract_id)
        .where(
            Node.site_id == site_id,
            Contract.lendable.is_(True),
            TelemetrySample.event_time >= since,
            TelemetrySample.event_time <= now,
        )
        .group_by(TelemetrySample.node_id)
    )
    out: dict[int, NodeTelemetry] = {}
    for node_id, samples, gpus, util, memory, first, last in rows:
        out[int(node_id)] = NodeTelemetry(
            int(samples), int(gpus), float(util), int(memory), utc_of(first), utc_of(last)
        )
    return out


def utc_of(value: datetime | str) -> datetime:
    """An aggregate's timestamp as UTC (min() and max() may come back as text on SQLite)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)
