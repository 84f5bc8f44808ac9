"""From a checked scenario file (`spec`) to frozen `data`: resolve the fleet, quarters,
defaults and every reference, failing with the file and line of the offending field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from neocloud.core.errors import InvalidInput
from neocloud.fleet import apply as fleet_apply
from neocloud.planning import catalog
from neocloud.planning.data import (
    Costs,
    Deal,
    Decisions,
    Delivery,
    Demand,
    Pool,
    Scenario,
    Settings,
    Site,
)
from neocloud.planning.fleet_source import Fleet, FleetPool, FleetSite, from_fleet_file
from neocloud.planning.quarters import label, parse_quarter
from neocloud.planning.spec import ByQuarter, DealSpec, ScenarioSpec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from neocloud.planning.scenario import _Origins

PathT = tuple[str | int, ...]
NO_DELAY = (1.0,)


class _Builder:
    def __init__(self, spec: ScenarioSpec, data: dict[str, Any], origins: _Origins) -> None:
        self.spec = spec
        self.data = data
        self.origins = origins
        self.start = parse_quarter(spec.start)
        self.horizon = spec.horizon
        self.lines: dict[str, tuple[str, int]] = {}

    def fail(self, path: PathT, message: str) -> Exception:
        return self.origins.error(path, message)

    def note(self, path: PathT, key: str) -> None:
        source, line = self.origins.locate(path)
        if line:
            self.lines[key] = (source, line)

    def index(self, text: str, path: PathT, *, allow_before: bool = False) -> int:
        q = parse_quarter(text) - self.start
        if q >= self.horizon:
            raise self.fail(
                path,
                f"{text} is after the horizon ({label(self.start)}-{label(self.start + self.horizon - 1)})",
            )
        if q < 0 and not allow_before:
            raise self.fail(path, f"{text} is before the scenario's start ({label(self.start)})")
        return q

    def by_quarter(self, value: ByQuarter, path: PathT) -> tuple[int, ...]:
        """A constant, or a map of quarters to values held until the next quarter given."""
        if isinstance(value, int):
            if value < 0:
                raise self.fail(path, "must be 0 or more")
            return (value,) * self.horizon
        out = [0] * self.horizon
        steps = sorted((self.index(k, (*path, k), allow_before=True), v) for k, v in value.items())
        for i, (q, v) in enumerate(steps):
            until = steps[i + 1][0] if i + 1 < len(steps) else self.horizon
            for j in range(max(q, 0), until):
                out[j] = v
        return tuple(out)

    # --- the fleet --------------------------------------------------------------------

    def fleet(self, session: Session | None) -> Fleet:
        src = self.spec.fleet
        if src is None:
            return Fleet()
        if src.file is not None:
            fleet = self._fleet_file(src.file)
        else:
            if session is None:
                raise self.fail(
                    ("fleet", "from"),
                    "the live fleet needs the database: run the plan through the API "
                    "(POST /v1/plans) or give a fleet file",
                )
            from neocloud.planning.fleet_database import from_database

            fleet = from_database(session, self.start, self.horizon)
        if src.sites is not None:
            known = {s.name for s in fleet.sites}
            for i, name in enumerate(src.sites):
                if name not in known:
                    raise self.fail(("fleet", "sites", i), f"the fleet has no site '{name}'")
            keep = set(src.sites)
            fleet.sites = [s for s in fleet.sites if s.name in keep]
            fleet.deliveries = [d for d in fleet.deliveries if d.site in keep]
        return fleet

    def _fleet_file(self, name: str) -> Fleet:
        from neocloud.planning.scenario import ScenarioError, _read_text

        source, _ = self.origins.locate(("fleet",))
        text, path = _read_text(name, source, self.origins, ("fleet", "file"))
        try:
            spec, _ = fleet_apply.parse(text)
        except InvalidInput as exc:
            import re

            found = re.search(r"line (\d+)", exc.detail)
            raise ScenarioError(
                exc.detail, source=str(path), line=int(found.group(1)) if found else None
            ) from exc
        return from_fleet_file(spec)

    def sites(self, fleet: Fleet) -> tuple[list[Site], list[Delivery]]:
        costs = self.spec.costs
        prices = costs.power_usd_per_mwh

        def power_price(site: str, own: float | None) -> float:
            if own is not None:
                return own
            if isinstance(prices, Mapping):
                return float(prices.get(site, prices.get("default", 70.0)))
            return float(prices)

        fleet_sites: list[FleetSite] = list(fleet.sites)
        pools_of: dict[str, dict[str, FleetPool]] = {s.name: s.pools for s in fleet_sites}
        raw: dict[str, tuple[float, float, float]] = {
            s.name: (s.power_mw, s.pue, power_price(s.name, None)) for s in fleet_sites
        }
        deliveries: list[tuple[str, str, str, int, int, int, float, tuple[float, ...], PathT]] = []
        for s in fleet_sites:
            if s.live_quarter is not None and s.live_quarter > self.start:
                # Hardware of a site still being built arrives when the site goes live.
                for acc, pool in s.pools.items():
                    if pool.gpus:
                        deliveries.append(
                            (
                                f"{s.name}-live-{acc}",
                                s.name,
                                acc,
                                pool.gpus,
                                s.live_quarter - self.start,
                                pool.block_gpus,
                                pool.kw_per_gpu,
                                NO_DELAY,
                                ("fleet",),
                            )
                        )
                        pool.gpus = 0
        for i, site in enumerate(self.spec.sites):
            path: PathT = ("sites", i)
            if site.name in raw:
                raise self.fail((*path, "name"), f"site '{site.name}' is given twice")
            raw[site.name] = (
                site.power_mw,
                site.pue,
                power_price(site.name, site.power_usd_per_mwh),
            )
            pools: dict[str, FleetPool] = {}
            for j, p in enumerate(site.accelerators):
                if p.accelerator in pools:
                    raise self.fail(
                        (*path, "accelerators", j, "accelerator"),
                        f"{p.accelerator} is listed twice at site '{site.name}'",
                    )
                chip = catalog.chip(p.accelerator)
                pool = FleetPool(p.accelerator, p.gpus, kw_given=p.kw_per_gpu or chip.kw_per_gpu)
                pool.block_sizes[p.block_gpus or chip.block_gpus] += 1
                pools[p.accelerator] = pool
            pools_of[site.name] = pools
            self.note(path, f"sites.{site.name}")

        shapes: dict[tuple[str, str], tuple[int, float]] = {}
        for name, pools in pools_of.items():
            for acc, pool in pools.items():
                kw = pool.kw_per_gpu or catalog.chip(acc).kw_per_gpu
                shapes[(name, acc)] = (pool.block_gpus or catalog.chip(acc).block_gpus, kw)

        default_delay = self._delay(self.spec.delivery_delay)
        fleet_deliveries = {d.name: d for d in fleet.deliveries}
        overrides: dict[str, int] = {}
        for i, d in enumerate(self.spec.deliveries):
            path = ("deliveries", i)
            delay = self._delay(d.delay) if d.delay is not None else default_delay
            if d.name in fleet_deliveries:
                if any(
                    v is not None
                    for v in (d.site, d.accelerator, d.gpus, d.block_gpus, d.kw_per_gpu)
                ):
                    raise self.fail(
                        path,
                        f"'{d.name}' is a delivery of the fleet: give only its delay (and quarter)",
                    )
                overrides[d.name] = i
                continue
            if d.name in overrides or any(x[0] == d.name for x in deliveries):
                raise self.fail((*path, "name"), f"delivery '{d.name}' is given twice")
            for key in ("site", "accelerator", "gpus", "quarter"):
                if getattr(d, key) is None:
                    raise self.fail((*path, key), "required field is missing")
            assert d.site and d.accelerator and d.gpus and d.quarter
            if d.site not in raw:
                raise self.fail((*path, "site"), self._unknown_site(d.site, raw))
            block, kw = shapes.get((d.site, d.accelerator), (0, 0.0))
            chip = catalog.chip(d.accelerator)
            q = self.index(d.quarter, (*path, "quarter"), allow_before=True)
            deliveries.append(
                (
                    d.name,
                    d.site,
                    d.accelerator,
                    d.gpus,
                    q,
                    d.block_gpus or block or chip.block_gpus,
                    d.kw_per_gpu or kw or chip.kw_per_gpu,
                    delay,
                    path,
                )
            )
        for fd in fleet.deliveries:
            i_over = overrides.get(fd.name)
            spec_d = self.spec.deliveries[i_over] if i_over is not None else None
            delay = (
                self._delay(spec_d.delay)
                if spec_d is not None and spec_d.delay is not None
                else default_delay
            )
            q = fd.quarter - self.start
            if spec_d is not None and spec_d.quarter is not None:
                q = self.index(
                    spec_d.quarter, ("deliveries", i_over or 0, "quarter"), allow_before=True
                )
            if fd.site not in raw:
                continue
            deliveries.append(
                (
                    fd.name,
                    fd.site,
                    fd.accelerator,
                    fd.gpus,
                    q,
                    fd.block_gpus,
                    fd.kw_per_gpu,
                    delay,
                    ("fleet",),
                )
            )

        # Every (site, accelerator) that has GPUs or gets a delivery is a pool.
        for name, site_acc, acc, _g, _q, block, kw, _d, _p in deliveries:
            _ = name
            pools = pools_of.setdefault(site_acc, {})
            if acc not in pools:
                pool = FleetPool(acc, 0, kw_given=kw)
                pool.block_sizes[block] += 1
                pools[acc] = pool
                shapes[(site_acc, acc)] = (block, kw)
        sites: list[Site] = []
        for name, (mw, pue, price) in raw.items():
            pools_out = []
            for acc, pool in sorted(pools_of.get(name, {}).items()):
                block, kw = shapes[(name, acc)]
                pools_out.append(
                    Pool(
                        acc,
                        pool.gpus,
                        block,
                        round(kw, 6),
                        tuple(pool.committed),
                        tuple(pool.committed_internal),
                    )
                )
            sites.append(Site(name, mw, pue, price, tuple(pools_out)))
        out_deliveries = [Delivery(n, s, a, g, q, d) for n, s, a, g, q, _b, _k, d, _p in deliveries]
        return sites, out_deliveries

    def _delay(self, value: Mapping[int, float] | None) -> tuple[float, ...]:
        if not value:
            return NO_DELAY
        out = [0.0] * (max(value) + 1)
        for k, p in value.items():
            out[k] = float(p)
        return tuple(out)

    @staticmethod
    def _unknown_site(name: str, known: Mapping[str, object]) -> str:
        return f"no site '{name}' (sites: {', '.join(sorted(known)) or 'none'})"

    # --- deals, demand, decisions -------------------------------------------------------

    def deals(self, sites: list[Site]) -> list[Deal]:
        by_name = {s.name: s for s in sites}
        accelerators = {p.accelerator for s in sites for p in s.pools}
        out: list[Deal] = []
        for i, d in enumerate(self.spec.deals):
            path: PathT = ("deals", i)
            if any(x.name == d.name for x in out):
                raise self.fail((*path, "name"), f"deal '{d.name}' is given twice")
            if d.site is not None and d.site not in by_name:
                raise self.fail((*path, "site"), self._unknown_site(d.site, by_name))
            if d.accelerator is not None:
                at = [by_name[d.site]] if d.site else sites
                if not any(s.pool(d.accelerator) for s in at):
                    where = f"site '{d.site}'" if d.site else "any site"
                    raise self.fail(
                        (*path, "accelerator"),
                        f"no {d.accelerator} at {where} (accelerators: {', '.join(sorted(accelerators)) or 'none'})",
                    )
            starts = [d.start] if isinstance(d.start, str) else d.start
            first = self.index(starts[0], (*path, "start"))
            last = self.index(starts[-1], (*path, "start"))
            price = d.price_per_gpu_hour
            if price is None and d.price_per_mw_month is None and d.accelerator:
                price = catalog.reserved_price(d.accelerator, d.term_quarters)
            out.append(self._deal(d, first, last, price, path))
        return out

    def _deal(self, d: DealSpec, first: int, last: int, price: float | None, path: PathT) -> Deal:
        self.note(path, f"deals.{d.name}")
        _, line = self.origins.locate(path)
        return Deal(
            d.name,
            d.customer,
            d.accelerator,
            d.gpus,
            d.mw,
            d.whole_site,
            d.site,
            first,
            last,
            d.term_quarters,
            price,
            d.price_per_mw_month,
            d.probability,
            line,
        )

    def demand(self, sites: list[Site]) -> list[Demand]:
        by_name = {s.name: s for s in sites}
        internal = self.spec.internal
        out: list[Demand] = []
        for i, d in enumerate(internal.demand):
            path: PathT = ("internal", "demand", i)
            if any(x.name == d.name for x in out):
                raise self.fail((*path, "name"), f"internal demand '{d.name}' is given twice")
            for j, s in enumerate(d.sites or []):
                if s not in by_name:
                    raise self.fail((*path, "sites", j), self._unknown_site(s, by_name))
            at = [by_name[s] for s in d.sites] if d.sites else sites
            if not any(s.pool(d.accelerator) for s in at):
                raise self.fail(
                    (*path, "accelerator"), f"no {d.accelerator} at the sites it may use"
                )
            cost = d.shortfall_cost_per_gpu_hour
            if cost is None:
                cost = internal.shortfall_cost_per_gpu_hour
            if cost is None:
                cost = catalog.on_demand_price(d.accelerator)
            self.note(path, f"internal.demand.{d.name}")
            out.append(
                Demand(
                    d.name,
                    d.accelerator,
                    self.by_quarter(d.gpus, (*path, "gpus")),
                    self.by_quarter(d.floor, (*path, "floor")),
                    tuple(d.sites or ()),
                    float(cost),
                )
            )
        return out

    def costs(self, sites: list[Site]) -> Costs:
        c = self.spec.costs
        accelerators = sorted({p.accelerator for s in sites for p in s.pools})
        dep: dict[str, float] = {}
        for acc in accelerators:
            given = c.depreciation_per_gpu_quarter
            value = given.get(acc) if isinstance(given, Mapping) else given
            dep[acc] = (
                float(value) if value is not None else catalog.depreciation_per_gpu_quarter(acc)
            )
        if isinstance(c.depreciation_per_gpu_quarter, Mapping):
            for acc in c.depreciation_per_gpu_quarter:
                if acc not in dep:
                    raise self.fail(
                        ("costs", "depreciation_per_gpu_quarter", acc), f"no site has {acc}"
                    )
        if isinstance(c.power_usd_per_mwh, Mapping):
            known = {s.name for s in sites} | {"default"}
            for name in c.power_usd_per_mwh:
                if name not in known:
                    raise self.fail(("costs", "power_usd_per_mwh", name), f"no site '{name}'")
        return Costs(c.operations_per_gpu_hour, dep)

    def decisions(self, deals: list[Deal], sites: list[Site]) -> Decisions:
        spec = self.spec.decisions
        if spec is None:
            return Decisions()
        by_name = {d.name: d for d in deals}
        site_names = {s.name for s in sites}
        seen: dict[str, str] = {}
        for key in ("accept", "reject"):
            for i, name in enumerate(getattr(spec, key)):
                path: PathT = ("decisions", key, i)
                if name not in by_name:
                    raise self.fail(path, f"no deal '{name}'")
                if name in seen:
                    raise self.fail(path, f"'{name}' is already under decisions.{seen[name]}")
                seen[name] = key
                self.note(path, f"decisions.{key}.{name}")
        for name, site in spec.place.items():
            path = ("decisions", "place", name)
            if name not in by_name:
                raise self.fail(path, f"no deal '{name}'")
            if site not in site_names:
                raise self.fail(path, self._unknown_site(site, dict.fromkeys(site_names)))
            deal = by_name[name]
            if deal.site is not None and deal.site != site:
                raise self.fail(path, f"deal '{name}' asks for site '{deal.site}'")
            if seen.get(name) == "reject":
                raise self.fail(path, f"deal '{name}' is rejected")
            self.note(path, f"decisions.place.{name}")
        starts: dict[str, int] = {}
        for name, text in spec.start.items():
            path = ("decisions", "start", name)
            if name not in by_name:
                raise self.fail(path, f"no deal '{name}'")
            q = self.index(text, path)
            deal = by_name[name]
            if q not in deal.starts:
                raise self.fail(
                    path,
                    f"{text} is outside the deal's start window "
                    f"({label(self.start + deal.start_earliest)}-{label(self.start + deal.start_latest)})",
                )
            starts[name] = q
            self.note(path, f"decisions.start.{name}")
        return Decisions(
            tuple(spec.accept), tuple(spec.reject), dict(spec.place), starts, spec.others
        )


def build(
    spec: ScenarioSpec, data: dict[str, Any], origins: _Origins, *, session: Session | None
) -> Scenario:
    b = _Builder(spec, data, origins)
    fleet = b.fleet(session)
    sites, deliveries = b.sites(fleet)
    if not sites:
        raise b.fail(("sites",), "the scenario has no sites: give sites or a fleet")
    deals = b.deals(sites)
    demand = b.demand(sites)
    costs = b.costs(sites)
    decisions = b.decisions(deals, sites)
    o = spec.optimizer
    source = origins.default[0]
    fleet_from = (
        "inline"
        if spec.fleet is None
        else ("database" if spec.fleet.from_ else f"file:{spec.fleet.file}")
    )
    return Scenario(
        name=spec.name or source.rsplit("/", 1)[-1].removesuffix(".yaml"),
        source=source,
        start=b.start,
        horizon=spec.horizon,
        sites=tuple(sites),
        deliveries=tuple(deliveries),
        deals=tuple(deals),
        demand=tuple(demand),
        costs=costs,
        decisions=decisions,
        settings=Settings(o.delivery_confidence, o.time_limit_s, o.mip_gap, o.explain),
        description=spec.description or "",
        fleet=fleet_from,
        lines=dict(b.lines),
    )
