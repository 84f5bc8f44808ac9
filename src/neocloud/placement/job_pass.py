"""The scheduling pass of the shared pools: the pure job queue driven from the database.

For each site with jobs, under the site's row lock (the one placement's reconcile takes, so
a pass and a reconcile of a site never interleave, however many API processes run them):

1. jobs of contracts no longer in force are cancelled (those not started yet wait);
2. per pool (`job_pools`), a `Cluster` of its nodes now; the running jobs whose GPUs are all
   still in the pool are given back to a `JobQueue` (`restore`), the others are preempted
   and requeued with the reason (`spot capacity reclaimed`, `node failed`, ...);
3. the queued jobs are submitted in their order (priority, then submission): one that could
   never run, even on the pool's ceiling, is marked `unplaceable`; one too big for the pool
   as it is now waits outside this pass;
4. `schedule(now)` starts what it can (FIFO or EASY backfill, first-fit / best-fit / FGD,
   preempting lower-priority spot jobs); starts and preemptions are written back.

Everything is written in the caller's transaction: nothing is half-scheduled.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.contracts.models import Contract, ContractState
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Site
from neocloud.placement import job_pools, store
from neocloud.placement.cluster import Cluster
from neocloud.placement.fragmentation import workload
from neocloud.placement.job_models import Job, JobEvent, JobState
from neocloud.placement.jobs import Job as QueueJob
from neocloud.placement.jobs import Placement, Run, Shape
from neocloud.placement.policies import PolicySpec, make_policy
from neocloud.placement.queue import JobQueue

DEFAULT_POLICY = "backfill+first-fit"
POLICY_ENV = "NEOCLOUD_JOB_POLICY"


def policy_from_env() -> PolicySpec:
    """The pass's policy: `NEOCLOUD_JOB_POLICY`, default backfill+first-fit."""
    return PolicySpec.parse(os.environ.get(POLICY_ENV) or DEFAULT_POLICY)


@dataclass
class PassResult:
    """What a pass changed: job rows started, preempted (with why), ended, unplaceable."""

    started: list[Job] = field(default_factory=list)
    preempted: list[tuple[Job, str]] = field(default_factory=list)
    cancelled: list[Job] = field(default_factory=list)
    unplaceable: list[Job] = field(default_factory=list)


def event(session: Session, job: Job, kind: str, at: datetime, reason: str | None = None) -> None:
    session.add(JobEvent(job_id=job.id, at=at, kind=kind, reason=(reason or None) and reason[:500]))


def schedule(
    session: Session,
    *,
    now: datetime,
    policy: PolicySpec | None = None,
    site_ids: list[int] | None = None,
) -> PassResult:
    """One pass over every site with queued or running jobs (or over `site_ids`)."""
    policy = policy or policy_from_env()
    busy = sa.select(Job.site_id).where(Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
    stmt = sa.select(Site.id).where(Site.id.in_(busy)).order_by(Site.name)  # reconcile's order
    sites = [int(s) for s in session.scalars(stmt)]
    if site_ids is not None:
        sites = [s for s in sites if s in set(site_ids)]
    out = PassResult()
    for site_id in sites:
        schedule_site(session, site_id=site_id, now=now, policy=policy, out=out)
    return out


def schedule_site(
    session: Session, *, site_id: int, now: datetime, policy: PolicySpec, out: PassResult
) -> None:
    store.lock_site(session, site_id)
    jobs = list(
        session.scalars(
            sa.select(Job)
            .where(Job.site_id == site_id, Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
            .order_by(Job.submitted_at, Job.id)
        )
    )
    contracts = {
        c.id: c
        for c in session.scalars(
            sa.select(Contract).where(Contract.id.in_(sorted({j.contract_id for j in jobs})))
        )
    }
    pools: dict[job_pools.PoolKey, list[Job]] = defaultdict(list)
    for job in jobs:
        contract = contracts[job.contract_id]
        if not in_force(contract, now):
            if contract.state in store.HOLDING and as_utc(contract.start_at) > now:
                continue  # not started yet: it waits
            why = "was cancelled" if contract.state is ContractState.CANCELLED else "ended"
            end(session, job, JobState.CANCELLED, now, f"contract {contract.name} {why}")
            out.cancelled.append(job)
            continue
        pools[job_pools.pool_key(job.pool, job.contract_id)].append(job)
    name = session.scalar(sa.select(Site.name).where(Site.id == site_id)) or str(site_id)
    for key in sorted(pools):
        _run_pool(session, site_id, name, key, pools[key], contracts, now, policy, out)


def in_force(contract: Contract, now: datetime) -> bool:
    return contract.state in store.HOLDING and as_utc(contract.start_at) <= now < as_utc(
        contract.end_at
    )


def end(session: Session, job: Job, state: JobState, now: datetime, reason: str | None) -> None:
    """A job is over (finished, cancelled, unplaceable): its GPUs are free again."""
    job.state, job.reason, job.finished_at, job.placement = state, reason, now, None
    event(session, job, state.value, now, reason)


def queue_job(job: Job) -> QueueJob:
    return QueueJob(
        id=job.id,
        gpus=job.gpus,
        gpu_milli=job.gpu_milli,
        gpu_types=frozenset(job.gpu_types or ()),
        priority=job.priority,
        preemptible=job.preemptible,
        duration=None if job.duration_s is None else float(job.duration_s),
        submit_time=as_utc(job.submitted_at).timestamp(),
    )


def _requeue(session: Session, job: Job, now: datetime, reason: str) -> None:
    job.state, job.placement, job.started_at, job.reason = JobState.QUEUED, None, None, reason
    job.preemptions += 1
    event(session, job, "preempted", now, reason)


def _run_pool(
    session: Session,
    site_id: int,
    site_name: str,
    key: job_pools.PoolKey,
    jobs: list[Job],
    contracts: dict[int, Contract],
    now: datetime,
    policy: PolicySpec,
    out: PassResult,
) -> None:
    nodes = job_pools.pool_nodes(session, site_id, key)
    index = {n.id: i for i, n in enumerate(nodes)}
    cluster = job_pools.cluster(nodes)
    queue: JobQueue | None = None
    if cluster is not None:
        shapes = [Shape(j.gpus, j.gpu_milli, frozenset(j.gpu_types or ())) for j in jobs]
        node_policy = make_policy(policy.node, workload=workload(shapes))
        queue = JobQueue(cluster, node_policy, backfill=policy.discipline == "backfill")
    restored: dict[int, Run] = {}
    for job in jobs:
        if job.state is not JobState.RUNNING:
            continue
        pairs = [(int(n), int(g)) for n, g in job.placement or []]
        why: str | None = None
        if (
            queue is None
            or not pairs
            or any(n not in index or g >= nodes[index[n]].gpus for n, g in pairs)
        ):
            why = job_pools.leave_reason(session, key, [n for n, _ in pairs if n not in index])
        else:
            placement = Placement(tuple((index[n], g) for n, g in pairs), job.gpu_milli)
            try:
                start = as_utc(job.started_at or now).timestamp()
                restored[job.id] = queue.restore(queue_job(job), placement, start)
            except ValueError:
                why = "its GPUs were taken by another job"
        if why is not None:
            _requeue(session, job, now, why)
            out.preempted.append((job, why))
    if queue is None:
        return
    by_id = {j.id: j for j in jobs}
    waiting = sorted(
        (j for j in jobs if j.state is JobState.QUEUED), key=lambda j: (j.submitted_at, j.id)
    )
    ceilings: dict[int, Cluster | None] = {}  # per contract, read once a pass
    for job in waiting:
        if queue.submit(queue_job(job)) is None:
            continue
        contract = contracts[job.contract_id]
        if contract.id not in ceilings:
            ceilings[contract.id] = job_pools.ceiling(session, site_id, contract)
        reason = job_pools.never_fits(
            ceilings[contract.id], site_name, contract, queue_job(job).shape
        )
        if reason is not None:
            end(session, job, JobState.UNPLACEABLE, now, reason)
            out.unplaceable.append(job)
    runs = queue.schedule(now.timestamp())
    _write(session, queue, nodes, by_id, restored, runs, now, out)


def _write(
    session: Session,
    queue: JobQueue,
    nodes: list[job_pools.PoolNode],
    by_id: dict[int, Job],
    restored: dict[int, Run],
    runs: list[Run],
    now: datetime,
    out: PassResult,
) -> None:
    """Write back the pass's starts and preemptions, and each job's events in order."""
    started: dict[int, list[Run]] = defaultdict(list)
    for r in runs:
        started[int(r.job.id)].append(r)
    stops: dict[int, list[str]] = defaultdict(list)
    for p in queue.preemptions:
        stops[int(p.job_id)].append(p.reason)
    for job_id in sorted(set(started) | set(stops)):
        job = by_id[job_id]
        # In one pass a job's runs alternate: a restored one is stopped first, a new one is
        # started first.
        todo_runs, todo_stops = list(started[job_id]), list(stops[job_id])
        turn_start = job_id not in restored
        while todo_runs or todo_stops:
            if turn_start and todo_runs:
                event(session, job, "started", now, _where(todo_runs.pop(0), nodes))
            elif todo_stops:
                reason = todo_stops.pop(0)
                event(session, job, "preempted", now, reason)
                out.preempted.append((job, reason))
            turn_start = not turn_start
        job.preemptions += len(stops[job_id])
        run = queue.running.get(job_id)
        if run is not None and run is not restored.get(job_id):
            job.state, job.reason, job.started_at = JobState.RUNNING, None, now
            job.placement = [[nodes[n].id, g] for n, g in run.placement.slices]
            out.started.append(job)
        elif run is None:
            job.state, job.placement, job.started_at = JobState.QUEUED, None, None
            job.reason = stops[job_id][-1]


def _where(run: Run, nodes: list[job_pools.PoolNode]) -> str:
    """Where a run started: node names and GPU indices."""
    gpus: dict[str, list[int]] = defaultdict(list)
    for n, g in run.placement.slices:
        gpus[nodes[n].name].append(g)
    where = "; ".join(f"{name} GPUs {','.join(map(str, sorted(g)))}" for name, g in gpus.items())
    return f"on {where}"
