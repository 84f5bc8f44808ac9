"""The ingest use case: a batch of events in, new rows written, each event answered.

The API (`POST /v1/usage/events`) and the bus consumer both call `ingest_batch`. It decodes
and checks the batch (`events`), resolves contract and node names with one query each, loads
who held each node when (placement's allocations and spot leases) with one query each,
splits every interval into billable and excluded stretches (`split`), and writes the rows in
bulk (`store`), skipping events already stored: dedupe is a unique key in the database, so
it holds across resends, restarts and API processes. Must run inside a transaction.
"""

from __future__ import annotations

import operator
import os
from collections import defaultdict
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
from neocloud.metering.events import Reject, Usages, Window, decode, epoch
from neocloud.metering.hourly import Delta, Key, NodeHourDelta, add_sample, add_usage
from neocloud.metering.models import ExclusionReason, UsageAdjustment
from neocloud.metering.split import FOREVER, Span, covered, excluded_seconds, exclusions
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
    parsed = decode(raws, now=now, window=window)
    locks.lock(session, exclusive=False)  # no exclusion is recorded meanwhile (see locks)
    rejected = parsed.rejected
    if actor.tenant_id is not None and parsed.telemetry:
        rejected += [
            Reject(t.index, t.id, "type: telemetry is accepted from operator tokens only")
            for t in parsed.telemetry
        ]
        parsed.telemetry = []
    usage = parsed.usage
    contracts = _contracts(session, set(usage.contract), actor)
    nodes = _nodes(session, set(usage.node) | {t.data.node for t in parsed.telemetry})
    usage = _known(usage, contracts, nodes, rejected)
    good = len(usage)
    batch = _batch(usage, contracts, nodes)
    if len(batch):
        on_demand = {c.id for c in contracts.values() if c.on_demand}
        held = _held(session, batch, on_demand)
        _split(batch, contracts, held, _windows(session, batch))
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
    written = store.write_usage(session, batch, ingested_at) if len(batch) else store.Written()
    new_telemetry = store.write_telemetry(session, telemetry, ingested_at) if telemetry else []
    _roll_up(session, batch, written, new_telemetry, nodes)
    good += len(telemetry)
    rejected.sort(key=lambda r: r.index)
    return IngestResult(
        received=len(raws),
        accepted=written.accepted + len(new_telemetry),
        duplicates=good - written.accepted - len(new_telemetry),
        rejected=rejected,
    )


def _roll_up(
    session: Session,
    batch: store.UsageBatch,
    written: store.Written,
    new_telemetry: list[store.TelemetryRow],
    nodes: dict[str, NodeInfo],
) -> None:
    """Add what was stored now (not the duplicates) to the hourly rollups: the sums the
    database worked out, and the other new intervals one by one (split at the hours they
    cross, their excluded pieces by reason)."""
    where = {n.id: (n.site_id, n.accelerator_id) for n in nodes.values()}
    deltas: dict[Key, Delta] = {}
    for hour, contract_id, node_id, gpu_seconds in written.hourly:
        key = (hour, contract_id, *where[node_id])
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = Delta()
        delta.measured += gpu_seconds
    u = batch.usage
    for i in written.others:
        add_usage(
            deltas,
            (batch.contract_id[i], *where[batch.node_id[i]]),
            u.gpus[i],
            u.start[i],
            u.end[i],
            batch.pieces.get(i, ()),
        )
    rollups.add_usage_deltas(session, deltas)
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


def _known(
    usage: Usages,
    contracts: dict[str, ContractInfo],
    nodes: dict[str, NodeInfo],
    rejected: list[Reject],
) -> Usages:
    """The events of known contracts and nodes with no more GPUs than the node has; the
    others are rejected, each with its reason."""
    if not (usage.contract and usage.node):
        return usage
    gpus = {name: n.gpus for name, n in nodes.items()}
    if (
        contracts.keys() >= set(usage.contract)
        and gpus.keys() >= set(usage.node)
        and not any(map(operator.gt, usage.gpus, map(gpus.__getitem__, usage.node)))
    ):
        return usage
    keep = []
    for i in range(len(usage)):
        u = usage.row(i)
        node = nodes.get(u.node)
        if u.contract not in contracts:
            reason = f"data.contract: unknown contract '{u.contract}'"
        elif node is None:
            reason = f"data.node: unknown node '{u.node}'"
        elif u.gpus > node.gpus:
            reason = f"data.gpus: {u.gpus} is more than node '{u.node}' has ({node.gpus})"
        else:
            keep.append(i)
            continue
        rejected.append(Reject(u.index, u.id, reason))
    return usage.take(keep)


def _batch(
    usage: Usages, contracts: dict[str, ContractInfo], nodes: dict[str, NodeInfo]
) -> store.UsageBatch:
    tenant = {name: c.tenant_id for name, c in contracts.items()}
    contract = {name: c.id for name, c in contracts.items()}
    node = {name: n.id for name, n in nodes.items()}
    measured = [g * (e - s) for g, s, e in zip(usage.gpus, usage.start, usage.end, strict=True)]
    return store.UsageBatch(
        usage=usage,
        tenant_id=list(map(tenant.__getitem__, usage.contract)),
        contract_id=list(map(contract.__getitem__, usage.contract)),
        node_id=list(map(node.__getitem__, usage.node)),
        gpu_seconds=measured,
        billable_gpu_seconds=measured.copy(),
    )


def _split(
    batch: store.UsageBatch,
    contracts: dict[str, ContractInfo],
    held: dict[tuple[int, int], list[Span]],
    windows: dict[int, list[tuple[int | None, ExclusionReason, int, int]]],
) -> None:
    """Work out the excluded pieces and billable GPU-seconds of every interval. Most lie
    inside their contract's term on a node it held throughout, with no operator's window
    about: those are told apart in bulk, and only the others are split one by one."""
    term = {c.id: c.term for c in contracts.values()}
    span: dict[tuple[int, int], Span | None] = {}
    for pair in set(zip(batch.node_id, batch.contract_id, strict=True)):
        node_id, contract_id = pair
        span[pair] = (
            None if contract_id in windows else covered(term[contract_id], held.get(pair, ()))
        )
    u = batch.usage
    for i, (pair, start, end) in enumerate(
        zip(zip(batch.node_id, batch.contract_id, strict=True), u.start, u.end, strict=True)
    ):
        whole = span[pair]
        if whole is not None and whole[0] <= start and end <= whole[1]:
            continue
        node_id, contract_id = pair
        mine = [
            (r, a, b) for n, r, a, b in windows.get(contract_id, ()) if n is None or n == node_id
        ]
        cut = exclusions(start, end, term[contract_id], held.get(pair, ()), mine)
        if cut:
            batch.pieces[i] = cut
            batch.billable_gpu_seconds[i] -= u.gpus[i] * excluded_seconds(cut)


def _windows(
    session: Session, batch: store.UsageBatch
) -> dict[int, list[tuple[int | None, ExclusionReason, int, int]]]:
    """Contract id -> the operator's exclusion windows over the batch's time (node or None)."""
    lo, hi = store.at(min(batch.usage.start)), store.at(max(batch.usage.end))
    stmt = sa.select(
        UsageAdjustment.contract_id,
        UsageAdjustment.node_id,
        UsageAdjustment.reason,
        UsageAdjustment.start_at,
        UsageAdjustment.end_at,
    ).where(
        _in(session, UsageAdjustment.contract_id, set(batch.contract_id)),
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
    session: Session, batch: store.UsageBatch, on_demand: set[int]
) -> dict[tuple[int, int], list[Span]]:
    """(node id, contract id) -> the stretches during which the contract held the node (an
    on-demand contract, `on_demand`, holds whichever node its jobs ran on)."""
    lo, hi = store.at(min(batch.usage.start)), store.at(max(batch.usage.end))
    contract_ids, node_ids = set(batch.contract_id), set(batch.node_id)
    out: dict[tuple[int, int], list[Span]] = defaultdict(list)
    if on_demand:
        for pair in set(zip(batch.node_id, batch.contract_id, strict=True)):
            if pair[1] in on_demand:
                out[pair] = [(0, FOREVER)]
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
