"""Reading a site's nodes and holdings for the allocator, and writing its plan back.

A site's placement runs under the site's row lock (`SELECT ... FOR UPDATE` on `sites`), so
two reconciles of one site never interleave; bookings (which lock the capacity ledger) and
other sites go on meanwhile. What the allocator changed is written in the caller's
transaction: allocation rows closed and opened, node states (available <-> allocated),
degradations opened and closed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.loading import READY
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.planner import Unit
from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import Contract, ContractState
from neocloud.fleet.models import Block, Fabric, Node, NodeState, Site
from neocloud.placement.allocator import Plan, Want
from neocloud.placement.inventory import FREE, SPARE, Inventory, NodeRow
from neocloud.placement.models import Allocation, Degradation

HOLDING = frozenset({ContractState.BOOKED, ContractState.ACTIVE})


@dataclass
class SiteNodes:
    """A site's inventory, with what the database calls its nodes."""

    site_id: int
    spare_pct: Decimal
    inventory: Inventory
    names: dict[int, str]  # node id -> name
    states: dict[int, NodeState]


def lock_site(session: Session, site_id: int) -> None:
    session.execute(sa.select(Site.id).where(Site.id == site_id).with_for_update())


def load_site(session: Session, site_id: int) -> SiteNodes:
    """The site's nodes (retired ones left out) and who holds each now."""
    spare_pct = session.scalar(sa.select(Site.spare_pct).where(Site.id == site_id)) or Decimal(0)
    owners: dict[int, int] = {}
    for node_id, contract_id, kind in session.execute(
        sa.select(Allocation.node_id, Allocation.contract_id, Allocation.kind)
        .join(Node, Node.id == Allocation.node_id)
        .where(Node.site_id == site_id, Allocation.until.is_(None))
    ):
        owners[node_id] = SPARE if kind == "spare" or contract_id is None else int(contract_id)
    rows: list[NodeRow] = []
    names: dict[int, str] = {}
    states: dict[int, NodeState] = {}
    for node_id, name, acc, fabric, block, gpus, state in session.execute(
        sa.select(
            Node.id, Node.name, Node.accelerator_id, Fabric.name, Block.name, Node.gpus, Node.state
        )
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Block, Node.block_id == Block.id)
        .where(Node.site_id == site_id, Node.state != NodeState.RETIRED)
    ):
        rows.append(
            NodeRow(
                node_id,
                (site_id, int(acc), str(fabric)),
                str(block),
                int(gpus),
                state in READY,
                owners.get(node_id, FREE),
            )
        )
        names[node_id] = name
        states[node_id] = state
    return SiteNodes(site_id, Decimal(spare_pct), Inventory.build(rows), names, states)


def wants_at(session: Session, site_id: int, now: datetime) -> list[Want]:
    """What every contract should hold at the site now: its claims in force, per pool."""
    h = hour_of(now)
    totals: dict[tuple[int, tuple[int, int, str], str], int] = defaultdict(int)
    for cid, acc, fabric, gpus, unit in session.execute(
        sa.select(
            CapacityClaim.contract_id,
            CapacityClaim.accelerator_id,
            CapacityClaim.fabric,
            CapacityClaim.gpus,
            Contract.unit,
        )
        .join(Contract, Contract.id == CapacityClaim.contract_id)
        .where(
            CapacityClaim.site_id == site_id,
            CapacityClaim.start_h <= h,
            CapacityClaim.end_h > h,
            Contract.state.in_(HOLDING),
        )
    ):
        totals[(int(cid), (site_id, int(acc), str(fabric)), str(unit))] += int(gpus)
    return [
        Want(cid, pool, gpus, Unit(unit) if unit in Unit._value2member_map_ else Unit.GPU)
        for (cid, pool, unit), gpus in sorted(totals.items())
    ]


def write_plan(session: Session, site: SiteNodes, plan: Plan, now: datetime) -> None:
    """Record the plan's changes: close the rows of nodes that changed hands, open new
    ones, and set node states to match (allocated while a contract holds the node)."""
    inv = site.inventory
    if plan.changes:
        first: dict[int, int] = {}
        last: dict[int, tuple[int, str]] = {}
        ended: dict[int, str] = {}
        came: dict[int, str] = {}
        for c in plan.changes:
            nid = int(inv.node_id[c.node])
            first.setdefault(nid, c.before)
            last[nid] = (c.after, c.reason)
            if c.before != FREE:
                ended.setdefault(nid, c.reason)
            if c.after != FREE:
                came[nid] = c.reason
        moved = [nid for nid in last if last[nid][0] != first[nid]]
        by_reason: dict[str, list[int]] = defaultdict(list)
        for nid in moved:
            if first[nid] != FREE:
                by_reason[ended[nid]].append(nid)
        for reason, ids in by_reason.items():
            session.execute(
                sa.update(Allocation)
                .where(Allocation.node_id.in_(ids), Allocation.until.is_(None))
                .values(until=now, ended_by=reason)
                .execution_options(synchronize_session=False)
            )
        rows = [
            {
                "node_id": nid,
                "contract_id": last[nid][0] if last[nid][0] > 0 else None,
                "kind": "spare" if last[nid][0] == SPARE else "contract",
                "since": now,
                "until": None,
                "reason": came[nid],
                "ended_by": None,
            }
            for nid in moved
            if last[nid][0] != FREE
        ]
        if rows:
            session.execute(sa.insert(Allocation), rows)
        _node_states(session, site, {nid: last[nid][0] for nid in moved})


def _node_states(session: Session, site: SiteNodes, owners: dict[int, int]) -> None:
    to_allocated = [
        nid
        for nid, owner in owners.items()
        if owner > 0 and site.states[nid] == NodeState.AVAILABLE
    ]
    to_available = [
        nid
        for nid, owner in owners.items()
        if owner <= 0 and site.states[nid] == NodeState.ALLOCATED
    ]
    for ids, state in ((to_allocated, NodeState.ALLOCATED), (to_available, NodeState.AVAILABLE)):
        if ids:
            session.execute(
                sa.update(Node)
                .where(Node.id.in_(ids))
                .values(state=state, updated_at=sa.func.now())
                .execution_options(synchronize_session=False)
            )
            for nid in ids:
                site.states[nid] = state


def write_degradations(session: Session, plan: Plan, now: datetime, site_id: int) -> list[int]:
    """Open, change or close each contract's degradation at this site; returns the ids of
    the contracts that are short now."""
    contracted: dict[int, int] = defaultdict(int)
    usable: dict[int, int] = defaultdict(int)
    for h in plan.holdings:
        contracted[h.contract_id] += h.contracted
        usable[h.contract_id] += h.usable
    involved = set(contracted) | {c.before for c in plan.changes if c.before > 0}
    open_rows = {
        d.contract_id: d
        for d in session.scalars(
            sa.select(Degradation).where(
                Degradation.ended_at.is_(None), Degradation.contract_id.in_(sorted(involved))
            )
        )
    }
    short: list[int] = []
    for cid in sorted(set(contracted) | set(open_rows)):
        now_usable, want = usable.get(cid, 0), contracted.get(cid, 0)
        row = open_rows.get(cid)
        if want and now_usable < want:
            short.append(cid)
            if row is not None and row.usable_gpus == now_usable and row.contracted_gpus == want:
                continue
            if row is not None:
                row.ended_at = now
            session.add(
                Degradation(
                    contract_id=cid,
                    started_at=now,
                    contracted_gpus=want,
                    usable_gpus=now_usable,
                    reason=_why(plan, cid),
                )
            )
        elif row is not None:
            row.ended_at = now
    return short


def close_stale_degradations(session: Session, now: datetime) -> None:
    """Close the degradations of contracts that hold no claim in force any more (ended,
    cancelled): they are no longer owed anything."""
    h = hour_of(now)
    in_force = sa.select(CapacityClaim.contract_id).where(
        CapacityClaim.start_h <= h, CapacityClaim.end_h > h
    )
    holding = sa.select(Contract.id).where(Contract.state.in_(HOLDING))
    session.execute(
        sa.update(Degradation)
        .where(
            Degradation.ended_at.is_(None),
            ~Degradation.contract_id.in_(in_force) | ~Degradation.contract_id.in_(holding),
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )


def _why(plan: Plan, contract_id: int) -> str:
    reasons = {c.reason for c in plan.changes if c.before == contract_id or c.after == contract_id}
    if "failed" in reasons:
        return "a node failed and no spare or free node could replace it"
    return "not enough free healthy nodes in the contract's pools"
