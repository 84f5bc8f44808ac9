"""/v1/contracts/{contract}/allocation|reclaim, /v1/nodes/{node}/fail|repair, /v1/placement/*."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.placement import failures, service
from neocloud.placement.schemas import (
    AllocationOut,
    DegradationOut,
    DrainIn,
    DrainOut,
    FailedNodeOut,
    NodeEvent,
    NodeEventOut,
    PreemptionOut,
    ReclaimIn,
    ReclaimOut,
    ReconcileIn,
    ReconcileOut,
)

router = APIRouter(tags=["placement"])
Reader = Annotated[Principal, Depends(require(P.CONTRACTS_READ))]
FleetReader = Annotated[Principal, Depends(require(P.FLEET_READ))]
Operator = Annotated[Principal, Depends(require(P.FLEET_WRITE))]
Drainer = Annotated[Principal, Depends(require(P.SITES_DRAIN))]
Runner = Annotated[Principal, Depends(require(P.JOBS_WRITE))]
"""Reclaiming lent nodes is running one's own work on them: admin, ops, a tenant admin."""
NodeName = Annotated[str, Path(max_length=120)]


@router.get("/contracts/{contract}/allocation", response_model=AllocationOut)
def get_allocation(
    contract: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: Reader,
    page: PageDep,
) -> AllocationOut:
    """The nodes the contract holds now (paginated: `limit`, `cursor`), and its contracted,
    allocated and usable GPUs."""
    with session.begin():
        return service.allocation(session, actor=actor, name=contract, page=page)


@router.post("/contracts/{contract}/reclaim", response_model=ReclaimOut)
def reclaim(
    contract: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: Runner,
    body: Annotated[ReclaimIn | None, Body()] = None,
) -> ReclaimOut:
    """Take back the idle nodes a lendable contract lent to spot: each spot lease gets notice
    and ends after the spot contract's notice period. 409 when nothing is lent."""
    with session.begin():
        return service.reclaim(
            session, actor=actor, name=contract, reason=body.reason if body else None
        )


@router.post("/nodes/{node}/fail", response_model=NodeEventOut)
def fail_node(
    node: NodeName,
    session: SessionDep,
    actor: Operator,
    body: Annotated[NodeEvent | None, Body()] = None,
) -> NodeEventOut:
    """Mark a node failed; what it held is healed from the pool's spares or free nodes, or
    its contract is marked degraded with the shortfall. 409 if it has already failed."""
    with session.begin():
        return service.fail_node(
            session, actor=actor, name=node, reason=body.reason if body else None
        )


@router.post("/nodes/{node}/repair", response_model=NodeEventOut)
def repair_node(
    node: NodeName,
    session: SessionDep,
    actor: Operator,
    body: Annotated[NodeEvent | None, Body()] = None,
) -> NodeEventOut:
    """A failed node is back: it returns to the pool. 409 unless it is failed or in repair."""
    with session.begin():
        return service.repair_node(
            session, actor=actor, name=node, reason=body.reason if body else None
        )


@router.post("/sites/{site}/drain", response_model=DrainOut)
def drain_site(
    site: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: Drainer,
    body: Annotated[DrainIn | None, Body()] = None,
) -> DrainOut:
    """Move every contract the site holds elsewhere (each checked like a booking), one at a
    time; `dry_run` only plans. Then the site is `draining` and the nodes follow."""
    body = body or DrainIn()
    return service.drain_site(session, actor=actor, site=site, to=body.to, dry_run=body.dry_run)


@router.post("/placement/reconcile", response_model=ReconcileOut)
def reconcile(
    session: SessionDep, actor: Operator, body: Annotated[ReconcileIn | None, Body()] = None
) -> ReconcileOut:
    """Bring allocations in line with the contracts in force now (all sites, or one):
    contracts that started get nodes, ended ones give them back, failed nodes are healed."""
    with session.begin():
        return service.reconcile(session, actor=actor, site=body.site if body else None)


@router.get("/placement/preemptions", response_model=list[PreemptionOut])
def preemptions(
    session: SessionDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PreemptionOut]:
    """Spot leases ended because their capacity was taken back (after notice), newest
    first, with the reason (tenants: their own)."""
    with session.begin():
        return service.preemptions(session, actor=actor, limit=limit)


@router.get("/placement/degraded", response_model=list[DegradationOut])
def degraded(session: SessionDep, actor: Reader) -> list[DegradationOut]:
    """Contracts short of the GPUs they bought, since when and why (tenants: their own)."""
    with session.begin():
        return service.degraded(session, actor=actor)


@router.get("/placement/failed-nodes", response_model=PageOut[FailedNodeOut])
def failed_nodes(
    session: SessionDep,
    page: PageDep,
    actor: FleetReader,
    site: Annotated[str | None, Query(max_length=63)] = None,
) -> PageOut[FailedNodeOut]:
    """Nodes failed or in repair, each with the contract it held when it failed (whether
    that contract was healed or left short: see /v1/placement/degraded) and the reason."""
    with session.begin():
        result = failures.failed_nodes(session, actor=actor, page=page, site=site)
        return PageOut(items=result.items, next_cursor=result.next_cursor)
