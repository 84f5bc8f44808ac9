"""Drawing a report's chart as a PNG (matplotlib, Agg: no display needed, thread-safe through
the object API, never pyplot's global state)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from neocloud.billing.report_schemas import Chart, ChartSeries

TOP = 5
COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096", "#b7791f"]


def top_series(
    rows: Sequence[dict[str, Decimal]], totals: Sequence[Decimal], top: int = TOP
) -> list[ChartSeries]:
    """One series per key of the `top` largest over all rows, the rest as "others"."""
    whole: dict[str, Decimal] = {}
    for row in rows:
        for key, value in row.items():
            whole[key] = whole.get(key, Decimal(0)) + value
    keys = [k for k, _ in sorted(whole.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    series = [ChartSeries(name=k, values=[row.get(k, Decimal(0)) for row in rows]) for k in keys]
    others = [
        t - sum((row.get(k, Decimal(0)) for k in keys), Decimal(0))
        for row, t in zip(rows, totals, strict=True)
    ]
    if any(others):
        series.append(ChartSeries(name="others", values=others))
    return series


def compact(value: float, unit: str) -> str:
    """1234567 -> 1.23M; shares as percentages."""
    if unit == "share":
        return f"{value * 100:.0f}%"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def png(chart: Chart) -> bytes:
    """The chart as PNG bytes."""
    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = chart.labels
    xs = list(range(len(labels)))
    if chart.kind == "hbar":
        values = [float(v) for v in chart.series[0].values] if chart.series else []
        ax.barh(labels[::-1], values[::-1], color=COLORS[0])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact(v, chart.unit)))
    elif chart.kind == "line":
        for i, s in enumerate(chart.series):
            ax.plot(xs, [float(v) for v in s.values], label=s.name, color=COLORS[i % len(COLORS)])
    else:
        bottom = [0.0] * len(labels)
        for i, s in enumerate(chart.series):
            values = [float(v) for v in s.values]
            ax.bar(xs, values, bottom=bottom, label=s.name, color=COLORS[i % len(COLORS)])
            if chart.kind == "stacked":
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if chart.kind != "hbar":
        step = max(1, len(labels) // 16)
        ax.set_xticks(xs[::step], labels[::step], rotation=45, ha="right", fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: compact(v, chart.unit)))
    if chart.reference is not None:
        line = ax.axhline(float(chart.reference), color="#c53030", linestyle="--")
        line.set_label(chart.reference_label or "reference")
    if len(chart.series) > 1 or chart.reference is not None:
        ax.legend(fontsize=8)
    ax.set_title(chart.title)
    ax.grid(axis="x" if chart.kind == "hbar" else "y", alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
