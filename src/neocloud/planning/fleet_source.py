"""Sites and deliveries for a scenario from a fleet file (docs/fleet-file.md) or from the
live database, summed per site and accelerator: a plan needs GPUs, power and the unit sold,
not node names, so a 300,000-GPU file is summed from its counts without expanding them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from neocloud.fleet.models import SiteState
from neocloud.fleet.spec import FleetFile
from neocloud.planning.catalog import default_block_gpus


@dataclass
class FleetPool:
    accelerator: str
    gpus: int = 0
    it_kw: float = 0.0
    block_sizes: Counter[int] = field(default_factory=Counter)
    committed: list[int] = field(default_factory=list)
    committed_internal: list[int] = field(default_factory=list)
    kw_given: float | None = None

    @property
    def kw_per_gpu(self) -> float:
        if self.kw_given is not None:
            return self.kw_given
        return self.it_kw / self.gpus if self.gpus else 0.0

    @property
    def block_gpus(self) -> int:
        return self.block_sizes.most_common(1)[0][0] if self.block_sizes else 0


@dataclass
class FleetSite:
    name: str
    power_mw: float
    pue: float
    live_quarter: int | None = None
    """Absolute quarter the site goes live, if that is still ahead."""
    pools: dict[str, FleetPool] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetDelivery:
    name: str
    site: str
    accelerator: str
    gpus: int
    quarter: int
    """Absolute quarter it is due."""
    block_gpus: int
    kw_per_gpu: float


@dataclass
class Fleet:
    sites: list[FleetSite] = field(default_factory=list)
    deliveries: list[FleetDelivery] = field(default_factory=list)


def quarter_of(day: date) -> int:
    return day.year * 4 + (day.month - 1) // 3


def from_fleet_file(spec: FleetFile) -> Fleet:
    """Each site's GPUs per accelerator with IT kW per GPU and the unit sold (an NVLink
    domain for trays of rack-scale systems, else a node), and the file's deliveries."""
    fleet = Fleet()
    for site in spec.sites:
        if site.state is SiteState.RETIRED:
            continue
        live = site.dates.live
        out = FleetSite(
            site.name,
            float(site.power_mw),
            float(site.pue),
            quarter_of(live)
            if live and site.state in (SiteState.PLANNED, SiteState.BUILDING)
            else None,
        )
        for fabric in site.fabrics:
            for block in fabric.blocks:
                in_block: Counter[str] = Counter()
                per_node: dict[str, int] = {}
                for group in block.nodes:
                    pool = out.pools.setdefault(group.accelerator, FleetPool(group.accelerator))
                    n = fabric.count * block.count * group.count
                    pool.gpus += n * group.gpus
                    pool.it_kw += n * float(group.power_kw)
                    in_block[group.accelerator] += group.count * group.gpus
                    per_node[group.accelerator] = group.gpus
                for acc, gpus in in_block.items():
                    rack_scale = acc.upper().startswith("GB") or per_node[acc] < 8
                    unit = gpus if rack_scale else per_node[acc]
                    out.pools[acc].block_sizes[unit] += fabric.count * block.count
        fleet.sites.append(out)
    by_name = {s.name: s for s in fleet.sites}
    for d in spec.deliveries:
        at = by_name.get(d.site)
        known = at.pools.get(d.accelerator) if at else None
        unit = known.block_gpus if known else 0
        fleet.deliveries.append(
            FleetDelivery(
                d.name,
                d.site,
                d.accelerator,
                d.nodes * d.gpus_per_node,
                quarter_of(d.expected_on),
                unit or default_block_gpus(d.accelerator, d.gpus_per_node),
                float(d.power_kw_per_node) / d.gpus_per_node,
            )
        )
    return fleet
