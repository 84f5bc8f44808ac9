"""GPU fragmentation as FGD measures it: free capacity that the typical jobs cannot use (pure).

After "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient
Descent" (Weng et al., USENIX ATC '23). For a node n and a job shape m:

- if m cannot run on n at all (wrong GPU model, too few fully free GPUs, no GPU with
  `gpu_milli` free), every free milli-GPU of n is a fragment for m: F_n(m) = sum of free;
- otherwise the fragments are the GPUs too full for m: F_n(m) = sum of free_g over the GPUs
  with free_g < m's `gpu_milli` (for whole-GPU shapes: every partly used GPU).

A shape of more GPUs than the node has (a multi-node job) can use the node only whole: F_n
is 0 when the node is fully free, else all its free capacity. The fragmentation of n for a
workload M (shapes with their popularity p_m) is F_n(M) = sum_m p_m F_n(m): the expected free
capacity of n that a typical job cannot use. A cluster's is the sum over its nodes.

F_n depends only on the node's state: its model and the multiset of its GPUs' free shares.
Real clusters have few distinct states (most nodes are empty, full, or alike), so the table
interns states and computes each state's F for each shape once; a node's fragmentation is
then a lookup, and the cluster's a gather and a sum over the nodes that changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from neocloud.placement.cluster import Cluster
from neocloud.placement.jobs import MILLI_PER_GPU, Shape

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def workload(shapes: Iterable[Shape]) -> dict[Shape, float]:
    """The popularity of each shape among the given jobs' shapes (sums to 1)."""
    counts = Counter(shapes)
    total = sum(counts.values())
    return {shape: n / total for shape, n in counts.items()} if total else {}


class FragmentationTable:
    """F(state, shape) for every node state met so far; kept in step with one cluster.

    `workload` maps shapes to popularity (any positive weights; they are normalised). Other
    shapes may be added later as columns (`column`) to ask what they in particular cannot
    use, e.g. the shapes that wait in a queue.
    """

    def __init__(self, cluster: Cluster, workload: Mapping[Shape, float]) -> None:
        self.cluster = cluster
        width = cluster.free.shape[1]
        self._width = width
        self._keys: dict[tuple[int, tuple[int, ...]], int] = {}
        self._state_type: Ints = np.zeros(64, dtype=np.int64)
        self._state_count: Ints = np.zeros(64, dtype=np.int64)
        self._state_free: Ints = np.zeros((64, width), dtype=np.int64)
        self._states = 0
        self._shapes: dict[Shape, int] = {}
        self._shape_gpus: list[int] = []
        self._shape_milli: list[int] = []
        self._shape_types: list[NDArray[np.bool_]] = []
        self._weights: list[float] = []
        self._F: Floats = np.zeros((64, 16))
        self._FM: Floats = np.zeros(64)
        total = float(sum(workload.values()))
        for shape, weight in workload.items():
            if weight > 0:
                self._add_shape(shape, weight / total)
        self.node_state: Ints = np.zeros(len(cluster), dtype=np.int64)
        self._seen: Ints = np.full(len(cluster), -1, dtype=np.int64)
        self._successors: dict[tuple[int, Shape], list[tuple[int, int]]] = {}
        self._least: dict[tuple[int, ...], Floats] = {}  # stranded per state, by shape set

    # --- shapes (columns) ----------------------------------------------------------------

    def column(self, shape: Shape) -> int:
        """The column of a shape (added, with popularity 0, if it is new)."""
        col = self._shapes.get(shape)
        return self._add_shape(shape, 0.0) if col is None else col

    def _add_shape(self, shape: Shape, weight: float) -> int:
        col = len(self._shape_gpus)
        self._shapes[shape] = col
        self._shape_gpus.append(shape.gpus)
        self._shape_milli.append(shape.gpu_milli)
        types = self.cluster.types
        self._shape_types.append(
            np.array([shape.accepts(t) for t in types], dtype=np.bool_)
            if shape.gpu_types
            else np.ones(len(types), dtype=np.bool_)
        )
        self._weights.append(weight)
        if col >= self._F.shape[1]:
            self._F = np.concatenate([self._F, np.zeros_like(self._F)], axis=1)
        n = self._states
        if n:
            self._F[:n, col] = self._frag(
                self._state_type[:n],
                self._state_count[:n],
                self._state_free[:n],
                np.array([shape.gpus]),
                np.array([shape.gpu_milli]),
                self._shape_types[col][None, :],
            )[:, 0]
            if weight:
                self._FM[:n] += weight * self._F[:n, col]
        return col

    # --- states (rows) -------------------------------------------------------------------

    def state(self, gpu_type: int, free: Iterable[int]) -> int:
        """The id of a node state: a GPU model and its GPUs' free milli (in any order)."""
        values = tuple(sorted((int(v) for v in free), reverse=True))
        key = (gpu_type, values)
        sid = self._keys.get(key)
        if sid is not None:
            return sid
        sid = self._states
        if sid >= len(self._FM):
            grow = len(self._FM)
            self._state_type = np.concatenate([self._state_type, np.zeros(grow, np.int64)])
            self._state_count = np.concatenate([self._state_count, np.zeros(grow, np.int64)])
            self._state_free = np.concatenate(
                [self._state_free, np.zeros((grow, self._width), np.int64)]
            )
            self._F = np.concatenate([self._F, np.zeros((grow, self._F.shape[1]))])
            self._FM = np.concatenate([self._FM, np.zeros(grow)])
        self._state_type[sid] = gpu_type
        self._state_count[sid] = len(values)
        self._state_free[sid, : len(values)] = values
        cols = len(self._shape_gpus)
        if cols:
            row = self._frag(
                self._state_type[sid : sid + 1],
                self._state_count[sid : sid + 1],
                self._state_free[sid : sid + 1],
                np.array(self._shape_gpus),
                np.array(self._shape_milli),
                np.array(self._shape_types),
            )[0]
            self._F[sid, :cols] = row
            self._FM[sid] = float(row @ np.array(self._weights))
        self._keys[key] = sid
        self._states += 1
        return sid

    @staticmethod
    def _frag(
        s_type: Ints,
        s_count: Ints,
        s_free: Ints,
        m_gpus: Ints,
        m_milli: Ints,
        m_types: NDArray[np.bool_],
    ) -> Floats:
        """F for states (rows) x shapes (columns), in milli-GPUs."""
        free = s_free[:, None, :]  # state, 1, gpu
        total = s_free.sum(axis=1)[:, None]
        full = (s_free == MILLI_PER_GPU).sum(axis=1)[:, None]
        largest = s_free.max(axis=1)[:, None]
        count = s_count[:, None]
        gpus = m_gpus[None, :]
        milli = m_milli[None, :]
        type_ok = m_types.T[s_type]  # state, shape
        fits = type_ok & np.where(
            gpus > count,
            full == count,
            np.where(milli < MILLI_PER_GPU, largest >= milli, full >= gpus),
        )
        too_full = np.where(free < m_milli[None, :, None], free, 0).sum(axis=2)
        frag: Floats = np.where(fits, too_full, total).astype(np.float64)
        return frag

    # --- the cluster ---------------------------------------------------------------------

    def sync(self) -> None:
        """Bring `node_state` up to date with the nodes that changed since the last call."""
        cluster = self.cluster
        for node in np.flatnonzero(cluster.generation != self._seen):
            count = int(cluster.gpu_count[node])
            self.node_state[node] = self.state(
                int(cluster.node_type[node]), cluster.free[node, :count].tolist()
            )
            self._seen[node] = cluster.generation[node]

    def node_fragmentation(self, state: int) -> float:
        """F_n(M) of a node state, in milli-GPUs."""
        return float(self._FM[state])

    def fragmented_milli(self) -> float:
        """F(M) of the cluster: expected free milli-GPUs that a typical job cannot use."""
        self.sync()
        return float(self._FM[self.node_state].sum())

    def stranded_milli(self, shapes: Iterable[Shape]) -> float:
        """Free milli-GPUs that none of the given shapes can use, on nodes of a model that one
        of them accepts (0 for no shapes): capacity in pieces too small for any of them.

        Nodes of a model that no shape accepts are left out: their capacity is idle, not cut
        up, and it would be idle however the jobs were placed.
        """
        cols = sorted({self.column(s) for s in shapes})
        if not cols:
            return 0.0
        self.sync()
        key = tuple(cols)
        least = self._least.get(key)
        done = 0 if least is None else len(least)
        if done < self._states:  # states met since: compute their rows only
            n = self._states
            accepts = np.array([self._shape_types[c] for c in cols]).T[self._state_type[done:n]]
            rows = np.where(accepts, self._F[done:n, cols], np.inf).min(axis=1)
            rows[np.isinf(rows)] = 0.0  # a model none of the shapes accepts: not counted
            least = rows if least is None else np.concatenate([least, rows])
            if len(self._least) >= 256:
                self._least.clear()
            self._least[key] = least
        assert least is not None
        return float(least[self.node_state].sum())

    def successors(self, state: int, shape: Shape) -> list[tuple[int, int]]:
        """Where a single-node shape can go on a node in `state`: (state after, GPU free before).

        For a fractional shape, one entry per distinct free share that fits (which GPU of
        that share is taken does not matter); for whole GPUs, one entry (fully free GPUs).
        """
        key = (state, shape)
        found = self._successors.get(key)
        if found is not None:
            return found
        count = int(self._state_count[state])
        free = self._state_free[state, :count].tolist()
        gpu_type = int(self._state_type[state])
        out: list[tuple[int, int]] = []
        if shape.fractional:
            for value in sorted(set(free)):
                if value >= shape.gpu_milli:
                    after = list(free)
                    after[after.index(value)] = value - shape.gpu_milli
                    out.append((self.state(gpu_type, after), value))
        elif free.count(MILLI_PER_GPU) >= shape.gpus:
            after = list(free)
            for _ in range(shape.gpus):
                after[after.index(MILLI_PER_GPU)] = 0
            out.append((self.state(gpu_type, after), MILLI_PER_GPU))
        self._successors[key] = out
        return out
