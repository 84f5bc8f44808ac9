"""Bulk writes of usage and telemetry rows, skipping what is already stored.

PostgreSQL: the rows are COPYed into a session-temporary table (kept per connection, emptied
at commit) and moved with one `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`, in key
order so that concurrent batches sharing events wait for each other rather than deadlock.
SQLite: one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`. Either way the unique key
(tenant, source, event id) decides what is new, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from neocloud.metering.events import Telemetry, Usage
from neocloud.metering.models import TelemetrySample, UsageExclusion, UsageInterval
from neocloud.metering.split import Piece

Key = tuple[int, str, str]


@dataclass(slots=True)
class UsageRow:
    tenant_id: int
    contract_id: int
    node_id: int
    usage: Usage
    gpu_seconds: int
    billable_gpu_seconds: int


@dataclass(slots=True)
class TelemetryRow:
    node_id: int
    sample: Telemetry


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def write_usage(
    session: Session, rows: Sequence[UsageRow], pieces: Sequence[Sequence[Piece]], now: int
) -> list[int]:
    """Store the intervals not stored before, with their exclusions; return the positions
    (in `rows`) of those stored now."""
    # The first of events sent twice in the batch wins, so that its exclusions go with it
    # (PostgreSQL's ON CONFLICT alone would keep one of them, but not say which).
    first: dict[Key, int] = {}
    for i, r in enumerate(rows):
        first.setdefault((r.tenant_id, r.usage.source, r.usage.id), i)
    keep = sorted(first.values())
    kept = [rows[i] for i in keep]
    ids = _pg_usage(session, kept, now) if _is_pg(session) else _sqlite_usage(session, kept, now)
    new = [
        i
        for i, r in zip(keep, kept, strict=True)
        if (r.tenant_id, r.usage.source, r.usage.id) in ids
    ]
    if any(pieces[i] for i in new):
        _write_exclusions(session, [rows[i] for i in new], [pieces[i] for i in new], ids)
    return new


USAGE_TEMP = """CREATE TEMP TABLE IF NOT EXISTS metering_usage_in (
    tenant_id int, contract_id int, node_id int, gpus int, start_s bigint, end_s bigint,
    gpu_seconds bigint, billable_gpu_seconds bigint, source text, event_id text, time_s bigint
) ON COMMIT DELETE ROWS"""
USAGE_MOVE = """INSERT INTO usage_intervals (tenant_id, contract_id, node_id, gpus, start_at,
    end_at, gpu_seconds, billable_gpu_seconds, source, event_id, event_time, ingested_at)
SELECT tenant_id, contract_id, node_id, gpus, to_timestamp(start_s), to_timestamp(end_s),
    gpu_seconds, billable_gpu_seconds, source, event_id, to_timestamp(time_s), to_timestamp(%s)
FROM metering_usage_in ORDER BY tenant_id, source, event_id
ON CONFLICT DO NOTHING"""


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _pg_usage(session: Session, rows: Sequence[UsageRow], now: int) -> dict[Key, int]:
    with _driver(session).cursor() as cur:
        cur.execute(USAGE_TEMP)
        with cur.copy("COPY metering_usage_in FROM STDIN") as copy:
            for r in rows:
                u = r.usage
                copy.write_row(
                    (
                        r.tenant_id,
                        r.contract_id,
                        r.node_id,
                        u.gpus,
                        u.start,
                        u.end,
                        r.gpu_seconds,
                        r.billable_gpu_seconds,
                        u.source,
                        u.id,
                        u.time,
                    )
                )
        cur.execute(USAGE_MOVE + " RETURNING tenant_id, source, event_id, id", (now,))
        return {(t, s, e): i for t, s, e, i in cur.fetchall()}


def _sqlite_usage(session: Session, rows: Sequence[UsageRow], now: int) -> dict[Key, int]:
    ingested = at(now)
    values = [
        {
            "tenant_id": r.tenant_id,
            "contract_id": r.contract_id,
            "node_id": r.node_id,
            "gpus": r.usage.gpus,
            "start_at": at(r.usage.start),
            "end_at": at(r.usage.end),
            "gpu_seconds": r.gpu_seconds,
            "billable_gpu_seconds": r.billable_gpu_seconds,
            "source": r.usage.source,
            "event_id": r.usage.id,
            "event_time": at(r.usage.time),
            "ingested_at": ingested,
        }
        for r in rows
    ]
    table = sa.Table(UsageInterval.__tablename__, UsageInterval.metadata)
    # One statement compiled once and run for every row (SQLAlchemy batches it into
    # multi-row VALUES with RETURNING itself); compiling a VALUES list per chunk cost more
    # than the insert.
    stmt = (
        sqlite.insert(table)
        .on_conflict_do_nothing()
        .returning(table.c.tenant_id, table.c.source, table.c.event_id, table.c.id)
    )
    return {(t, s, e): i for t, s, e, i in session.execute(stmt, values)}


def _write_exclusions(
    session: Session,
    rows: Sequence[UsageRow],
    pieces: Sequence[Sequence[Piece]],
    ids: dict[Key, int],
) -> None:
    values = [
        {
            "interval_id": ids[(r.tenant_id, r.usage.source, r.usage.id)],
            "contract_id": r.contract_id,
            "reason": p.reason,
            "start_at": at(p.start),
            "end_at": at(p.end),
            "gpu_seconds": r.usage.gpus * (p.end - p.start),
        }
        for r, cut in zip(rows, pieces, strict=True)
        for p in cut
    ]
    if values:
        session.execute(sa.insert(UsageExclusion), values)


TELEMETRY_TEMP = """CREATE TEMP TABLE IF NOT EXISTS metering_telemetry_in (
    node_id int, gpu_index int, utilization_pct float8, memory_used_mib bigint, power_w float8,
    temperature_c float8, source text, event_id text, time_s bigint
) ON COMMIT DELETE ROWS"""
TELEMETRY_MOVE = """INSERT INTO telemetry_samples (node_id, gpu_index, utilization_pct,
    memory_used_mib, power_w, temperature_c, source, event_id, event_time, ingested_at)
SELECT node_id, gpu_index, utilization_pct, memory_used_mib, power_w, temperature_c, source,
    event_id, to_timestamp(time_s), to_timestamp(%s)
FROM metering_telemetry_in ORDER BY source, event_id
ON CONFLICT DO NOTHING"""


def write_telemetry(session: Session, rows: Sequence[TelemetryRow], now: int) -> list[TelemetryRow]:
    """Store the samples not stored before; return those stored now."""
    first: dict[tuple[str, str], TelemetryRow] = {}
    for r in rows:
        first.setdefault((r.sample.source, r.sample.id), r)
    rows = list(first.values())
    if _is_pg(session):
        with _driver(session).cursor() as cur:
            cur.execute(TELEMETRY_TEMP)
            with cur.copy("COPY metering_telemetry_in FROM STDIN") as copy:
                for r in rows:
                    s, d = r.sample, r.sample.data
                    copy.write_row(
                        (
                            r.node_id,
                            d.gpu,
                            d.utilization_pct,
                            d.memory_used_mib,
                            d.power_w,
                            d.temperature_c,
                            s.source,
                            s.id,
                            s.time,
                        )
                    )
            cur.execute(TELEMETRY_MOVE + " RETURNING source, event_id", (now,))
            new = {(source, event_id) for source, event_id in cur.fetchall()}
        return [r for r in rows if (r.sample.source, r.sample.id) in new]
    ingested = at(now)
    values = [
        {
            "node_id": r.node_id,
            "gpu_index": r.sample.data.gpu,
            "utilization_pct": r.sample.data.utilization_pct,
            "memory_used_mib": r.sample.data.memory_used_mib,
            "power_w": r.sample.data.power_w,
            "temperature_c": r.sample.data.temperature_c,
            "source": r.sample.source,
            "event_id": r.sample.id,
            "event_time": at(r.sample.time),
            "ingested_at": ingested,
        }
        for r in rows
    ]
    table = sa.Table(TelemetrySample.__tablename__, TelemetrySample.metadata)
    stmt = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.source, table.c.event_id)
    stored = {(source, event_id) for source, event_id in session.execute(stmt, values)}
    return [r for r in rows if (r.sample.source, r.sample.id) in stored]
