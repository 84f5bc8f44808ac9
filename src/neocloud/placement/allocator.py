"""Which nodes hold which contract: topology-aware choice, and the reconcile plan (pure).

What a contract should hold now comes from the calendar: its claims in force, each GPUs of
one pool (site x accelerator x fabric), so "all in one fabric" is already decided there.
Here those GPUs become nodes:

- whole nodes always (a node belongs to at most one contract); a claim counted in GPUs
  takes enough nodes to cover it;
- `block` claims take whole blocks (NVLink domains), entirely free and healthy;
- otherwise the fewest blocks: the smallest block that fits the whole request, or failing
  that the largest blocks whole and the rest in the smallest that fits; among equals a block
  already partly used before an untouched one, so that whole blocks stay whole for the block
  shapes that are sold (the free capacity stays the least fragmented);
- a contract that already holds nodes in the pool grows (or heals) in the blocks it occupies
  first, and heals from the pool's hot spares before free nodes; a new one takes spares
  only when no free node is left (a contract short of GPUs comes before the spare pool);
- a failed node is taken off its contract and replaced; a block contract whose block lost a
  node moves to a whole free block if there is one, else keeps the damaged block and is
  short by the failed GPUs;
- each pool keeps `spare_pct` of its healthy nodes as hot spares, taken from partly used
  blocks first.

`reconcile` compares what each contract holds with what it should hold, changes the
inventory in place and returns every change with its reason, plus each contract's
contracted and usable GPUs (a contract short of GPUs is degraded).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neocloud.capacity.calendar import PoolKey
from neocloud.capacity.planner import Unit
from neocloud.placement.inventory import FREE, SPARE, Ints, Inventory


@dataclass(frozen=True)
class Want:
    """GPUs of one pool that a contract should hold now."""

    contract_id: int
    pool: PoolKey
    gpus: int
    unit: Unit = Unit.NODE


@dataclass(frozen=True)
class Change:
    """A node changing hands: `before` and `after` are owners (contract id, FREE or SPARE)."""

    node: int  # inventory index
    before: int
    after: int
    reason: str  # placed | grown | shrunk | ended | failed | healed | moved | spare | unspared


@dataclass
class Holding:
    """What a contract holds in one pool after the reconcile."""

    contract_id: int
    pool: PoolKey
    contracted: int
    nodes: list[int]
    usable: int

    @property
    def shortfall(self) -> int:
        return max(0, self.contracted - self.usable)


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)

    def by_contract(self) -> dict[int, list[Holding]]:
        out: dict[int, list[Holding]] = defaultdict(list)
        for h in self.holdings:
            out[h.contract_id].append(h)
        return dict(out)


# --- choosing nodes -----------------------------------------------------------------------------


def choose_nodes(inv: Inventory, pool: int, count: int, prefer: Ints | None = None) -> list[int]:
    """Up to `count` free healthy nodes of a pool, in the fewest blocks (see the module's
    docstring); blocks in `prefer` first. Fewer when the pool has fewer."""
    chosen: list[int] = []
    if count <= 0:
        return chosen
    if prefer is not None and prefer.size:
        order = prefer[np.argsort(-inv.free_count(prefer), kind="stable")]
        for b in order.tolist():
            there = inv.free_nodes(b)
            chosen += there[: min(len(there), count - len(chosen))]
            if len(chosen) == count:
                return chosen
    blocks = inv.blocks_of(pool)
    if prefer is not None and prefer.size:
        blocks = blocks[~np.isin(blocks, prefer)]
    free = inv.free_count(blocks)
    keep = free > 0
    blocks, free = blocks[keep], free[keep]
    whole = inv.whole_free(blocks)
    remaining = count - len(chosen)
    while remaining > 0 and blocks.size:
        fits = np.flatnonzero(free >= remaining)
        if fits.size:
            # The smallest block that holds the rest; a partly used one before a whole one.
            k = int(fits[np.lexsort((whole[fits], free[fits]))[0]])
            chosen += inv.free_nodes(int(blocks[k]))[:remaining]
            return chosen
        k = int(np.argmax(free))  # the largest block, whole
        chosen += inv.free_nodes(int(blocks[k]))
        remaining -= int(free[k])
        blocks, free, whole = np.delete(blocks, k), np.delete(free, k), np.delete(whole, k)
    return chosen


def choose_blocks(inv: Inventory, pool: int, count: int) -> list[int]:
    """Up to `count` entirely free healthy blocks of a pool (their nodes)."""
    blocks = inv.blocks_of(pool)
    whole = blocks[inv.whole_free(blocks) & (inv.block_size[blocks] > 0)]
    nodes: list[int] = []
    for b in whole[:count].tolist():
        nodes += inv.free_nodes(b)
    return nodes


def first_fit(inv: Inventory, pool: int, count: int) -> list[int]:
    """The baseline: the first free nodes of the pool in index order, blocks ignored."""
    chosen: list[int] = []
    for b in inv.blocks_of(pool).tolist():
        chosen += inv.free_nodes(b)[: count - len(chosen)]
        if len(chosen) == count:
            break
    return chosen


def nodes_for(inv: Inventory, pool: int, gpus: int) -> int:
    """Whole nodes that cover `gpus` in a pool."""
    return math.ceil(gpus / max(1, inv.gpus_per_node(pool)))


def blocks_for(inv: Inventory, pool: int, gpus: int) -> int:
    blocks = inv.blocks_of(pool)
    size = int(np.max(inv.block_gpus[blocks])) if blocks.size else 0
    return math.ceil(gpus / size) if size else 0


# --- the reconcile ------------------------------------------------------------------------------

Mover = Callable[[list[int], int, str], None]
"""Hands nodes to an owner, recording why."""


def reconcile(inv: Inventory, wants: list[Want], spare_pct: float = 0.0) -> Plan:
    """Bring the inventory to what `wants` asks (see the module's docstring); returns the
    changes made, in order, and every wanted contract's holdings."""
    plan = Plan()
    wanted: dict[tuple[int, int], Want] = {}
    missing: list[Want] = []
    for w in wants:
        p = inv.pool_index(w.pool)
        if p is None:
            missing.append(w)
        else:
            wanted[(w.contract_id, p)] = w

    def move(nodes: list[int], after: int, reason: str) -> None:
        _move(inv, plan, nodes, after, reason)

    # 1. What nobody wants any more goes back; failed nodes leave their contracts.
    held = np.flatnonzero(inv.owner > 0)
    by_owner: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in held.tolist():
        by_owner[(int(inv.owner[i]), int(inv.pool[i]))].append(i)
    for key, nodes in sorted(by_owner.items()):
        if key not in wanted:
            move(nodes, FREE, "ended")
    # 2. Each wanted contract, largest first (big shapes find whole blocks before small ones
    #    break them), then by id.
    order = sorted(wanted.items(), key=lambda kv: (-kv[1].gpus, kv[0]))
    #    What contracts give up (failed nodes, shrinking) goes first, so that what others
    #    need can come from it.
    failed: set[tuple[int, int]] = set()
    for (cid, p), w in order:
        mine = by_owner.get((cid, p), [])
        if w.unit is Unit.BLOCK:
            _block_release(inv, p, w, mine, move)
        elif _node_release(inv, p, w, mine, move):
            failed.add((cid, p))
    for (cid, p), w in order:
        mine = by_owner.get((cid, p), [])
        if w.unit is Unit.BLOCK:
            _block_fill(inv, p, w, mine, move)
        else:
            _node_fill(inv, p, w, mine, (cid, p) in failed, move)
    # 3. Hot spares per pool.
    if spare_pct > 0 or (inv.owner == SPARE).any():
        for p in range(len(inv.pools)):
            _spares(inv, p, spare_pct, move)
    now_held: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in np.flatnonzero(inv.owner > 0).tolist():
        now_held[(int(inv.owner[i]), int(inv.pool[i]))].append(i)
    for (cid, p), w in wanted.items():
        nodes = now_held.get((cid, p), [])
        usable = sum(int(inv.gpus[i]) for i in nodes if inv.healthy[i])
        plan.holdings.append(Holding(cid, w.pool, w.gpus, nodes, min(usable, w.gpus)))
    for w in missing:
        plan.holdings.append(Holding(w.contract_id, w.pool, w.gpus, [], 0))
    return plan


def place(inv: Inventory, want: Want) -> Plan:
    """Bring one contract's holding in one pool to `want` (place it, grow or shrink it, or
    heal it after a failure), leaving every other contract as it is."""
    plan = Plan()
    p = inv.pool_index(want.pool)
    if p is None:
        plan.holdings.append(Holding(want.contract_id, want.pool, want.gpus, [], 0))
        return plan

    def move(nodes: list[int], after: int, reason: str) -> None:
        _move(inv, plan, nodes, after, reason)

    mine = np.flatnonzero((inv.owner == want.contract_id) & (inv.pool == p)).tolist()
    if want.unit is Unit.BLOCK:
        _block_release(inv, p, want, mine, move)
        _block_fill(inv, p, want, mine, move)
    else:
        failed = _node_release(inv, p, want, mine, move)
        _node_fill(inv, p, want, mine, failed, move)
    nodes = np.flatnonzero((inv.owner == want.contract_id) & (inv.pool == p)).tolist()
    usable = sum(int(inv.gpus[i]) for i in nodes if inv.healthy[i])
    plan.holdings.append(
        Holding(want.contract_id, want.pool, want.gpus, nodes, min(usable, want.gpus))
    )
    return plan


def _move(inv: Inventory, plan: Plan, nodes: list[int], after: int, reason: str) -> None:
    for i in nodes:
        plan.changes.append(Change(i, int(inv.owner[i]), after, reason))
    if after == FREE:
        inv.give_back(nodes)
        return
    for i in nodes:
        if inv.owner[i] != FREE:
            inv.give_back([i])  # a spare handed over, or a node moving between owners
    inv.take(nodes, after)


def _node_release(inv: Inventory, p: int, w: Want, mine: list[int], move: Mover) -> bool:
    """Take failed nodes off the contract, and what it no longer needs (where it is
    thinnest, so what it keeps stays in few blocks). Whether any node had failed."""
    failed = [i for i in mine if not inv.healthy[i]]
    if failed:
        move(failed, FREE, "failed")
    healthy = [i for i in mine if inv.healthy[i]]
    need = nodes_for(inv, p, w.gpus)
    if len(healthy) > need:
        counts: dict[int, int] = defaultdict(int)
        for i in healthy:
            counts[int(inv.block[i])] += 1
        extra = sorted(healthy, key=lambda i: (counts[int(inv.block[i])], -i))
        move(extra[: len(healthy) - need], FREE, "shrunk")
    return bool(failed)


def _node_fill(inv: Inventory, p: int, w: Want, mine: list[int], failed: bool, move: Mover) -> None:
    """Give the contract the nodes it lacks."""
    healthy = [i for i in mine if inv.owner[i] == w.contract_id]
    deficit = nodes_for(inv, p, w.gpus) - len(healthy)
    if deficit <= 0:
        return
    occupied = np.unique(inv.block[healthy]) if healthy else None
    running = bool(mine)
    reason = "healed" if failed else ("grown" if running else "placed")

    def from_spares(deficit: int) -> int:
        spares = np.flatnonzero((inv.owner == SPARE) & (inv.pool == p) & inv.healthy)
        if not spares.size:
            return deficit
        near = (
            np.isin(inv.block[spares], occupied)
            if occupied is not None
            else np.zeros(spares.size, dtype=bool)
        )
        taken = spares[np.lexsort((spares, ~near))][:deficit].tolist()
        move(taken, w.contract_id, reason)
        return deficit - len(taken)

    # A running contract heals (or grows) from the pool's hot spares first, near its nodes;
    # a new one takes free nodes first, and spares only when the pool has no free ones left.
    if running:
        deficit = from_spares(deficit)
    if deficit > 0:
        nodes = choose_nodes(inv, p, deficit, occupied)
        move(nodes, w.contract_id, reason)
        deficit -= len(nodes)
    if deficit > 0 and not running:
        from_spares(deficit)


def _blocks_held(inv: Inventory, w: Want, p: int) -> dict[int, list[int]]:
    blocks: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero((inv.owner == w.contract_id) & (inv.pool == p)).tolist():
        blocks[int(inv.block[i])].append(i)
    return blocks


def _block_release(inv: Inventory, p: int, w: Want, mine: list[int], move: Mover) -> None:
    """Give up the blocks the contract no longer needs (damaged ones first), and the nodes
    it holds in blocks it does not hold whole (it held them by node before)."""
    if not mine:
        return
    blocks = _blocks_held(inv, w, p)
    for b in [b for b, nodes in blocks.items() if len(nodes) < inv.block_size[b]]:
        move(blocks.pop(b), FREE, "moved")
    extra = len(blocks) - blocks_for(inv, p, w.gpus)
    if extra > 0:
        damaged = sorted(blocks, key=lambda b: (all(inv.healthy[i] for i in blocks[b]), -b))
        for b in damaged[:extra]:
            move(blocks[b], FREE, "shrunk")


def _block_fill(inv: Inventory, p: int, w: Want, mine: list[int], move: Mover) -> None:
    """Move the contract off damaged blocks where a whole free block exists, and give it
    the blocks it lacks."""
    for _b, nodes in sorted(_blocks_held(inv, w, p).items()):
        if all(inv.healthy[i] for i in nodes):
            continue
        whole = choose_blocks(inv, p, 1)
        if whole:
            move(nodes, FREE, "moved")
            move(whole, w.contract_id, "healed")
    lacking = blocks_for(inv, p, w.gpus) - len(_blocks_held(inv, w, p))
    if lacking > 0:
        move(choose_blocks(inv, p, lacking), w.contract_id, "grown" if mine else "placed")


def _spares(inv: Inventory, p: int, spare_pct: float, move: Mover) -> None:
    in_pool = inv.pool == p
    bad = np.flatnonzero(in_pool & (inv.owner == SPARE) & ~inv.healthy).tolist()
    if bad:
        move(bad, FREE, "failed")
    target = math.ceil(spare_pct / 100 * int((in_pool & inv.healthy).sum()))
    spares = np.flatnonzero(in_pool & (inv.owner == SPARE) & inv.healthy)
    if spares.size > target:
        move(spares[target:].tolist()[::-1], FREE, "unspared")
    elif spares.size < target:
        move(choose_nodes(inv, p, target - int(spares.size)), SPARE, "spare")


# --- measures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fragmentation:
    """Free GPUs of a pool, and how many of them a shape that is sold cannot use."""

    free_gpus: int
    outside_whole_blocks: int
    """Free GPUs in blocks that are not entirely free: no whole-block contract can use them."""
    whole_fabric: bool
    """Whether the whole pool (fabric) is free: a whole-fabric contract could take it."""


def fragmentation(inv: Inventory, pool: int) -> Fragmentation:
    blocks = inv.blocks_of(pool)
    free_nodes = inv.free_count(blocks)
    per_node = inv.block_gpus[blocks] // np.maximum(inv.block_size[blocks], 1)
    free_gpus = free_nodes * per_node
    whole = inv.whole_free(blocks)
    return Fragmentation(
        int(free_gpus.sum()),
        int(free_gpus[~whole].sum()),
        bool(whole.all()) and bool(blocks.size),
    )
