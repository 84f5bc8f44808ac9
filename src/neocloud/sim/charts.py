"""PNG charts of a replay (matplotlib's Agg backend: no display needed).

`write_charts` draws, from the event-by-event timeline and the per-job records:

- allocation.png: GPU allocation rate over time;
- fragmentation.png: fragmented GPUs (FGD's measure), stranded GPUs (free capacity no
  waiting job's shape can use) and free GPUs over time;
- queue.png: waiting and running jobs over time;
- delays.png: the distributions (CDF) of queueing delay and job completion time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from neocloud.placement.jobs import MILLI_PER_GPU
from neocloud.sim.metrics import busy_until
from neocloud.sim.replay import ReplayResult

CHARTS = ("allocation.png", "fragmentation.png", "queue.png", "delays.png")


def _time_axis(t: list[float], until: float) -> tuple[NDArray[np.float64], float, str]:
    """Times since the first event in a readable unit, the end of the axis, the axis label."""
    x = np.asarray(t, dtype=np.float64)
    t0 = float(x[0]) if x.size else 0.0
    x = x - t0
    span = max(until - t0, 1.0)
    for unit, seconds in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if span >= 3 * seconds:
            return x / seconds, span / seconds, f"{unit} since the first submission"
    return x, span, "seconds since the first submission"


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def write_charts(result: ReplayResult, out: Path) -> list[Path]:
    """Draw the charts into `out` (created if need be); returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    tl = result.timeline
    total = result.cluster.total_milli
    x, end, label = _time_axis(tl.t, busy_until(result.records, tl))
    label += " (until the last start; then the cluster only drains)"
    name = f"{result.policy} on {Path(result.trace.source).name}"
    paths: list[Path] = []

    fig, ax = _figure(f"GPU allocation rate: {name}")
    ax.step(x, np.asarray(tl.allocated) / total, where="post", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, end * 1.02)
    ax.set_xlabel(label)
    ax.set_ylabel("allocated / all GPUs")
    paths.append(out / CHARTS[0])
    fig.savefig(paths[-1])

    fig, ax = _figure(f"Fragmentation: {name}")
    free = (total - np.asarray(tl.allocated, dtype=np.float64)) / MILLI_PER_GPU
    ax.step(x, free, where="post", lw=1, color="0.7", label="free GPUs")
    ax.step(
        x,
        np.asarray(tl.fragmented) / MILLI_PER_GPU,
        where="post",
        lw=1,
        label="fragmented GPUs (FGD, trace workload)",
    )
    ax.step(
        x,
        np.asarray(tl.stranded) / MILLI_PER_GPU,
        where="post",
        lw=1,
        label="stranded GPUs (in pieces no waiting job fits)",
    )
    ax.set_xlim(0, end * 1.02)
    ax.set_xlabel(label)
    ax.set_ylabel("GPUs")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
    paths.append(out / CHARTS[1])
    fig.savefig(paths[-1])

    fig, ax = _figure(f"Jobs: {name}")
    ax.step(x, tl.running, where="post", lw=1, label="running")
    ax.step(x, tl.waiting, where="post", lw=1, label="waiting")
    ax.set_xlim(0, end * 1.02)
    ax.set_xlabel(label)
    ax.set_ylabel("jobs")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
    paths.append(out / CHARTS[2])
    fig.savefig(paths[-1])

    fig, ax = _figure(f"Queueing delay and completion time: {name}")
    records = list(result.records.values())
    series = {
        "queueing delay": [r.first_start - r.submit for r in records if r.first_start is not None],
        "job completion time": [r.end - r.submit for r in records if r.end is not None],
    }
    for what, values in series.items():
        v = np.sort(np.asarray(values, dtype=np.float64))
        if v.size:
            ax.step(np.maximum(v, 1.0), np.arange(1, v.size + 1) / v.size, where="post", label=what)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (values under 1 s drawn at 1 s)")
    ax.set_ylabel("fraction of jobs")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    paths.append(out / CHARTS[3])
    fig.savefig(paths[-1])
    return paths
