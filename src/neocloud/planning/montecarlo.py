"""Monte Carlo of a plan: the deliveries arrive late by their delay distributions, each
accepted deal closes with its probability, and the plan meets what it can. Vectorised over
runs with NumPy; a seed makes it repeatable (same seed, same report).

Each run, per quarter: contracted deals that closed hold their GPUs where the plan put them,
as far as the pool's supply that run allows (a late delivery leaves a deal short and its
revenue with it) and the site's power; internal demand then takes what is left at its sites,
including what deals that did not close would have held. Reported: P10, P50 and P90 of
revenue, margin, utilization and internal coverage per quarter and over the horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neocloud.planning.model import Floats, Model, planned_supply
from neocloud.planning.optimize import Plan
from neocloud.planning.quarters import HOURS_PER_QUARTER

PERCENTILES = (10, 50, 90)


def _bands(x: Floats, digits: int) -> dict[str, float]:
    """P10/P50/P90 over axis 0, as {"p10":, "p50":, "p90":} (scalars)."""
    p = np.percentile(x, PERCENTILES, axis=0)
    return {f"p{k}": round(float(v), digits) for k, v in zip(PERCENTILES, p, strict=True)}


def sample_arrivals(model: Model, runs: int, rng: np.random.Generator) -> np.ndarray:
    """[run, delivery] quarter each delivery arrives."""
    s = model.scenario
    out = np.zeros((runs, len(s.deliveries)), dtype=np.int64)
    for i, d in enumerate(s.deliveries):
        probs = np.asarray(d.delay, dtype=np.float64)
        probs = probs / probs.sum()
        out[:, i] = d.quarter + rng.choice(len(probs), size=runs, p=probs)
    return out


def simulate(model: Model, chosen: dict[int, int], runs: int, seed: int) -> dict[str, Floats]:
    """Per run and quarter: revenue, margin, utilization, internal coverage; and per run and
    deal whether it closed."""
    s = model.scenario
    h = s.horizon
    n_pools = len(model.pools)
    rng = np.random.default_rng(seed)
    arrivals = sample_arrivals(model, runs, rng)
    options = [model.options[o] for _, o in sorted(chosen.items())]
    probs = np.array([s.deals[o.deal].probability for o in options], dtype=np.float64)
    closed = rng.random((runs, len(options))) < probs[None, :]

    # Supply per run: base + deliveries that have arrived, less what was sold before.
    supply = np.empty((runs, n_pools, h), dtype=np.float64)
    base = planned_supply(s, model.pools, np.full(len(s.deliveries), h, dtype=np.int64))
    supply[:] = base[None]
    pool_of = {(p.site, p.accelerator): p.index for p in model.pools}
    site_index = {site.name: i for i, site in enumerate(s.sites)}
    quarters = np.arange(h)
    for i, d in enumerate(s.deliveries):
        p_i = pool_of[(site_index[d.site], d.accelerator)]
        arrived = quarters[None, :] >= arrivals[:, i : i + 1]
        supply[:, p_i, :] += arrived * d.gpus
    sold_before = (model.supply - model.avail).astype(np.float64)
    avail = np.maximum(supply - sold_before[None], 0.0)

    # What closed deals ask of each pool, per run.
    n_opt = len(options)
    ask = np.zeros((n_opt, n_pools, h))
    whole = np.zeros((n_opt, len(s.sites), h))
    rev = np.zeros((n_opt, h))
    cost = np.zeros((n_opt, h))
    for k, o in enumerate(options):
        q = np.arange(o.start, min(o.end, h))
        rev[k] = o.revenue
        cost[k] = o.cost
        if o.pool is not None:
            ask[k, o.pool, q] = o.gpus
        else:
            whole[k, o.site, q] = 1.0
    c = closed.astype(np.float64)
    asked = np.einsum("ro,opq->rpq", c, ask)
    site_of = np.array([p.site for p in model.pools], dtype=np.int64)
    whole_r = np.einsum("ro,osq->rsq", c, whole)  # 1 where a closed whole-site deal holds it
    if n_pools:
        asked += whole_r[:, site_of, :] * avail
    served = np.minimum(asked, avail)
    kw = np.array([p.kw for p in model.pools], dtype=np.float64)
    it_cap = model.it_kw[None]
    onehot = (np.arange(len(s.sites))[:, None] == site_of[None, :]).astype(np.float64)
    site_kw = np.einsum("rpq,sp->rsq", served * kw[None, :, None], onehot)
    scale = np.where(site_kw > it_cap, it_cap / np.maximum(site_kw, 1e-9), 1.0)
    served = served * scale[:, site_of, :]
    fraction = np.where(asked > 0, served / np.maximum(asked, 1e-9), 1.0)

    # Revenue per run: a deal earns in the share of its GPUs it was given; a whole site
    # priced per MW earns in full while the site is its.
    share = np.ones((runs, n_opt, h))
    for k, o in enumerate(options):
        if o.pool is not None:
            share[:, k, :] = fraction[:, o.pool, :]
        elif s.deals[o.deal].price_per_mw_month is None:
            mine = site_of == o.site
            planned = model.avail[mine].sum(axis=0)
            share[:, k, :] = np.where(
                planned > 0, avail[:, mine].sum(axis=1) / np.maximum(planned, 1), 1.0
            )
    revenue = np.einsum("ro,roq,oq->rq", c, share, rev)

    # Internal demand takes what is left, first fit over its sites.
    left = avail - served
    kw_left = np.maximum(it_cap - np.einsum("rpq,sp->rsq", served * kw[None, :, None], onehot), 0.0)
    internal_used = np.zeros((runs, n_pools, h))
    want_total = np.zeros(h)
    got_total = np.zeros((runs, h))
    shortfall_cost = np.zeros((runs, h))
    for dem in s.demand:
        want = np.asarray(dem.gpus, dtype=np.float64)
        want_total += want
        remaining = np.broadcast_to(want, (runs, h)).copy()
        allowed = {site_index[n] for n in dem.sites} if dem.sites else None
        for p in model.pools:
            if p.accelerator != dem.accelerator or (allowed is not None and p.site not in allowed):
                continue
            # Whole units: as many as the demand needs, the pool has and the site can power.
            units = np.minimum(
                np.ceil(np.maximum(remaining, 0.0) / p.block - 1e-9),
                np.minimum(
                    np.floor(left[:, p.index, :] / p.block + 1e-9),
                    np.floor(kw_left[:, p.site, :] / (p.kw * p.block) + 1e-9),
                ),
            )
            take = np.maximum(units, 0.0) * p.block
            left[:, p.index, :] -= take
            kw_left[:, p.site, :] -= take * p.kw
            internal_used[:, p.index, :] += take
            remaining -= take
        got_total += np.minimum(want[None], want[None] - np.maximum(remaining, 0.0))
        shortfall_cost += (
            np.maximum(remaining, 0.0) * dem.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER
        )
    coverage = np.where(want_total[None] > 0, got_total / np.maximum(want_total, 1)[None], 1.0)
    total_supply = supply.sum(axis=1)
    used = served.sum(axis=1) + internal_used.sum(axis=1)
    utilization = np.where(total_supply > 0, used / np.maximum(total_supply, 1), 0.0)
    pool_cost = np.array([p.cost for p in model.pools], dtype=np.float64)
    contract_cost = (served * pool_cost[None, :, None]).sum(axis=1)
    internal_cost = (internal_used * pool_cost[None, :, None]).sum(axis=1)
    return {
        "revenue": revenue,
        "margin": revenue - contract_cost,
        "net": revenue - contract_cost - internal_cost - shortfall_cost,
        "utilization": utilization,
        "internal_coverage": coverage,
        "closed": closed.astype(np.float64),
    }


def simulate_plan(plan: Plan, *, runs: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The JSON of a plan's Monte Carlo: per quarter and over the horizon, P10/P50/P90."""
    model = plan.model
    s = model.scenario
    sim = simulate(model, plan.chosen, runs, seed)
    quarters = []
    for q in range(s.horizon):
        quarters.append(
            {
                "quarter": s.quarter_label(q),
                "revenue": _bands(sim["revenue"][:, q], 2),
                "margin": _bands(sim["margin"][:, q], 2),
                "net": _bands(sim["net"][:, q], 2),
                "utilization": _bands(sim["utilization"][:, q], 4),
                "internal_coverage": _bands(sim["internal_coverage"][:, q], 4),
            }
        )
    deals = [
        {
            "deal": s.deals[d].name,
            "probability": s.deals[d].probability,
            "closed_share": round(float(sim["closed"][:, k].mean()), 4),
        }
        for k, d in enumerate(sorted(plan.chosen))
    ]
    return {
        "runs": runs,
        "seed": seed,
        "quarters": quarters,
        "totals": {
            "revenue": _bands(sim["revenue"].sum(axis=1), 2),
            "margin": _bands(sim["margin"].sum(axis=1), 2),
            "net": _bands(sim["net"].sum(axis=1), 2),
            "utilization": _bands(sim["utilization"].mean(axis=1), 4),
            "internal_coverage": _bands(sim["internal_coverage"].mean(axis=1), 4),
        },
        "deals": deals,
    }
