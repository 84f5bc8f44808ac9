"""PNG charts of a plan report (matplotlib's Agg backend: no display needed).

- revenue.png, utilization.png, coverage.png: fan charts per quarter — the P10-P90 band and
  the P50 line of the Monte Carlo, with the plan's own figure dotted; a compared scenario
  is drawn beside it in a second colour;
- comparison.png: bars of the totals (revenue, margin, shortfall cost, backlog at the end)
  for the plan, the compared plan, and the greedy baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CHARTS = ("revenue.png", "utilization.png", "coverage.png", "comparison.png")
COLOURS = ("#1f77b4", "#d62728")
FANS = (
    ("revenue.png", "revenue", "revenue", "Revenue per quarter (USD M)", 1e-6),
    ("utilization.png", "utilization", "utilization", "Utilization of the fleet (%)", 100.0),
    (
        "coverage.png",
        "internal_coverage",
        "internal_coverage",
        "Internal demand covered (%)",
        100.0,
    ),
)


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _plans(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in (report.get("plan"), report.get("compare")) if p and "quarters" in p]


def write_charts(report: dict[str, Any], out: Path) -> list[Path]:
    """Draw the charts of a `run_plan` report into `out` (created if need be)."""
    out.mkdir(parents=True, exist_ok=True)
    plans = _plans(report)
    paths: list[Path] = []
    for name, mc_key, plan_key, title, scale in FANS:
        fig, ax = _figure(title)
        for i, plan in enumerate(plans):
            colour = COLOURS[i % len(COLOURS)]
            labels = [q["quarter"] for q in plan["quarters"]]
            x = np.arange(len(labels)) + (0.08 * i if len(plans) > 1 else 0.0)
            own = np.array([q[plan_key] for q in plan["quarters"]], dtype=np.float64) * scale
            tag = plan["scenario"]["name"]
            mc = plan.get("montecarlo")
            if mc:
                band = {
                    k: np.array([q[mc_key][k] for q in mc["quarters"]]) * scale
                    for k in ("p10", "p50", "p90")
                }
                ax.fill_between(
                    x, band["p10"], band["p90"], color=colour, alpha=0.2, label=f"{tag} P10-P90"
                )
                ax.plot(x, band["p50"], color=colour, linewidth=2, label=f"{tag} P50")
            ax.plot(
                x, own, color=colour, linestyle=":", marker="o", markersize=3, label=f"{tag} plan"
            )
            ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right")
        ax.legend(loc="best", fontsize=8)
        path = out / name
        fig.savefig(path)
        paths.append(path)

    fig, ax = _figure("Totals over the horizon (USD M)")
    keys = ("revenue", "margin", "internal_cost", "shortfall_cost", "net", "backlog_at_end")
    series: list[tuple[str, list[float]]] = [
        (p["scenario"]["name"], [p["totals"][k] / 1e6 for k in keys]) for p in plans
    ]
    if plans and "greedy" in plans[0]:
        series.append(
            (
                f"{plans[0]['scenario']['name']} greedy",
                [plans[0]["greedy"]["totals"][k] / 1e6 for k in keys],
            )
        )
    width = 0.8 / max(len(series), 1)
    at = np.arange(len(keys))
    for i, (tag, values) in enumerate(series):
        bars = ax.bar(at + i * width, values, width, label=tag)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(at + width * (len(series) - 1) / 2, [k.replace("_", " ") for k in keys])
    if series:
        ax.legend(fontsize=8)
    path = out / "comparison.png"
    fig.savefig(path)
    paths.append(path)
    return paths
