"""Reading what an engine needs about one fabric from the database (`protocol.FabricView`).

- nodes: the fabric's nodes (retired ones left out: they are gone from the cluster too);
- contracts that hold capacity: their claims in force on this fabric (the calendar is the
  record of what was sold where), and the nodes their open allocations hold;
- spot and on-demand contracts in their term whose sites include the fabric's site (or that
  name none) and whose accelerator is the fabric's (or that name none);
- spot leases running on the fabric: a spot contract's nodes, and a lending owner's lent
  ones (a lease on notice is the owner's again).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import Contract, ContractState, ContractType
from neocloud.engines.protocol import ContractView, FabricView, NodeView
from neocloud.fleet.models import Fabric, Node, NodeState, Site
from neocloud.placement.models import Allocation, SpotLease
from neocloud.tenants.models import Tenant

HOLDING_STATES = (ContractState.BOOKED, ContractState.ACTIVE)
UNHELD = (ContractType.SPOT, ContractType.ON_DEMAND)


@dataclass(frozen=True, slots=True)
class FabricRef:
    id: int
    name: str
    site_id: int
    site: str


def fabric_ref(session: Session, fabric_id: int) -> FabricRef:
    row = session.execute(
        sa.select(Fabric.id, Fabric.name, Site.id, Site.name)
        .join(Site, Site.id == Fabric.site_id)
        .where(Fabric.id == fabric_id)
    ).one()
    return FabricRef(int(row[0]), str(row[1]), int(row[2]), str(row[3]))


def load_fabric(session: Session, ref: FabricRef, now: datetime) -> FabricView:
    nodes = list(
        session.execute(
            sa.select(Node.id, Node.name, Node.gpus, Node.state, Node.accelerator_id)
            .where(Node.fabric_id == ref.id, Node.state != NodeState.RETIRED)
            .order_by(Node.name)
        )
    )
    names = {int(nid): str(name) for nid, name, *_ in nodes}
    accelerators = {int(acc) for *_, acc in nodes}
    held: dict[int, set[str]] = defaultdict(set)
    spares: set[str] = set()
    for nid, cid, kind in session.execute(
        sa.select(Allocation.node_id, Allocation.contract_id, Allocation.kind)
        .join(Node, Node.id == Allocation.node_id)
        .where(Node.fabric_id == ref.id, Allocation.until.is_(None))
    ):
        if kind == "spare" or cid is None:
            spares.add(names.get(int(nid), ""))
        else:
            held[int(cid)].add(names.get(int(nid), ""))
    leased: dict[int, set[str]] = defaultdict(set)
    lent: dict[int, set[str]] = defaultdict(set)
    for nid, cid, owner, notice in session.execute(
        sa.select(
            SpotLease.node_id,
            SpotLease.contract_id,
            SpotLease.lent_by_contract_id,
            SpotLease.notice_at,
        )
        .join(Node, Node.id == SpotLease.node_id)
        .where(Node.fabric_id == ref.id, SpotLease.ended_at.is_(None))
    ):
        name = names.get(int(nid))
        if notice is None and name is not None:  # on notice: the owner's again
            leased[int(cid)].add(name)
            if owner is not None:
                lent[int(owner)].add(name)
    gpus = _claims(session, ref, now)
    contracts = _contracts(session, ref, now, set(gpus), accelerators)
    tenants = dict(session.execute(sa.select(Tenant.id, Tenant.name)).all())
    views = []
    for c in contracts:
        mine = leased[c.id] if c.type is ContractType.SPOT else held[c.id]
        views.append(
            ContractView(
                name=c.name,
                tenant=str(tenants[c.tenant_id]),
                type=c.type,
                gpus=gpus.get(c.id, c.gpus or 0),
                end_at=c.end_at,
                nodes=frozenset(mine),
                lent=frozenset(lent[c.id]),
            )
        )
    return FabricView(
        site=ref.site,
        fabric=ref.name,
        nodes=tuple(NodeView(str(n), int(g), NodeState(s).value) for _, n, g, s, _ in nodes),
        contracts=tuple(views),
        spares=frozenset(spares - {""}),
    )


def _claims(session: Session, ref: FabricRef, now: datetime) -> dict[int, int]:
    """GPUs each contract holds on the fabric now (its claims in force here)."""
    h = hour_of(now)
    rows = session.execute(
        sa.select(CapacityClaim.contract_id, sa.func.sum(CapacityClaim.gpus))
        .join(Contract, Contract.id == CapacityClaim.contract_id)
        .where(
            CapacityClaim.site_id == ref.site_id,
            CapacityClaim.fabric == ref.name,
            CapacityClaim.start_h <= h,
            CapacityClaim.end_h > h,
            Contract.state.in_(HOLDING_STATES),
        )
        .group_by(CapacityClaim.contract_id)
    )
    return {int(cid): int(g) for cid, g in rows}


def _contracts(
    session: Session, ref: FabricRef, now: datetime, holders: set[int], accelerators: set[int]
) -> list[Contract]:
    holding = list(
        session.scalars(sa.select(Contract).where(Contract.id.in_(holders))) if holders else []
    )
    unheld = session.scalars(
        sa.select(Contract).where(
            Contract.type.in_(UNHELD),
            Contract.state.in_(HOLDING_STATES),
            Contract.start_at <= now,
            Contract.end_at > now,
        )
    )
    mine = [
        c
        for c in unheld
        if (c.accelerator_id is None or c.accelerator_id in accelerators)
        and (
            ref.site in (c.sites or [])
            or c.site_id == ref.site_id
            or (not c.sites and c.site_id is None)
        )
    ]
    return sorted(holding + mine, key=lambda c: c.name)
