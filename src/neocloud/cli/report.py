"""`neocloud report NAME`: the operator's reports (revenue, backlog, revenue-per-mw,
utilization, concentration, capacity-split) as headline figures and a chart in the console,
as JSON, or as a PNG file (registered in cli/main.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from neocloud.cli.common import JsonOpt, api, console, fail, print_json, settings
from neocloud.client.download import download
from neocloud.client.http import ApiError

COLORS = ["blue", "dark_orange", "green", "magenta", "red", "grey50", "yellow"]
SPARKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 48
HIDDEN = {"report", "chart", "periods", "sites", "contracts", "top_five", "reference"}


def report(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="the report; leave out to list them"),
    start: str | None = typer.Option(None, "--start", help="from (ISO date or time, UTC)"),
    end: str | None = typer.Option(None, "--end", help="until (ISO date or time, UTC)"),
    step: str | None = typer.Option(None, "--step", help="day, week, month, quarter or year"),
    as_of: str | None = typer.Option(None, "--as-of", help="money recognized before this"),
    currency: str = typer.Option("USD", "--currency"),
    png: Path | None = typer.Option(None, "--png", help="also write the chart to this PNG file"),
    as_json: bool = JsonOpt,
) -> None:
    """Revenue, backlog, revenue per MW, utilization, concentration or the internal vs
    external split, with a chart (reports:read; see docs/reports.md)."""
    params = {"start": start, "end": end, "step": step, "as_of": as_of, "currency": currency}
    with api(ctx) as client:
        if name is None:
            listed = client.get("/v1/reports")
            if as_json:
                print_json(listed)
                return
            for info in listed:
                steps = ", ".join(info["steps"])
                console.print(f"[bold]{info['name']}[/bold]  {info['description']} ({steps})")
            return
        data = client.get(f"/v1/reports/{name}", **params)
    if png is not None:
        _write_png(ctx, name, params, png)
    if as_json:
        print_json(data)
        return
    _headline(data)
    draw(data["chart"])
    if png is not None:
        typer.echo(f"chart written to {png}")


def _write_png(ctx: typer.Context, name: str, params: dict[str, Any], path: Path) -> None:
    url, token = settings(ctx).resolve()
    try:
        with (
            download(url, token, f"/v1/reports/{name}", {**params, "format": "png"}) as got,
            path.open("wb") as out,
        ):
            for chunk in got.chunks:
                out.write(chunk)
    except ApiError as exc:
        fail(f"{exc.status}: {exc.detail}" if exc.status else exc.detail)
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")


def _headline(data: dict[str, Any]) -> None:
    """The report's own figures (everything but its series), as one table."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if key in HIDDEN or value is None or value == {}:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


def compact(value: Decimal, unit: str) -> str:
    """1234567 -> 1.23M; shares as percentages."""
    if unit == "share":
        return f"{value * 100:.1f}%"
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def sparkline(values: list[Decimal]) -> str:
    top = max(values, default=Decimal(0))
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(7, int(v / top * 7))] if v > 0 else " " for v in values)


def draw(chart: dict[str, Any]) -> None:
    """A console rendering of a report's chart: stacked bars, bars, or sparklines."""
    unit = chart["unit"]
    labels: list[str] = chart["labels"]
    series = [(s["name"], [Decimal(v) for v in s["values"]]) for s in chart["series"]]
    console.print(Text(chart["title"], style="bold"))
    if not labels or not series:
        console.print("(nothing to show)")
        return
    if chart["kind"] == "line":
        width = max(len(n) for n, _ in series)
        for name, values in series:
            last = compact(values[-1], unit)
            console.print(
                f"{name:<{width}}  {sparkline(values)}  {labels[0]} .. {labels[-1]}, last {last}"
            )
        return
    totals = [sum((v[i] for _, v in series), Decimal(0)) for i in range(len(labels))]
    scale = max(totals, default=Decimal(0))
    width = max(len(label) for label in labels)
    for i, label in enumerate(labels):
        line = Text(f"{label:<{width}} ")
        for k, (_, values) in enumerate(series):
            cells = int(values[i] / scale * BAR_WIDTH) if scale > 0 and values[i] > 0 else 0
            line.append("█" * cells, style=COLORS[k % len(COLORS)])
        line.append(f" {compact(totals[i], unit)}")
        console.print(line)
    if len(series) > 1:
        legend = Text()
        for k, (name, _) in enumerate(series):
            legend.append("█ ", style=COLORS[k % len(COLORS)])
            legend.append(f"{name}   ")
        console.print(legend)
    if chart.get("reference") is not None:
        console.print(
            f"reference: {chart.get('reference_label') or ''} = {compact(Decimal(chart['reference']), unit)}"
        )
