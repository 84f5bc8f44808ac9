"""The job queue of a shared pool: FIFO, EASY backfill, and preemption of spot jobs (pure).

Jobs wait in priority order (higher first; equal priorities in submission order). Each
`schedule(now)` pass starts jobs from the front while they fit:

- FIFO stops at the first job that does not fit (it blocks the ones behind it, so no job
  ever starts before an earlier one that fits).
- EASY backfill (as Slurm's backfill does) gives that first blocked job, the head, a
  reservation: the earliest time at which the jobs running now are expected to have freed
  enough of some node (or, for a multi-node job, enough whole nodes) for it, from their
  start plus expected duration. A later job may then start now if it leaves the reserved
  nodes alone, or if it is expected to end by the reserved time: the head is never delayed.
  A job whose duration is unknown is taken to run forever.
- Preemption: a job that does not fit may stop running `preemptible` jobs of lower priority
  (lowest priority first, then the most recently started: the least work lost) on the one
  node where that frees room with the fewest stops. A stopped job is requeued in its old
  place (it keeps its submission order) and starts over; each stop is recorded with its
  reason. `preempt` does the same for reasons from outside (spot capacity reclaimed, a
  drain).

A job that could not run even on the empty cluster is not queued: `submit` says why, and
`unplaceable` keeps it.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from neocloud.placement.cluster import Bools, Cluster
from neocloud.placement.jobs import (
    MILLI_PER_GPU,
    PREEMPTED_FOR_PRIORITY,
    Job,
    JobId,
    Placement,
    Preemption,
    Run,
    Shape,
)
from neocloud.placement.policies import Policy, place

EARLY = 1e-9
"""Seconds before its expected end at which a finish counts as early."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """The head job's promise under backfill: it starts by `start` on `nodes` (or sooner)."""

    job_id: JobId
    start: float
    nodes: tuple[int, ...]


def _fits(free: list[int], shape: Shape) -> bool:
    if shape.fractional:
        return max(free) >= shape.gpu_milli
    return free.count(MILLI_PER_GPU) >= shape.gpus


class JobQueue:
    """Jobs waiting for, and running on, one cluster; `policy` chooses their GPUs."""

    def __init__(
        self, cluster: Cluster, policy: Policy, *, backfill: bool = False, preemption: bool = True
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self.backfill = backfill
        self.preemption = preemption
        self.running: dict[JobId, Run] = {}
        self.preemptions: list[Preemption] = []
        self.unplaceable: dict[JobId, str] = {}
        self.reservation: Reservation | None = None
        self._waiting: list[tuple[tuple[int, float, int], Job]] = []
        self._order: dict[JobId, tuple[int, float, int]] = {}
        self._shapes: Counter[Shape] = Counter()
        self._on_node: defaultdict[int, dict[JobId, None]] = defaultdict(dict)
        self._fresh = False
        self._seq = 0
        self._by_end: list[tuple[float, int, JobId]] = []  # running, by expected end
        self._end_key: dict[JobId, tuple[float, int, JobId]] = {}
        self._spot_by_priority: Counter[int] = Counter()  # running preemptible jobs
        self._spot_milli = np.zeros(len(cluster), dtype=np.int64)  # theirs, per node
        self._unreserved_for: Reservation | None = None
        self._unreserved_mask = np.ones(len(cluster), dtype=np.bool_)

    # --- what is there -------------------------------------------------------------------

    @property
    def waiting(self) -> list[Job]:
        """Waiting jobs in the order they will be considered."""
        return [job for _, job in self._waiting]

    def waiting_shapes(self) -> Collection[Shape]:
        """The distinct shapes of the waiting jobs."""
        return self._shapes.keys()

    def __len__(self) -> int:
        return len(self._waiting)

    # --- changes -------------------------------------------------------------------------

    def submit(self, job: Job) -> str | None:
        """Queue a job; returns why it can never run here (and does not queue it), or None."""
        if job.id in self._order or job.id in self.running or job.id in self.unplaceable:
            raise ValueError(f"job {job.id} was already submitted")
        reason = self.cluster.never_fits(job.shape)
        if reason is not None:
            self.unplaceable[job.id] = reason
            return reason
        self._order[job.id] = (-job.priority, job.submit_time, self._seq)
        self._seq += 1
        self._enqueue(job)
        return None

    def restore(self, job: Job, placement: Placement, start: float) -> Run:
        """Take back a job that was already running on `placement` (e.g. after a restart)."""
        if job.id in self._order or job.id in self.running or job.id in self.unplaceable:
            raise ValueError(f"job {job.id} was already submitted")
        if len(placement.slices) != job.gpus or placement.gpu_milli != job.gpu_milli:
            raise ValueError(f"job {job.id}: the placement does not match the job's shape")
        self.cluster.allocate(placement)  # first: it refuses a placement without room
        self._order[job.id] = (-job.priority, job.submit_time, self._seq)
        self._seq += 1
        self._fresh = False
        return self._track(job, placement, start)

    def cancel(self, job_id: JobId) -> Job:
        """Take a waiting job out of the queue."""
        if job_id in self.running or job_id not in self._order:
            raise KeyError(f"job {job_id} is not waiting")
        key = self._order.pop(job_id)
        i = bisect.bisect_left(self._waiting, key, key=lambda item: item[0])
        _, job = self._waiting.pop(i)
        self._forget_shape(job.shape)
        self._fresh = False
        return job

    def finish(self, job_id: JobId, now: float) -> Run:
        """A running job ended: its GPUs are free again (exactly what it took)."""
        run = self.running.pop(job_id, None)
        if run is None:
            raise KeyError(f"job {job_id} is not running")
        self._order.pop(job_id, None)
        self._stop(run)
        if now < run.expected_end - EARLY:
            self._fresh = False  # capacity came back sooner than the reservation assumed
        return run

    def preempt(
        self, job_id: JobId, now: float, reason: str, by: JobId | None = None
    ) -> Preemption:
        """Stop a running job and requeue it in its old place; the stop is recorded."""
        run = self.running.pop(job_id, None)
        if run is None:
            raise KeyError(f"job {job_id} is not running")
        self._stop(run)
        self._enqueue(run.job)
        self._fresh = False
        stop = Preemption(job_id, now, reason, by)
        self.preemptions.append(stop)
        return stop

    def schedule(self, now: float) -> list[Run]:
        """Start what can start now, in queue order under the queue's discipline."""
        started: list[Run] = []
        while self._pass(now, started):
            pass  # a preemption requeued jobs ahead of where the pass had got to: again
        return started

    # --- inside --------------------------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        bisect.insort(self._waiting, (self._order[job.id], job), key=lambda item: item[0])
        self._shapes[job.shape] += 1

    def _pass(self, now: float, started: list[Run]) -> bool:
        """One pass over the queue; True when it preempted (the pass must start over)."""
        nowhere: set[Shape] = set()  # shapes found to fit on no node now
        elsewhere: set[Shape] = set()  # shapes found to fit on no node the head left free
        head: Job | None = None
        shadow = math.inf
        for _, job in list(self._waiting):
            shape = job.shape
            if head is None:
                placement = place(self.cluster, self.policy, shape)
                if placement is None and self.preemption:
                    placement = self._make_room(job, now)
                    if placement is not None:
                        started.append(self._start(job, placement, now))
                        return True
                if placement is None:
                    if not self.backfill:
                        break
                    head = job
                    nowhere.add(shape)
                    shadow = self._reserve_for(head, now).start
                    continue
                self._fresh = False  # ahead of any head: the next reservation starts anew
            else:
                if shape in nowhere:
                    if len(nowhere) == len(self._shapes):
                        break  # nothing that waits fits anywhere
                    continue
                if shape in elsewhere and (job.duration is None or now + job.duration > shadow):
                    continue
                placement = self._backfill(job, now, nowhere, elsewhere)
                if placement is None:
                    continue
            started.append(self._start(job, placement, now))
        if head is None:
            self.reservation = None
        return False

    def _forget_shape(self, shape: Shape) -> None:
        self._shapes[shape] -= 1
        if not self._shapes[shape]:
            del self._shapes[shape]

    def _reserve_for(self, head: Job, now: float) -> Reservation:
        """Keep the head's reservation while nothing it relied on changed; else compute it."""
        kept = self.reservation
        if not (self._fresh and kept and kept.job_id == head.id and kept.start > now):
            self.reservation = kept = self._reserve(head, now)
            self._fresh = True
        return kept

    def _start(self, job: Job, placement: Placement, now: float) -> Run:
        key = self._order[job.id]
        i = bisect.bisect_left(self._waiting, key, key=lambda item: item[0])
        del self._waiting[i]
        self._forget_shape(job.shape)
        self.cluster.allocate(placement)
        return self._track(job, placement, now)

    def _track(self, job: Job, placement: Placement, now: float) -> Run:
        run = Run(job, placement, now)
        self.running[job.id] = run
        for node in placement.nodes:
            self._on_node[node][job.id] = None
        self._seq += 1
        self._end_key[job.id] = (run.expected_end, self._seq, job.id)
        bisect.insort(self._by_end, self._end_key[job.id], key=lambda k: k[:2])
        if job.preemptible:
            self._spot_by_priority[job.priority] += 1
            for node, _ in placement.slices:
                self._spot_milli[node] += placement.gpu_milli
        return run

    def _stop(self, run: Run) -> None:
        job, placement = run.job, run.placement
        self.cluster.release(placement)
        for node in placement.nodes:
            del self._on_node[node][job.id]
        key = self._end_key.pop(job.id)
        del self._by_end[bisect.bisect_left(self._by_end, key[:2], key=lambda k: k[:2])]
        if job.preemptible:
            self._spot_by_priority[job.priority] -= 1
            if not self._spot_by_priority[job.priority]:
                del self._spot_by_priority[job.priority]
            for node, _ in placement.slices:
                self._spot_milli[node] -= placement.gpu_milli

    def _backfill(
        self, job: Job, now: float, nowhere: set[Shape], elsewhere: set[Shape]
    ) -> Placement | None:
        """A placement that keeps the head's reservation, or None."""
        reservation = self.reservation
        assert reservation is not None
        shape = job.shape
        if shape not in elsewhere:
            placement = place(self.cluster, self.policy, shape, self._unreserved(reservation))
            if placement is not None:
                return placement
            elsewhere.add(shape)
        if job.duration is None or now + job.duration > reservation.start:
            return None
        placement = place(self.cluster, self.policy, shape)
        if placement is None:
            nowhere.add(shape)
        return placement

    def _unreserved(self, reservation: Reservation) -> Bools:
        """Nodes outside the reservation (cached while the reservation stands)."""
        if self._unreserved_for is not reservation:
            allowed = np.ones(len(self.cluster), dtype=np.bool_)
            allowed[list(reservation.nodes)] = False
            self._unreserved_mask, self._unreserved_for = allowed, reservation
        return self._unreserved_mask

    def _reserve(self, job: Job, now: float) -> Reservation:
        """When and where the head is expected to fit, from the running jobs' expected ends."""
        cluster = self.cluster
        shape = job.shape
        could = cluster.type_ok(shape.gpu_types) & (cluster.gpu_count >= shape.gpus)
        if cluster.single_node(shape):
            # Release the runs in the order they are expected to end, until a node fits.
            scratch: dict[int, list[int]] = {}
            for _, _, job_id in self._by_end:
                run = self.running[job_id]
                if math.isinf(run.expected_end):
                    break
                for node, gpu in run.placement.slices:
                    if not could[node]:
                        continue
                    free = scratch.get(node)
                    if free is None:
                        free = scratch[node] = cluster.free[
                            node, : cluster.gpu_count[node]
                        ].tolist()
                    free[gpu] += run.placement.gpu_milli
                    if _fits(free, shape):
                        return Reservation(job.id, max(now, run.expected_end), (node,))
            return Reservation(job.id, math.inf, ())
        ok = cluster.type_ok(shape.gpu_types)
        choice: tuple[float, tuple[int, ...]] = (math.inf, ())
        for code in range(len(cluster.types)):
            nodes = np.flatnonzero(ok & (cluster.node_type == code)).tolist()
            ready = sorted(
                (max((self.running[j].expected_end for j in self._on_node[n]), default=now), n)
                for n in nodes
            )
            gpus = 0
            for i, (at, node) in enumerate(ready):
                gpus += int(cluster.gpu_count[node])
                if gpus >= shape.gpus:
                    if at < choice[0]:
                        choice = (max(now, at), tuple(n for _, n in ready[: i + 1]))
                    break
        return Reservation(job.id, choice[0], choice[1])

    def _make_room(self, job: Job, now: float) -> Placement | None:
        """Stop lower-priority preemptible jobs on one node so that `job` fits there."""
        cluster = self.cluster
        shape = job.shape
        if not cluster.single_node(shape):
            return None
        if not any(p < job.priority for p in self._spot_by_priority):
            return None
        could = (
            cluster.type_ok(shape.gpu_types)
            & (cluster.gpu_count >= shape.gpus)
            & (self._spot_milli > 0)
            & (cluster.free_milli + self._spot_milli >= shape.milli)
        )
        best: tuple[int, float, int, list[Run]] | None = None
        for node in np.flatnonzero(could).tolist():
            victims = sorted(
                (
                    run
                    for j in self._on_node[node]
                    if (run := self.running[j]).job.preemptible and run.job.priority < job.priority
                ),
                key=lambda r: (r.job.priority, -r.start),
            )
            if not victims:
                continue
            count = int(cluster.gpu_count[node])
            free = cluster.free[node, :count].tolist()
            chosen: list[Run] = []
            for run in victims:
                for n, g in run.placement.slices:
                    if n == node:
                        free[g] += run.placement.gpu_milli
                chosen.append(run)
                if _fits(free, shape):
                    lost = sum(r.placement.milli * (now - r.start) for r in chosen)
                    key = (len(chosen), lost, node, chosen)
                    if best is None or key[:3] < best[:3]:
                        best = key
                    break
        if best is None:
            return None
        node = best[2]
        for run in best[3]:
            self.preempt(run.job.id, now, PREEMPTED_FOR_PRIORITY, by=job.id)
        allowed = np.zeros(len(cluster), dtype=np.bool_)
        allowed[node] = True
        placement = self.policy.choose(cluster, shape, allowed)
        assert placement is not None, "the stopped jobs made room on this node"
        return placement
