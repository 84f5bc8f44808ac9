"""Active power: the MW that revenue per MW divides by.

A site's power is **active** in an hour when the site is live then (from its live date to
its retirement, as the capacity calendar counts it) and some customer contract holds
capacity there (a claim of a reserved or dedicated-site contract) or used GPUs there (an
on-demand or spot contract's usage in the hourly rollups). Active MW-hours are the site's
facility power (`power_mw`, the envelope it is built and contracted for) times those hours;
their mean over the range is the active MW. It stands for the "active power" a listed
neocloud reports: power that is energized and sold, not power still being built or left
to the operator's own work. `installed_mw` (the nodes' power x PUE, at most the site's
power) is reported beside it for a site that is only partly built out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing.obligations import Booked
from neocloud.capacity.loading import live_window
from neocloud.capacity.timeline import Hour
from neocloud.fleet.models import Node, NodeState, Site
from neocloud.metering.models import UsageRollup

Interval = tuple[Hour, Hour]


@dataclass(frozen=True)
class SitePower:
    site: str
    power_mw: Decimal
    installed_mw: Decimal
    active_hours: int
    """Hours of the range (before as_of) during which the site's power was active."""


@dataclass(frozen=True)
class ActivePower:
    sites: list[SitePower]
    mw_hours: list[Decimal]
    """Active MW-hours in each period (before as_of)."""


def merge(intervals: list[Interval]) -> list[Interval]:
    """Disjoint, sorted intervals covering the same hours."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def covered(merged: list[Interval], a: Hour, b: Hour) -> int:
    """Hours of [a, b) inside `merged`."""
    return sum(max(0, min(y, b) - max(x, a)) for x, y in merged)


def installed_mw(session: Session) -> dict[int, Decimal]:
    """Facility MW the nodes in the inventory draw at peak (power x PUE), per site id."""
    rows = session.execute(
        sa.select(Node.site_id, sa.func.sum(Node.power_kw))
        .where(Node.state != NodeState.RETIRED)
        .group_by(Node.site_id)
    )
    return {sid: Decimal(kw or 0) / 1000 for sid, kw in rows}


def active_power(
    session: Session, customers: list[Booked], spans: list[Interval], as_of: Hour
) -> ActivePower:
    """Active MW-hours per period, and per site over the range (see the module)."""
    lo, hi = spans[0][0], min(spans[-1][1], as_of)
    held: dict[str, list[Interval]] = defaultdict(list)
    for c in customers:
        for s in c.claims:
            if s.end > lo and s.start < hi:
                held[s.site].append((s.start, s.end))
    sites = session.execute(
        sa.select(
            Site.id, Site.name, Site.power_mw, Site.pue, Site.state, Site.live_on, Site.retired_on
        )
    ).all()
    names = {row.id: row.name for row in sites}
    usage_ids = [c.id for c in customers if not c.claims]
    if usage_ids and hi > lo:
        r = UsageRollup
        for sid, hour in session.execute(
            sa.select(r.site_id, r.hour)
            .where(
                r.contract_id.in_(usage_ids),
                r.hour >= lo,
                r.hour < hi,
                r.measured_gpu_seconds > 0,
            )
            .group_by(r.site_id, r.hour)
        ):
            held[names.get(sid, str(sid))].append((hour, hour + 1))
    nodes = installed_mw(session)
    mw_hours = [Decimal(0)] * len(spans)
    out: list[SitePower] = []
    for row in sorted(sites, key=lambda s: s.name):
        if row.name not in held:
            continue
        live = live_window(row.state, row.live_on, row.retired_on)
        merged = [
            (max(a, live[0]), min(b, live[1]))
            for a, b in merge(held[row.name])
            if min(b, live[1]) > max(a, live[0])
        ]
        power = Decimal(row.power_mw)
        active = 0
        for i, (a, b) in enumerate(spans):
            hours = covered(merged, a, min(b, as_of))
            mw_hours[i] += power * hours
            active += hours
        if active:
            built = min(power, nodes.get(row.id, Decimal(0)) * Decimal(row.pue))
            out.append(SitePower(row.name, power, built, active))
    return ActivePower(out, mw_hours)
