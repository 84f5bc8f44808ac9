"""Replay a trace through the live job queue and policy code, event by event (pure).

Time jumps from event to event: at each instant, jobs that end are finished first, then the
jobs that arrive are submitted, then the queue schedules, and the cluster's state is
recorded. A started job runs for its trace runtime; the queue plans with its expected
duration (the same figure, in both adapters: estimates are exact). A preempted job is
requeued by the queue and starts over. The classes are `placement.queue.JobQueue`,
`placement.policies` and `placement.cluster.Cluster`, the very ones the live pools use.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neocloud.placement.cluster import Cluster
from neocloud.placement.fragmentation import FragmentationTable, workload
from neocloud.placement.jobs import JobId
from neocloud.placement.policies import PolicySpec, make_policy
from neocloud.placement.queue import JobQueue
from neocloud.sim.adapters import Fleet, Trace
from neocloud.sim.metrics import JobRecord, Timeline, busy_until, summarize, timeline_points

Progress = Callable[[int, int], None]
"""Called with (jobs submitted so far, jobs in the trace) as the replay goes."""


@dataclass
class ReplayResult:
    """What the replay saw: per job, over time, and the figures summed up."""

    policy: PolicySpec
    fleet: Fleet
    trace: Trace
    cluster: Cluster
    records: dict[JobId, JobRecord]
    timeline: Timeline
    preemptions: Counter[str]
    unplaceable: dict[JobId, str]
    seconds: float
    compress: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, *, with_timeline: bool = True) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        cluster = self.cluster
        report: dict[str, Any] = {
            "policy": str(self.policy),
            "cluster": {
                "source": self.fleet.source,
                "nodes": len(cluster),
                "gpus": cluster.total_gpus,
                "gpus_by_model": cluster.gpus_by_type(),
                "cpu_only_nodes_left_out": self.fleet.cpu_only,
            },
            "trace": {
                "source": self.trace.source,
                "gpu_jobs": len(self.trace.jobs),
                "no_gpu_jobs_left_out": self.trace.no_gpu,
                "compress": self.compress,
            },
            **summarize(
                total_milli=cluster.total_milli,
                records=self.records,
                timeline=self.timeline,
                preemption_reasons=self.preemptions,
                unplaceable=self.unplaceable,
            ),
            "replay_seconds": round(self.seconds, 3),
        }
        if with_timeline:
            until = busy_until(self.records, self.timeline)
            report["timeline"] = timeline_points(self.timeline, cluster.total_milli, until)
        return report


def replay(
    fleet: Fleet,
    trace: Trace,
    policy: PolicySpec,
    *,
    preemption: bool = True,
    compress: float = 1.0,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay `trace` on `fleet` with `policy`; every job is placed or reported unplaceable."""
    if not compress > 0 or not math.isfinite(compress):
        raise ValueError(f"compress must be a positive number, not {compress}")
    began = time.perf_counter()
    trace_in = trace.compressed(compress)
    cluster = Cluster(fleet.nodes)
    jobs = trace_in.jobs
    runnable = [tj.job.shape for tj in jobs if cluster.never_fits(tj.job.shape) is None]
    table = FragmentationTable(cluster, workload(runnable))
    node_policy = make_policy(policy.node, table=table)
    queue = JobQueue(
        cluster, node_policy, backfill=policy.discipline == "backfill", preemption=preemption
    )
    runtime = {tj.job.id: tj.runtime for tj in jobs}
    records: dict[JobId, JobRecord] = {}
    timeline = Timeline()
    ends: list[tuple[float, int, JobId]] = []  # (end, start order, job): runs under way
    current: dict[JobId, int] = {}  # job -> start order of its live run
    order = 0
    i, n = 0, len(jobs)
    seen_stops = 0
    while i < n or ends:
        now = min(jobs[i].job.submit_time if i < n else math.inf, ends[0][0] if ends else math.inf)
        while ends and ends[0][0] <= now:
            _, token, job_id = heapq.heappop(ends)
            if current.get(job_id) != token:
                continue  # that run was preempted
            del current[job_id]
            run = queue.finish(job_id, now)
            rec = records[job_id]
            rec.busy += now - run.start
            rec.end, rec.start = now, None
        while i < n and jobs[i].job.submit_time <= now:
            job = jobs[i].job
            i += 1
            if queue.submit(job) is None:
                records[job.id] = JobRecord(job.submit_time, job.shape.milli)
        started = queue.schedule(now)
        for stop in queue.preemptions[seen_stops:]:
            rec = records[stop.job_id]
            assert rec.start is not None
            rec.busy += now - rec.start
            rec.start = None
            rec.preempted += 1
            current.pop(stop.job_id, None)
        seen_stops = len(queue.preemptions)
        for run in started:
            rec = records[run.job.id]
            rec.start = now
            if rec.first_start is None:
                rec.first_start = now
            order += 1
            current[run.job.id] = order
            heapq.heappush(ends, (now + runtime[run.job.id], order, run.job.id))
        timeline.record(
            now,
            cluster.allocated_milli,
            table.fragmented_milli(),
            table.stranded_milli(queue.waiting_shapes()) if len(queue) else 0.0,
            len(queue),
            len(queue.running),
        )
        if progress is not None:
            progress(i, n)
    return ReplayResult(
        policy=policy,
        fleet=fleet,
        trace=trace,
        cluster=cluster,
        records=records,
        timeline=timeline,
        preemptions=Counter(p.reason for p in queue.preemptions),
        unplaceable=dict(queue.unplaceable),
        seconds=time.perf_counter() - began,
        compress=compress,
    )
