"""Reading one site's desired Kueue state from the database, for the hour that holds `at`.

- accelerators: the GPUs of the site's nodes in service (available or allocated), hot
  spares left out — what the contracts and the on-demand pool may use;
- contracts that hold capacity: their claims in force at the site (the capacity calendar is
  the record of what was sold where), with the internal floors in force on them;
- spot and on-demand contracts in their term whose sites include this one (or that name no
  site), on their accelerator or, when they name none, on every accelerator of the site.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Floor
from neocloud.capacity.loading import READY
from neocloud.capacity.models import CapacityClaim, CapacityFloor
from neocloud.capacity.timeline import EPOCH, hour_of
from neocloud.contracts.models import Contract, ContractState, ContractType
from neocloud.core.errors import NotFound
from neocloud.engines.kueue.model import AcceleratorPool, ContractAtSite, Share, SiteState
from neocloud.fleet.models import Accelerator, Node, NodeState, Site
from neocloud.fleet.models import SiteState as Lifecycle
from neocloud.placement.models import Allocation
from neocloud.tenants.models import Tenant

HOLDING_STATES = (ContractState.BOOKED, ContractState.ACTIVE)
SHARED = (ContractType.SPOT, ContractType.ON_DEMAND)


def hour_start(at: datetime) -> datetime:
    """The start of the hour that holds `at` (the calendar counts whole hours)."""
    return EPOCH + timedelta(hours=hour_of(at))


def site_names(session: Session, site: str | None) -> list[str]:
    """The named site (404 if unknown), or every site that is not retired, by name."""
    if site is not None:
        if session.scalar(sa.select(Site.id).where(Site.name == site)) is None:
            raise NotFound(f"site '{site}' not found")
        return [site]
    rows = session.scalars(
        sa.select(Site.name).where(Site.state != Lifecycle.RETIRED).order_by(Site.name)
    )
    return list(rows)


def load_site(session: Session, site: str, at: datetime) -> SiteState:
    site_id = session.scalar(sa.select(Site.id).where(Site.name == site))
    if site_id is None:
        raise NotFound(f"site '{site}' not found")
    start = hour_start(at)
    hour = hour_of(start)
    pools = _pools(session, site_id)
    vendors: dict[str, str] = {}
    holding = _holdings(session, site_id, hour, {p.name: p.gpus for p in pools}, vendors)
    # A claim on an accelerator with no nodes here yet (a delivery the calendar already
    # counts): its flavor exists, matching no node until they arrive.
    known = {p.name for p in pools}
    pools += [AcceleratorPool(a, v, 0) for a, v in sorted(vendors.items()) if a not in known]
    pools.sort(key=lambda p: p.name)
    shared = _shared(session, site, site_id, start, [p.name for p in pools])
    return SiteState(
        site=site,
        at=start,
        accelerators=tuple(pools),
        contracts=tuple(sorted(holding + shared, key=lambda c: c.name)),
    )


def _pools(session: Session, site_id: int) -> list[AcceleratorPool]:
    spare = (
        sa.select(Allocation.node_id)
        .where(Allocation.until.is_(None), Allocation.kind == "spare")
        .scalar_subquery()
    )
    usable = sa.and_(Node.state.in_(READY), Node.id.not_in(spare))
    rows = session.execute(
        sa.select(
            Accelerator.name,
            Accelerator.vendor,
            sa.func.sum(sa.case((usable, Node.gpus), else_=0)),
        )
        .join(Accelerator, Accelerator.id == Node.accelerator_id)
        .where(Node.site_id == site_id, Node.state != NodeState.RETIRED)
        .group_by(Accelerator.name, Accelerator.vendor)
        .order_by(Accelerator.name)
    )
    return [AcceleratorPool(name, vendor, int(gpus or 0)) for name, vendor, gpus in rows]


def _holdings(
    session: Session, site_id: int, hour: int, supply: dict[str, int], vendors: dict[str, str]
) -> list[ContractAtSite]:
    """Contracts with claims in force at the site, their GPUs per accelerator and floors
    (`vendors` gets each accelerator they hold, with its vendor)."""
    rows = session.execute(
        sa.select(
            Contract.id,
            Contract.name,
            Tenant.name,
            Contract.type,
            Contract.lendable,
            Accelerator.name,
            Accelerator.vendor,
            sa.func.sum(CapacityClaim.gpus),
        )
        .join(Contract, Contract.id == CapacityClaim.contract_id)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .join(Accelerator, Accelerator.id == CapacityClaim.accelerator_id)
        .where(
            CapacityClaim.site_id == site_id,
            CapacityClaim.start_h <= hour,
            CapacityClaim.end_h > hour,
            Contract.state.in_(HOLDING_STATES),
        )
        .group_by(
            Contract.id,
            Contract.name,
            Tenant.name,
            Contract.type,
            Contract.lendable,
            Accelerator.name,
            Accelerator.vendor,
        )
    )
    floors = _floors(session, site_id, hour, supply)
    shares: dict[int, list[Share]] = defaultdict(list)
    heads: dict[int, tuple[str, str, ContractType, bool]] = {}
    for cid, name, tenant, type_, lendable, accelerator, vendor, gpus in rows:
        vendors[accelerator] = vendor
        heads[cid] = (name, tenant, ContractType(type_), bool(lendable))
        floor = floors.get((cid, accelerator), 0)
        shares[cid].append(Share(accelerator, int(gpus), floor))
    return [
        ContractAtSite(name, tenant, type_, tuple(sorted(shares[cid], key=_by_name)), lendable)
        for cid, (name, tenant, type_, lendable) in heads.items()
    ]


def _by_name(share: Share) -> str:
    return share.accelerator


def _floors(
    session: Session, site_id: int, hour: int, supply: dict[str, int]
) -> dict[tuple[int, str], int]:
    """Internal floors in force, in GPUs (a share of the site's supply rounded up, as the
    calendar counts it), per contract and accelerator."""
    out: dict[tuple[int, str], int] = defaultdict(int)
    rows = session.execute(
        sa.select(CapacityFloor, Accelerator.name)
        .join(Accelerator, Accelerator.id == CapacityFloor.accelerator_id)
        .where(
            CapacityFloor.site_id == site_id,
            CapacityFloor.start_h <= hour,
            CapacityFloor.end_h > hour,
        )
    )
    for f, accelerator in rows:
        floor = Floor(f.contract_id, site_id, f.accelerator_id, f.start_h, f.end_h, f.gpus, f.share)
        out[(f.contract_id, accelerator)] += floor.level(supply.get(accelerator, 0))
    return out


def _shared(
    session: Session, site: str, site_id: int, start: datetime, accelerators: list[str]
) -> list[ContractAtSite]:
    """Spot and on-demand contracts in their term that may run at the site."""
    rows = session.execute(
        sa.select(
            Contract.name,
            Tenant.name,
            Contract.type,
            Contract.gpus,
            Contract.site_id,
            Contract.sites,
            Accelerator.name,
        )
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .outerjoin(Accelerator, Accelerator.id == Contract.accelerator_id)
        .where(
            Contract.type.in_(SHARED),
            Contract.state.in_(HOLDING_STATES),
            Contract.start_at <= start,
            Contract.end_at > start,
        )
    )
    out = []
    for name, tenant, type_, gpus, only_site, sites, accelerator in rows:
        allowed = set(sites or []) or None
        if (allowed is not None and site not in allowed) or (
            allowed is None and only_site is not None and only_site != site_id
        ):
            continue
        runs_on = [a for a in accelerators if accelerator is None or a == accelerator]
        kind = ContractType(type_)
        size = gpus if kind is ContractType.SPOT else None
        if runs_on:
            out.append(ContractAtSite(name, tenant, kind, tuple(Share(a, size) for a in runs_on)))
    return out
