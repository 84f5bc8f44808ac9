"""Placement use cases: reconcile sites, fail and repair nodes, read allocations.

Each reconcile of a site locks the site's row, loads its nodes and who holds them
(`store.load_site`), asks the calendar's claims in force what every contract should hold
(`store.wants_at`), runs the allocator (`allocator.reconcile`, pure) and writes back what
changed, in the caller's transaction: nothing is half-placed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.capacity.loading import READY
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import Contract, ContractType
from neocloud.contracts.service import contract_by_name
from neocloud.core.errors import Conflict, NotFound
from neocloud.core.paging import MAX_LIMIT, PageRequest, encode_cursor
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet import nodes as fleet_nodes
from neocloud.fleet.models import Block, Fabric, Node, NodeState, Site
from neocloud.placement import drain, spot, store
from neocloud.placement.allocator import reconcile as plan_site
from neocloud.placement.inventory import FREE, SPARE
from neocloud.placement.models import Allocation, Degradation, SpotLease
from neocloud.placement.reclaim import reclaim as take_back
from neocloud.placement.schemas import (
    AllocatedNode,
    AllocationOut,
    ChangeOut,
    DegradationOut,
    DrainOut,
    DrainStepOut,
    NodeEventOut,
    PreemptionOut,
    ReclaimedNode,
    ReclaimOut,
    ReconcileOut,
    SiteReconcileOut,
    SpotChangeOut,
)
from neocloud.tenants.models import Tenant


def reconcile(
    session: Session, *, actor: Principal, site: str | None = None, now: datetime | None = None
) -> ReconcileOut:
    """Bring every site's allocations (or one site's) to what the contracts in force hold."""
    actor.demand(Permission.FLEET_WRITE)
    now = now or utcnow()
    stmt = sa.select(Site.id, Site.name).order_by(Site.name)
    if site is not None:
        stmt = stmt.where(Site.name == site)
    sites = list(session.execute(stmt))
    if site is not None and not sites:
        raise NotFound(f"site '{site}' not found")
    out = [reconcile_site(session, actor=actor, site_id=sid, now=now) for sid, _ in sites]
    store.close_stale_degradations(session, now)
    return ReconcileOut(at=now, sites=out)


def reconcile_site(
    session: Session, *, actor: Principal, site_id: int, now: datetime
) -> SiteReconcileOut:
    store.lock_site(session, site_id)
    nodes = store.load_site(session, site_id)
    wants = store.wants_at(session, site_id, now)
    plan = plan_site(nodes.inventory, wants, float(nodes.spare_pct))
    store.write_plan(session, nodes, plan, now)
    short = store.write_degradations(session, plan, now, site_id)
    name = session.scalar(sa.select(Site.name).where(Site.id == site_id)) or str(site_id)
    spot_changes = spot.settle(session, nodes, name, now)
    contracts = _names(
        session,
        {c.before for c in plan.changes} | {c.after for c in plan.changes} | set(short),
    )
    inv = nodes.inventory
    changes = [
        ChangeOut(
            node=nodes.names[int(inv.node_id[c.node])],
            before=_owner(c.before, contracts),
            after=_owner(c.after, contracts),
            reason=c.reason,
        )
        for c in plan.changes
    ]
    if changes or spot_changes:
        counts: dict[str, int] = {}
        for c in changes:
            counts[c.reason] = counts.get(c.reason, 0) + 1
        for s in spot_changes:
            counts[f"spot-{s.action}"] = counts.get(f"spot-{s.action}", 0) + 1
        audit.record(session, actor, "placement.reconcile", "site", name, after=counts)
    return SiteReconcileOut(
        site=name,
        changes=changes,
        short=_open_degradations(session, contract_ids=short),
        spot=[SpotChangeOut(**vars(s)) for s in spot_changes],
    )


def drain_site(
    session: Session,
    *,
    actor: Principal,
    site: str,
    to: list[str] | None = None,
    dry_run: bool = False,
) -> DrainOut:
    """Plan, or carry out step by step, the drain of a site (`drain.drain`); placement then
    follows on the sites touched. Manages its own transactions: a dry run is rolled back."""
    try:
        steps, touched = drain.drain(session, actor=actor, site=site, to=to, dry_run=dry_run)
        tenants = dict(session.execute(sa.select(Tenant.id, Tenant.name)).all())
        out = [
            DrainStepOut(
                contract=s.contract,
                tenant=tenants.get(s.tenant_id, ""),
                type=s.type,
                gpus=s.gpus,
                to=s.to,
                effective=s.effective,
                moved=s.done,
                reason=s.reason,
            )
            for s in steps
        ]
        if dry_run:
            session.rollback()
            return DrainOut(site=site, dry_run=True, steps=out, placement=[])
        session.commit()
    except BaseException:
        session.rollback()
        raise
    with session.begin():
        now = utcnow()
        placed = [reconcile_site(session, actor=actor, site_id=sid, now=now) for sid in touched]
    return DrainOut(site=site, dry_run=False, steps=out, placement=placed)


def fail_node(
    session: Session, *, actor: Principal, name: str, reason: str | None = None
) -> NodeEventOut:
    """Mark a node failed and heal what it held (from spares or free nodes of its pool)."""
    actor.demand(Permission.FLEET_WRITE)
    node = _node(session, name)
    if node.state is NodeState.FAILED:
        raise Conflict(
            f"node '{name}' has already failed", errors=[{"loc": ["node"], "msg": "already failed"}]
        )
    fleet_nodes.set_node_state(
        session, actor=actor, name=name, state=NodeState.FAILED, reason=reason
    )
    site = reconcile_site(session, actor=actor, site_id=node.site_id, now=utcnow())
    return NodeEventOut(node=name, state=NodeState.FAILED, site=site)


def repair_node(
    session: Session, *, actor: Principal, name: str, reason: str | None = None
) -> NodeEventOut:
    """A failed node is back in service: it returns to the pool (and to a contract that is
    short, if any)."""
    actor.demand(Permission.FLEET_WRITE)
    node = _node(session, name)
    if node.state not in (NodeState.FAILED, NodeState.REPAIR):
        raise Conflict(
            f"node '{name}' is {node.state.value}, not failed or in repair",
            errors=[{"loc": ["node"], "msg": "not failed"}],
        )
    fleet_nodes.set_node_state(
        session, actor=actor, name=name, state=NodeState.AVAILABLE, reason=reason
    )
    site = reconcile_site(session, actor=actor, site_id=node.site_id, now=utcnow())
    return NodeEventOut(node=name, state=NodeState.AVAILABLE, site=site)


def allocation(
    session: Session, *, actor: Principal, name: str, page: PageRequest | None = None
) -> AllocationOut:
    """The nodes a contract holds now (a page of them, by node id), and its contracted,
    allocated and usable GPUs (over all of them)."""
    page = page or PageRequest(limit=MAX_LIMIT)
    actor.demand(Permission.CONTRACTS_READ)
    contract = contract_by_name(session, actor, name)
    tenant = session.get(Tenant, contract.tenant_id)
    h = hour_of(utcnow())
    contracted = int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(CapacityClaim.gpus), 0)).where(
                CapacityClaim.contract_id == contract.id,
                CapacityClaim.start_h <= h,
                CapacityClaim.end_h > h,
            )
        )
        or 0
    )
    held = sa.and_(Allocation.contract_id == contract.id, Allocation.until.is_(None))
    count, allocated, healthy = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(Node.gpus), 0),
            sa.func.coalesce(sa.func.sum(sa.case((Node.state.in_(READY), Node.gpus), else_=0)), 0),
        )
        .select_from(Allocation)
        .join(Node, Node.id == Allocation.node_id)
        .where(held)
    ).one()
    stmt = (
        sa.select(
            Node.id,
            Node.name,
            Site.name,
            Fabric.name,
            Block.name,
            Node.gpus,
            Node.state,
            Allocation.since,
            Allocation.reason,
        )
        .join(Node, Node.id == Allocation.node_id)
        .join(Site, Site.id == Node.site_id)
        .join(Fabric, Fabric.id == Node.fabric_id)
        .join(Block, Block.id == Node.block_id)
        .where(held)
        .order_by(Node.id)
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(Node.id > page.after_id)
    rows = list(session.execute(stmt))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    lent = _lent(session, contract.id, [r[0] for r in rows]) if contract.lendable else set()
    nodes = [
        AllocatedNode(
            name=n,
            site=s,
            fabric=f,
            block=b,
            gpus=g,
            state=st,
            since=as_utc(since),
            reason=reason,
            lent=nid in lent,
        )
        for nid, n, s, f, b, g, st, since, reason in rows
    ]
    next_cursor = encode_cursor(rows[-1][0]) if more and rows else None
    if contract.type is ContractType.SPOT:
        now = utcnow()
        in_term = as_utc(contract.start_at) <= now < as_utc(contract.end_at)
        contracted = (contract.gpus or 0) if in_term else 0
        nodes, next_cursor = _spot_nodes(session, contract.id), None
        count = len(nodes)
        allocated = sum(n.gpus for n in nodes)
        healthy = sum(n.gpus for n in nodes if n.state in READY)
    usable = min(contracted, int(healthy))
    open_row = session.scalar(
        sa.select(Degradation).where(
            Degradation.contract_id == contract.id, Degradation.ended_at.is_(None)
        )
    )
    return AllocationOut(
        contract=contract.name,
        tenant=tenant.name if tenant else "",
        state=contract.state,
        contracted_gpus=contracted,
        allocated_gpus=int(allocated),
        usable_gpus=usable,
        shortfall_gpus=max(0, contracted - usable),
        degraded_since=as_utc(_first_start(session, contract.id) or open_row.started_at)
        if open_row
        else None,
        nodes_total=int(count),
        nodes=nodes,
        next_cursor=next_cursor,
    )


def preemptions(session: Session, *, actor: Principal, limit: int = 100) -> list[PreemptionOut]:
    """Spot leases ended because their capacity was taken back, newest first."""
    actor.demand(Permission.CONTRACTS_READ)
    lender = aliased(Contract)
    stmt = (
        sa.select(SpotLease, Contract.name, Tenant.name, Node.name, lender.name, lender.tenant_id)
        .join(Contract, Contract.id == SpotLease.contract_id)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .join(Node, Node.id == SpotLease.node_id)
        .outerjoin(lender, lender.id == SpotLease.lent_by_contract_id)
        .where(SpotLease.preempted.is_(True))
        .order_by(SpotLease.ended_at.desc(), SpotLease.id.desc())
        .limit(limit)
    )
    stmt = actor.scope(stmt, Contract.tenant_id)
    return [
        PreemptionOut(
            contract=cname,
            tenant=tname,
            node=nname,
            started_at=as_utc(lease.started_at),
            notice_at=as_utc(lease.notice_at) if lease.notice_at else None,
            ended_at=as_utc(lease.ended_at or lease.started_at),
            reason=lease.end_reason or "",
            lent=lease.lent_by_contract_id is not None,
            lent_by=lname if actor.tenant_id in (None, ltenant) else None,
        )
        for lease, cname, tname, nname, lname, ltenant in session.execute(stmt)
    ]


def reclaim(
    session: Session,
    *,
    actor: Principal,
    name: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> ReclaimOut:
    """The owner of a lendable contract takes back the nodes it lent to spot: each loan gets
    notice and ends after the spot contract's notice period (`reclaim.reclaim`)."""
    actor.demand(Permission.JOBS_WRITE)
    contract = contract_by_name(session, actor, name)
    back = take_back(session, contract, now or utcnow())
    audit.record(
        session,
        actor,
        "contract.reclaim",
        "contract",
        contract.name,
        tenant_id=contract.tenant_id,
        after={"nodes": [r.node for r in back], "reason": reason},
    )
    return ReclaimOut(
        contract=contract.name,
        nodes=[
            ReclaimedNode(
                node=r.node,
                site=r.site,
                gpus=r.gpus,
                lent_since=as_utc(r.lease.started_at),
                notice_at=as_utc(r.lease.notice_at or r.lease.started_at),
                until=as_utc(r.lease.ends_at or r.lease.started_at),
            )
            for r in back
        ],
    )


def _lent(session: Session, contract_id: int, node_ids: list[int]) -> set[int]:
    """Which of the contract's nodes it has lent to spot now."""
    if not node_ids:
        return set()
    rows = session.scalars(
        sa.select(SpotLease.node_id).where(
            SpotLease.lent_by_contract_id == contract_id,
            SpotLease.ended_at.is_(None),
            SpotLease.node_id.in_(node_ids),
        )
    )
    return {int(n) for n in rows}


def _spot_nodes(session: Session, contract_id: int) -> list[AllocatedNode]:
    rows = session.execute(
        sa.select(SpotLease, Node.name, Site.name, Fabric.name, Block.name, Node.gpus, Node.state)
        .join(Node, Node.id == SpotLease.node_id)
        .join(Site, Site.id == Node.site_id)
        .join(Fabric, Fabric.id == Node.fabric_id)
        .join(Block, Block.id == Node.block_id)
        .where(SpotLease.contract_id == contract_id, SpotLease.ended_at.is_(None))
        .order_by(Site.name, Node.name)
    )
    return [
        AllocatedNode(
            name=n,
            site=s,
            fabric=f,
            block=b,
            gpus=g,
            state=st,
            since=as_utc(lease.started_at),
            reason="spot",
            until=as_utc(lease.ends_at) if lease.ends_at else None,
            lent=lease.lent_by_contract_id is not None,
        )
        for lease, n, s, f, b, g, st in rows
    ]


def degraded(session: Session, *, actor: Principal) -> list[DegradationOut]:
    """Contracts short of GPUs now, with since when and why; tenants see their own."""
    actor.demand(Permission.CONTRACTS_READ)
    return _open_degradations(session, actor=actor)


# --- helpers ------------------------------------------------------------------------------------


def _node(session: Session, name: str) -> Node:
    node = session.scalar(sa.select(Node).where(Node.name == name))
    if node is None:
        raise NotFound(f"node '{name}' not found")
    return node


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i > 0)
    if not wanted:
        return {}
    rows = session.execute(sa.select(Contract.id, Contract.name).where(Contract.id.in_(wanted)))
    return {int(cid): str(name) for cid, name in rows}


def _owner(owner: int, names: dict[int, str]) -> str | None:
    if owner == FREE:
        return None
    if owner == SPARE:
        return "spare"
    return names.get(owner, str(owner))


def _first_start(session: Session, contract_id: int) -> datetime | None:
    """When the contract's current run of degradation began (rows that follow each other
    without a whole stretch in between)."""
    rows = list(
        session.execute(
            sa.select(Degradation.started_at, Degradation.ended_at)
            .where(Degradation.contract_id == contract_id)
            .order_by(Degradation.started_at.desc(), Degradation.id.desc())
        )
    )
    start: datetime | None = None
    for began, ended in rows:
        if start is None:
            start = began  # the open row
        elif ended is not None and as_utc(ended) >= as_utc(start):
            start = began  # closed as the next one opened: the same stretch
        else:
            break
    return start


def _open_degradations(
    session: Session, *, actor: Principal | None = None, contract_ids: list[int] | None = None
) -> list[DegradationOut]:
    stmt = (
        sa.select(Degradation, Contract.name, Tenant.name)
        .join(Contract, Contract.id == Degradation.contract_id)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .where(Degradation.ended_at.is_(None))
        .order_by(Contract.name)
    )
    if contract_ids is not None:
        if not contract_ids:
            return []
        stmt = stmt.where(Degradation.contract_id.in_(contract_ids))
    if actor is not None:
        stmt = actor.scope(stmt, Contract.tenant_id)
    return [
        DegradationOut(
            contract=cname,
            tenant=tname,
            since=as_utc(_first_start(session, d.contract_id) or d.started_at),
            contracted_gpus=d.contracted_gpus,
            usable_gpus=d.usable_gpus,
            shortfall_gpus=d.contracted_gpus - d.usable_gpus,
            reason=d.reason,
        )
        for d, cname, tname in session.execute(stmt)
    ]
