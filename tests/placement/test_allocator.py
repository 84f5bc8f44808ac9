"""The allocator's choices and invariants, on inventories built by hand and at random."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.capacity.planner import Unit
from neocloud.placement.allocator import (
    Want,
    choose_nodes,
    first_fit,
    fragmentation,
    reconcile,
)
from neocloud.placement.inventory import FREE, SPARE, Inventory, NodeRow

POOL = (1, 1, "f1")
OTHER = (1, 1, "f2")


def site(blocks: dict[str, int], pool: tuple[int, int, str] = POOL, gpus: int = 8) -> list[NodeRow]:
    rows: list[NodeRow] = []
    for name, size in blocks.items():
        for _ in range(size):
            rows.append(NodeRow(len(rows) + 1 + hash(pool) % 1000 * 1000, pool, name, gpus))
    return rows


def consistent(inv: Inventory) -> None:
    """The inventory's per-block free lists agree with its owner and health arrays."""
    for b in range(len(inv.block_names)):
        expected = [
            i
            for i in np.flatnonzero(inv.block == b).tolist()
            if inv.owner[i] == FREE and inv.healthy[i]
        ]
        assert list(inv.free_nodes(b)) == expected


def test_a_request_lands_in_the_smallest_block_that_holds_it_partly_used_first() -> None:
    inv = Inventory.build(site({"a": 4, "b": 4, "c": 8}))
    inv.take([0], 99)  # block a is partly used: 3 free
    nodes = choose_nodes(inv, 0, 3)
    assert {inv.block_names[int(inv.block[i])] for i in nodes} == {"a"}
    # 4 fit in b (whole, 4) or c (whole, 8): the smaller one, so c stays whole.
    nodes = choose_nodes(inv, 0, 4)
    assert {inv.block_names[int(inv.block[i])] for i in nodes} == {"b"}


def test_a_request_no_block_holds_takes_the_largest_blocks_whole_then_the_best_fit() -> None:
    inv = Inventory.build(site({"a": 4, "b": 6, "c": 8, "d": 2}))
    nodes = choose_nodes(inv, 0, 10)
    blocks = sorted(inv.block_names[int(inv.block[i])] for i in nodes)
    assert blocks.count("c") == 8 and blocks.count("d") == 2  # two blocks, not three


def test_contracts_span_fewer_blocks_than_first_fit_and_whole_blocks_stay_whole() -> None:
    rows = site({f"b{i}": 9 for i in range(4)})
    smart, naive = Inventory.build(rows), Inventory.build(rows)
    spans = {}
    for name, inv, choose in (("smart", smart, choose_nodes), ("naive", naive, first_fit)):
        for cid, count in ((1, 5), (2, 5), (3, 3)):
            inv.take(choose(inv, 0, count), cid)
        spans[name] = sum(len(set(inv.block[inv.owner == c].tolist())) for c in (1, 2, 3))
    assert spans == {"smart": 3, "naive": 4}  # first fit splits contract 2 over two blocks
    assert fragmentation(smart, 0).outside_whole_blocks == 5 * 8
    plan = reconcile(smart, [Want(9, POOL, 2 * 72, Unit.BLOCK)])
    assert plan.holdings[0].usable == 2 * 72  # the two untouched blocks


def test_a_failed_node_is_replaced_from_spares_in_the_same_pool() -> None:
    inv = Inventory.build(site({"a": 8, "b": 8}) + site({"x": 8}, OTHER))
    plan = reconcile(inv, [Want(1, POOL, 64)], spare_pct=10)
    mine = plan.holdings[0].nodes
    assert len(mine) == 8 and (inv.owner == SPARE).sum() == 2 + 1  # 10% of 16, of 8
    victim = mine[3]
    inv.set_health(victim, False)
    plan = reconcile(inv, [Want(1, POOL, 64)], spare_pct=10)
    healed = plan.holdings[0]
    assert victim not in healed.nodes and healed.usable == 64 and healed.shortfall == 0
    assert all(inv.pool[i] == 0 for i in healed.nodes)
    reasons = {c.reason for c in plan.changes}
    assert {"failed", "healed", "spare"} <= reasons  # the spare pool was topped up again
    consistent(inv)


def test_a_contract_that_cannot_be_healed_is_short_by_the_failed_gpus() -> None:
    inv = Inventory.build(site({"a": 4}))
    reconcile(inv, [Want(1, POOL, 32)])
    inv.set_health(0, False)
    plan = reconcile(inv, [Want(1, POOL, 32)])
    assert plan.holdings[0].usable == 24 and plan.holdings[0].shortfall == 8


def test_a_block_contract_moves_whole_to_a_free_block_when_one_of_its_nodes_fails() -> None:
    inv = Inventory.build(site({"a": 18, "b": 18}, gpus=4))
    plan = reconcile(inv, [Want(7, POOL, 72, Unit.BLOCK)])
    first = {int(inv.block[i]) for i in plan.holdings[0].nodes}
    inv.set_health(plan.holdings[0].nodes[5], False)
    plan = reconcile(inv, [Want(7, POOL, 72, Unit.BLOCK)])
    now = {int(inv.block[i]) for i in plan.holdings[0].nodes}
    assert len(now) == 1 and now != first and plan.holdings[0].usable == 72
    # With no whole block left it keeps its block and is short by the failed node.
    inv.set_health(plan.holdings[0].nodes[0], False)
    plan = reconcile(inv, [Want(7, POOL, 72, Unit.BLOCK)])
    assert plan.holdings[0].shortfall == 4


def test_an_ended_contract_gives_its_nodes_back() -> None:
    inv = Inventory.build(site({"a": 8}))
    reconcile(inv, [Want(1, POOL, 32), Want(2, POOL, 16)])
    plan = reconcile(inv, [Want(2, POOL, 16)])
    assert (inv.owner == 1).sum() == 0 and (inv.owner == 2).sum() == 2
    assert {c.reason for c in plan.changes} == {"ended"}
    consistent(inv)


# --- at random ----------------------------------------------------------------------------------

wants_st = st.lists(
    st.tuples(st.integers(1, 6), st.sampled_from([POOL, OTHER]), st.integers(1, 12), st.booleans()),
    max_size=6,
)
steps_st = st.lists(
    st.one_of(
        st.tuples(st.just("fail"), st.integers(0, 47)),
        st.tuples(st.just("repair"), st.integers(0, 47)),
        st.tuples(st.just("wants"), wants_st),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(steps_st, st.sampled_from([0.0, 10.0]))
def test_after_any_failures_repairs_and_changes_every_invariant_holds(
    steps: list[tuple[str, object]], spare_pct: float
) -> None:
    rows = site({"a": 8, "b": 8, "c": 8}, gpus=8) + site({"x": 12, "y": 12}, OTHER, gpus=8)
    inv = Inventory.build(rows)
    wants: list[Want] = []
    for kind, arg in steps:
        if kind == "fail":
            inv.set_health(int(arg), False)  # type: ignore[call-overload]
        elif kind == "repair":
            inv.set_health(int(arg), True)  # type: ignore[call-overload]
        else:
            wants = []
            seen = set()
            for cid, pool, nodes, block in arg:  # type: ignore[attr-defined]
                if (cid, pool) in seen:
                    continue
                seen.add((cid, pool))
                unit = Unit.BLOCK if block else Unit.NODE
                gpus = (8 * 8 if pool == POOL else 12 * 8) if block else nodes * 8
                wants.append(Want(cid, pool, gpus, unit))
        before = inv.owner.copy()
        plan = reconcile(inv, wants, spare_pct)
        consistent(inv)
        # The changes account for every difference, and only for those.
        replay = before.copy()
        for c in plan.changes:
            assert replay[c.node] == c.before
            replay[c.node] = c.after
        assert (replay == inv.owner).all()
        held: set[int] = set()
        for h in plan.holdings:
            assert not held & set(h.nodes), "a node held by two contracts"
            held |= set(h.nodes)
            assert all(inv.pools[int(inv.pool[i])] == h.pool for i in h.nodes)
            assert h.usable == min(
                h.contracted, sum(int(inv.gpus[i]) for i in h.nodes if inv.healthy[i])
            )
            p = inv.pools.index(h.pool)
            if any(
                w.unit is Unit.BLOCK
                for w in wants
                if w.contract_id == h.contract_id and w.pool == h.pool
            ):
                # Whole blocks only, a damaged one included (never a node from elsewhere).
                for b in set(inv.block[h.nodes].tolist()):
                    assert (inv.owner[inv.block == b] == h.contract_id).all()
            if h.shortfall and not any(w.unit is Unit.BLOCK for w in wants if w.pool == h.pool):
                # Short only when the pool had nothing healthy left to give.
                free = (inv.pool == p) & inv.healthy & np.isin(inv.owner, [FREE, SPARE])
                assert not free.any()
        # Nodes no wanted contract holds are free or spare.
        owners = set(inv.owner.tolist()) - {FREE, SPARE}
        assert owners <= {w.contract_id for w in wants}
