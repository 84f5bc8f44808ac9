"""What a replay measured: the cluster over time and each job, summed up as JSON-ready dicts.

The timeline holds, after every event (arrivals, starts, ends, preemptions at one instant),
the state of the cluster until the next event: allocated milli-GPUs, fragmented milli-GPUs
(FGD's measure for the trace's workload), stranded milli-GPUs (free capacity that no
waiting job's shape can use), waiting and running jobs. Means over time are time-weighted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neocloud.placement.jobs import MILLI_PER_GPU, JobId

Floats = NDArray[np.float64]
TIMELINE_POINTS = 100
"""Buckets of the timeline in the JSON report (the charts use every event)."""


@dataclass
class JobRecord:
    """One job's life in the replay (times in seconds)."""

    submit: float
    milli: int
    first_start: float | None = None
    start: float | None = None
    """Start of the current run (None while waiting)."""
    end: float | None = None
    busy: float = 0.0
    """Seconds it ran in all, preempted runs included."""
    preempted: int = 0


@dataclass
class Timeline:
    """The cluster's state after each event, as a step function of time."""

    t: list[float] = field(default_factory=list)
    allocated: list[float] = field(default_factory=list)
    fragmented: list[float] = field(default_factory=list)
    stranded: list[float] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)

    def record(
        self,
        t: float,
        allocated: float,
        fragmented: float,
        stranded: float,
        waiting: int,
        running: int,
    ) -> None:
        if self.t and self.t[-1] == t:  # a later event at the same instant wins
            self.t.pop()
            self.allocated.pop()
            self.fragmented.pop()
            self.stranded.pop()
            self.waiting.pop()
            self.running.pop()
        self.t.append(t)
        self.allocated.append(allocated)
        self.fragmented.append(fragmented)
        self.stranded.append(stranded)
        self.waiting.append(waiting)
        self.running.append(running)

    def widths(self) -> Floats:
        """How long each recorded state lasted (the last one: until the end, so 0)."""
        t = np.asarray(self.t, dtype=np.float64)
        return np.diff(t, append=t[-1]) if t.size else t

    def integral(self, values: list[float] | list[int]) -> float:
        """Time integral of a recorded series (unit x seconds)."""
        return float(np.dot(np.asarray(values, dtype=np.float64), self.widths()))

    def between(self, values: list[float] | list[int], start: float, end: float) -> float:
        """Time integral of a recorded series over [start, end] (unit x seconds)."""
        t = np.asarray(self.t, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if not t.size:
            return 0.0
        lo = np.clip(t, start, end)
        hi = np.clip(np.append(t[1:], t[-1]), start, end)
        return float(np.dot(v, hi - lo))

    def buckets(
        self, values: list[float] | list[int], points: int, until: float
    ) -> tuple[Floats, Floats]:
        """Time-weighted means over `points` equal spans from the first event to `until`:
        (span starts, means)."""
        t = np.asarray(self.t, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        end = min(until, t[-1]) if t.size else until
        if t.size < 2 or end <= t[0]:
            return t[:1], v[:1]
        cum = np.concatenate([[0.0], np.cumsum(v[:-1] * np.diff(t))])
        edges = np.linspace(t[0], end, points + 1)
        i = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, t.size - 1)
        at = cum[i] + v[i] * (edges - t[i])
        return edges[:-1], np.diff(at) / np.diff(edges)


def percentile(values: Floats, q: float) -> float | None:
    """The q-th percentile by nearest rank (a value that occurred), None for no values."""
    if not values.size:
        return None
    return float(np.percentile(values, q, method="inverted_cdf"))


def spread(values: Floats) -> dict[str, float | None]:
    """p50, p99, mean and max of durations in seconds."""
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": float(values.mean()) if values.size else None,
        "max": float(values.max()) if values.size else None,
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    *,
    total_milli: int,
    records: dict[JobId, JobRecord],
    timeline: Timeline,
    preemption_reasons: Counter[str],
    unplaceable: dict[JobId, str],
) -> dict[str, Any]:
    """The replay's figures (docs/simulate.md defines each).

    Means over time are taken over the arrival window, from the first job's submission to
    the last one's (the whole replay if they coincide): after the last arrival the cluster
    only drains, whatever the policy, and a trace's longest job would otherwise set the
    average. "While waiting" means over the instants when at least one job waits.
    """
    tl = timeline
    started = [r for r in records.values() if r.first_start is not None]
    done = [r for r in started if r.end is not None]
    delay = np.array([r.first_start - r.submit for r in started if r.first_start is not None])
    jct = np.array([r.end - r.submit for r in done if r.end is not None])
    submits = [r.submit for r in records.values()]
    first = min(submits, default=tl.t[0] if tl.t else 0.0)
    last = max(submits, default=first)
    if last <= first and tl.t:
        last = tl.t[-1]
    window = last - first
    free = [total_milli - a for a in tl.allocated]
    waits = np.asarray(tl.waiting) > 0
    wait_s = float(np.dot(waits, tl.widths())) if tl.t else 0.0

    def mean(values: list[float] | list[int], scale: float) -> float | None:
        return tl.between(values, first, last) / scale / window if window > 0 else None

    def while_waiting(values: list[float] | list[int], scale: float) -> float | None:
        if not wait_s:
            return None
        return (
            float(np.dot(np.asarray(values, dtype=np.float64) * waits, tl.widths()))
            / scale
            / wait_s
        )

    free_s = tl.between(free, first, last)
    job_gpu_s = sum(r.milli * r.busy for r in records.values()) / MILLI_PER_GPU
    return {
        "time_s": {
            "arrivals": round(window, 3),
            "replay": round(tl.t[-1] - tl.t[0], 3) if tl.t else 0.0,
        },
        "allocation_rate": {
            "mean": _round(mean(tl.allocated, total_milli)),
            "while_waiting": _round(while_waiting(tl.allocated, total_milli)),
            "peak": _round(max(tl.allocated) / total_milli if tl.t else None),
        },
        "fragmentation": {
            "fragmented_gpus": _round(mean(tl.fragmented, MILLI_PER_GPU), 2),
            "fragmentation_rate": _round(
                tl.between(tl.fragmented, first, last) / free_s if free_s else None
            ),
            "stranded_gpus": _round(mean(tl.stranded, MILLI_PER_GPU), 2),
            "stranded_gpus_while_waiting": _round(while_waiting(tl.stranded, MILLI_PER_GPU), 2),
            "peak_stranded_gpus": _round(max(tl.stranded) / MILLI_PER_GPU if tl.t else None, 2),
        },
        "waiting_seconds": round(wait_s, 1),
        "queueing_delay_s": {k: _round(v, 1) for k, v in spread(delay).items()},
        "jct_s": {k: _round(v, 1) for k, v in spread(jct).items()},
        "jobs": {
            "submitted": len(records) + len(unplaceable),
            "started": len(started),
            "waited": int((delay > 0).sum()),
            "completed": len(done),
            "unplaceable": len(unplaceable),
            "never_started": len(records) - len(started),
        },
        "preemptions": {
            "total": sum(preemption_reasons.values()),
            "jobs": sum(1 for r in records.values() if r.preempted),
            "by_reason": dict(preemption_reasons),
        },
        "unplaceable": {
            "total": len(unplaceable),
            "by_reason": dict(Counter(unplaceable.values()).most_common()),
        },
        "gpu_seconds": {
            "jobs": round(job_gpu_s, 3),
            "allocated": round(tl.integral(tl.allocated) / MILLI_PER_GPU, 3),
        },
    }


def busy_until(records: dict[JobId, JobRecord], timeline: Timeline) -> float:
    """The last submission or start: after it the cluster only drains, whatever the policy."""
    moments = [r.submit for r in records.values()]
    moments += [r.first_start for r in records.values() if r.first_start is not None]
    return max(moments, default=timeline.t[-1] if timeline.t else 0.0)


def timeline_points(
    timeline: Timeline, total_milli: int, until: float, points: int = TIMELINE_POINTS
) -> list[dict[str, float]]:
    """Time-weighted means over `points` equal spans from the first event to `until`."""
    starts, alloc = timeline.buckets(timeline.allocated, points, until)
    _, frag = timeline.buckets(timeline.fragmented, points, until)
    _, stranded = timeline.buckets(timeline.stranded, points, until)
    _, waiting = timeline.buckets(timeline.waiting, points, until)
    t0 = timeline.t[0] if timeline.t else 0.0
    return [
        {
            "t_s": round(float(s - t0), 1),
            "allocation_rate": round(float(a) / total_milli, 4),
            "fragmented_gpus": round(float(f) / MILLI_PER_GPU, 2),
            "stranded_gpus": round(float(x) / MILLI_PER_GPU, 2),
            "waiting_jobs": round(float(w), 2),
        }
        for s, a, f, x, w in zip(starts, alloc, frag, stranded, waiting, strict=True)
    ]
