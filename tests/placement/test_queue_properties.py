"""Property-based tests of the job queue: random clusters and job streams, every policy.

A small event loop drives `JobQueue` the way the live pools and the simulator do (ends,
then arrivals, then a scheduling pass) and checks the invariants after every operation.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.placement.cluster import Cluster, GpuNode
from neocloud.placement.fragmentation import workload
from neocloud.placement.jobs import MILLI_PER_GPU, PREEMPTED_FOR_PRIORITY, Job, JobId, Run
from neocloud.placement.policies import make_policy, place
from neocloud.placement.queue import JobQueue

POLICIES = ("first-fit", "best-fit", "fgd")

nodes_st = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.sampled_from([1, 2, 4, 8])), min_size=1, max_size=4
)


@st.composite
def job_st(draw: st.DrawFn, *, priorities: bool = True) -> dict[str, object]:
    if draw(st.booleans()):
        gpus, milli = 1, draw(st.integers(1, 9)) * 100
    else:
        gpus, milli = draw(st.sampled_from([1, 1, 2, 3, 4, 8, 12])), MILLI_PER_GPU
    return {
        "gpus": gpus,
        "gpu_milli": milli,
        "gpu_types": frozenset(draw(st.sets(st.sampled_from(["A", "B", "C"]), max_size=2))),
        "priority": draw(st.integers(0, 2)) if priorities else 0,
        "preemptible": draw(st.booleans()) if priorities else False,
        "duration": float(draw(st.integers(0, 20))),
        "submit_time": float(draw(st.integers(0, 30))),
    }


def make_jobs(specs: list[dict[str, object]]) -> list[Job]:
    jobs = [Job(id=i, **spec) for i, spec in enumerate(specs)]  # type: ignore[arg-type]
    return sorted(jobs, key=lambda j: j.submit_time)


@dataclass
class Log:
    starts: dict[JobId, float] = field(default_factory=dict)
    ends: dict[JobId, float] = field(default_factory=dict)
    passes: int = 0


def check(queue: JobQueue) -> None:
    """GPU accounting is exact, no GPU over-allocated, every running job whole and typed."""
    cluster = queue.cluster
    expected = np.where(
        np.arange(cluster.free.shape[1])[None, :] < cluster.gpu_count[:, None], MILLI_PER_GPU, 0
    )
    for run in queue.running.values():
        job, placement = run.job, run.placement
        assert len(placement.slices) == job.gpus, "a gang job runs on all its GPUs or none"
        assert len(set(placement.slices)) == job.gpus
        assert placement.gpu_milli == job.gpu_milli
        assert len(placement.nodes) == 1 or not cluster.single_node(job.shape)
        for node, gpu in placement.slices:
            assert job.shape.accepts(cluster.nodes[node].gpu_type)
            expected[node, gpu] -= placement.gpu_milli
    assert (expected >= 0).all(), "a GPU holds more than 1000 milli"
    assert (cluster.free == expected).all()
    assert cluster.allocated_milli == sum(r.placement.milli for r in queue.running.values())
    assert not set(queue.running) & {j.id for j in queue.waiting}


def drive(
    nodes: list[tuple[str, int]],
    jobs: list[Job],
    policy: str,
    *,
    backfill: bool,
    preemption: bool,
    after_pass: Callable[[JobQueue, list[Run], float], None] | None = None,
) -> tuple[JobQueue, Log]:
    cluster = Cluster([GpuNode(f"n{i}", t, g) for i, (t, g) in enumerate(nodes)])
    chooser = make_policy(policy, workload=workload(j.shape for j in jobs))
    queue = JobQueue(cluster, chooser, backfill=backfill, preemption=preemption)
    log = Log()
    ends: list[tuple[float, int, JobId]] = []
    live: dict[JobId, int] = {}
    token = 0
    i = 0
    while i < len(jobs) or ends:
        now = min(
            jobs[i].submit_time if i < len(jobs) else float("inf"),
            ends[0][0] if ends else float("inf"),
        )
        while ends and ends[0][0] <= now:
            _, tok, job_id = heapq.heappop(ends)
            if live.get(job_id) != tok:
                continue
            del live[job_id]
            before = cluster.free.copy()
            run = queue.finish(job_id, now)
            for node, gpu in run.placement.slices:
                before[node, gpu] += run.placement.gpu_milli
            assert (cluster.free == before).all(), "finishing gives back exactly what it took"
            log.ends[job_id] = now
            check(queue)
        while i < len(jobs) and jobs[i].submit_time <= now:
            reason = queue.submit(jobs[i])
            assert (reason is None) == (cluster.never_fits(jobs[i].shape) is None)
            i += 1
        seen = len(queue.preemptions)
        started = queue.schedule(now)
        log.passes += 1
        for stop in queue.preemptions[seen:]:
            live.pop(stop.job_id)
        for run in started:
            log.starts.setdefault(run.job.id, now)
            token += 1
            live[run.job.id] = token
            assert run.job.duration is not None
            heapq.heappush(ends, (now + run.job.duration, token, run.job.id))
        check(queue)
        if after_pass is not None:
            after_pass(queue, started, now)
        assert log.passes < 10_000
    return queue, log


def order_key(job: Job, index: dict[JobId, int]) -> tuple[int, float, int]:
    return (-job.priority, job.submit_time, index[job.id])


@settings(max_examples=120, deadline=None)
@given(
    nodes=nodes_st,
    specs=st.lists(job_st(), min_size=1, max_size=25),
    policy=st.sampled_from(POLICIES),
    backfill=st.booleans(),
    preemption=st.booleans(),
)
def test_every_job_runs_once_whole_on_acceptable_gpus_or_is_unplaceable(
    nodes: list[tuple[str, int]],
    specs: list[dict[str, object]],
    policy: str,
    backfill: bool,
    preemption: bool,
) -> None:
    jobs = make_jobs(specs)
    queue, log = drive(nodes, jobs, policy, backfill=backfill, preemption=preemption)
    assert not queue.running and not queue.waiting
    assert set(log.ends) | set(queue.unplaceable) == {j.id for j in jobs}
    assert not set(log.ends) & set(queue.unplaceable)
    assert queue.cluster.allocated_milli == 0
    by_id = {j.id: j for j in jobs}
    for stop in queue.preemptions:
        victim, winner = by_id[stop.job_id], by_id[stop.by]  # type: ignore[index]
        assert stop.reason == PREEMPTED_FOR_PRIORITY
        assert victim.preemptible and victim.priority < winner.priority
    if not preemption:
        assert not queue.preemptions


@settings(max_examples=120, deadline=None)
@given(
    nodes=nodes_st,
    specs=st.lists(job_st(), min_size=1, max_size=25),
    policy=st.sampled_from(POLICIES),
    preemption=st.booleans(),
)
def test_fifo_never_starts_a_job_before_an_earlier_one_that_fits(
    nodes: list[tuple[str, int]], specs: list[dict[str, object]], policy: str, preemption: bool
) -> None:
    jobs = make_jobs(specs)
    index = {j.id: n for n, j in enumerate(jobs)}

    def after_pass(queue: JobQueue, started: list[Run], now: float) -> None:
        waiting = queue.waiting
        if not waiting:
            return
        first = waiting[0]
        assert place(queue.cluster, queue.policy, first.shape) is None, (
            f"job {first.id} fits at {now} but was left waiting"
        )
        earliest_waiting = min(order_key(j, index) for j in waiting)
        for run in started:
            assert order_key(run.job, index) < earliest_waiting, (
                f"job {run.job.id} started ahead of an earlier waiting job"
            )

    drive(nodes, jobs, policy, backfill=False, preemption=preemption, after_pass=after_pass)


@settings(max_examples=150, deadline=None)
@given(
    nodes=nodes_st,
    specs=st.lists(job_st(priorities=False), min_size=1, max_size=25),
    policy=st.sampled_from(POLICIES),
)
def test_easy_backfill_never_delays_the_reserved_head(
    nodes: list[tuple[str, int]], specs: list[dict[str, object]], policy: str
) -> None:
    jobs = make_jobs(specs)
    promised: dict[JobId, float] = {}

    def after_pass(queue: JobQueue, started: list[Run], now: float) -> None:
        res = queue.reservation
        if res is not None:
            assert res.start >= now
            promised[res.job_id] = min(promised.get(res.job_id, res.start), res.start)

    _, log = drive(nodes, jobs, policy, backfill=True, preemption=False, after_pass=after_pass)
    for job_id, start in promised.items():
        assert log.starts[job_id] <= start, (
            f"head {job_id} was promised {start} and started at {log.starts[job_id]}"
        )


@settings(max_examples=60, deadline=None)
@given(
    nodes=nodes_st,
    specs=st.lists(job_st(priorities=False), min_size=2, max_size=25),
    policy=st.sampled_from(POLICIES),
)
def test_backfill_is_fifo_until_a_job_first_waits(
    nodes: list[tuple[str, int]], specs: list[dict[str, object]], policy: str
) -> None:
    jobs = make_jobs(specs)
    fifo_first_block: list[float] = []

    def note_block(queue: JobQueue, started: list[Run], now: float) -> None:
        if queue.waiting and not fifo_first_block:
            fifo_first_block.append(now)

    _, fifo = drive(nodes, jobs, policy, backfill=False, preemption=False, after_pass=note_block)
    _, easy = drive(nodes, jobs, policy, backfill=True, preemption=False)
    if not fifo_first_block:
        assert easy.starts == fifo.starts
        return
    blocked_at = fifo_first_block[0]
    for job_id, start in fifo.starts.items():
        if start < blocked_at:
            assert easy.starts[job_id] == start
