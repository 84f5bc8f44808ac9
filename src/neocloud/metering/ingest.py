"""The ingest use case: a batch of events in, new rows written, each event answered.

The API (`POST /v1/usage/events`) and the bus consumer both call `ingest_batch`. It decodes
and checks the batch (`events`), resolves contract and node names with one query each, loads
who held each node when (placement's allocations and spot leases) with one query each,
splits every interval into billable and excluded stretches (`split`), and writes the rows in
bulk (`store`), skipping events already stored: dedupe is a unique key in the database, so
it holds across resends, restarts and API processes. Must run inside a transaction.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session

from neocloud.auth.principal import Principal
from neocloud.contracts.models import Contract, ContractType
from neocloud.fleet.models import Node
from neocloud.metering import locks, rollups, store
from neocloud.metering.events import Parsed, Reject, Usage, Window, epoch, parse
from neocloud.metering.hourly import NodeHourDelta, add_sample
from neocloud.metering.models import ExclusionReason, UsageAdjustment
from neocloud.metering.split import FOREVER, Piece, Span, excluded_seconds, exclusions
from neocloud.placement.models import Allocation, SpotLease


def window_from_env() -> Window:
    """The acceptance window: NEOCLOUD_USAGE_MAX_AGE_DAYS (default 35) back and
    NEOCLOUD_USAGE_MAX_AHEAD_S (default 300) ahead of now."""
    return Window(
        back=timedelta(days=float(os.environ.get("NEOCLOUD_USAGE_MAX_AGE_DAYS", "35"))),
        ahead=timedelta(seconds=float(os.environ.get("NEOCLOUD_USAGE_MAX_AHEAD_S", "300"))),
    )


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0
    """Events stored now."""
    duplicates: int = 0
    """Good events already stored before (or twice in this batch): acknowledged, not counted."""
    rejected: list[Reject] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: int
    gpus: int
    site_id: int
    accelerator_id: int


@dataclass(frozen=True, slots=True)
class ContractInfo:
    id: int
    tenant_id: int
    term: Span
    on_demand: bool
    """On-demand holds no nodes: what it used inside its term is billable where it ran."""


def ingest_batch(
    session: Session,
    *,
    actor: Principal,
    raws: list[msgspec.Raw],
    now: datetime,
    window: Window,
) -> IngestResult:
    parsed = parse(raws, now=now, window=window)
    locks.lock(session, exclusive=False)  # no exclusion is recorded meanwhile (see locks)
    rejected = parsed.rejected
    if actor.tenant_id is not None and parsed.telemetry:
        rejected += [
            Reject(t.index, t.id, "type: telemetry is accepted from operator tokens only")
            for t in parsed.telemetry
        ]
        parsed.telemetry = []
    contracts = _contracts(session, {u.contract for u in parsed.usage}, actor)
    nodes = _nodes(
        session, {u.node for u in parsed.usage} | {t.data.node for t in parsed.telemetry}
    )
    rows, good_usage = _usage_rows(parsed, contracts, nodes, rejected)
    held = _held(session, good_usage, contracts, nodes)
    windows = _windows(session, good_usage, contracts)
    pieces = []
    for row, u in zip(rows, good_usage, strict=True):
        c = contracts[u.contract]
        mine = [(r, a, b) for n, r, a, b in windows.get(c.id, ()) if n is None or n == row.node_id]
        cut = exclusions(u.start, u.end, c.term, held.get((row.node_id, c.id), ()), mine)
        row.billable_gpu_seconds = row.gpu_seconds - u.gpus * excluded_seconds(cut)
        pieces.append(cut)
    telemetry = []
    for t in parsed.telemetry:
        node = nodes.get(t.data.node)
        if node is None:
            rejected.append(Reject(t.index, t.id, f"data.node: unknown node '{t.data.node}'"))
        elif t.data.gpu >= node.gpus:
            rejected.append(
                Reject(t.index, t.id, f"data.gpu: node '{t.data.node}' has {node.gpus} GPUs")
            )
        else:
            telemetry.append(store.TelemetryRow(node.id, t))
    ingested_at = epoch(now)
    new_usage = store.write_usage(session, rows, pieces, ingested_at) if rows else []
    new_telemetry = store.write_telemetry(session, telemetry, ingested_at) if telemetry else []
    _roll_up(rows, pieces, new_usage, new_telemetry, nodes, session)
    good = len(rows) + len(telemetry)
    rejected.sort(key=lambda r: r.index)
    return IngestResult(
        received=len(raws),
        accepted=len(new_usage) + len(new_telemetry),
        duplicates=good - len(new_usage) - len(new_telemetry),
        rejected=rejected,
    )


def _roll_up(
    rows: list[store.UsageRow],
    pieces: list[list[Piece]],
    new_usage: list[int],
    new_telemetry: list[store.TelemetryRow],
    nodes: dict[str, NodeInfo],
    session: Session,
) -> None:
    """Add what was stored now (not the duplicates) to the hourly rollups."""
    where = {n.id: (n.site_id, n.accelerator_id) for n in nodes.values()}
    rollups.add_usage_deltas(
        session,
        rollups.usage_deltas(
            (
                (rows[i].contract_id, *where[rows[i].node_id]),
                rows[i].usage.gpus,
                rows[i].usage.start,
                rows[i].usage.end,
                pieces[i],
            )
            for i in new_usage
        ),
    )
    samples: dict[tuple[int, int], NodeHourDelta] = {}
    for t in new_telemetry:
        d = t.sample.data
        add_sample(samples, t.node_id, t.sample.time, d.utilization_pct, d.power_w)
    rollups.add_telemetry(session, samples)


def _in(session: Session, column: InstrumentedAttribute[Any], values: set[Any]) -> Any:
    """`column IN values`; on PostgreSQL `= ANY(array)`, one parameter however many values
    (an IN list of 10,000 parameters costs more to build than to run)."""
    if session.get_bind().dialect.name == "postgresql":
        kind = postgresql.ARRAY(column.type)
        return column == sa.any_(sa.literal(sorted(values), type_=kind))
    return column.in_(values)


def _contracts(session: Session, names: set[str], actor: Principal) -> dict[str, ContractInfo]:
    """The named contracts the caller may report for (a tenant: only its own)."""
    if not names:
        return {}
    stmt = sa.select(
        Contract.name,
        Contract.id,
        Contract.tenant_id,
        Contract.start_at,
        Contract.end_at,
        Contract.type,
    ).where(_in(session, Contract.name, names))
    stmt = actor.scope(stmt, Contract.tenant_id)
    return {
        name: ContractInfo(cid, tenant, (epoch(start), epoch(end)), kind == ContractType.ON_DEMAND)
        for name, cid, tenant, start, end, kind in session.execute(stmt)
    }


def _nodes(session: Session, names: set[str]) -> dict[str, NodeInfo]:
    if not names:
        return {}
    stmt = sa.select(Node.name, Node.id, Node.gpus, Node.site_id, Node.accelerator_id).where(
        _in(session, Node.name, names)
    )
    return {
        name: NodeInfo(nid, gpus, site, acc) for name, nid, gpus, site, acc in session.execute(stmt)
    }


def _usage_rows(
    parsed: Parsed,
    contracts: dict[str, ContractInfo],
    nodes: dict[str, NodeInfo],
    rejected: list[Reject],
) -> tuple[list[store.UsageRow], list[Usage]]:
    rows, good = [], []
    for u in parsed.usage:
        contract = contracts.get(u.contract)
        node = nodes.get(u.node)
        if contract is None:
            rejected.append(
                Reject(u.index, u.id, f"data.contract: unknown contract '{u.contract}'")
            )
        elif node is None:
            rejected.append(Reject(u.index, u.id, f"data.node: unknown node '{u.node}'"))
        elif u.gpus > node.gpus:
            rejected.append(
                Reject(
                    u.index,
                    u.id,
                    f"data.gpus: {u.gpus} is more than node '{u.node}' has ({node.gpus})",
                )
            )
        else:
            gpu_seconds = u.gpus * (u.end - u.start)
            rows.append(
                store.UsageRow(
                    contract.tenant_id, contract.id, node.id, u, gpu_seconds, gpu_seconds
                )
            )
            good.append(u)
    return rows, good


def _windows(
    session: Session, usage: Sequence[Usage], contracts: dict[str, ContractInfo]
) -> dict[int, list[tuple[int | None, ExclusionReason, int, int]]]:
    """Contract id -> the operator's exclusion windows over the batch's time (node or None)."""
    if not usage:
        return {}
    lo = store.at(min(u.start for u in usage))
    hi = store.at(max(u.end for u in usage))
    stmt = sa.select(
        UsageAdjustment.contract_id,
        UsageAdjustment.node_id,
        UsageAdjustment.reason,
        UsageAdjustment.start_at,
        UsageAdjustment.end_at,
    ).where(
        _in(session, UsageAdjustment.contract_id, {contracts[u.contract].id for u in usage}),
        UsageAdjustment.start_at < hi,
        UsageAdjustment.end_at > lo,
    )
    out: dict[int, list[tuple[int | None, ExclusionReason, int, int]]] = defaultdict(list)
    for contract_id, node_id, reason, start, end in session.execute(
        stmt.order_by(UsageAdjustment.id)
    ):
        out[contract_id].append((node_id, ExclusionReason(reason), epoch(start), epoch(end)))
    return out


def _held(
    session: Session,
    usage: Sequence[Usage],
    contracts: dict[str, ContractInfo],
    nodes: dict[str, NodeInfo],
) -> dict[tuple[int, int], list[Span]]:
    """(node id, contract id) -> the stretches during which the contract held the node."""
    if not usage:
        return {}
    lo = store.at(min(u.start for u in usage))
    hi = store.at(max(u.end for u in usage))
    contract_ids = {contracts[u.contract].id for u in usage}
    node_ids = {nodes[u.node].id for u in usage}
    out: dict[tuple[int, int], list[Span]] = defaultdict(list)
    for u in usage:
        if contracts[u.contract].on_demand:
            out[(nodes[u.node].id, contracts[u.contract].id)] = [(0, FOREVER)]
    allocations = sa.select(
        Allocation.node_id, Allocation.contract_id, Allocation.since, Allocation.until
    ).where(
        Allocation.kind == "contract",
        _in(session, Allocation.contract_id, contract_ids),
        _in(session, Allocation.node_id, node_ids),
        Allocation.since < hi,
        sa.or_(Allocation.until.is_(None), Allocation.until > lo),
    )
    leases = sa.select(
        SpotLease.node_id, SpotLease.contract_id, SpotLease.started_at, SpotLease.ended_at
    ).where(
        _in(session, SpotLease.contract_id, contract_ids),
        _in(session, SpotLease.node_id, node_ids),
        SpotLease.started_at < hi,
        sa.or_(SpotLease.ended_at.is_(None), SpotLease.ended_at > lo),
    )
    for stmt in (allocations, leases):
        for node_id, contract_id, since, until in session.execute(stmt):
            out[(node_id, contract_id or 0)].append(
                (epoch(since), FOREVER if until is None else epoch(until))
            )
    return out
