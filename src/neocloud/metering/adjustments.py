"""Operator exclusions recorded after the fact: maintenance and operator faults.

Recording one stores the window (`usage_adjustments`) and, in the same transaction, carves
it out of the contract's intervals already stored: for each, only what is still billable is
excluded (`split.carve`), an exclusion row is added and `billable_gpu_seconds` is lowered by
the same amount. Intervals that arrive later meet the window at ingest. An ingest holds a
shared lock and a recording an exclusive one (PostgreSQL advisory locks; SQLite has one
writer at a time), so no interval slips between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.contracts.models import Contract
from neocloud.core.errors import InvalidInput, NotFound
from neocloud.fleet.models import Node
from neocloud.metering import rollups
from neocloud.metering.events import MAX_INTERVAL_S, epoch
from neocloud.metering.hourly import Delta, Key, add_excluded
from neocloud.metering.locks import lock
from neocloud.metering.models import (
    ExclusionReason,
    UsageAdjustment,
    UsageExclusion,
    UsageInterval,
)
from neocloud.metering.split import Piece, carve
from neocloud.metering.store import at

OPERATOR_REASONS = (ExclusionReason.MAINTENANCE, ExclusionReason.OPERATOR_FAULT)


@dataclass(frozen=True)
class Recorded:
    id: int
    contract: str
    node: str | None
    reason: ExclusionReason
    start: datetime
    end: datetime
    intervals: int
    gpu_seconds: int


def record(
    session: Session,
    *,
    actor: Principal,
    contract: str,
    node: str | None,
    reason: ExclusionReason,
    start: datetime,
    end: datetime,
    note: str | None,
    now: datetime,
) -> Recorded:
    if reason not in OPERATOR_REASONS:
        raise InvalidInput("reason: must be maintenance or operator-fault")
    w0, w1 = epoch(start), epoch(end)
    if w1 <= w0:
        raise InvalidInput("end: must be after start")
    lock(session, exclusive=True)
    found = session.execute(
        actor.scope(sa.select(Contract.id, Contract.tenant_id), Contract.tenant_id).where(
            Contract.name == contract
        )
    ).first()
    if found is None:
        raise NotFound(f"contract '{contract}' not found")
    contract_id, tenant_id = found
    node_id = None
    if node is not None:
        node_id = session.scalar(sa.select(Node.id).where(Node.name == node))
        if node_id is None:
            raise NotFound(f"node '{node}' not found")
    row = UsageAdjustment(
        contract_id=contract_id,
        node_id=node_id,
        reason=reason.value,
        start_at=at(w0),
        end_at=at(w1),
        note=note,
        actor=actor.name,
        created_at=now,
    )
    session.add(row)
    session.flush()
    intervals, excluded = _carve_stored(session, contract_id, node_id, reason, w0, w1, note)
    audit.record(
        session,
        actor,
        "usage.exclude",
        "contract",
        contract,
        tenant_id=tenant_id,
        after={"reason": reason.value, "node": node, "gpu_seconds": excluded},
    )
    return Recorded(row.id, contract, node, reason, at(w0), at(w1), intervals, excluded)


def _carve_stored(
    session: Session,
    contract_id: int,
    node_id: int | None,
    reason: ExclusionReason,
    w0: int,
    w1: int,
    note: str | None,
) -> tuple[int, int]:
    """Exclude the window from the intervals already stored; (intervals changed, GPU-s)."""
    stmt = (
        sa.select(
            UsageInterval.id,
            UsageInterval.gpus,
            UsageInterval.start_at,
            UsageInterval.end_at,
            Node.site_id,
            Node.accelerator_id,
        )
        .join(Node, Node.id == UsageInterval.node_id)
        .where(
            UsageInterval.contract_id == contract_id,
            UsageInterval.start_at < at(w1),
            UsageInterval.start_at >= at(w0) - timedelta(seconds=MAX_INTERVAL_S),
            UsageInterval.end_at > at(w0),
        )
    )
    if node_id is not None:
        stmt = stmt.where(UsageInterval.node_id == node_id)
    intervals = session.execute(stmt.with_for_update(of=UsageInterval)).all()
    if not intervals:
        return 0, 0
    taken: dict[int, list[Piece]] = {i.id: [] for i in intervals}
    for interval_id, why, s, e in session.execute(
        sa.select(
            UsageExclusion.interval_id,
            UsageExclusion.reason,
            UsageExclusion.start_at,
            UsageExclusion.end_at,
        ).where(UsageExclusion.interval_id.in_(list(taken)))
    ):
        taken[interval_id].append(Piece(ExclusionReason(why), epoch(s), epoch(e)))
    rows, updates, total = [], [], 0
    deltas: dict[Key, Delta] = {}
    for interval_id, gpus, s, e, site_id, accelerator_id in intervals:
        new = carve(epoch(s), epoch(e), taken[interval_id], [(reason, w0, w1)])
        seconds = gpus * sum(p.end - p.start for p in new)
        if not seconds:
            continue
        total += seconds
        add_excluded(deltas, (contract_id, site_id, accelerator_id), gpus, new)
        updates.append({"interval": interval_id, "less": seconds})
        rows += [
            {
                "interval_id": interval_id,
                "contract_id": contract_id,
                "reason": p.reason,
                "start_at": at(p.start),
                "end_at": at(p.end),
                "gpu_seconds": gpus * (p.end - p.start),
                "note": note,
            }
            for p in new
        ]
    if rows:
        session.execute(sa.insert(UsageExclusion), rows)
        table = sa.Table(UsageInterval.__tablename__, UsageInterval.metadata)
        session.connection().execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("interval"))
            .values(billable_gpu_seconds=table.c.billable_gpu_seconds - sa.bindparam("less")),
            updates,
        )
        rollups.add_usage_deltas(session, deltas)
    return len(updates), total
