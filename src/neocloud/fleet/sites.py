"""Sites: power envelope, lifecycle, and the aggregates an operator reads first."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, encode_cursor
from neocloud.core.units import facility_mw
from neocloud.fleet import generation
from neocloud.fleet.lifecycle import site_move_allowed
from neocloud.fleet.models import (
    Accelerator,
    Block,
    Delivery,
    DeliveryState,
    Fabric,
    Node,
    NodeState,
    Site,
)
from neocloud.fleet.schemas import BlockOut, FabricOut, SiteOut

MUTABLE = (
    "display_name",
    "location",
    "power_mw",
    "pue",
    "spare_pct",
    "state",
    "planned_on",
    "building_on",
    "live_on",
    "draining_on",
    "retired_on",
)
MW = Decimal("0.001")


def _view(s: Site) -> dict[str, Any]:
    return {
        f: (v.isoformat() if hasattr(v, "isoformat") else str(v) if v is not None else None)
        for f in MUTABLE
        for v in [getattr(s, f)]
    }


def site_by_name(session: Session, name: str) -> Site:
    site = session.scalar(sa.select(Site).where(Site.name == name))
    if site is None:
        raise NotFound(f"site '{name}' not found")
    return site


def it_power_kw(session: Session, site_id: int) -> Decimal:
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Node.power_kw), 0)).where(
            Node.site_id == site_id, Node.state != NodeState.RETIRED
        )
    )
    return Decimal(total or 0)


def check_power(name: str, power_mw: Decimal, pue: Decimal, it_kw: Decimal) -> None:
    drawn = facility_mw(it_kw, pue)
    if drawn > power_mw:
        raise Conflict(
            f"site '{name}' would draw {drawn} MW ({(it_kw / 1000).quantize(MW)} MW of IT load x PUE {pue}) "
            f"but its facility power would be {power_mw} MW",
            errors=[{"loc": ["power_mw"], "msg": f"needs at least {drawn} MW"}],
        )


def summarize(session: Session, sites: list[Site]) -> list[SiteOut]:
    """Site rows with GPU and power aggregates, from one GROUP BY over their nodes."""
    ids = [s.id for s in sites]
    by_site: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "gpus": 0,
            "nodes": 0,
            "it_kw": Decimal(0),
            "alloc_kw": Decimal(0),
            "acc": defaultdict(int),
            "state": defaultdict(int),
        }
    )
    if ids:
        rows = session.execute(
            sa.select(
                Node.site_id,
                Accelerator.name,
                Node.state,
                sa.func.count(),
                sa.func.sum(Node.gpus),
                sa.func.sum(Node.power_kw),
            )
            .join(Accelerator, Node.accelerator_id == Accelerator.id)
            .where(Node.site_id.in_(ids))
            .group_by(Node.site_id, Accelerator.name, Node.state)
        )
        for site_id, acc, state, count, gpus, kw in rows:
            agg = by_site[site_id]
            agg["state"][str(state.value if hasattr(state, "value") else state)] += int(gpus)
            if state == NodeState.RETIRED:
                continue
            agg["gpus"] += int(gpus)
            agg["nodes"] += int(count)
            agg["it_kw"] += Decimal(kw)
            agg["acc"][acc] += int(gpus)
            if state == NodeState.ALLOCATED:
                agg["alloc_kw"] += Decimal(kw)
    scheduled = (
        dict(
            session.execute(
                sa.select(Delivery.site_id, sa.func.sum(Delivery.nodes * Delivery.gpus_per_node))
                .where(Delivery.site_id.in_(ids), Delivery.state == DeliveryState.SCHEDULED)
                .group_by(Delivery.site_id)
            ).all()
        )
        if ids
        else {}
    )
    out = []
    for s in sites:
        agg = by_site[s.id]
        installed = facility_mw(agg["it_kw"], s.pue)
        out.append(
            SiteOut(
                name=s.name,
                display_name=s.display_name,
                location=s.location,
                state=s.state,
                power_mw=s.power_mw,
                pue=s.pue,
                spare_pct=s.spare_pct,
                gpus=agg["gpus"],
                nodes=agg["nodes"],
                gpus_by_accelerator=dict(agg["acc"]),
                gpus_by_state=dict(agg["state"]),
                it_power_mw=(agg["it_kw"] / 1000).quantize(MW),
                installed_power_mw=installed,
                committed_power_mw=facility_mw(agg["alloc_kw"], s.pue),
                headroom_mw=s.power_mw - installed,
                scheduled_gpus=int(scheduled.get(s.id, 0) or 0),
                planned_on=s.planned_on,
                building_on=s.building_on,
                live_on=s.live_on,
                draining_on=s.draining_on,
                retired_on=s.retired_on,
            )
        )
    return out


def list_sites(session: Session, *, actor: Principal, page: PageRequest) -> Page[SiteOut]:
    actor.demand(Permission.FLEET_READ)
    stmt = sa.select(Site).order_by(Site.id).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(Site.id > page.after_id)
    sites = list(session.scalars(stmt))
    more = len(sites) > page.limit
    sites = sites[: page.limit]
    return Page(summarize(session, sites), encode_cursor(sites[-1].id) if more else None)


def get_site(session: Session, *, actor: Principal, name: str) -> SiteOut:
    actor.demand(Permission.FLEET_READ)
    return summarize(session, [site_by_name(session, name)])[0]


def create_site(session: Session, *, actor: Principal, fields: dict[str, Any]) -> SiteOut:
    actor.demand(Permission.FLEET_WRITE)
    if session.scalar(sa.select(Site.id).where(Site.name == fields["name"])) is not None:
        raise Conflict(
            f"a site named '{fields['name']}' already exists",
            errors=[{"loc": ["name"], "msg": "duplicate"}],
        )
    site = Site(**fields)
    session.add(site)
    session.flush()
    audit.record(session, actor, "site.create", "site", site.name, after=_view(site))
    return summarize(session, [site])[0]


def update_site(
    session: Session, *, actor: Principal, name: str, changes: dict[str, Any]
) -> SiteOut:
    actor.demand(Permission.FLEET_WRITE)
    site = site_by_name(session, name)
    for required in ("location", "power_mw", "pue", "state", "spare_pct"):
        if required in changes and changes[required] is None:
            raise InvalidInput(
                f"{required} cannot be null", errors=[{"loc": [required], "msg": "null"}]
            )
    if "state" in changes and not site_move_allowed(site.state, changes["state"]):
        raise Conflict(
            f"site '{name}' cannot go from {site.state.value} to {changes['state'].value}",
            errors=[{"loc": ["state"], "msg": "not allowed"}],
        )
    if "power_mw" in changes or "pue" in changes:
        check_power(
            name,
            changes.get("power_mw", site.power_mw),
            changes.get("pue", site.pue),
            it_power_kw(session, site.id),
        )
    before = _view(site)
    for key, value in changes.items():
        setattr(site, key, value)
    if _view(site) != before:
        generation.bump(session, [site.id])
        audit.record(session, actor, "site.update", "site", name, before=before, after=_view(site))
    session.flush()
    return summarize(session, [site])[0]


def delete_site(session: Session, *, actor: Principal, name: str) -> None:
    actor.demand(Permission.FLEET_WRITE)
    site = site_by_name(session, name)
    nodes = (
        session.scalar(sa.select(sa.func.count()).select_from(Node).where(Node.site_id == site.id))
        or 0
    )
    deliveries = (
        session.scalar(
            sa.select(sa.func.count()).select_from(Delivery).where(Delivery.site_id == site.id)
        )
        or 0
    )
    if nodes or deliveries:
        raise Conflict(
            f"site '{name}' has {nodes} node(s) and {deliveries} deliveries; retire it instead of deleting it"
        )
    audit.record(session, actor, "site.delete", "site", name, before=_view(site))
    session.delete(site)


def list_fabrics(session: Session, *, actor: Principal, site: str) -> list[FabricOut]:
    actor.demand(Permission.FLEET_READ)
    s = site_by_name(session, site)
    blocks = dict(
        session.execute(
            sa.select(Block.fabric_id, sa.func.count())
            .join(Fabric)
            .where(Fabric.site_id == s.id)
            .group_by(Block.fabric_id)
        ).all()
    )
    # One grouped scan of the site's nodes gives the totals, the accelerators and the states.
    nodes: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    states: dict[int, dict[str, int]] = defaultdict(dict)
    accelerators: dict[int, set[str]] = defaultdict(set)
    for f, acc, state, c, g in session.execute(
        sa.select(
            Node.fabric_id, Accelerator.name, Node.state, sa.func.count(), sa.func.sum(Node.gpus)
        )
        .join(Accelerator, Accelerator.id == Node.accelerator_id)
        .where(Node.site_id == s.id)
        .group_by(Node.fabric_id, Accelerator.name, Node.state)
    ):
        states[f][str(state)] = states[f].get(str(state), 0) + int(c)
        if state == NodeState.RETIRED:
            continue
        nodes[f][0] += int(c)
        nodes[f][1] += int(g or 0)
        accelerators[f].add(acc)
    return [
        FabricOut(
            name=f.name,
            site=site,
            blocks=int(blocks.get(f.id, 0)),
            nodes=nodes[f.id][0],
            gpus=nodes[f.id][1],
            accelerators=sorted(accelerators[f.id]),
            nodes_by_state=dict(sorted(states[f.id].items())),
        )
        for f in session.scalars(
            sa.select(Fabric).where(Fabric.site_id == s.id).order_by(Fabric.name)
        )
    ]


def list_blocks(session: Session, *, actor: Principal, site: str, fabric: str) -> list[BlockOut]:
    actor.demand(Permission.FLEET_READ)
    s = site_by_name(session, site)
    f = session.scalar(sa.select(Fabric).where(Fabric.site_id == s.id, Fabric.name == fabric))
    if f is None:
        raise NotFound(f"fabric '{fabric}' not found in site '{site}'")
    stats: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    states: dict[int, dict[str, int]] = defaultdict(dict)
    for b, state, c, g in session.execute(
        sa.select(Node.block_id, Node.state, sa.func.count(), sa.func.sum(Node.gpus))
        .where(Node.fabric_id == f.id)
        .group_by(Node.block_id, Node.state)
    ):
        states[b][str(state)] = int(c)
        if state == NodeState.RETIRED:
            continue
        stats[b][0] += int(c)
        stats[b][1] += int(g or 0)
        if state == NodeState.AVAILABLE:
            stats[b][2] += int(g or 0)
    return [
        BlockOut(
            name=b.name,
            fabric=fabric,
            site=site,
            nodes=stats[b.id][0],
            gpus=stats[b.id][1],
            gpus_available=stats[b.id][2],
            nodes_by_state=dict(sorted(states[b.id].items())),
        )
        for b in session.scalars(
            sa.select(Block).where(Block.fabric_id == f.id).order_by(Block.name)
        )
    ]
