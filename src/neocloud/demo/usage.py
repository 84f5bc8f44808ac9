"""The demo's usage history: what the contracts in force used, day by day, sent through the
same ingest core as the API and the bus (so it is split, deduplicated and rolled up like any
other usage), and the hours closed so that allocated GPU-hours and energy are there too.

The story: the contracts have run where placement put them since the history began (the demo
places them when it starts, so their allocations are dated back to then). Each node reports
one interval a day — the hours its GPUs were busy — and, over the last `TELEMETRY_DAYS` days, the
smaller contracts' nodes an hourly telemetry sample (so the rollups show energy). Usage is deterministic (a seeded generator), so two demos show
the same figures.

How far back: customers billed on usage (on-demand, spot) and the reserved blocks carry three
months; the whole-site sale and the operator's own training, with some 37,000 nodes between
them, carry the last `BIG_DAYS` days — a node-day each is ~300 bytes on SQLite, and three
months of them would make the demo's database over a gigabyte.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import SYSTEM
from neocloud.contracts.models import Contract, ContractType
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Accelerator, Node
from neocloud.metering import ingest, rollups
from neocloud.metering.events import Window
from neocloud.metering.models import UsageInterval
from neocloud.placement.models import Allocation, SpotLease

HISTORY_MONTHS = 3
BIG_DAYS = 2
TELEMETRY_DAYS = 2
"""Days of hourly telemetry (energy) for the nodes of the smaller contracts."""
BIG_NODES = 2_000
"""A contract holding more nodes than this carries `BIG_DAYS` days of history."""
ON_DEMAND_NODES = 64
"""Free nodes an on-demand contract's jobs ran on."""
BATCH = 10_000
BUSY = {
    ContractType.DEDICATED_SITE: (0.90, 0.99),
    ContractType.RESERVED: (0.70, 0.95),
    ContractType.INTERNAL: (0.80, 0.97),
    ContractType.SPOT: (0.55, 0.90),
    ContractType.ON_DEMAND: (0.30, 0.80),
}
"""Share of a node-day its GPUs were busy, by contract type (low, high)."""


def is_loaded(session: Session) -> bool:
    return session.scalar(sa.select(UsageInterval.id).limit(1)) is not None


def history_start(now: datetime) -> datetime:
    """The first day of the month `HISTORY_MONTHS` months before this one."""
    month = now.year * 12 + now.month - 1 - HISTORY_MONTHS
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=now.tzinfo)


@dataclass(frozen=True)
class Held:
    contract: str
    kind: ContractType
    start: datetime
    node: str
    gpus: int
    tdp_w: int


def backdate(session: Session, since: datetime) -> None:
    """Date the demo's placements back to the history's start (or the contract's own)."""
    starts = dict(session.execute(sa.select(Contract.id, Contract.start_at)).tuples().all())
    for table, key in (("allocations", "since"), ("spot_leases", "started_at")):
        t = sa.table(table, sa.column("id"), sa.column("contract_id"), sa.column(key))
        rows = session.execute(sa.select(t.c.id, t.c.contract_id)).all()
        updates = [
            {"row": rid, "at": max(since, as_utc(starts[cid]))}
            for rid, cid in rows
            if cid is not None
        ]
        if updates:
            column = (
                Allocation.__table__.c.since
                if table == "allocations"
                else SpotLease.__table__.c.started_at
            )
            stmt = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("row"))
                .values({key: sa.bindparam("at", type_=column.type)})
            )
            session.connection().execute(stmt, updates)


def _held(session: Session) -> list[Held]:
    nodes = sa.select(
        Contract.name,
        Contract.type,
        Contract.start_at,
        Node.name,
        Node.gpus,
        Accelerator.tdp_w,
    ).join(Node, Node.accelerator_id == Accelerator.id)
    allocated = (
        nodes.join(Allocation, Allocation.node_id == Node.id)
        .join(Contract, Contract.id == Allocation.contract_id)
        .where(Allocation.until.is_(None), Allocation.kind == "contract")
    )
    leased = (
        nodes.join(SpotLease, SpotLease.node_id == Node.id)
        .join(Contract, Contract.id == SpotLease.contract_id)
        .where(SpotLease.ended_at.is_(None))
    )
    out = []
    for stmt in (allocated, leased):
        for name, kind, start, node, gpus, tdp in session.execute(stmt.order_by(Node.name)):
            out.append(Held(name, ContractType(kind), as_utc(start), node, gpus, int(tdp or 700)))
    return out + _on_demand(session, {h.node for h in out})


def _on_demand(session: Session, taken: set[str]) -> list[Held]:
    """On-demand holds no nodes: its jobs ran on free nodes of its site and accelerator."""
    out = []
    contracts = session.execute(
        sa.select(
            Contract.name, Contract.start_at, Contract.site_id, Contract.accelerator_id
        ).where(Contract.type == ContractType.ON_DEMAND)
    ).all()
    for name, start, site_id, accelerator_id in contracts:
        free = session.execute(
            sa.select(Node.name, Node.gpus, Accelerator.tdp_w)
            .join(Accelerator, Accelerator.id == Node.accelerator_id)
            .where(Node.site_id == site_id, Node.accelerator_id == accelerator_id)
            .order_by(Node.name.desc())
            .limit(ON_DEMAND_NODES + len(taken))
        ).all()
        picked = [f for f in free if f[0] not in taken][:ON_DEMAND_NODES]
        out += [
            Held(name, ContractType.ON_DEMAND, as_utc(start), node, gpus, int(tdp or 700))
            for node, gpus, tdp in picked
        ]
    return out


def _events(held: list[Held], first: datetime, today: datetime) -> Iterator[dict[str, object]]:
    per_contract: dict[str, int] = {}
    for h in held:
        per_contract[h.contract] = per_contract.get(h.contract, 0) + 1
    for h in held:
        rnd = random.Random(f"{h.contract}/{h.node}")
        days = BIG_DAYS if per_contract[h.contract] > BIG_NODES else None
        start = max(first, h.start, today - timedelta(days=days) if days else first)
        lo, hi = BUSY[h.kind]
        day = start
        while day < today:
            busy = rnd.uniform(lo, hi)
            end = day + timedelta(seconds=int(86_400 * busy))
            stamp = day.strftime("%Y%m%d")
            yield {
                "specversion": "1.0",
                "id": f"{h.node}/{stamp}",
                "source": "demo://engine",
                "type": "neocloud.usage.v1",
                "time": end,
                "data": {
                    "contract": h.contract,
                    "node": h.node,
                    "gpus": h.gpus,
                    "start": day,
                    "end": end,
                },
            }
            if days is None and day >= today - timedelta(days=TELEMETRY_DAYS):
                yield from _samples(h, day, busy)
            day += timedelta(days=1)


def _samples(h: Held, day: datetime, busy: float) -> Iterator[dict[str, object]]:
    """An hourly sample of the node's first GPU over a day (busy for the day's first hours)."""
    for hour in range(24):
        when = day + timedelta(hours=hour, minutes=30)
        share = 1.0 if hour < 24 * busy else 0.02
        yield {
            "specversion": "1.0",
            "id": f"{h.node}/{when:%Y%m%d%H}",
            "source": f"demo://agent/{h.node}",
            "type": "neocloud.telemetry.v1",
            "time": when,
            "data": {
                "node": h.node,
                "gpu": 0,
                "utilization_pct": round(100 * share, 1),
                "memory_used_mib": int(150_000 * share),
                "power_w": round(h.tdp_w * (0.15 + 0.8 * share), 1),
                "temperature_c": round(35 + 35 * share, 1),
            },
        }


def load(session: Session, now: datetime) -> int:
    """Back-date the placements, ingest the history and close its hours (in the caller's
    transaction); returns how many usage and telemetry events were stored."""
    first = history_start(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    backdate(session, first)
    window = Window(back=now - first + timedelta(days=1), ahead=timedelta(minutes=5))
    encoder = msgspec.json.Encoder()
    stored, batch = 0, []
    for event in _events(_held(session), first, today):
        batch.append(msgspec.Raw(encoder.encode(event)))
        if len(batch) == BATCH:
            stored += ingest.ingest_batch(
                session, actor=SYSTEM, raws=batch, now=now, window=window
            ).accepted
            batch = []
    if batch:
        stored += ingest.ingest_batch(
            session, actor=SYSTEM, raws=batch, now=now, window=window
        ).accepted
    while rollups.close_due(session, now, limit=24 * 7 * 20):
        pass
    return stored
