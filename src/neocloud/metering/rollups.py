"""Hourly rollups per contract x site x accelerator: kept up to date at ingest, closed by
hour, rebuilt from the ledgers on demand.

- **At ingest** (`add_usage_deltas`, `add_telemetry`), in the batch's own transaction: the
  new intervals' measured, billable and excluded GPU-seconds are added to their hours
  (`INSERT … ON CONFLICT DO UPDATE SET x = x + new`; on PostgreSQL the insert of the
  intervals has already summed most of them, see `store`), and the new telemetry samples to
  their node's hour. Sums commute, so any order of arrival gives the same rollups, a late event
  lands in its own hour, and a duplicate — never stored twice — adds nothing. Keys are
  written in sorted order, so two batches touching the same rows wait for each other rather
  than deadlock. An operator's exclusion moves its GPU-seconds from billable to excluded in
  the same transaction as it is recorded.
- **At the close of an hour** (`close_due`): what each contract held (allocated
  GPU-seconds, from placement's allocations and spot leases) and drew (watt-hours, from its
  nodes' telemetry) is worked out once and set. A node lent to spot counts for the spot
  contract while lent, not for its owner too: every node-second once. Telemetry that
  arrives for a closed hour marks it stale; the next pass closes it again.
- **Rebuild** (`rebuild`): the usage columns of a range of hours worked out again from the
  ledgers themselves — for repairs, and the tests' proof that the running sums are right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.fleet.models import Node
from neocloud.metering.events import MAX_INTERVAL_S, epoch
from neocloud.metering.hourly import (
    HOUR,
    REASON_COLUMN,
    Delta,
    Holding,
    Key,
    Loans,
    NodeHourDelta,
    add_excluded,
    add_usage,
    close_hours,
    without_loans,
)
from neocloud.metering.locks import lock
from neocloud.metering.models import (
    ExclusionReason,
    NodeHour,
    RollupHour,
    UsageExclusion,
    UsageInterval,
    UsageRollup,
)
from neocloud.metering.split import FOREVER, Piece
from neocloud.placement.models import Allocation, SpotLease

ROLLUPS = sa.Table(UsageRollup.__tablename__, UsageRollup.metadata)
NODE_HOURS = sa.Table(NodeHour.__tablename__, NodeHour.metadata)
CLOSED_HOURS = sa.Table(RollupHour.__tablename__, RollupHour.metadata)
USAGE_COLUMNS = ("measured_gpu_seconds", "billable_gpu_seconds", *REASON_COLUMN.values())
CLOSED_COLUMNS = ("allocated_gpu_seconds", "energy_wh")
KEY = ("hour", "contract_id", "site_id", "accelerator_id")
MAX_CLOSE_HOURS = 24 * 7
"""Hours one closing pass works out at most (the next pass goes on)."""


def _insert(session: Session, table: sa.Table) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _usage_row(key: Key, delta: Delta) -> dict[str, int]:
    row = dict(zip(KEY, key, strict=True))
    row["measured_gpu_seconds"] = delta.measured
    row["billable_gpu_seconds"] = delta.billable
    for reason, column in REASON_COLUMN.items():
        row[column] = delta.excluded.get(reason, 0)
    for column in CLOSED_COLUMNS:
        row[column] = 0
    return row


def add_usage_deltas(session: Session, deltas: Mapping[Key, Delta]) -> None:
    """Add GPU-seconds to the rollup rows (created when missing), in key order."""
    if not deltas:
        return
    rows = [_usage_row(key, deltas[key]) for key in sorted(deltas)]
    stmt = _insert(session, ROLLUPS)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={c: ROLLUPS.c[c] + stmt.excluded[c] for c in USAGE_COLUMNS},
    )
    session.execute(stmt, rows)


def add_telemetry(session: Session, deltas: Mapping[tuple[int, int], NodeHourDelta]) -> None:
    """Add samples to their nodes' hours; hours already closed become stale."""
    if not deltas:
        return
    rows = [
        {
            "node_id": node,
            "hour": hour,
            "samples": d.samples,
            "utilization_pct_sum": d.utilization_pct,
            "power_w_sum": d.power_w,
        }
        for (node, hour), d in sorted(deltas.items())
    ]
    stmt = _insert(session, NODE_HOURS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["node_id", "hour"],
        set_={
            c: NODE_HOURS.c[c] + stmt.excluded[c]
            for c in ("samples", "utilization_pct_sum", "power_w_sum")
        },
    )
    session.execute(stmt, rows)
    hours = sorted({hour for _, hour in deltas})
    session.execute(
        sa.update(RollupHour)
        .where(RollupHour.hour.in_(hours), RollupHour.stale.is_(False))
        .values(stale=True)
    )


def _holdings(session: Session, first: int, end: int) -> list[Holding]:
    """Who held which node at some time in hours [first, end)."""
    lo, hi = at_hour(first), at_hour(end)
    allocations = (
        sa.select(
            Allocation.contract_id,
            Allocation.node_id,
            Node.site_id,
            Node.accelerator_id,
            Node.gpus,
            Allocation.since,
            Allocation.until,
        )
        .join(Node, Node.id == Allocation.node_id)
        .where(
            Allocation.kind == "contract",
            Allocation.since < hi,
            sa.or_(Allocation.until.is_(None), Allocation.until > lo),
        )
    )
    leases = (
        sa.select(
            SpotLease.contract_id,
            SpotLease.node_id,
            Node.site_id,
            Node.accelerator_id,
            Node.gpus,
            SpotLease.started_at,
            SpotLease.ended_at,
            SpotLease.lent_by_contract_id,
        )
        .join(Node, Node.id == SpotLease.node_id)
        .where(
            SpotLease.started_at < hi,
            sa.or_(SpotLease.ended_at.is_(None), SpotLease.ended_at > lo),
        )
    )
    out: list[Holding] = []
    loans: Loans = defaultdict(list)
    for contract_id, node_id, site_id, acc_id, gpus, since, until in session.execute(allocations):
        if contract_id is not None:
            end_s = FOREVER if until is None else epoch(until)
            out.append(Holding(contract_id, node_id, site_id, acc_id, gpus, epoch(since), end_s))
    for contract_id, node_id, site_id, acc_id, gpus, since, until, lender in session.execute(
        leases
    ):
        end_s = FOREVER if until is None else epoch(until)
        out.append(Holding(contract_id, node_id, site_id, acc_id, gpus, epoch(since), end_s))
        if lender is not None:  # a loan of an owner's idle node: the spot contract holds it
            loans[(node_id, int(lender))].append((epoch(since), end_s))
    return without_loans(out, loans)


def close(session: Session, hours: list[int], now: datetime) -> int:
    """Work out (again) the allocated GPU-seconds and energy of every contract in `hours`;
    returns how many rollup rows it set."""
    if not hours:
        return 0
    first, end = min(hours), max(hours) + 1
    in_hours = (
        NodeHour.hour.in_(hours)
        if end - first > len(hours)
        else sa.and_(NodeHour.hour >= first, NodeHour.hour < end)
    )
    power = {
        (node, hour): (int(samples), float(watts))
        for node, hour, samples, watts in session.execute(
            sa.select(
                NodeHour.node_id, NodeHour.hour, NodeHour.samples, NodeHour.power_w_sum
            ).where(in_hours)
        )
    }
    closed = close_hours(hours, _holdings(session, first, end), power)
    rollup_hours = (
        UsageRollup.hour.in_(hours)
        if end - first > len(hours)
        else sa.and_(UsageRollup.hour >= first, UsageRollup.hour < end)
    )
    session.execute(
        sa.update(UsageRollup).where(rollup_hours).values(allocated_gpu_seconds=0, energy_wh=0)
    )
    if closed:
        rows = []
        for key, v in sorted(closed.items()):
            row = _usage_row(key, Delta())
            row["allocated_gpu_seconds"] = v.allocated_gpu_seconds
            row["energy_wh"] = round(v.energy_wh)
            rows.append(row)
        stmt = _insert(session, ROLLUPS)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(KEY), set_={c: stmt.excluded[c] for c in CLOSED_COLUMNS}
        )
        session.execute(stmt, rows)
    stmt = _insert(session, CLOSED_HOURS)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["hour"], set_={"closed_at": now, "stale": False}
        ),
        [{"hour": h, "closed_at": now, "stale": False} for h in sorted(set(hours))],
    )
    return len(closed)


def due(session: Session, now: datetime, *, limit: int = MAX_CLOSE_HOURS) -> list[int]:
    """The hours to close next, oldest first: stale ones, then the ended hours after the last
    closed one (from the first allocation's hour when none is closed yet)."""
    current = hour_of(now)
    stale = list(
        session.scalars(
            sa.select(RollupHour.hour)
            .where(RollupHour.stale.is_(True), RollupHour.hour < current)
            .order_by(RollupHour.hour)
            .limit(limit)
        )
    )
    last = session.scalar(sa.select(sa.func.max(RollupHour.hour)))
    if last is None:
        first = session.scalar(sa.select(sa.func.min(Allocation.since)))
        if first is None:
            return stale
        last = hour_of(first) - 1
    fresh = range(last + 1, min(current, last + 1 + limit))
    return sorted({*stale, *fresh})[:limit]


def close_due(session: Session, now: datetime, *, limit: int = MAX_CLOSE_HOURS) -> list[int]:
    """Close the hours that are due; returns them. Several processes may run this: on
    PostgreSQL one pass at a time (a transaction-level advisory lock; the others skip)."""
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": 0x726F6C6C}
    ):
        return []
    hours = due(session, now, limit=limit)
    close(session, hours, now)
    return hours


def rebuild(session: Session, start_hour: int, end_hour: int) -> int:
    """Work the usage columns of [start_hour, end_hour) out again from the ledgers (the
    intervals and their exclusion rows), replacing the running sums; returns the rows
    written. Takes the ingest lock exclusively, so no batch adds meanwhile."""
    lock(session, exclusive=True)
    lo, hi = start_hour * HOUR, end_hour * HOUR
    earliest = at_hour(start_hour) - timedelta(seconds=MAX_INTERVAL_S)
    in_range = (UsageRollup.hour >= start_hour, UsageRollup.hour < end_hour)
    session.execute(sa.update(UsageRollup).where(*in_range).values(dict.fromkeys(USAGE_COLUMNS, 0)))
    deltas: dict[Key, Delta] = {}
    where_of: dict[int, tuple[int, int, int]] = {}
    intervals = (
        sa.select(
            UsageInterval.id,
            UsageInterval.contract_id,
            Node.site_id,
            Node.accelerator_id,
            UsageInterval.gpus,
            UsageInterval.start_at,
            UsageInterval.end_at,
        )
        .join(Node, Node.id == UsageInterval.node_id)
        .where(
            UsageInterval.start_at < at_hour(end_hour),
            UsageInterval.start_at >= earliest,
            UsageInterval.end_at > at_hour(start_hour),
        )
    )
    gpus_of: dict[int, int] = {}
    for iid, cid, sid, aid, gpus, s, e in session.execute(intervals):
        where_of[iid], gpus_of[iid] = (cid, sid, aid), gpus
        add_usage(deltas, (cid, sid, aid), gpus, max(epoch(s), lo), min(epoch(e), hi))
    pieces: dict[int, list[Piece]] = defaultdict(list)
    for iid, reason, s, e in session.execute(
        sa.select(
            UsageExclusion.interval_id,
            UsageExclusion.reason,
            UsageExclusion.start_at,
            UsageExclusion.end_at,
        ).where(
            UsageExclusion.start_at < at_hour(end_hour),
            UsageExclusion.start_at >= earliest,
            UsageExclusion.end_at > at_hour(start_hour),
        )
    ):
        a, b = max(epoch(s), lo), min(epoch(e), hi)
        if iid in where_of and a < b:
            pieces[iid].append(Piece(ExclusionReason(reason), a, b))
    for iid, cut in pieces.items():
        add_excluded(deltas, where_of[iid], gpus_of[iid], cut)
    add_usage_deltas(session, deltas)
    return len(deltas)
