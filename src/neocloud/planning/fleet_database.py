"""The live fleet as a scenario's sites: nodes in service and scheduled deliveries per site
and accelerator, and the capacity customers already hold (the capacity calendar's claims,
read by `capacity.loading`), which the plan cannot sell again."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Claim, claims_steps
from neocloud.capacity.loading import IN_SERVICE, load_commitments
from neocloud.capacity.timeline import hour_of_date
from neocloud.fleet.models import Accelerator, Delivery, DeliveryState, Node, Site, SiteState
from neocloud.planning.catalog import default_block_gpus
from neocloud.planning.fleet_source import Fleet, FleetDelivery, FleetPool, FleetSite, quarter_of


def quarter_start_hour(quarter: int) -> int:
    return hour_of_date(date(quarter // 4, 3 * (quarter % 4) + 1, 1))


def from_database(session: Session, start: int, horizon: int) -> Fleet:
    """Sites (not retired) with their GPUs in service now, deliveries still scheduled, and
    per quarter the GPUs customers (and, apart, internal contracts) already hold."""
    names = dict(session.execute(sa.select(Accelerator.id, Accelerator.name)).all())
    fleet = Fleet()
    sites: dict[int, FleetSite] = {}
    for sid, name, mw, pue, state, live_on in session.execute(
        sa.select(Site.id, Site.name, Site.power_mw, Site.pue, Site.state, Site.live_on)
        .where(Site.state != SiteState.RETIRED)
        .order_by(Site.name)
    ):
        later = state in (SiteState.PLANNED, SiteState.BUILDING)
        live = quarter_of(live_on) if later and live_on is not None else None
        sites[sid] = FleetSite(name, float(mw), float(pue), live)
    for sid, acc, gpus_node, gpus, kw in session.execute(
        sa.select(
            Node.site_id,
            Node.accelerator_id,
            Node.gpus,
            sa.func.sum(Node.gpus),
            sa.func.sum(Node.power_kw),
        )
        .where(Node.state.in_(IN_SERVICE))
        .group_by(Node.site_id, Node.accelerator_id, Node.gpus)
    ):
        if sid not in sites:
            continue
        acc_name = names[acc]
        pool = sites[sid].pools.setdefault(acc_name, FleetPool(acc_name))
        pool.gpus += int(gpus)
        pool.it_kw += float(kw)
        pool.block_sizes[default_block_gpus(acc_name, int(gpus_node))] += int(gpus)
    for name, sid, acc, nodes, gpn, kw_node, expected in session.execute(
        sa.select(
            Delivery.name,
            Delivery.site_id,
            Delivery.accelerator_id,
            Delivery.nodes,
            Delivery.gpus_per_node,
            Delivery.power_kw_per_node,
            Delivery.expected_on,
        ).where(Delivery.state == DeliveryState.SCHEDULED)
    ):
        if sid not in sites:
            continue
        acc_name = names[acc]
        known = sites[sid].pools.get(acc_name)
        fleet.deliveries.append(
            FleetDelivery(
                name,
                sites[sid].name,
                acc_name,
                int(nodes) * int(gpn),
                quarter_of(expected),
                (known.block_gpus if known else 0) or default_block_gpus(acc_name, int(gpn)),
                float(kw_node) / int(gpn),
            )
        )
    claims, _floors, _ = load_commitments(session, list(sites))
    bounds = [quarter_start_hour(start + q) for q in range(horizon + 1)]
    for sid, site_claims in claims.items():
        by_pool: dict[tuple[str, bool], list[Claim]] = defaultdict(list)
        for c in site_claims:
            by_pool[(names[c.pool[1]], c.internal)].append(c)
        for (acc_name, internal), held in by_pool.items():
            steps = claims_steps(held)
            per_quarter = [steps.max_over(bounds[q], bounds[q + 1]) for q in range(horizon)]
            pool = sites[sid].pools.setdefault(acc_name, FleetPool(acc_name))
            if internal:
                pool.committed_internal = per_quarter
            else:
                pool.committed = per_quarter
    fleet.sites = list(sites.values())
    return fleet
