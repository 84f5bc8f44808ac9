"""Spot: contracts that run on capacity nobody else holds, and give it back after notice.

After a site's contracts and spares are settled (`allocator.reconcile`), each spot contract
in force leases free, healthy nodes of its accelerator (at its sites, or any) until it runs
as many GPUs as it bought. A lease whose node is then needed — a contract or the spare pool
took it — gets notice: it ends `notice_minutes` later (the spot contract's term), never
after; its end is recorded as a preemption with the reason. A lease ends at once when its
node fails or its spot contract ends. Nodes that on-demand jobs run on are busy, not idle:
spot does not lease them.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.contracts.models import Contract, ContractType
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Node, Site
from neocloud.placement.inventory import FREE
from neocloud.placement.job_models import Job, JobState
from neocloud.placement.models import SpotLease
from neocloud.placement.store import HOLDING, SiteNodes

DEFAULT_NOTICE_MINUTES = 30


@dataclass(frozen=True)
class SpotChange:
    node: str
    contract: str
    action: str  # leased | noticed | ended | preempted
    reason: str
    at: datetime


@dataclass(frozen=True)
class _Spot:
    id: int
    name: str
    accelerator_id: int | None
    gpus: int
    notice: timedelta
    site_names: frozenset[str] | None


def _spot_contracts(session: Session, now: datetime) -> dict[int, _Spot]:
    out: dict[int, _Spot] = {}
    rows = session.execute(
        sa.select(
            Contract.id,
            Contract.name,
            Contract.accelerator_id,
            Contract.gpus,
            Contract.notice_minutes,
            Contract.sites,
            Contract.site_id,
        ).where(
            Contract.type == ContractType.SPOT,
            Contract.state.in_(HOLDING),
            Contract.start_at <= now,
            Contract.end_at > now,
        )
    )
    site_names = dict(session.execute(sa.select(Site.id, Site.name)).all())
    for cid, name, acc, gpus, notice, sites, site_id in rows:
        allowed = (
            frozenset(sites)
            if sites
            else frozenset({site_names[site_id]})
            if site_id in site_names
            else None
        )
        minutes = DEFAULT_NOTICE_MINUTES if notice is None else int(notice)
        out[int(cid)] = _Spot(
            int(cid), name, acc, int(gpus or 0), timedelta(minutes=minutes), allowed
        )
    return out


def settle(session: Session, site: SiteNodes, site_name: str, now: datetime) -> list[SpotChange]:
    """Give notice to, end and start the spot leases of one site (see the module's
    docstring); returns what changed."""
    inv = site.inventory
    spots = _spot_contracts(session, now)
    changes: list[SpotChange] = []
    leases = list(
        session.scalars(
            sa.select(SpotLease)
            .join(Node, Node.id == SpotLease.node_id)
            .where(Node.site_id == site.site_id, SpotLease.ended_at.is_(None))
        )
    )
    leased: set[int] = set()
    for lease in leases:
        spot = spots.get(lease.contract_id)
        node = site.names.get(lease.node_id, str(lease.node_id))
        name = spot.name if spot else str(lease.contract_id)
        try:
            i = inv.index_of(lease.node_id)
        except KeyError:
            i = -1
        if spot is None or i < 0 or not inv.healthy[i]:
            why = "the spot contract ended" if spot is None else "the node failed"
            lease.ended_at, lease.end_reason = now, why
            changes.append(SpotChange(node, name, "ended", why, now))
            continue
        if inv.owner[i] != FREE and lease.notice_at is None:
            taker = "a hot spare" if inv.owner[i] < 0 else "a contract"
            lease.notice_at, lease.ends_at = now, now + spot.notice
            lease.end_reason = f"preempted: the node was taken back for {taker}"
            changes.append(SpotChange(node, name, "noticed", lease.end_reason, now))
        if lease.ends_at is not None and as_utc(lease.ends_at) <= now:
            lease.ended_at, lease.preempted = lease.ends_at, True
            changes.append(
                SpotChange(node, name, "preempted", lease.end_reason or "", as_utc(lease.ends_at))
            )
            continue
        leased.add(i)
    # What each spot contract runs now, everywhere (leases on notice are on their way out).
    running: dict[int, int] = defaultdict(int)
    for cid, gpus in session.execute(
        sa.select(SpotLease.contract_id, sa.func.sum(Node.gpus))
        .join(Node, Node.id == SpotLease.node_id)
        .where(SpotLease.ended_at.is_(None), SpotLease.notice_at.is_(None))
        .group_by(SpotLease.contract_id)
    ):
        running[int(cid)] = int(gpus or 0)
    free = inv.healthy & (inv.owner == FREE)
    if leased:
        free[np.fromiter(leased, np.int64)] = False
    # Nodes running on-demand jobs are busy, not idle: spot leases others.
    for node_id in _on_demand_nodes(session, site.site_id):
        with contextlib.suppress(KeyError):  # a node retired since
            free[inv.index_of(node_id)] = False
    accelerator = np.array([inv.pools[p][1] for p in inv.pool.tolist()], dtype=np.int64)
    for spot in sorted(spots.values(), key=lambda s: s.id):
        if spot.site_names is not None and site_name not in spot.site_names:
            continue
        deficit = spot.gpus - running[spot.id]
        if deficit <= 0:
            continue
        candidates = np.flatnonzero(free & (accelerator == (spot.accelerator_id or -1)))
        taken: list[int] = []
        for i in candidates.tolist():
            if deficit <= 0:
                break
            taken.append(i)
            deficit -= int(inv.gpus[i])
        for i in taken:
            free[i] = False
            nid = int(inv.node_id[i])
            session.add(SpotLease(contract_id=spot.id, node_id=nid, started_at=now))
            changes.append(SpotChange(site.names[nid], spot.name, "leased", "idle capacity", now))
        running[spot.id] += sum(int(inv.gpus[i]) for i in taken)
    session.flush()
    return changes


def _on_demand_nodes(session: Session, site_id: int) -> set[int]:
    """The nodes of a site that on-demand jobs run on now."""
    out: set[int] = set()
    for (placement,) in session.execute(
        sa.select(Job.placement).where(
            Job.site_id == site_id,
            Job.state == JobState.RUNNING,
            Job.pool == ContractType.ON_DEMAND.value,
        )
    ):
        out.update(int(node) for node, _gpu in placement or [])
    return out


def spot_nodes(session: Session, contract_id: int) -> list[tuple[SpotLease, Node]]:
    """A spot contract's running leases with their nodes."""
    rows = session.execute(
        sa.select(SpotLease, Node)
        .join(Node, Node.id == SpotLease.node_id)
        .where(SpotLease.contract_id == contract_id, SpotLease.ended_at.is_(None))
        .order_by(Node.name)
    )
    return [(lease, node) for lease, node in rows]
