"""Node choice: first-fit, best-fit and FGD, gang placement, and what can never fit."""

from __future__ import annotations

import numpy as np
import pytest

from neocloud.placement.cluster import Cluster, GpuNode
from neocloud.placement.fragmentation import FragmentationTable, workload
from neocloud.placement.jobs import Placement, Shape
from neocloud.placement.policies import FGD, BestFit, FirstFit, make_policy, place


def cluster_with(free: list[list[int]], gpu_type: str = "A") -> Cluster:
    """Nodes whose GPUs have the given free milli (allocated by hand)."""
    cluster = Cluster([GpuNode(f"n{i}", gpu_type, len(gpus)) for i, gpus in enumerate(free)])
    for node, gpus in enumerate(free):
        for gpu, milli in enumerate(gpus):
            if milli < 1000:
                cluster.allocate(Placement(((node, gpu),), 1000 - milli))
    return cluster


def test_fgd_avoids_cutting_a_whole_gpu_that_best_and_first_fit_cut() -> None:
    # Node 0 is the fuller node (2000 free) but only has whole GPUs left; node 1 has a
    # 600-milli remnant. For a workload of whole-GPU jobs, half a GPU belongs in the remnant.
    free = [[1000, 1000, 0, 0], [600, 1000, 1000, 1000]]
    half = Shape(1, 500)
    typical = {Shape(1, 1000): 1.0}
    chosen = {}
    frag = {}
    for policy in (FirstFit(), BestFit(), FGD(typical)):
        cluster = cluster_with(free)
        placement = policy.choose(cluster, half)
        assert placement is not None
        chosen[policy.name] = placement.slices
        cluster.allocate(placement)
        frag[policy.name] = FragmentationTable(cluster, typical).fragmented_milli()
    assert chosen == {"first-fit": ((0, 0),), "best-fit": ((0, 0),), "fgd": ((1, 0),)}
    # What a whole-GPU job can no longer use: FGD left only the 100 of the remnant.
    assert frag == {"first-fit": 1100.0, "best-fit": 1100.0, "fgd": 100.0}


def test_best_fit_packs_shares_onto_the_fullest_gpu_that_has_room() -> None:
    cluster = cluster_with([[1000, 1000, 1000, 1000], [1000, 300, 700, 1000]])
    placement = BestFit().choose(cluster, Shape(1, 250))
    assert placement is not None and placement.slices == ((1, 1),)
    assert FirstFit().choose(cluster, Shape(1, 250)) == Placement(((0, 0),), 250)


@pytest.mark.parametrize("policy", [FirstFit(), BestFit(), FGD({Shape(2): 1.0})])
def test_whole_gpus_are_never_taken_from_a_shared_gpu(policy: object) -> None:
    cluster = cluster_with([[900, 1000, 1000], [1000, 1000, 1000, 1000]])
    placement = policy.choose(cluster, Shape(2))  # type: ignore[attr-defined]
    assert placement is not None
    assert len(placement.slices) == 2
    assert all(cluster.free[n, g] == 1000 for n, g in placement.slices)


def test_gpu_type_constraints_are_kept_by_every_policy() -> None:
    nodes = [GpuNode("a", "T4", 2), GpuNode("b", "V100", 8), GpuNode("c", "T4", 2)]
    shape = Shape(1, 1000, frozenset({"V100"}))
    for policy in (FirstFit(), BestFit(), FGD({shape: 1.0})):
        cluster = Cluster(nodes)
        placement = place(cluster, policy, shape)
        assert placement is not None and placement.nodes == (1,)
    cluster = Cluster(nodes)
    assert place(cluster, FirstFit(), Shape(1, 500, frozenset({"A100"}))) is None
    assert cluster.never_fits(Shape(1, 500, frozenset({"A100"}))) == (
        "no GPU of an acceptable model (A100)"
    )


def test_a_job_larger_than_any_node_takes_whole_nodes_and_the_rest_all_or_nothing() -> None:
    cluster = Cluster([GpuNode(f"n{i}", "H100", 8) for i in range(4)])
    cluster.allocate(Placement(((3, 0), (3, 1), (3, 2), (3, 3), (3, 4)), 1000))
    placement = place(cluster, FirstFit(), Shape(19))
    assert placement is not None
    by_node = {n: sum(1 for m, _ in placement.slices if m == n) for n in placement.nodes}
    assert by_node == {0: 8, 1: 8, 2: 3}
    assert cluster.allocated_milli == 5000  # place() only proposes
    # 20 GPUs: two whole nodes, then 4 more on one node; nodes 2 and 3 have 3 free each.
    cluster.allocate(Placement(tuple((2, g) for g in range(5)), 1000))
    before = cluster.free.copy()
    assert place(cluster, FirstFit(), Shape(20)) is None
    assert (cluster.free == before).all()


def test_what_can_never_fit_says_why() -> None:
    cluster = Cluster([GpuNode("a", "T4", 2), GpuNode("b", "V100", 4), GpuNode("c", "V100", 4)])
    assert cluster.never_fits(Shape(8, 1000, frozenset({"V100"}))) is None  # two nodes
    assert cluster.never_fits(Shape(9, 1000, frozenset({"V100"}))) == (
        "needs 9 GPUs of one model; the cluster has at most 8 of an acceptable model"
    )
    assert cluster.never_fits(Shape(10)) is not None  # 10 GPUs exist, but not of one model
    assert cluster.never_fits(Shape(1, 10, frozenset({"T4", "X"}))) is None


def test_allocation_refuses_a_gpu_without_room_and_changes_nothing() -> None:
    cluster = cluster_with([[300, 1000]])
    with pytest.raises(ValueError, match="no room"):
        cluster.allocate(Placement(((0, 1), (0, 0)), 500))
    assert cluster.free[0].tolist() == [300, 1000]
    with pytest.raises(ValueError, match="not allocated"):
        cluster.release(Placement(((0, 1),), 100))


def test_fgd_measure_follows_the_paper_definition() -> None:
    # A T4 node with GPUs free [1000, 400]; workload: half 0.5-GPU jobs, half 1-GPU V100 jobs.
    cluster = cluster_with([[1000, 400]], gpu_type="T4")
    typical = workload([Shape(1, 500), Shape(1, 1000, frozenset({"V100"}))])
    table = FragmentationTable(cluster, typical)
    # 0.5 GPU: only the 400 is too small. V100 jobs cannot run here: all 1400 is fragment.
    assert table.fragmented_milli() == pytest.approx(0.5 * 400 + 0.5 * 1400)
    assert table.stranded_milli([Shape(1, 500)]) == 400
    assert table.stranded_milli([Shape(1, 1000, frozenset({"V100"}))]) == 0  # other model
    assert table.stranded_milli([]) == 0


def test_unknown_policy_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="first-fit, best-fit, fgd"):
        make_policy("random")
    assert make_policy("fgd", workload={Shape(): 1.0}).name == "fgd"
    assert np.array_equal(Cluster([GpuNode("x", "A", 2)]).fits(Shape(3)), [False])
