"""Bulk writes of usage and telemetry rows, skipping what is already stored.

PostgreSQL: usage rows are COPYed (binary, types preset) into a session-temporary table
(kept per connection, emptied at commit) and moved with one `INSERT … SELECT … ON
CONFLICT DO NOTHING`, in key order so that concurrent batches sharing events wait for each
other rather than deadlock (and, for one key, in batch order: the first event is stored). The same statement sums what the new rows add to each hour (the
rows within one hour and with nothing excluded: nearly all of them) and returns those sums,
and the keys and ids of the other new rows, rather than every stored key.
SQLite: one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`. Either way the unique key
(tenant, source, event id) decides what is new, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from neocloud.metering.events import Telemetry, Usages
from neocloud.metering.models import TelemetrySample, UsageExclusion, UsageInterval
from neocloud.metering.split import Piece

Key = tuple[int, str, str]


@dataclass(slots=True)
class UsageBatch:
    """Good usage events as columns, with what the ingest worked out for each: its tenant,
    contract and node ids, measured and billable GPU-seconds, and the excluded pieces of
    those that have any (by position). Of events sent twice in the batch the first is
    stored, so that its exclusions go with it."""

    usage: Usages
    tenant_id: list[int]
    contract_id: list[int]
    node_id: list[int]
    gpu_seconds: list[int]
    billable_gpu_seconds: list[int]
    pieces: dict[int, list[Piece]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tenant_id)

    def key(self, i: int) -> Key:
        return (self.tenant_id[i], self.usage.source[i], self.usage.id[i])


@dataclass(slots=True)
class Written:
    """What a write stored: how many intervals; the GPU-seconds of the new intervals that lie
    within one hour and have nothing excluded, summed per (hour, contract id, node id); and
    the ids of the other new intervals, by position in the batch."""

    accepted: int = 0
    hourly: list[tuple[int, int, int, int]] = field(default_factory=list)
    others: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class TelemetryRow:
    node_id: int
    sample: Telemetry


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def write_usage(session: Session, batch: UsageBatch, now: int) -> Written:
    """Store the intervals not stored before, with their exclusions."""
    written = (
        _pg_usage(session, batch, now) if _is_pg(session) else _sqlite_usage(session, batch, now)
    )
    cut = [i for i in written.others if i in batch.pieces]
    if cut:
        _write_exclusions(session, batch, cut, written.others)
    return written


USAGE_TEMP = """CREATE TEMP TABLE IF NOT EXISTS metering_usage_in (
    tenant_id int, contract_id int, node_id int, gpus int, start_s bigint, end_s bigint,
    gpu_seconds bigint, billable_gpu_seconds bigint, source text, event_id text, time_s bigint,
    pos int
) ON COMMIT DELETE ROWS"""
USAGE_TYPES = ["int4"] * 4 + ["int8"] * 4 + ["text"] * 2 + ["int8", "int4"]
USAGE_MOVE = """WITH new AS (
    INSERT INTO usage_intervals (tenant_id, contract_id, node_id, gpus, start_at, end_at,
        gpu_seconds, billable_gpu_seconds, source, event_id, event_time, ingested_at)
    SELECT tenant_id, contract_id, node_id, gpus, to_timestamp(start_s), to_timestamp(end_s),
        gpu_seconds, billable_gpu_seconds, source, event_id, to_timestamp(time_s),
        to_timestamp(%(now)s)
    FROM metering_usage_in ORDER BY tenant_id, source, event_id, pos
    ON CONFLICT DO NOTHING
    RETURNING id, tenant_id, source, event_id, contract_id, node_id, gpu_seconds,
        billable_gpu_seconds, date_part('epoch', start_at)::bigint / 3600 AS first_hour,
        (date_part('epoch', end_at)::bigint - 1) / 3600 AS last_hour
)
SELECT first_hour, contract_id, node_id, sum(gpu_seconds)::bigint, count(*), NULL, NULL
FROM new WHERE first_hour = last_hour AND billable_gpu_seconds = gpu_seconds
GROUP BY first_hour, contract_id, node_id
UNION ALL
SELECT NULL, NULL, NULL, id, tenant_id, source, event_id
FROM new WHERE first_hour <> last_hour OR billable_gpu_seconds <> gpu_seconds"""


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _pg_usage(session: Session, batch: UsageBatch, now: int) -> Written:
    u = batch.usage
    with _driver(session).cursor() as cur:
        cur.execute(USAGE_TEMP)
        with cur.copy("COPY metering_usage_in FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(USAGE_TYPES)
            for row in zip(
                batch.tenant_id,
                batch.contract_id,
                batch.node_id,
                u.gpus,
                u.start,
                u.end,
                batch.gpu_seconds,
                batch.billable_gpu_seconds,
                u.source,
                u.id,
                u.time,
                range(len(batch)),
                strict=True,
            ):
                copy.write_row(row)
        cur.execute(USAGE_MOVE, {"now": now})
        out = Written()
        ids: dict[Key, int] = {}
        for hour, contract_id, node_id, value, count_or_tenant, source, event_id in cur:
            if hour is None:
                ids[(count_or_tenant, source, event_id)] = value
            else:
                out.hourly.append((hour, contract_id, node_id, value))
                out.accepted += count_or_tenant
    out.accepted += len(ids)
    out.others = _positions(batch, ids)
    return out


def _positions(batch: UsageBatch, ids: dict[Key, int]) -> dict[int, int]:
    """Position in the batch -> id, for the stored keys `ids` (the first of the events with
    one key is the one stored)."""
    out: dict[int, int] = {}
    if ids:
        ids = dict(ids)
        for i in range(len(batch)):
            if (id_ := ids.pop(batch.key(i), None)) is not None:
                out[i] = id_
    return out


def _sqlite_usage(session: Session, batch: UsageBatch, now: int) -> Written:
    ingested = at(now)
    u = batch.usage
    values = [
        {
            "tenant_id": batch.tenant_id[i],
            "contract_id": batch.contract_id[i],
            "node_id": batch.node_id[i],
            "gpus": u.gpus[i],
            "start_at": at(u.start[i]),
            "end_at": at(u.end[i]),
            "gpu_seconds": batch.gpu_seconds[i],
            "billable_gpu_seconds": batch.billable_gpu_seconds[i],
            "source": u.source[i],
            "event_id": u.id[i],
            "event_time": at(u.time[i]),
            "ingested_at": ingested,
        }
        for i in range(len(batch))
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
    ids = {(t, s, e): i for t, s, e, i in session.execute(stmt, values)}
    return Written(accepted=len(ids), others=_positions(batch, ids))


def _write_exclusions(
    session: Session, batch: UsageBatch, rows: Sequence[int], ids: dict[int, int]
) -> None:
    values = [
        {
            "interval_id": ids[i],
            "contract_id": batch.contract_id[i],
            "reason": p.reason,
            "start_at": at(p.start),
            "end_at": at(p.end),
            "gpu_seconds": batch.usage.gpus[i] * (p.end - p.start),
        }
        for i in rows
        for p in batch.pieces[i]
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
