"""The optimizer against brute force on tiny random scenarios: the same best value, and a
plan that respects capacity, power, units and floors."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neocloud.planning.data import Costs, Deal, Delivery, Demand, Pool, Scenario, Settings, Site
from neocloud.planning.model import Model, Option, build
from neocloud.planning.optimize import Plan, optimize
from neocloud.planning.quarters import HOURS_PER_QUARTER

H = 3
CHIPS = {"H100": (8, 1.0), "X9": (4, 2.0)}  # unit GPUs, kW per GPU


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    sites = []
    deliveries = []
    for i in range(draw(st.integers(1, 2))):
        chips = draw(st.lists(st.sampled_from(sorted(CHIPS)), min_size=1, max_size=2, unique=True))
        pools = []
        for chip in chips:
            block, kw = CHIPS[chip]
            pools.append(Pool(chip, draw(st.integers(0, 5)) * block, block, kw))
            if draw(st.booleans()):
                deliveries.append(
                    Delivery(
                        f"d{i}{chip}",
                        f"s{i}",
                        chip,
                        draw(st.integers(1, 3)) * block,
                        draw(st.integers(0, H - 1)),
                        (1.0,),
                    )
                )
        sites.append(
            Site(
                f"s{i}",
                draw(st.integers(10, 70)) / 1000,
                1.0,
                draw(st.sampled_from([0.0, 50.0])),
                tuple(pools),
            )
        )
    chips_here = sorted({p.accelerator for s in sites for p in s.pools})
    deals = []
    for k in range(draw(st.integers(1, 4))):
        first = draw(st.integers(0, H - 1))
        last = min(H - 1, first + draw(st.integers(0, 1)))
        whole = draw(st.integers(0, 9)) == 0
        site = draw(st.sampled_from([None, *[s.name for s in sites]]))
        if whole:
            deals.append(
                Deal(
                    f"w{k}",
                    "c",
                    None,
                    None,
                    None,
                    True,
                    site,
                    first,
                    last,
                    draw(st.integers(1, 3)),
                    None,
                    float(draw(st.integers(1, 400))) * 1000,
                    draw(st.sampled_from([0.5, 1.0])),
                )
            )
            continue
        chip = draw(st.sampled_from(chips_here))
        deals.append(
            Deal(
                f"d{k}",
                "c",
                chip,
                draw(st.integers(1, 30)),
                None,
                False,
                site,
                first,
                last,
                draw(st.integers(1, 3)),
                draw(st.integers(5, 40)) / 10,
                None,
                draw(st.sampled_from([0.5, 1.0])),
            )
        )
    demand = []
    if draw(st.booleans()):
        chip = draw(st.sampled_from(chips_here))
        gpus = tuple(draw(st.integers(0, 24)) for _ in range(H))
        floor = tuple(min(g, draw(st.integers(0, 8))) for g in gpus)
        demand.append(Demand("internal", chip, gpus, floor, (), draw(st.integers(5, 50)) / 10))
    return Scenario(
        name="tiny",
        source="<tiny>",
        start=2026 * 4,
        horizon=H,
        sites=tuple(sites),
        deliveries=tuple(deliveries),
        deals=tuple(deals),
        demand=tuple(demand),
        costs=Costs(0.1, {"H100": 300.0, "X9": 900.0}),
        settings=Settings(mip_gap=0.0, time_limit_s=20, explain=False),
    )


def usage(model: Model, picks: list[Option]) -> tuple[np.ndarray, np.ndarray, bool]:
    """GPUs per pool and IT kW per site each quarter of the picked options; whether whole-site
    deals hold their sites alone."""
    s = model.scenario
    gpus = np.zeros((len(model.pools), H))
    kw = np.zeros((len(s.sites), H))
    alone = True
    whole: set[tuple[int, int]] = set()
    for o in picks:
        for q in o.active(H):
            if o.pool is None:
                if (o.site, q) in whole:
                    alone = False
                whole.add((o.site, q))
                for p in model.pools_of(o.site):
                    gpus[p.index, q] += model.avail[p.index, q]
                kw[o.site, q] += s.sites[o.site].power_mw * 1000 / s.sites[o.site].pue
            else:
                gpus[o.pool, q] += o.gpus
                kw[o.site, q] += o.gpus * model.pools[o.pool].kw
    for o in picks:
        if o.pool is not None:
            alone &= not any((o.site, q) in whole for q in o.active(H))
    return gpus, kw, alone


def internal_best(model: Model, gpus: np.ndarray, kw: np.ndarray) -> float | None:
    """Cheapest way to keep units for internal demand beside the deals (None: a floor can't
    be met), by enumerating the units of every pool in every quarter."""
    s = model.scenario
    if not s.demand:
        return 0.0
    d = s.demand[0]
    pools = [p for p in model.pools if p.accelerator == d.accelerator]
    total = 0.0
    for q in range(H):
        best = None
        ranges = [range(int(model.avail[p.index, q] // p.block) + 1) for p in pools]
        for units in itertools.product(*ranges):
            g = gpus[:, q].copy()
            k = kw[:, q].copy()
            covered = 0
            cost = 0.0
            for p, u in zip(pools, units, strict=True):
                g[p.index] += u * p.block
                k[p.site] += u * p.block * p.kw
                covered += u * p.block
                cost += u * p.block * p.cost
            if (g > model.avail[:, q] + 1e-9).any() or any(
                k[i] > s.sites[i].power_mw * 1000 / s.sites[i].pue + 1e-6
                for i in range(len(s.sites))
            ):
                continue
            if covered < d.floor[q]:
                continue
            cost += max(0, d.gpus[q] - covered) * d.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER
            best = cost if best is None else min(best, cost)
        if best is None:
            return None
        total += best
    return total


def brute_force(model: Model) -> float | None:
    s = model.scenario
    by_deal: dict[int, list[Option | None]] = {d: [None] for d in range(len(s.deals))}
    for o in model.options:
        by_deal[o.deal].append(o)
    best = None
    for combo in itertools.product(*by_deal.values()):
        picks = [o for o in combo if o is not None]
        gpus, kw, alone = usage(model, picks)
        if not alone or (gpus > model.avail + 1e-9).any():
            continue
        if any(
            kw[i, q] > s.sites[i].power_mw * 1000 / s.sites[i].pue + 1e-6
            for i in range(len(s.sites))
            for q in range(H)
        ):
            continue
        inside = internal_best(model, gpus, kw)
        if inside is None:
            continue
        value = sum(s.deals[o.deal].probability * o.margin for o in picks) - inside
        best = value if best is None else max(best, value)
    return best


def check_plan(plan: Plan) -> None:
    """Capacity, power, units and floors hold in the optimizer's plan."""
    model = plan.model
    s = model.scenario
    picks = [model.options[o] for o in plan.chosen.values()]
    gpus, kw, alone = usage(model, picks)
    assert alone
    gpus += plan.internal
    for p in model.pools:
        kw[p.site] += plan.internal[p.index] * p.kw
        assert (plan.internal[p.index] % p.block == 0).all()
    for o in picks:
        assert o.pool is None or o.gpus % model.pools[o.pool].block == 0
        deal = s.deals[o.deal]
        assert o.pool is None or o.gpus >= (deal.gpus or 0)
    assert (gpus <= model.avail + 1e-6).all()
    for i, site in enumerate(s.sites):
        assert (kw[i] <= site.power_mw * 1000 / site.pue + 1e-6).all()
    for e, d in enumerate(s.demand):
        assert (plan.covered[e] >= np.array(d.floor) - 1e-9).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_optimizer_finds_the_brute_force_optimum_and_keeps_every_limit(s: Scenario) -> None:
    model = build(s)
    expected = brute_force(model)
    plan = optimize(s)
    if expected is None:
        assert not plan.feasible
        return
    assert plan.feasible, plan.solution.status
    check_plan(plan)
    assert math.isclose(plan.solution.objective, expected, rel_tol=1e-6, abs_tol=1e-3), (
        plan.solution.objective,
        expected,
    )
