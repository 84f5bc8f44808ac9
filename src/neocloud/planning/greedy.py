"""The baseline a person might follow: keep the internal floors, then take deals by
expected margin per GPU-hour, each at the first site and start where it fits, then give
what is left to internal demand where that is cheaper than falling short. The optimizer's
plan is measured against it."""

from __future__ import annotations

from typing import Any

import numpy as np

from neocloud.planning.model import Floats, Model, Option
from neocloud.planning.quarters import HOURS_PER_QUARTER


def _fits(model: Model, o: Option, cap: Floats, power: Floats) -> bool:
    h = model.scenario.horizon
    q = np.arange(o.start, min(o.end, h))
    if q.size == 0:
        return True
    if o.pool is not None:
        p = model.pools[o.pool]
        return bool(
            (cap[o.pool, q] >= o.gpus).all() and (power[o.site, q] >= o.gpus * p.kw - 1e-6).all()
        )
    mine = [p.index for p in model.pools_of(o.site)]
    untouched = (cap[mine][:, q] >= model.avail[mine][:, q]).all()
    return bool(untouched and (power[o.site, q] >= model.it_kw[o.site, q] - 1e-6).all())


def _take(model: Model, o: Option, cap: Floats, power: Floats) -> None:
    h = model.scenario.horizon
    q = np.arange(o.start, min(o.end, h))
    if o.pool is not None:
        cap[o.pool, q] -= o.gpus
        power[o.site, q] -= o.gpus * model.pools[o.pool].kw
    else:
        for p in model.pools_of(o.site):
            cap[p.index, q] = 0
        power[o.site, q] = 0


def _fill(
    model: Model, target: Floats, cap: Floats, power: Floats, internal: Floats, covered: Floats
) -> None:
    """Keep units for each internal demand up to `target` [demand, quarter], first fit."""
    s = model.scenario
    site_index = {site.name: i for i, site in enumerate(s.sites)}
    for e_i, d in enumerate(s.demand):
        allowed = {site_index[n] for n in d.sites} if d.sites else None
        for p in model.pools:
            if p.accelerator != d.accelerator or (allowed is not None and p.site not in allowed):
                continue
            for q in range(s.horizon):
                want = target[e_i, q] - covered[e_i, q]
                if want <= 0:
                    continue
                units = min(
                    np.ceil(want / p.block),
                    cap[p.index, q] // p.block,
                    np.floor(power[p.site, q] / (p.block * p.kw) + 1e-9),
                )
                if units <= 0:
                    continue
                gpus = units * p.block
                cap[p.index, q] -= gpus
                power[p.site, q] -= gpus * p.kw
                internal[p.index, q] += gpus
                covered[e_i, q] += gpus


def greedy(model: Model) -> tuple[dict[int, int], Floats, Floats, float]:
    """Deal -> option, internal [pool, quarter], covered [demand, quarter], and the value of
    the plan in the optimizer's terms (expected margin - internal cost - shortfall cost)."""
    s = model.scenario
    h = s.horizon
    cap = model.avail.astype(np.float64).copy()
    power = model.it_kw.copy()
    internal = np.zeros((len(model.pools), h))
    covered = np.zeros((len(s.demand), h))
    forced = set(s.decisions.accept)
    by_deal: dict[int, list[int]] = {}
    for o_i, o in enumerate(model.options):
        by_deal.setdefault(o.deal, []).append(o_i)

    def score(d_i: int) -> float:
        best = max(by_deal[d_i], key=lambda o_i: model.options[o_i].margin)
        o = model.options[best]
        hours = max(o.gpus, 1) * max(len(o.active(h)), 1) * HOURS_PER_QUARTER
        return -s.deals[d_i].probability * o.margin / hours

    chosen: dict[int, int] = {}

    def place(d_i: int, any_margin: bool) -> None:
        for o_i in by_deal[d_i]:
            o = model.options[o_i]
            if (o.margin > 0 or any_margin) and _fits(model, o, cap, power):
                _take(model, o, cap, power)
                chosen[d_i] = o_i
                return

    # Decisions first, then the floors, then the rest by margin per GPU-hour.
    for d_i in by_deal:
        if s.deals[d_i].name in forced:
            place(d_i, True)
    floors = np.array([d.floor for d in s.demand], dtype=np.float64).reshape(-1, h)
    _fill(model, floors, cap, power, internal, covered)
    for d_i in sorted((d for d in by_deal if d not in chosen), key=score):
        if s.deals[d_i].name not in forced:
            place(d_i, False)
    # Internal demand beyond the floor, where a GPU-quarter costs less than going without.
    demand = np.array([d.gpus for d in s.demand], dtype=np.float64).reshape(-1, h)
    worth = np.zeros_like(demand)
    for e_i, d in enumerate(s.demand):
        cheapest = min(
            (p.cost for p in model.pools if p.accelerator == d.accelerator), default=np.inf
        )
        if d.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER > cheapest:
            worth[e_i] = demand[e_i]
    _fill(model, worth, cap, power, internal, covered)
    value = sum(s.deals[d].probability * model.options[o].margin for d, o in chosen.items())
    value -= float((internal * np.array([p.cost for p in model.pools])[:, None]).sum())
    short = np.maximum(demand - covered, 0.0)
    for e_i, d in enumerate(s.demand):
        value -= float(short[e_i].sum()) * d.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER
    return chosen, internal, covered, float(value)


def greedy_report(model: Model, *, optimizer_value: float) -> dict[str, Any]:
    """The baseline's plan in brief and how much more the optimizer's plan is worth. (No
    timings: a report is the same for the same scenario and seed; bench/plan.py times it.)"""
    from neocloud.planning.evaluate import evaluate

    chosen, internal, covered, value = greedy(model)
    figures = evaluate(model, chosen, internal, covered)
    s = model.scenario
    return {
        "objective": round(value, 2),
        "accepted": [s.deals[d].name for d in sorted(chosen)],
        "totals": figures["totals"],
        "optimizer_gain": round(optimizer_value - value, 2),
        "optimizer_gain_pct": round(100 * (optimizer_value - value) / abs(value), 2)
        if value
        else None,
    }
