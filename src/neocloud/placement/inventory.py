"""A site's nodes as arrays, and who holds each one: what allocation decides on (pure).

Nodes sit in blocks (an NVLink domain such as an NVL72 rack, or a group of HGX nodes on one
leaf switch) and blocks in pools (site x accelerator x fabric: the calendar's pools). Each
node is held by at most one owner: a contract (its id), the pool's hot spares (`SPARE`), or
nobody (`FREE`). Only healthy nodes (in service) are handed out.

Per block, the inventory keeps the free healthy nodes (lowest index first) and their count,
so choosing nodes costs a look at one pool's blocks, never a scan of the site.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from neocloud.capacity.calendar import PoolKey

Ints = NDArray[np.int64]
FREE = 0
SPARE = -1
"""Owners that are not contracts (contract ids are positive)."""


@dataclass(frozen=True)
class NodeRow:
    """One node, as the database (or a simulator) describes it."""

    id: int
    pool: PoolKey
    block: str
    gpus: int
    healthy: bool = True
    owner: int = FREE


@dataclass
class Inventory:
    """Nodes as parallel arrays (index = position in `node_id`), grouped by block and pool."""

    node_id: Ints
    pool: Ints  # index into `pools`
    block: Ints  # index into `block_names`
    gpus: Ints
    healthy: NDArray[np.bool_]
    owner: Ints
    pools: list[PoolKey]
    block_names: list[str]
    block_pool: Ints  # the pool of each block
    block_size: Ints  # nodes per block
    block_gpus: Ints  # GPUs per block when every node is there
    _free: list[list[int]] = field(default_factory=list, repr=False)
    """Per block: its free healthy nodes, lowest index first."""
    _free_count: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    _pool_blocks: list[Ints] = field(default_factory=list, repr=False)
    _index: dict[int, int] = field(default_factory=dict, repr=False)
    _node_size: dict[int, int] = field(default_factory=dict, repr=False)

    @staticmethod
    def build(rows: Iterable[NodeRow]) -> Inventory:
        """An inventory of these nodes (sorted by pool, block and id, so that choices are
        the same whatever order the rows came in)."""
        ordered = sorted(rows, key=lambda r: (r.pool, r.block, r.id))
        pools = sorted({r.pool for r in ordered})
        pool_ix = {p: i for i, p in enumerate(pools)}
        block_keys = sorted({(r.pool, r.block) for r in ordered})
        block_ix = {b: i for i, b in enumerate(block_keys)}
        n = len(ordered)
        inv = Inventory(
            node_id=np.fromiter((r.id for r in ordered), np.int64, n),
            pool=np.fromiter((pool_ix[r.pool] for r in ordered), np.int64, n),
            block=np.fromiter((block_ix[(r.pool, r.block)] for r in ordered), np.int64, n),
            gpus=np.fromiter((r.gpus for r in ordered), np.int64, n),
            healthy=np.fromiter((r.healthy for r in ordered), np.bool_, n),
            owner=np.fromiter((r.owner for r in ordered), np.int64, n),
            pools=pools,
            block_names=[b[1] for b in block_keys],
            block_pool=np.fromiter((pool_ix[b[0]] for b in block_keys), np.int64, len(block_keys)),
            block_size=np.zeros(len(block_keys), dtype=np.int64),
            block_gpus=np.zeros(len(block_keys), dtype=np.int64),
        )
        inv._index_all()
        return inv

    def _index_all(self) -> None:
        nb = len(self.block_names)
        self.block_size = np.bincount(self.block, minlength=nb).astype(np.int64)
        self.block_gpus = np.bincount(self.block, weights=self.gpus, minlength=nb).astype(np.int64)
        free = self.healthy & (self.owner == FREE)
        self._free = [[] for _ in range(nb)]
        for i in np.flatnonzero(free).tolist():
            self._free[int(self.block[i])].append(i)
        self._free_count = np.array([len(f) for f in self._free], dtype=np.int64)
        order = np.argsort(self.block_pool, kind="stable")
        bounds = np.searchsorted(self.block_pool[order], np.arange(len(self.pools) + 1))
        self._pool_blocks = [order[bounds[p] : bounds[p + 1]] for p in range(len(self.pools))]
        self._index = {int(nid): i for i, nid in enumerate(self.node_id.tolist())}

    # --- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.node_id.size)

    def index_of(self, node_id: int) -> int:
        """The position of a node (KeyError if the inventory does not have it)."""
        return self._index[node_id]

    def pool_index(self, key: PoolKey) -> int | None:
        try:
            return self.pools.index(key)
        except ValueError:
            return None

    def blocks_of(self, pool: int) -> Ints:
        """The blocks of a pool (indices)."""
        return self._pool_blocks[pool]

    def free_count(self, blocks: Ints) -> Ints:
        """Free healthy nodes in each of `blocks`."""
        return self._free_count[blocks]

    def free_nodes(self, block: int) -> Sequence[int]:
        return self._free[block]

    def held_by(self, owner: int) -> Ints:
        """The nodes an owner holds (indices)."""
        return np.flatnonzero(self.owner == owner)

    def whole_free(self, blocks: Ints) -> NDArray[np.bool_]:
        """Which of `blocks` are entirely free and healthy."""
        return np.asarray(self._free_count[blocks] == self.block_size[blocks], dtype=np.bool_)

    def gpus_per_node(self, pool: int) -> int:
        """The pool's usual node size (its most common; nodes' sizes never change)."""
        size = self._node_size.get(pool)
        if size is None:
            sizes = self.gpus[self.pool == pool]
            if sizes.size == 0:
                size = 8
            else:
                values, counts = np.unique(sizes, return_counts=True)
                size = int(values[np.argmax(counts)])
            self._node_size[pool] = size
        return size

    # --- changing -----------------------------------------------------------------------------

    def take(self, nodes: Iterable[int], owner: int) -> None:
        """Give free healthy nodes to `owner`."""
        for i in nodes:
            assert self.owner[i] == FREE and self.healthy[i], f"node {i} is not free"
            b = int(self.block[i])
            self._free[b].remove(i)
            self._free_count[b] -= 1
            self.owner[i] = owner

    def give_back(self, nodes: Iterable[int]) -> None:
        """Return nodes to nobody (healthy ones become free again)."""
        for i in nodes:
            if self.owner[i] == FREE:
                continue
            self.owner[i] = FREE
            if self.healthy[i]:
                self._add_free(i)

    def set_health(self, node: int, healthy: bool) -> None:
        """A node fails (stays with its owner until healing moves the owner off it) or comes
        back from repair."""
        if bool(self.healthy[node]) == healthy:
            return
        self.healthy[node] = healthy
        b = int(self.block[node])
        if self.owner[node] == FREE:
            if healthy:
                self._add_free(node)
            else:
                self._free[b].remove(node)
                self._free_count[b] -= 1

    def _add_free(self, i: int) -> None:
        b = int(self.block[i])
        free = self._free[b]
        # Keep the list sorted: nodes are handed out lowest index first.
        lo, hi = 0, len(free)
        while lo < hi:
            mid = (lo + hi) // 2
            if free[mid] < i:
                lo = mid + 1
            else:
                hi = mid
        free.insert(lo, i)
        self._free_count[b] += 1
