"""The planner's use case: solve a scenario (and the one it is compared with), explain the
choices, run the Monte Carlo, and return one JSON-able report — what `neocloud plan --json`
prints and what `POST /v1/plans` stores. Charts of a report are drawn by `render_charts`.

The report::

    {"plan": PLAN, "compare": PLAN | null, "difference": {...} | null, "runs": N, "seed": S}

where PLAN has `scenario`, `status` ("optimal", "time-limit" or "infeasible"), `solver`,
`accepted` and `rejected` deals (each rejection with its `reason`), `totals`, `quarters`,
`sites`, `greedy` (the baseline and how much more the optimizer finds), `montecarlo` (P10,
P50 and P90 per quarter) and, when infeasible, `infeasible` (the rows that cannot be met)
and `message`. docs/planning.md describes every field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from neocloud.planning.data import Scenario
from neocloud.planning.evaluate import deal_view, evaluate
from neocloud.planning.optimize import Plan, optimize

Progress = Callable[[float, str], None]
__all__ = ["Progress", "plan_report", "render_charts", "run_plan"]


def _scenario_view(s: Scenario) -> dict[str, Any]:
    return {
        "name": s.name,
        "source": s.source,
        "description": s.description,
        "fleet": s.fleet,
        "start": s.quarter_label(0),
        "horizon": s.horizon,
        "quarters": s.quarters,
        "sites": [
            {
                "name": site.name,
                "power_mw": site.power_mw,
                "pue": site.pue,
                "power_usd_per_mwh": site.power_usd_per_mwh,
                "accelerators": {p.accelerator: p.gpus for p in site.pools},
            }
            for site in s.sites
        ],
        "deliveries": len(s.deliveries),
        "deals": len(s.deals),
        "decisions": {
            "accept": list(s.decisions.accept),
            "reject": list(s.decisions.reject),
            "place": dict(s.decisions.place),
            "start": {k: s.quarter_label(v) for k, v in s.decisions.start.items()},
            "others": s.decisions.others,
        },
    }


def _decided(s: Scenario, name: str) -> str:
    if name in s.decisions.accept or name in s.decisions.reject:
        return "decision"
    if s.decisions.others == "reject":
        return "decision"
    return "optimizer"


def plan_report(scenario: Scenario, plan: Plan | None = None) -> dict[str, Any]:
    """The report of one scenario's plan, without the Monte Carlo."""
    from neocloud.planning.explain import explain_infeasible, rejection_reasons
    from neocloud.planning.greedy import greedy_report

    plan = plan or optimize(scenario)
    sol = plan.solution
    out: dict[str, Any] = {
        "scenario": _scenario_view(scenario),
        "status": sol.status,
        "solver": {
            "status": sol.status,
            "objective": round(sol.objective, 2) if sol.objective == sol.objective else None,
            "bound": round(sol.bound, 2) if sol.bound == sol.bound else None,
            "gap": round(sol.gap, 6) if sol.gap != float("inf") else None,
            "nodes": sol.nodes,
        },
    }
    if not plan.feasible:
        problems = explain_infeasible(scenario)
        out["infeasible"] = problems
        out["message"] = (
            "the scenario cannot be planned: " + "; ".join(p["message"] for p in problems[:3])
            if problems
            else "the scenario cannot be planned"
        )
        return out
    model = plan.model
    out["accepted"] = [
        deal_view(model, model.options[o_i], _decided(scenario, scenario.deals[d].name))
        for d, o_i in sorted(plan.chosen.items())
    ]
    out["rejected"] = rejection_reasons(plan)
    out.update(evaluate(model, plan.chosen, plan.internal, plan.covered))
    out["greedy"] = greedy_report(model, optimizer_value=sol.objective)
    return out


def run_plan(
    scenario: Scenario,
    *,
    compare: Scenario | None = None,
    runs: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plan the scenario (and `compare`), simulate each plan `runs` times with `seed`, and
    return the report. `progress(fraction, message)` is called as the work advances."""
    from neocloud.planning.montecarlo import simulate_plan

    def tell(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(max(fraction, 0.0), 1.0), message)

    parts = [scenario] if compare is None else [scenario, compare]
    reports: list[dict[str, Any]] = []
    for i, s in enumerate(parts):
        share = 1.0 / len(parts)
        tell(i * share, f"solving {s.name}")
        plan = optimize(s)
        report = plan_report(s, plan)
        if plan.feasible and runs > 0:
            tell((i + 0.6) * share, f"simulating {s.name} ({runs} runs)")
            report["montecarlo"] = simulate_plan(plan, runs=runs, seed=seed)
        reports.append(report)
    tell(1.0, "done")
    out: dict[str, Any] = {"runs": runs, "seed": seed, "plan": reports[0], "compare": None}
    out["difference"] = None
    if compare is not None:
        out["compare"] = reports[1]
        out["difference"] = difference(reports[0], reports[1])
    return out


def _p50(report: dict[str, Any], key: str) -> float | None:
    mc = report.get("montecarlo")
    if not mc:
        return None
    return float(mc["totals"][key]["p50"])


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`plan` minus `compare`: totals of the plans and medians of their simulations."""
    out: dict[str, Any] = {"plan": a["scenario"]["name"], "compare": b["scenario"]["name"]}
    if "totals" not in a or "totals" not in b:
        out["note"] = "one of the scenarios cannot be planned"
        return out
    for key in ("revenue", "margin", "internal_cost", "shortfall_cost", "net", "backlog_at_end"):
        out[key] = round(a["totals"][key] - b["totals"][key], 2)
    for key in ("revenue", "margin", "net", "utilization", "internal_coverage"):
        pa, pb = _p50(a, key), _p50(b, key)
        if pa is not None and pb is not None:
            out[f"{key}_p50"] = round(pa - pb, 4)
    return out


def render_charts(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """PNG charts of a report (fan charts per quarter, comparison bars) into `out_dir`."""
    from neocloud.planning.charts import write_charts

    return write_charts(report, out_dir)
