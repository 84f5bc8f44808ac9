"""Where a job goes: node-choice policies (first-fit, best-fit, FGD) and gang placement (pure).

A `Policy` chooses the GPUs of one node for a shape that fits on one node. `place` turns
that into a placement for any job, all or nothing: a job that fits on one node of the
cluster always runs on one node (as the trace's pods do, and as NVLink wants); a larger job
takes whole, fully free nodes of one GPU model plus, if the GPUs don't divide evenly, part of
one more node for the rest.

- `first-fit`: the first node (lowest index) where the shape fits; its first fitting GPUs.
- `best-fit`: the node with the least free capacity among those where it fits; for a share
  of a GPU, the fullest GPU that still has room (packing, as Kubernetes' MostAllocated).
- `fgd`: Fragmentation Gradient Descent: the node and GPU whose placement increases the
  cluster's fragmentation for the workload least (see `placement.fragmentation`); ties go
  to the fuller node, then to the lower index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from neocloud.placement.cluster import Bools, Cluster
from neocloud.placement.fragmentation import FragmentationTable
from neocloud.placement.jobs import MILLI_PER_GPU, Placement, Shape, Slice


class Policy(Protocol):
    """Chooses where on one node a single-node shape goes, or says it fits nowhere now."""

    name: str

    def choose(
        self, cluster: Cluster, shape: Shape, allowed: Bools | None = None
    ) -> Placement | None:
        """GPUs of one node among `allowed` (all nodes when None); None if it fits nowhere."""
        ...


def _on_node(cluster: Cluster, node: int, shape: Shape, gpu: int | None = None) -> Placement:
    """The shape on a node it fits: on GPU `gpu` (a share), or the first fully free GPUs."""
    if shape.fractional:
        chosen = gpu if gpu is not None else int(cluster.gpus_fitting(node, shape.gpu_milli)[0])
        return Placement(((node, chosen),), shape.gpu_milli)
    gpus = cluster.gpus_fitting(node, MILLI_PER_GPU)[: shape.gpus]
    return Placement(tuple((node, int(g)) for g in gpus), MILLI_PER_GPU)


def _candidates(cluster: Cluster, shape: Shape, allowed: Bools | None) -> NDArray[np.int64]:
    fits = cluster.fits(shape)
    return np.flatnonzero(fits if allowed is None else fits & allowed)


class FirstFit:
    name = "first-fit"

    def choose(
        self, cluster: Cluster, shape: Shape, allowed: Bools | None = None
    ) -> Placement | None:
        nodes = _candidates(cluster, shape, allowed)
        return _on_node(cluster, int(nodes[0]), shape) if nodes.size else None


class BestFit:
    name = "best-fit"

    def choose(
        self, cluster: Cluster, shape: Shape, allowed: Bools | None = None
    ) -> Placement | None:
        nodes = _candidates(cluster, shape, allowed)
        if not nodes.size:
            return None
        node = int(nodes[np.argmin(cluster.free_milli[nodes])])
        if not shape.fractional:
            return _on_node(cluster, node, shape)
        gpus = cluster.gpus_fitting(node, shape.gpu_milli)
        gpu = int(gpus[np.argmin(cluster.free[node, gpus])])
        return _on_node(cluster, node, shape, gpu)


class FGD:
    """Fragmentation Gradient Descent over a workload of shapes and their popularity.

    `workload` is what the pool typically runs (e.g. `fragmentation.workload` of the jobs of
    the last weeks); the simulator uses the trace's own jobs, as the paper does. Pass `table`
    to share one `FragmentationTable` (of this cluster) with others, e.g. metrics.
    """

    name = "fgd"

    def __init__(
        self,
        workload: Mapping[Shape, float] | None = None,
        table: FragmentationTable | None = None,
    ) -> None:
        if (workload is None) == (table is None):
            raise ValueError("give FGD a workload or a fragmentation table, one of them")
        self._workload = workload
        self.table = table

    def _table(self, cluster: Cluster) -> FragmentationTable:
        if self.table is None or self.table.cluster is not cluster:
            assert self._workload is not None, "the table given belongs to another cluster"
            self.table = FragmentationTable(cluster, self._workload)
        return self.table

    def choose(
        self, cluster: Cluster, shape: Shape, allowed: Bools | None = None
    ) -> Placement | None:
        nodes = _candidates(cluster, shape, allowed)
        if not nodes.size:
            return None
        table = self._table(cluster)
        table.sync()
        states, first = np.unique(table.node_state[nodes], return_index=True)
        best: tuple[float, int, int] | None = None
        choice = (0, 0)
        for state, pos in zip(states.tolist(), first.tolist(), strict=True):
            before = table.node_fragmentation(state)
            node = int(nodes[pos])
            for after, value in table.successors(state, shape):
                key = (
                    round(table.node_fragmentation(after) - before, 6),
                    int(cluster.free_milli[node]),
                    node,
                )
                if best is None or key < best:
                    best, choice = key, (node, value)
        node, value = choice
        if not shape.fractional:
            return _on_node(cluster, node, shape)
        gpu = int(np.flatnonzero(cluster.free[node] == value)[0])
        return _on_node(cluster, node, shape, gpu)


POLICIES: dict[str, type[FirstFit] | type[BestFit] | type[FGD]] = {
    FirstFit.name: FirstFit,
    BestFit.name: BestFit,
    FGD.name: FGD,
}
"""Node-choice policies by name."""


def place(
    cluster: Cluster, policy: Policy, shape: Shape, allowed: Bools | None = None
) -> Placement | None:
    """A placement for the whole shape now, chosen by `policy`, or None; changes nothing."""
    if cluster.single_node(shape):
        return policy.choose(cluster, shape, allowed)
    ok = (
        cluster.type_ok(shape.gpu_types)
        if allowed is None
        else cluster.type_ok(shape.gpu_types) & allowed
    )
    for code, gpu_type in enumerate(cluster.types):
        of_type = ok & (cluster.node_type == code)
        if cluster.free_milli[of_type].sum() < shape.milli:
            continue
        placement = _gang(cluster, policy, shape.gpus, gpu_type, of_type)
        if placement is not None:
            return placement
    return None


def _gang(
    cluster: Cluster, policy: Policy, gpus: int, gpu_type: str, of_type: Bools
) -> Placement | None:
    """Whole free nodes (largest first, while they fit in what is left), then the rest.

    Each piece is chosen by the policy on the cluster as the pieces before it left it, so
    the pieces are taken tentatively and given back before returning.
    """
    taken: list[Placement] = []
    unused = of_type.copy()
    left = gpus
    types = frozenset({gpu_type})
    try:
        while left:
            whole = unused & (cluster.full == cluster.gpu_count) & (cluster.gpu_count <= left)
            if whole.any():
                size = int(cluster.gpu_count[whole].max())
                allowed = whole & (cluster.gpu_count == size)
            else:
                size, allowed = left, unused
            piece = policy.choose(cluster, Shape(size, MILLI_PER_GPU, types), allowed)
            if piece is None:
                return None
            cluster.allocate(piece)
            taken.append(piece)
            unused[piece.nodes[0]] = False
            left -= size
    finally:
        for piece in reversed(taken):
            cluster.release(piece)
    slices: tuple[Slice, ...] = tuple(s for piece in taken for s in piece.slices)
    return Placement(slices, MILLI_PER_GPU)


def make_policy(
    name: str,
    workload: Mapping[Shape, float] | None = None,
    table: FragmentationTable | None = None,
) -> Policy:
    """A node-choice policy by name; FGD needs the workload (or a table) it minimises for."""
    if name == FGD.name:
        return FGD(workload=workload, table=table) if table is None else FGD(table=table)
    if name == FirstFit.name:
        return FirstFit()
    if name == BestFit.name:
        return BestFit()
    raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICIES)})")


DISCIPLINES = ("fifo", "backfill")
"""Queue disciplines: FIFO, and FIFO with EASY backfill."""


@dataclass(frozen=True)
class PolicySpec:
    """A queue discipline and a node choice: `fifo`, `backfill+fgd`, `best-fit`, ... (the
    missing part defaults to fifo, first-fit). `neocloud simulate --policy` and the live
    pools' `NEOCLOUD_JOB_POLICY` both take it."""

    discipline: str = "fifo"
    node: str = "first-fit"

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """Parts joined by `+`, each a discipline or a node choice; the rest defaults."""
        discipline: str | None = None
        node: str | None = None
        for part in (p.strip().lower() for p in text.split("+")):
            if part in DISCIPLINES and discipline is None:
                discipline = part
            elif part in POLICIES and node is None:
                node = part
            else:
                raise ValueError(
                    f"unknown policy {text!r}: give a discipline ({', '.join(DISCIPLINES)}), "
                    f"a node choice ({', '.join(POLICIES)}), or both joined by '+', "
                    "e.g. backfill+fgd"
                )
        return cls(discipline or "fifo", node or "first-fit")

    def __str__(self) -> str:
        return f"{self.discipline}+{self.node}"
