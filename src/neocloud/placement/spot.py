"""Spot: contracts that run on capacity nobody else holds, and give it back after notice.

After a site's contracts and spares are settled (`allocator.reconcile`), each spot contract
in force leases free, healthy nodes of its accelerator (at its sites, or any) until it runs
as many GPUs as it bought; when free nodes run out, it borrows idle nodes of `lendable`
contracts (`lending`: the owner keeps its allocation). A lease whose node is then needed — a
contract or the spare pool took it, or the owner that lent it needs it back — gets notice: it
ends `notice_minutes` later (the spot contract's term), never after; its end is recorded as a
preemption with the reason. A lease ends at once when its node fails or its spot contract
ends. Nodes that on-demand jobs run on are busy, not idle: spot does not lease them.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from neocloud.contracts.models import Contract, ContractType
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Node, Site
from neocloud.placement import idle, lending
from neocloud.placement.inventory import FREE, Inventory
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


def settle(
    session: Session,
    site: SiteNodes,
    site_name: str,
    now: datetime,
    thresholds: idle.Thresholds | None = None,
) -> list[SpotChange]:
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
            .order_by(SpotLease.id)
        )
    )
    jobs = running_jobs(session, site.site_id)
    loans = lending.SiteLoans(
        session, site.site_id, now, thresholds or idle.thresholds_from_env(), jobs
    )
    taking_back = loans.take_back(leases)
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
        if lease.notice_at is None:
            reason = _notice(int(inv.owner[i]), lease, taking_back)
            if reason is not None:
                lease.notice_at, lease.ends_at = now, now + spot.notice
                lease.end_reason = reason
                changes.append(SpotChange(node, name, "noticed", reason, now))
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
    for node_id, on_node in jobs.items():
        if any(pool == ContractType.ON_DEMAND.value for pool, _ in on_node):
            with contextlib.suppress(KeyError):  # a node retired since
                free[inv.index_of(node_id)] = False
    accelerator = np.array([inv.pools[p][1] for p in inv.pool.tolist()], dtype=np.int64)
    here = [
        s
        for s in sorted(spots.values(), key=lambda s: s.id)
        if s.site_names is None or site_name in s.site_names
    ]
    # Free nodes first, then idle nodes lent by their owners.
    for lent in (False, True):
        short = [s for s in here if s.gpus > running[s.id]]
        if not short:
            break
        pick = loans.idle_nodes(inv, leased) if lent else free
        for spot in short:
            taken = _choose(
                inv,
                pick & (accelerator == (spot.accelerator_id or -1)),
                spot.gpus - running[spot.id],
            )
            for i in taken:
                pick[i] = False
                leased.add(i)
                nid = int(inv.node_id[i])
                lent_by = int(inv.owner[i]) if lent else None
                session.add(
                    SpotLease(
                        contract_id=spot.id,
                        node_id=nid,
                        started_at=now,
                        lent_by_contract_id=lent_by,
                    )
                )
                why = "idle capacity" if lent_by is None else f"lent by {loans.lendable[lent_by]}"
                changes.append(SpotChange(site.names[nid], spot.name, "leased", why, now))
                running[spot.id] += int(inv.gpus[i])
    session.flush()
    return changes


def _choose(inv: Inventory, candidates: NDArray[np.bool_], deficit: int) -> list[int]:
    """Nodes (lowest index first) until they cover `deficit` GPUs."""
    taken: list[int] = []
    for i in np.flatnonzero(candidates).tolist():
        if deficit <= 0:
            break
        taken.append(i)
        deficit -= int(inv.gpus[i])
    return taken


def _notice(holder: int, lease: SpotLease, taking_back: dict[int, str]) -> str | None:
    """Why a running lease gets notice now, if it does. Its node may be free, or held by
    the owner that lent it; anyone else holding it took it back."""
    if holder != FREE and holder != lease.lent_by_contract_id:
        taker = "a hot spare" if holder < 0 else "a contract"
        return f"preempted: the node was taken back for {taker}"
    if holder == FREE:
        return None  # free capacity (an owner that lent it has let it go)
    return taking_back.get(lease.id)


def running_jobs(session: Session, site_id: int) -> dict[int, frozenset[tuple[str, int]]]:
    """Node id -> (pool, contract id) of each job of ours running on it at the site."""
    out: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for pool, contract_id, placement in session.execute(
        sa.select(Job.pool, Job.contract_id, Job.placement).where(
            Job.site_id == site_id, Job.state == JobState.RUNNING
        )
    ):
        for node, _gpu in placement or []:
            out[int(node)].add((str(pool), int(contract_id)))
    return {n: frozenset(v) for n, v in out.items()}


def spot_nodes(session: Session, contract_id: int) -> list[tuple[SpotLease, Node]]:
    """A spot contract's running leases with their nodes."""
    rows = session.execute(
        sa.select(SpotLease, Node)
        .join(Node, Node.id == SpotLease.node_id)
        .where(SpotLease.contract_id == contract_id, SpotLease.ended_at.is_(None))
        .order_by(Node.name)
    )
    return [(lease, node) for lease, node in rows]
