"""Benchmark the planner: 10 sites x 12 quarters x 200 candidate deals, generated with a seed.

Measured in one run, on the same scenario:

- the mixed-integer program (`neocloud.planning.optimize`, HiGHS, one thread): time to build
  and solve, and the optimality gap HiGHS proves;
- the reason of every rejection (`neocloud.planning.explain`), timed apart;
- the baseline: the greedy plan (`neocloud.planning.greedy`: floors, then deals by expected
  margin per GPU-hour, first fit), its time, and how much more expected value the optimizer
  finds than it;
- the Monte Carlo of the optimizer's plan (`neocloud.planning.montecarlo`): 1,000 runs.

Targets: solve under 10 s with a gap under 1%; 1,000 runs under 60 s.

Run it (one JSON object on stdout; about half a minute on 2 cores):

    .venv/bin/python bench/plan.py
    .venv/bin/python bench/plan.py --deals 400 --sites 20 --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from neocloud.planning import catalog
from neocloud.planning.data import (
    Costs,
    Deal,
    Delivery,
    Demand,
    Pool,
    Scenario,
    Settings,
    Site,
)
from neocloud.planning.explain import rejection_reasons
from neocloud.planning.greedy import greedy
from neocloud.planning.model import build
from neocloud.planning.montecarlo import simulate_plan
from neocloud.planning.optimize import optimize

CHIPS = ("H100", "H200", "B200", "GB200", "GB300")
START = 2026 * 4 + 2  # 2026Q3


def generate(sites: int, quarters: int, deals: int, seed: int) -> Scenario:
    """A random but believable operator: sites of 100-500 MW filled to 60-90% with one to
    three chips, deliveries with a supplier's delays, deals priced around the list book's
    reserved rates, and internal demand for a share of each chip."""
    rng = np.random.default_rng(seed)
    out_sites: list[Site] = []
    deliveries: list[Delivery] = []
    for i in range(sites):
        mw = float(rng.integers(100, 501))
        pue = float(np.round(rng.uniform(1.1, 1.4), 2))
        chips = rng.choice(CHIPS, size=int(rng.integers(1, 4)), replace=False)
        it_kw = mw * 1000 / pue * rng.uniform(0.6, 0.9)
        pools = []
        for chip in sorted(chips):
            c = catalog.chip(str(chip))
            gpus = int(it_kw / len(chips) / c.kw_per_gpu) // c.block_gpus * c.block_gpus
            installed = int(gpus * rng.uniform(0.5, 1.0)) // c.block_gpus * c.block_gpus
            pools.append(Pool(str(chip), installed, c.block_gpus, c.kw_per_gpu))
            if gpus > installed:
                deliveries.append(
                    Delivery(
                        f"d{i:02d}-{chip}",
                        f"site-{i:02d}",
                        str(chip),
                        gpus - installed,
                        int(rng.integers(1, quarters // 2)),
                        (0.5, 0.3, 0.15, 0.05),
                    )
                )
        out_sites.append(Site(f"site-{i:02d}", mw, pue, float(rng.integers(40, 101)), tuple(pools)))
    have: dict[str, list[str]] = {}
    for s in out_sites:
        for p in s.pools:
            have.setdefault(p.accelerator, []).append(s.name)
    chips_here = sorted(have)
    out_deals: list[Deal] = []
    for k in range(deals):
        chip = str(rng.choice(chips_here))
        block = catalog.chip(chip).block_gpus
        gpus = int(np.clip(rng.lognormal(np.log(4000), 1.0), block, 60_000)) // block * block
        first = int(rng.integers(0, quarters - 2))
        last = min(first + int(rng.integers(0, 3)), quarters - 1)
        term = int(rng.integers(2, 13))
        price = catalog.reserved_price(chip, term) * float(rng.uniform(0.5, 1.3))
        site = str(rng.choice(have[chip])) if rng.random() < 0.1 else None
        out_deals.append(
            Deal(
                f"deal-{k:03d}",
                f"customer-{k % 60:02d}",
                chip,
                gpus,
                None,
                False,
                site,
                first,
                last,
                term,
                round(price, 2),
                None,
                float(np.round(rng.uniform(0.3, 1.0), 2)),
            )
        )
    demand = []
    for chip in chips_here:
        total = sum(p.gpus for s in out_sites for p in s.pools if p.accelerator == chip)
        base = int(total * rng.uniform(0.1, 0.3))
        gpus = tuple(int(base * (1 + 0.05 * q)) for q in range(quarters))
        floor = tuple(int(g * 0.3) for g in gpus)
        demand.append(
            Demand(f"internal-{chip}", chip, gpus, floor, (), catalog.on_demand_price(chip) * 0.8)
        )
    dep = {c: catalog.depreciation_per_gpu_quarter(c) for c in chips_here}
    return Scenario(
        name=f"bench-{sites}x{quarters}x{deals}-seed{seed}",
        source="<bench>",
        start=START,
        horizon=quarters,
        sites=tuple(out_sites),
        deliveries=tuple(deliveries),
        deals=tuple(out_deals),
        demand=tuple(demand),
        costs=Costs(0.12, dep),
        settings=Settings(time_limit_s=60.0, mip_gap=0.005, explain=True),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--quarters", type=int, default=12)
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    scenario = generate(args.sites, args.quarters, args.deals, args.seed)
    print(f"generated {scenario.name}", file=sys.stderr)
    began = time.perf_counter()
    build(scenario)
    build_s = time.perf_counter() - began
    began = time.perf_counter()
    plan = optimize(scenario)
    solve_s = time.perf_counter() - began
    model, solution = plan.model, plan.solution
    print(f"solved: {solution.status}, gap {solution.gap:.4%}, {solve_s:.2f} s", file=sys.stderr)

    began = time.perf_counter()
    reasons = rejection_reasons(plan)
    explain_s = time.perf_counter() - began

    began = time.perf_counter()
    chosen, _, _, greedy_value = greedy(model)
    greedy_s = time.perf_counter() - began

    began = time.perf_counter()
    mc = simulate_plan(plan, runs=args.runs, seed=args.seed)
    mc_s = time.perf_counter() - began
    print(f"monte carlo: {args.runs} runs in {mc_s:.2f} s", file=sys.stderr)

    gain = solution.objective - greedy_value
    out: dict[str, Any] = {
        "benchmark": "plan",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "scenario": {
            "sites": args.sites,
            "quarters": args.quarters,
            "deals": args.deals,
            "seed": args.seed,
            "deliveries": len(scenario.deliveries),
            "internal_demands": len(scenario.demand),
            "binary_options": model.n_options,
            "integer_internal": len(model.internal),
            "columns": len(model.cost),
            "rows": len(model.rows),
            "nonzeros": int(model.entries[0].size),
        },
        "optimizer": {
            "status": solution.status,
            "build_seconds": round(build_s, 3),
            "solve_seconds": round(solve_s, 3),
            "gap": round(solution.gap, 6),
            "nodes": solution.nodes,
            "objective": round(solution.objective, 2),
            "deals_accepted": len(plan.chosen),
            "rejections_explained": len(reasons),
            "explain_seconds": round(explain_s, 3),
        },
        "baseline_greedy": {
            "seconds": round(greedy_s, 4),
            "objective": round(greedy_value, 2),
            "deals_accepted": len(chosen),
            "optimizer_gain": round(gain, 2),
            "optimizer_gain_pct": round(100 * gain / abs(greedy_value), 2)
            if greedy_value
            else None,
        },
        "montecarlo": {
            "runs": args.runs,
            "seconds": round(mc_s, 3),
            "revenue_p10_p50_p90": [mc["totals"]["revenue"][k] for k in ("p10", "p50", "p90")],
        },
        "targets": {
            "solve_under_10s": solve_s < 10,
            "gap_under_1pct": solution.gap < 0.01,
            "montecarlo_1000_runs_under_60s": mc_s < 60,
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
