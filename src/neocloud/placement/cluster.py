"""The GPUs of a shared pool as arrays: free milli-GPU per GPU, node by node (pure).

`Cluster` is what the job queue and its policies decide on. A node has one GPU model and a
number of GPUs; each GPU has 0..1000 milli-GPUs free. Per node it also keeps what every
placement question asks first (fully free GPUs, the largest free share, the total free), so
that "where does this shape fit?" is one vectorised comparison over all nodes. A change to a
node bumps its `generation`, so that caches built on node states (`FragmentationTable`)
refresh only the nodes that changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from neocloud.placement.jobs import MILLI_PER_GPU, Placement, Shape

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class GpuNode:
    """A node of the pool: its name, GPU model and number of GPUs."""

    name: str
    gpu_type: str
    gpus: int

    def __post_init__(self) -> None:
        if self.gpus < 1:
            raise ValueError(f"node {self.name}: a GPU node has at least one GPU")


class Cluster:
    """Free milli-GPUs of every GPU of a pool's nodes, and allocation that keeps them exact.

    `free[n, g]` is GPU g of node n; a node with fewer GPUs than the largest is padded with
    GPUs that are never free (0), so they fit nothing and count for nothing.
    """

    def __init__(self, nodes: Sequence[GpuNode]) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one GPU node")
        self.nodes: tuple[GpuNode, ...] = tuple(nodes)
        self.types: tuple[str, ...] = tuple(sorted({n.gpu_type for n in nodes}))
        code = {t: i for i, t in enumerate(self.types)}
        self.node_type: Ints = np.array([code[n.gpu_type] for n in nodes], dtype=np.int64)
        self.gpu_count: Ints = np.array([n.gpus for n in nodes], dtype=np.int64)
        width = int(self.gpu_count.max())
        real = np.arange(width)[None, :] < self.gpu_count[:, None]
        self.free: Ints = np.where(real, MILLI_PER_GPU, 0).astype(np.int64)
        self.full: Ints = self.gpu_count.copy()
        """Fully free GPUs per node."""
        self.max_free: Ints = np.full(len(nodes), MILLI_PER_GPU, dtype=np.int64)
        self.free_milli: Ints = self.gpu_count * MILLI_PER_GPU
        self.generation: Ints = np.zeros(len(nodes), dtype=np.int64)
        self.total_milli = int(self.free_milli.sum())
        self.allocated_milli = 0
        self._type_ok: dict[frozenset[str], Bools] = {}
        self._largest: dict[frozenset[str], int] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def total_gpus(self) -> int:
        return int(self.gpu_count.sum())

    @property
    def free_total_milli(self) -> int:
        return self.total_milli - self.allocated_milli

    def gpus_by_type(self) -> dict[str, int]:
        return {t: int(self.gpu_count[self.node_type == i].sum()) for i, t in enumerate(self.types)}

    # --- questions -----------------------------------------------------------------------

    def type_ok(self, gpu_types: frozenset[str]) -> Bools:
        """Nodes whose GPU model is acceptable (all nodes for an empty set); cached."""
        mask = self._type_ok.get(gpu_types)
        if mask is None:
            if gpu_types:
                wanted = np.array([t in gpu_types for t in self.types], dtype=np.bool_)
                mask = wanted[self.node_type]
            else:
                mask = np.ones(len(self.nodes), dtype=np.bool_)
            mask.flags.writeable = False
            self._type_ok[gpu_types] = mask
        return mask

    def largest_node(self, shape: Shape) -> int:
        """GPUs of the largest node of an acceptable model (0 when there is none); cached."""
        largest = self._largest.get(shape.gpu_types)
        if largest is None:
            counts = self.gpu_count[self.type_ok(shape.gpu_types)]
            largest = self._largest[shape.gpu_types] = int(counts.max()) if counts.size else 0
        return largest

    def single_node(self, shape: Shape) -> bool:
        """Whether the shape goes on one node: whenever some acceptable node is big enough."""
        return shape.gpus <= self.largest_node(shape)

    def fits(self, shape: Shape) -> Bools:
        """Nodes that can take the whole shape now, on that node alone."""
        ok = self.type_ok(shape.gpu_types)
        if shape.fractional:
            return ok & (self.max_free >= shape.gpu_milli)
        return ok & (self.full >= shape.gpus)

    def never_fits(self, shape: Shape) -> str | None:
        """Why the shape could not run even on the empty cluster; None when it could."""
        if shape.gpu_types and not set(shape.gpu_types) & set(self.types):
            return f"no GPU of an acceptable model ({'|'.join(sorted(shape.gpu_types))})"
        ok = self.type_ok(shape.gpu_types)
        if self.single_node(shape):
            return None
        per_type = [
            int(self.gpu_count[ok & (self.node_type == i)].sum()) for i in range(len(self.types))
        ]
        if max(per_type) >= shape.gpus:
            return None
        return (
            f"needs {shape.gpus} GPUs of one model; the cluster has at most {max(per_type)} "
            f"of an acceptable model"
        )

    def gpus_fitting(self, node: int, gpu_milli: int) -> Ints:
        """GPU indices of a node with at least `gpu_milli` free, in index order."""
        return np.flatnonzero(self.free[node] >= gpu_milli)

    # --- changes -------------------------------------------------------------------------

    def allocate(self, placement: Placement) -> None:
        """Take a placement's GPUs; all of them or, if one lacks room, none (ValueError)."""
        m = placement.gpu_milli
        seen: set[tuple[int, int]] = set()
        for node, gpu in placement.slices:
            if (
                (node, gpu) in seen
                or not 0 <= gpu < self.gpu_count[node]
                or self.free[node, gpu] < m
            ):
                raise ValueError(f"GPU {gpu} of node {self.nodes[node].name} has no room")
            seen.add((node, gpu))
        for node, gpu in placement.slices:
            self.free[node, gpu] -= m
        self._refresh(placement)
        self.allocated_milli += placement.milli

    def release(self, placement: Placement) -> None:
        """Give a placement's GPUs back (exactly what `allocate` took)."""
        m = placement.gpu_milli
        for node, gpu in placement.slices:
            if self.free[node, gpu] + m > MILLI_PER_GPU:
                raise ValueError(f"GPU {gpu} of node {self.nodes[node].name} was not allocated")
        for node, gpu in placement.slices:
            self.free[node, gpu] += m
        self._refresh(placement)
        self.allocated_milli -= placement.milli

    def _refresh(self, placement: Placement) -> None:
        for node in placement.nodes:
            row = self.free[node]
            self.full[node] = int((row == MILLI_PER_GPU).sum())
            self.max_free[node] = int(row.max())
            self.free_milli[node] = int(row.sum())
            self.generation[node] += 1
