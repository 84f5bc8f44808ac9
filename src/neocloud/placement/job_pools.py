"""The shared pools that jobs run in, read from what placement holds now.

A job runs under a contract of its tenant, at one site, in the pool its contract's type
says:

- `internal`: the nodes the contract holds at the site (its open allocations);
- `spot`: the nodes its running spot leases hold at the site, not those on notice (their
  capacity is being taken back);
- `on-demand`: the site's shared pool, shared by every on-demand contract of the site: ready
  nodes that no contract holds, that are no hot spare and that no spot lease runs on.

Only healthy nodes (available or allocated) are in a pool. A pool's *ceiling* is what it
could ever hold (the site's nodes of the contract's accelerator, up to the contract's GPUs
for internal and spot): a job that does not fit the ceiling can never run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.loading import READY
from neocloud.contracts.models import Contract, ContractType
from neocloud.fleet.models import Accelerator, Node, NodeState
from neocloud.placement.cluster import Cluster, GpuNode
from neocloud.placement.jobs import Shape
from neocloud.placement.models import Allocation, SpotLease

POOL_TYPES = (ContractType.INTERNAL, ContractType.SPOT, ContractType.ON_DEMAND)
"""Contract types whose work runs as jobs; reserved and dedicated-site contracts run theirs
on their own engines."""

SPOT_RECLAIMED = "spot capacity reclaimed"
CAPACITY_RECLAIMED = "capacity reclaimed"


@dataclass(frozen=True, slots=True, order=True)
class PoolKey:
    """One pool of a site: a contract's own (internal, spot), or the site's on-demand pool."""

    kind: str
    contract_id: int  # 0 for the site's on-demand pool


def pool_key(kind: ContractType | str, contract_id: int) -> PoolKey:
    kind = ContractType(kind)
    return PoolKey(kind.value, 0 if kind is ContractType.ON_DEMAND else contract_id)


@dataclass(frozen=True, slots=True)
class PoolNode:
    id: int
    name: str
    gpu_type: str
    gpus: int


def _nodes(session: Session, stmt: sa.Select[int, str, str, int]) -> list[PoolNode]:
    return [PoolNode(int(i), n, t, int(g)) for i, n, t, g in session.execute(stmt)]


def _select(site_id: int) -> sa.Select[int, str, str, int]:
    return (
        sa.select(Node.id, Node.name, Accelerator.name, Node.gpus)
        .join(Accelerator, Accelerator.id == Node.accelerator_id)
        .where(Node.site_id == site_id)
        .order_by(Node.name)
    )


def pool_nodes(session: Session, site_id: int, key: PoolKey) -> list[PoolNode]:
    """The healthy nodes of one pool at a site now, by name."""
    stmt = _select(site_id).where(Node.state.in_(READY))
    if key.kind == ContractType.INTERNAL:
        held = sa.select(Allocation.node_id).where(
            Allocation.contract_id == key.contract_id, Allocation.until.is_(None)
        )
        return _nodes(session, stmt.where(Node.id.in_(held)))
    if key.kind == ContractType.SPOT:
        leased = sa.select(SpotLease.node_id).where(
            SpotLease.contract_id == key.contract_id,
            SpotLease.ended_at.is_(None),
            SpotLease.notice_at.is_(None),
        )
        return _nodes(session, stmt.where(Node.id.in_(leased)))
    held = sa.select(Allocation.node_id).where(Allocation.until.is_(None))
    leased = sa.select(SpotLease.node_id).where(SpotLease.ended_at.is_(None))
    return _nodes(
        session,
        stmt.where(Node.state == NodeState.AVAILABLE, ~Node.id.in_(held), ~Node.id.in_(leased)),
    )


def ceiling_nodes(session: Session, site_id: int, contract: Contract) -> list[PoolNode]:
    """What the contract's pool at the site could ever hold (see the module's docstring)."""
    stmt = _select(site_id).where(Node.state != NodeState.RETIRED)
    if contract.accelerator_id is not None:
        stmt = stmt.where(Node.accelerator_id == contract.accelerator_id)
    nodes = _nodes(session, stmt)
    if contract.type is ContractType.ON_DEMAND or contract.gpus is None:
        return nodes
    out: list[PoolNode] = []
    total = 0
    for n in nodes:
        if total >= contract.gpus:
            break
        out.append(n)
        total += n.gpus
    return out


def cluster(nodes: Sequence[PoolNode]) -> Cluster | None:
    """The queue's view of a pool (None for an empty pool)."""
    return Cluster([GpuNode(n.name, n.gpu_type, n.gpus) for n in nodes]) if nodes else None


def ceiling(session: Session, site_id: int, contract: Contract) -> Cluster | None:
    """The contract's pool at the site at its largest, as a cluster (None: no node)."""
    return cluster(ceiling_nodes(session, site_id, contract))


def never_fits(
    ceiling: Cluster | None, site_name: str, contract: Contract, shape: Shape
) -> str | None:
    """Why a job of this shape could never run in the contract's pool at the site, given
    the pool's `ceiling`; None when it could."""
    if ceiling is None:
        return f"site {site_name} has no GPU node this contract's pool could ever hold"
    reason = ceiling.never_fits(shape)
    if reason is None:
        return None
    if contract.type is not ContractType.ON_DEMAND and contract.gpus is not None:
        return f"{reason} (contract {contract.name} holds at most {contract.gpus} GPUs)"
    return f"{reason} at site {site_name}"


def leave_reason(session: Session, key: PoolKey, node_ids: Iterable[int]) -> str:
    """Why a running job's GPUs are no longer all in its pool."""
    states = dict(
        session.execute(
            sa.select(Node.id, Node.state).where(Node.id.in_(sorted(set(node_ids))))
        ).all()
    )
    bad = sorted({s.value for s in states.values() if s not in READY})
    if bad:
        return f"node {bad[0]}" if bad[0] != NodeState.FAILED else "node failed"
    return SPOT_RECLAIMED if key.kind == ContractType.SPOT else CAPACITY_RECLAIMED
