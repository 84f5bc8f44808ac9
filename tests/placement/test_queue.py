"""The job queue's API as the live pools use it: restore, cancel, external preemption."""

from __future__ import annotations

import pytest

from neocloud.placement.cluster import Cluster, GpuNode
from neocloud.placement.jobs import Job, Placement
from neocloud.placement.policies import FirstFit
from neocloud.placement.queue import JobQueue


def two_nodes() -> JobQueue:
    return JobQueue(Cluster([GpuNode("a", "H100", 8), GpuNode("b", "H100", 8)]), FirstFit())


def test_a_restored_job_holds_its_gpus_until_it_finishes() -> None:
    queue = two_nodes()
    whole_a = Placement(tuple((0, g) for g in range(8)), 1000)
    run = queue.restore(Job("old", gpus=8, duration=100, submit_time=0), whole_a, start=0)
    assert queue.running == {"old": run}
    assert queue.submit(Job("new", gpus=16, submit_time=5)) is None
    assert queue.schedule(10) == []  # node a is taken: the 16-GPU job waits
    queue.finish("old", 100)
    assert [r.job.id for r in queue.schedule(100)] == ["new"]
    assert queue.cluster.allocated_milli == 16_000


def test_restoring_onto_gpus_without_room_changes_nothing() -> None:
    queue = two_nodes()
    queue.restore(Job("x", gpu_milli=700), Placement(((0, 0),), 700), start=0)
    with pytest.raises(ValueError, match="no room"):
        queue.restore(Job("y", gpu_milli=500), Placement(((0, 0),), 500), start=0)
    assert "y" not in queue.running
    assert queue.submit(Job("y", gpu_milli=500)) is None  # not half-registered
    with pytest.raises(ValueError, match="does not match"):
        queue.restore(Job("z", gpus=2), Placement(((1, 0),), 1000), start=0)


def test_cancel_and_external_preemption_keep_the_queue_in_order() -> None:
    queue = two_nodes()
    queue.submit(Job("spot", gpus=16, preemptible=True, submit_time=0))
    queue.schedule(0)
    queue.submit(Job("late", gpus=1, submit_time=1))
    queue.submit(Job("later", gpus=1, submit_time=2))
    assert queue.schedule(2) == []
    assert queue.cancel("later").id == "later"
    stop = queue.preempt("spot", 3, "spot capacity reclaimed")
    assert (stop.job_id, stop.reason, stop.by) == ("spot", "spot capacity reclaimed", None)
    assert [j.id for j in queue.waiting] == ["spot", "late"]  # back in its old place
    assert [r.job.id for r in queue.schedule(3)] == ["spot"]
    with pytest.raises(KeyError):
        queue.cancel("spot")
    with pytest.raises(ValueError, match="already submitted"):
        queue.submit(Job("late"))
    with pytest.raises(KeyError):
        queue.finish("nobody", 4)
