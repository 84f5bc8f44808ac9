"""The engine protocol's pure parts: desired state from contracts, the diff and its laws."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.contracts.models import ContractType
from neocloud.engines.protocol import (
    Access,
    ContractView,
    EngineObject,
    FabricView,
    NodeView,
    Op,
    apply_actions,
    desired,
    diff,
    obj,
)

END = datetime(2027, 1, 1, tzinfo=UTC)
KINDS = ("qos", "account", "partition", "reservation", "drain")


def node(name: str, state: str = "allocated") -> NodeView:
    return NodeView(name, 8, state)


def view() -> FabricView:
    return FabricView(
        site="east",
        fabric="f1",
        nodes=(
            node("n1"),
            node("n2"),
            node("n3", "failed"),
            node("n4"),
            node("n5", "available"),
            node("n6", "available"),
            node("n7", "burn-in"),
            node("n8"),
        ),
        contracts=(
            ContractView(
                "acme-train",
                "acme",
                ContractType.RESERVED,
                24,
                END,
                nodes=frozenset({"n1", "n2", "n3", "n4"}),
                lent=frozenset({"n4"}),
            ),
            ContractView("spotty", "spotco", ContractType.SPOT, 8, END, nodes=frozenset({"n4"})),
            ContractView("ondemand", "beta", ContractType.ON_DEMAND, 16, END),
            ContractView("research", "ops", ContractType.INTERNAL, 8, END, frozenset({"n8"})),
        ),
        spares=frozenset({"n6"}),
    )


def test_a_reservation_holds_its_healthy_nodes_not_the_lent_ones() -> None:
    want = desired(view())
    by = {e.contract: e for e in want.entitlements}
    assert by["acme-train"].access is Access.RESERVATION
    assert by["acme-train"].nodes == {"n1", "n2"}
    assert by["acme-train"].gpus == 24
    assert want.reserved_nodes == {"n1", "n2"}


def test_spot_runs_on_its_leases_and_shared_work_on_free_and_internal_nodes() -> None:
    want = desired(view())
    assert want.spot_nodes == {"n4"}
    assert want.shared_nodes == {"n5", "n8"}  # n6 is a spare, n7 in burn-in, n3 failed
    assert {e.contract: e.access for e in want.entitlements}["ondemand"] is Access.SHARED


def test_nodes_out_of_service_are_drained_with_neoclouds_reason() -> None:
    assert desired(view()).drained == {"n3": "neocloud: failed", "n7": "neocloud: burn-in"}


def test_a_node_lent_then_given_notice_goes_back_into_the_reservation() -> None:
    v = view()
    owner = v.contracts[0]
    back = FabricView(
        v.site,
        v.fabric,
        v.nodes,
        (
            ContractView(owner.name, owner.tenant, owner.type, owner.gpus, END, owner.nodes),
            ContractView("spotty", "spotco", ContractType.SPOT, 8, END),
            *v.contracts[2:],
        ),
        v.spares,
    )
    want = desired(back)
    assert {e.contract: e.nodes for e in want.entitlements}["acme-train"] == {"n1", "n2", "n4"}
    assert want.spot_nodes == frozenset()


def test_diff_orders_creates_by_kind_and_deletes_first_in_reverse() -> None:
    want = [obj("reservation", "r", nodes=("a",)), obj("qos", "q", gpus=8), obj("account", "t")]
    have = [obj("reservation", "old", nodes=("b",)), obj("qos", "gone", gpus=1)]
    plan = diff(want, have, order=KINDS)
    assert [(a.op, a.key) for a in plan.actions] == [
        (Op.DELETE, "reservation/old"),
        (Op.DELETE, "qos/gone"),
        (Op.CREATE, "qos/q"),
        (Op.CREATE, "account/t"),
        (Op.CREATE, "reservation/r"),
    ]


def test_a_manual_object_is_reported_not_changed() -> None:
    want = [obj("reservation", "r", nodes=("a", "b"))]
    have = [obj("reservation", "r", nodes=("a", "c"))]
    plan = diff(want, have, order=KINDS, manual={"reservation/r"})
    assert plan.actions == ()
    assert [a.describe() for a in plan.held] == ["update reservation/r: nodes a,c -> a,b"]


def test_a_drain_reason_is_carried_but_not_compared() -> None:
    want = [EngineObject("drain", "n3", note="neocloud: failed")]
    have = [EngineObject("drain", "n3", note="bad gpu")]
    assert diff(want, have, order=KINDS).actions == ()


names = st.sampled_from(["a", "b", "c", "d"])
objects = st.lists(
    st.builds(
        lambda kind, name, n, nodes: obj(kind, name, gpus=n, nodes=tuple(sorted(set(nodes)))),
        st.sampled_from(KINDS),
        names,
        st.integers(0, 3),
        st.lists(names, max_size=3),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(objects, objects, st.sets(st.sampled_from([f"{k}/{n}" for k in KINDS for n in "abcd"])))
def test_applying_the_plan_gives_the_desired_state_and_then_nothing_to_do(
    want: list[EngineObject], have: list[EngineObject], manual: set[str]
) -> None:
    want = list({o.key: o for o in want}.values())
    have = list({o.key: o for o in have}.values())
    plan = diff(want, have, order=KINDS, manual=manual)
    after = apply_actions(have, plan.actions)
    again = diff(want, after, order=KINDS, manual=manual)
    assert again.actions == ()  # idempotent: one pass is enough
    assert {a.key for a in again.held} == {a.key for a in plan.held}
    assert not any(a.key in manual for a in plan.actions)
    untouched = {o.key: o for o in have if o.key in manual}
    assert {o.key: o for o in after if o.key in manual} == untouched
    expected = {o.key: o for o in want if o.key not in manual} | untouched
    assert {o.key: o.spec for o in after} == {k: o.spec for k, o in expected.items()}
