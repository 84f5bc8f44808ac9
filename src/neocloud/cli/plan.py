"""`neocloud plan`: solve a scenario file — which deals to take, where, what to keep for
internal work — and simulate it under late deliveries and deals that may not close.

Server-side: it reads files and needs no API (a scenario whose fleet is `from: database`
reads the database given by --db / --data-dir). See docs/planning.md.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import typer

from neocloud.cli.common import JsonOpt, console, err_console, fail, print_json, print_table
from neocloud.cli.server import DataDirOpt, DbOpt
from neocloud.planning.data import Scenario
from neocloud.planning.scenario import ScenarioError, load_scenario_file

EXAMPLES = ("plan-pipeline.yaml", "sell-site-1.yaml", "keep-site-1.yaml")


def _resolve(path: Path) -> Path:
    """The file, or a built-in example of that name (sell-site-1.yaml, keep-site-1.yaml)."""
    if path.exists() or path.name not in EXAMPLES or len(path.parts) > 1:
        return path
    return Path(str(resources.files("neocloud.demo") / path.name))


def _load(path: Path, db: str | None, data_dir: Path | None) -> Scenario:
    path = _resolve(path)
    try:
        return load_scenario_file(path)
    except ScenarioError as exc:
        if exc.field != "fleet.from":
            fail(str(exc))
    from neocloud.cli.server import _url
    from neocloud.db.engine import make_engine, make_sessionmaker

    engine = make_engine(_url(db, data_dir))
    try:
        with make_sessionmaker(engine)() as session:
            return load_scenario_file(path, session=session)
    except ScenarioError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:,.1f}M"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _show(report: dict[str, Any]) -> None:
    s = report["scenario"]
    console.print(
        f"[bold]{s['name']}[/bold] ({s['source']}): {s['start']} + {s['horizon']} quarters, "
        f"{len(s['sites'])} sites, {s['deals']} deals — {report['status']}"
    )
    if "infeasible" in report:
        console.print(f"[red]{report['message']}[/red]")
        for item in report["infeasible"]:
            console.print(f"  - {item['message']}")
        return
    t = report["totals"]
    g = report["greedy"]
    console.print(
        f"revenue {_usd(t['revenue'])}, contract margin {_usd(t['margin'])}, internal cost "
        f"{_usd(t['internal_cost'])}, shortfall {_usd(t['shortfall_cost'])}, net {_usd(t['net'])}; "
        f"backlog at the end {_usd(t['backlog_at_end'])}; utilization {_pct(t['mean_utilization'])}, "
        f"internal coverage {_pct(t['mean_internal_coverage'])}; solver gap "
        f"{_pct(report['solver']['gap'])}; "
        f"{_usd(g['optimizer_gain'])} more expected value than the greedy baseline"
    )
    print_table(
        report["accepted"],
        [
            "deal",
            "customer",
            "site",
            "accelerator",
            "gpus",
            "start",
            "end",
            "probability",
            ("revenue", lambda r: _usd(r["revenue"])),
            ("margin", lambda r: _usd(r["margin"])),
            "decided",
        ],
        title="accepted",
    )
    print_table(report["rejected"], ["deal", "customer", "kind", "reason"], title="rejected")
    mc = report.get("montecarlo")
    bands = {q["quarter"]: q for q in mc["quarters"]} if mc else {}

    def band(q: dict[str, Any], key: str, fmt: Any) -> str:
        b = bands.get(q["quarter"])
        if not b:
            return "-"
        return " / ".join(fmt(b[key][k]) for k in ("p10", "p50", "p90"))

    print_table(
        report["quarters"],
        [
            "quarter",
            ("utilization", lambda q: _pct(q["utilization"])),
            ("revenue", lambda q: _usd(q["revenue"])),
            ("margin", lambda q: _usd(q["margin"])),
            ("backlog", lambda q: _usd(q["backlog"])),
            ("internal", lambda q: _pct(q["internal_coverage"])),
            ("revenue P10/P50/P90", lambda q: band(q, "revenue", _usd)),
            ("internal P10/P50/P90", lambda q: band(q, "internal_coverage", _pct)),
        ],
        title=f"per quarter (Monte Carlo: {mc['runs']} runs, seed {mc['seed']})"
        if mc
        else "per quarter",
    )


def plan(
    scenario: Path = typer.Argument(
        ...,
        help="scenario file (YAML), or a built-in example: sell-site-1.yaml, keep-site-1.yaml, plan-pipeline.yaml",
    ),
    compare: Path | None = typer.Option(
        None, "--compare", help="a second scenario to compare with"
    ),
    runs: int = typer.Option(
        1000, "--runs", min=0, max=1_000_000, help="Monte Carlo runs (0: none)"
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the Monte Carlo (same seed, same report)"),
    charts: Path | None = typer.Option(None, "--charts", help="directory for the PNG charts"),
    as_json: bool = JsonOpt,
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
) -> None:
    """Plan a scenario: the deals to take and where, what to keep for internal work, and
    P10/P50/P90 of revenue, utilization and internal coverage under uncertainty."""
    from neocloud.planning.service import render_charts, run_plan

    first = _load(scenario, db, data_dir)
    other = _load(compare, db, data_dir) if compare is not None else None
    show_progress = sys.stderr.isatty() and not as_json

    def progress(fraction: float, message: str) -> None:
        if show_progress:
            err_console.print(f"[dim]{fraction:4.0%} {message}[/dim]")

    report = run_plan(first, compare=other, runs=runs, seed=seed, progress=progress)
    if charts is not None:
        try:
            written = render_charts(report, charts)
        except OSError as exc:
            fail(f"--charts {charts}: cannot write there ({exc.strerror or exc})")
        err_console.print(f"wrote {', '.join(p.name for p in written)} to {charts}")
    if as_json:
        print_json(report)
    else:
        _show(report["plan"])
        if report["compare"] is not None:
            console.print()
            _show(report["compare"])
            d = report["difference"]
            if d and "net" in d:
                console.print(
                    f"\n[bold]{d['plan']} - {d['compare']}[/bold]: net {_usd(d['net'])}, revenue "
                    f"{_usd(d['revenue'])}, backlog {_usd(d['backlog_at_end'])}"
                    + (
                        f"; P50 net {_usd(d['net_p50'])}, P50 internal coverage "
                        f"{d['internal_coverage_p50']:+.1%}"
                        if "net_p50" in d
                        else ""
                    )
                )
    infeasible = [r for r in (report["plan"], report["compare"]) if r and "infeasible" in r]
    if infeasible:
        raise typer.Exit(1)
