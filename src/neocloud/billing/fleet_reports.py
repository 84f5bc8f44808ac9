"""The fleet reports: GPU utilization (from the hourly rollups) and internal vs external
capacity (from the capacity calendar's claims), each against the GPUs installed.

**Total GPUs** of a site are its nodes in the inventory that are not retired (failed and
in-repair nodes count: they are capacity the operator owns and is not selling), plus the
scheduled deliveries from the day they are expected, over the hours the site is live. The
inventory is the fleet as it stands: a node's arrival date is not kept, so a range before
a delivery landed counts the delivered nodes too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing import report_periods as periods
from neocloud.billing.report_schemas import (
    CapacitySplitReport,
    Chart,
    ChartSeries,
    SplitPoint,
    SplitSite,
    UtilizationPoint,
    UtilizationReport,
    UtilizationSite,
)
from neocloud.capacity.loading import live_window
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import Hour, at_hour, hour_of_date
from neocloud.fleet.models import Delivery, DeliveryState, Node, NodeState, Site
from neocloud.metering.models import UsageRollup

if TYPE_CHECKING:
    from neocloud.billing.reports import Window

SHARE = Decimal("0.0001")
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Inventory:
    id: int
    name: str
    gpus: int
    live: tuple[Hour, Hour]
    arriving: tuple[tuple[Hour, int], ...] = ()
    """Scheduled deliveries: (the hour they are expected, GPUs)."""

    def gpu_hours(self, a: Hour, b: Hour) -> int:
        """GPU-hours installed in [a, b) while the site is live (deliveries from the day
        they are expected)."""
        lo, hi = max(a, self.live[0]), min(b, self.live[1])
        if hi <= lo:
            return 0
        arrived = sum(g * (hi - max(lo, at)) for at, g in self.arriving if at < hi)
        return self.gpus * (hi - lo) + arrived


def inventory(session: Session) -> list[Inventory]:
    """Every site with its installed GPUs, its scheduled deliveries and its live window."""
    gpus = dict(
        session.execute(
            sa.select(Node.site_id, sa.func.sum(Node.gpus))
            .where(Node.state != NodeState.RETIRED)
            .group_by(Node.site_id)
        ).all()
    )
    arriving: dict[int, list[tuple[Hour, int]]] = defaultdict(list)
    d = Delivery
    for sid, on, count, per in session.execute(
        sa.select(d.site_id, d.expected_on, d.nodes, d.gpus_per_node).where(
            d.state == DeliveryState.SCHEDULED
        )
    ):
        arriving[sid].append((hour_of_date(on), int(count) * int(per)))
    rows = session.execute(
        sa.select(Site.id, Site.name, Site.state, Site.live_on, Site.retired_on).order_by(Site.name)
    ).all()
    return [
        Inventory(
            r.id,
            r.name,
            int(gpus.get(r.id) or 0),
            live_window(r.state, r.live_on, r.retired_on),
            tuple(sorted(arriving.get(r.id, []))),
        )
        for r in rows
    ]


def _avg(gpu_hours: int | Decimal, hours: int) -> Decimal:
    return (Decimal(gpu_hours) / hours).quantize(TENTH) if hours else Decimal(0)


def _share(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(SHARE) if whole else None


def _point(w: Window, i: int, total: int, allocated_s: int, used_s: int) -> UtilizationPoint:
    a, b = w.periods[i]
    return UtilizationPoint(
        period=periods.label(w.step, a),
        start=at_hour(a),
        end=at_hour(b),
        total_gpus=_avg(total, b - a),
        allocated_gpus=_avg(Decimal(allocated_s) / 3600, b - a),
        used_gpus=_avg(Decimal(used_s) / 3600, b - a),
        allocated_share=_share(allocated_s, total * 3600),
        used_share=_share(used_s, total * 3600),
    )


def utilization(session: Session, w: Window) -> UtilizationReport:
    """Allocated / total and used / total GPUs per site and period, and over the fleet."""
    sites = inventory(session)
    r = UsageRollup
    day = (r.hour // 24).label("day")
    sums: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for sid, d, allocated, used in session.execute(
        sa.select(
            r.site_id,
            day,
            sa.func.sum(r.allocated_gpu_seconds),
            sa.func.sum(r.measured_gpu_seconds),
        )
        .where(r.hour >= w.lo, r.hour < w.hi)
        .group_by(r.site_id, day)
    ):
        sums[sid][int(d)] = (int(allocated or 0), int(used or 0))
    starts = [a for a, _ in w.periods]
    fleet = [[0, 0, 0] for _ in w.periods]
    out_sites: list[UtilizationSite] = []
    for site in sites:
        cells = [[site.gpu_hours(a, b), 0, 0] for a, b in w.periods]
        for d, (allocated, used) in sums.get(site.id, {}).items():
            i = _index(starts, d * 24)
            cells[i][1] += allocated
            cells[i][2] += used
        if not site.gpus and not any(c[1] or c[2] for c in cells):
            continue
        for f, c in zip(fleet, cells, strict=True):
            for k in range(3):
                f[k] += c[k]
        whole = [sum(c[k] for c in cells) for k in range(3)]
        out_sites.append(
            UtilizationSite(
                site=site.name,
                gpus=site.gpus,
                allocated_share=_share(whole[1], whole[0] * 3600),
                used_share=_share(whole[2], whole[0] * 3600),
                periods=[_point(w, i, *c) for i, c in enumerate(cells)],
            )
        )
    rows = [_point(w, i, *c) for i, c in enumerate(fleet)]
    whole = [sum(f[k] for f in fleet) for k in range(3)]
    return UtilizationReport(
        start=at_hour(w.lo),
        end=at_hour(w.hi),
        step=w.step,
        gpus=sum(s.gpus for s in sites),
        allocated_share=_share(whole[1], whole[0] * 3600),
        used_share=_share(whole[2], whole[0] * 3600),
        periods=rows,
        sites=out_sites,
        chart=Chart(
            title="Fleet utilization: allocated and used / total GPUs",
            kind="line",
            unit="share",
            labels=[p.period for p in rows],
            series=[
                ChartSeries(
                    name="allocated", values=[p.allocated_share or Decimal(0) for p in rows]
                ),
                ChartSeries(name="used", values=[p.used_share or Decimal(0) for p in rows]),
            ],
        ),
    )


def _index(starts: list[Hour], hour: Hour) -> int:
    """The period that holds `hour` (the rollups were read for the report's range only)."""
    lo, hi = 0, len(starts)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if starts[mid] <= hour:
            lo = mid
        else:
            hi = mid
    return lo


def _split(w: Window, i: int, supply: int, internal: int, external: int) -> SplitPoint:
    a, b = w.periods[i]
    hours = b - a
    return SplitPoint(
        period=periods.label(w.step, a),
        start=at_hour(a),
        end=at_hour(b),
        supply_gpus=_avg(supply, hours),
        internal_gpus=_avg(internal, hours),
        external_gpus=_avg(external, hours),
        free_gpus=_avg(supply - internal - external, hours),
        internal_share=_share(internal, internal + external),
    )


def capacity_split(session: Session, w: Window) -> CapacitySplitReport:
    """GPUs held by internal and by customer contracts per site and period (averages)."""
    sites = inventory(session)
    k = CapacityClaim
    held: dict[int, list[list[int]]] = {s.id: [[0, 0] for _ in w.periods] for s in sites}
    starts = [a for a, _ in w.periods]
    for sid, internal, a, b, gpus in session.execute(
        sa.select(k.site_id, k.internal, k.start_h, k.end_h, k.gpus).where(
            k.start_h < w.hi, k.end_h > w.lo
        )
    ):
        cells = held.get(sid)
        if cells is None:
            continue
        i = _index(starts, max(a, w.lo))
        while i < len(w.periods) and w.periods[i][0] < b:
            x, y = w.periods[i]
            cells[i][0 if internal else 1] += gpus * (min(y, b) - max(x, a))
            i += 1
    fleet = [[0, 0, 0] for _ in w.periods]
    out_sites = []
    for site in sites:
        cells = held[site.id]
        rows = []
        for i, (a, b) in enumerate(w.periods):
            supply = site.gpu_hours(a, b)
            fleet[i][0] += supply
            fleet[i][1] += cells[i][0]
            fleet[i][2] += cells[i][1]
            rows.append(_split(w, i, supply, cells[i][0], cells[i][1]))
        if site.gpus or any(c[0] or c[1] for c in cells):
            out_sites.append(SplitSite(site=site.name, periods=rows))
    points = [_split(w, i, *f) for i, f in enumerate(fleet)]
    return CapacitySplitReport(
        start=at_hour(w.lo),
        end=at_hour(w.hi),
        step=w.step,
        periods=points,
        sites=out_sites,
        chart=Chart(
            title="GPUs contracted: internal vs external (average per period)",
            kind="stacked",
            unit="GPUs",
            labels=[p.period for p in points],
            series=[
                ChartSeries(name="internal", values=[p.internal_gpus for p in points]),
                ChartSeries(name="external", values=[p.external_gpus for p in points]),
                ChartSeries(name="free", values=[max(Decimal(0), p.free_gpus) for p in points]),
            ],
        ),
    )
