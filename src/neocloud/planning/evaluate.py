"""What a plan means in the operator's numbers: deals taken and where, and per quarter the
supply, use, revenue, costs, margin, backlog and internal coverage. The optimizer's plan,
the greedy baseline's and a manual choice are all reported by this one function."""

from __future__ import annotations

from typing import Any

import numpy as np

from neocloud.planning.model import Floats, Model, Option
from neocloud.planning.quarters import HOURS_PER_QUARTER


def _money(x: float) -> float:
    return round(float(x), 2)


def deal_view(model: Model, o: Option, decided: str) -> dict[str, Any]:
    s = model.scenario
    deal = s.deals[o.deal]
    return {
        "deal": deal.name,
        "customer": deal.customer,
        "site": s.sites[o.site].name,
        "accelerator": deal.accelerator if o.pool is None else model.pools[o.pool].accelerator,
        "whole_site": deal.whole_site,
        "gpus": o.gpus,
        "start": s.quarter_label(o.start),
        "end": s.quarter_label(o.end - 1),
        "term_quarters": deal.term_quarters,
        "price_per_gpu_hour": deal.price_per_gpu_hour,
        "price_per_mw_month": deal.price_per_mw_month,
        "probability": deal.probability,
        "revenue": _money(o.revenue.sum()),
        "margin": _money(o.margin),
        "expected_margin": _money(deal.probability * o.margin),
        "backlog_after_horizon": _money(o.tail_revenue),
        "decided": decided,
    }


def evaluate(
    model: Model, chosen: dict[int, int], internal: Floats, covered: Floats
) -> dict[str, Any]:
    """Per-quarter and per-site figures of a plan: `chosen` deal -> option, `internal`
    [pool, quarter] and `covered` [demand, quarter] GPUs kept for internal demand."""
    s = model.scenario
    h = s.horizon
    n_sites = len(s.sites)
    sold = np.zeros((len(model.pools), h))
    revenue = np.zeros(h)
    costs = np.zeros(h)
    after = np.zeros(h)
    """Revenue still to come after each quarter (backlog), within and beyond the horizon."""
    for o_i in chosen.values():
        o = model.options[o_i]
        revenue += o.revenue
        costs += o.cost
        cum = np.cumsum(o.revenue[::-1])[::-1]
        after[:-1] += cum[1:]
        after += o.tail_revenue
        for q in o.active(h):
            if o.pool is not None:
                sold[o.pool, q] += o.gpus
            else:
                for p in model.pools_of(o.site):
                    sold[p.index, q] += model.avail[p.index, q]
    unit_cost = np.array([p.cost for p in model.pools])
    internal_cost = (internal * unit_cost[:, None]).sum(axis=0) if len(model.pools) else np.zeros(h)
    demand = np.array([d.gpus for d in s.demand], dtype=np.float64).reshape(-1, h)
    short = np.maximum(demand - covered, 0.0) if len(s.demand) else np.zeros((0, h))
    short_cost = np.array(
        [d.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER for d in s.demand]
    ).reshape(-1, 1)
    shortfall_cost = (short * short_cost).sum(axis=0) if len(s.demand) else np.zeros(h)
    supply = model.supply.sum(axis=0).astype(np.float64)
    used = sold.sum(axis=0) + internal.sum(axis=0)
    kw = np.array([p.kw for p in model.pools])
    pue = np.array([s.sites[p.site].pue for p in model.pools])
    quarters = []
    for q in range(h):
        want = float(demand[:, q].sum()) if len(s.demand) else 0.0
        got = float(np.minimum(covered[:, q], demand[:, q]).sum()) if len(s.demand) else 0.0
        quarters.append(
            {
                "quarter": s.quarter_label(q),
                "supply_gpus": int(supply[q]),
                "sold_gpus": int(sold[:, q].sum()),
                "internal_gpus": int(internal[:, q].sum()),
                "utilization": round(float(used[q] / supply[q]), 4) if supply[q] else 0.0,
                "revenue": _money(revenue[q]),
                "costs": _money(costs[q]),
                "margin": _money(revenue[q] - costs[q]),
                "internal_cost": _money(internal_cost[q]),
                "shortfall_cost": _money(shortfall_cost[q]),
                "net": _money(revenue[q] - costs[q] - internal_cost[q] - shortfall_cost[q]),
                "backlog": _money(after[q]),
                "internal_demand_gpus": int(want),
                "internal_covered_gpus": int(got),
                "internal_coverage": round(got / want, 4) if want else 1.0,
            }
        )
    sites = []
    for s_i in range(n_sites):
        site = s.sites[s_i]
        mine = [p.index for p in model.pools if p.site == s_i]
        rows = []
        for q in range(h):
            it = float(((sold[mine, q] + internal[mine, q]) * kw[mine]).sum()) if mine else 0.0
            rows.append(
                {
                    "quarter": s.quarter_label(q),
                    "supply_gpus": int(model.supply[mine, q].sum()) if mine else 0,
                    "sold_gpus": int(sold[mine, q].sum()) if mine else 0,
                    "internal_gpus": int(internal[mine, q].sum()) if mine else 0,
                    "power_mw": round(it * float(pue[mine[0]]) / 1000, 3) if mine else 0.0,
                }
            )
        sites.append({"site": site.name, "power_mw": site.power_mw, "quarters": rows})
    totals = {
        "revenue": _money(revenue.sum()),
        "costs": _money(costs.sum()),
        "margin": _money(revenue.sum() - costs.sum()),
        "internal_cost": _money(internal_cost.sum()),
        "shortfall_cost": _money(shortfall_cost.sum()),
        "net": _money(revenue.sum() - costs.sum() - internal_cost.sum() - shortfall_cost.sum()),
        "backlog_at_end": _money(after[-1]) if h else 0.0,
        "mean_utilization": round(float(np.mean([q["utilization"] for q in quarters])), 4),
        "mean_internal_coverage": round(
            float(np.mean([q["internal_coverage"] for q in quarters])), 4
        ),
    }
    return {"totals": totals, "quarters": quarters, "sites": sites}
