"""The mapping and the renderer on hand-built states (pure): what each contract type becomes in
Kueue's quota terms, floors never lent, names, order, and what cannot be expressed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neocloud.contracts.models import ContractType as T
from neocloud.engines.kueue import names, quota
from neocloud.engines.kueue.crds import CrdSchemas
from neocloud.engines.kueue.model import AcceleratorPool, ContractAtSite, Share, SiteState
from neocloud.engines.kueue.render import KIND_ORDER, render

AT = datetime(2027, 2, 1, tzinfo=UTC)
H100 = AcceleratorPool("H100", "NVIDIA", 256)
MI355X = AcceleratorPool("MI355X", "AMD", 64)


def state(*contracts: ContractAtSite, pools: tuple[AcceleratorPool, ...] = (H100,)) -> SiteState:
    return SiteState("east", AT, pools, contracts)


def queue(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "ClusterQueue" and d["metadata"]["name"] == name]
    return found


def resources(cq: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f["name"]: f["resources"][0] for g in cq["spec"]["resourceGroups"] for f in g["flavors"]
    }


# -- the mapping ---------------------------------------------------------------------------


def test_reserved_owns_its_gpus_and_neither_borrows_nor_lends() -> None:
    q = quota.commitment(T.RESERVED, 64, lendable=False)
    assert (q.nominal, q.borrowing_limit, q.lending_limit) == (64, 0, 0)


def test_lendable_lends_all_it_owns() -> None:
    q = quota.commitment(T.RESERVED, 64, lendable=True)
    assert (q.nominal, q.borrowing_limit, q.lending_limit) == (64, 0, 64)


def test_an_internal_floor_is_never_lent() -> None:
    assert quota.commitment(T.INTERNAL, 64, lendable=True, floor=24).lending_limit == 40
    assert quota.commitment(T.INTERNAL, 64, lendable=True, floor=64).lending_limit == 0
    assert quota.commitment(T.INTERNAL, 64, lendable=True, floor=100).lending_limit == 0
    assert quota.commitment(T.INTERNAL, 64, lendable=False, floor=24).lending_limit == 0


@given(gpus=st.integers(0, 10_000), floor=st.integers(0, 20_000), lendable=st.booleans())
def test_what_is_lent_never_reaches_into_the_floor(gpus: int, floor: int, lendable: bool) -> None:
    q = quota.commitment(T.INTERNAL, gpus, lendable=lendable, floor=floor)
    assert q.lending_limit is not None
    assert 0 <= q.lending_limit <= q.nominal
    assert q.nominal - q.lending_limit >= min(floor, gpus)  # kept for itself: the floor
    assert q.borrowing_limit == 0


def test_a_dedicated_site_lends_nothing_even_when_lendable() -> None:
    q = quota.commitment(T.DEDICATED_SITE, 512, lendable=True)
    assert (q.nominal, q.borrowing_limit, q.lending_limit) == (512, 0, 0)


def test_spot_only_borrows_and_a_sizeless_spot_is_unlimited_not_zero() -> None:
    assert quota.spot(16).resource("nvidia.com/gpu") == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 0,
        "borrowingLimit": 16,
    }
    # Kueue reads a missing limit as "no limit"; 0 would mean "may not borrow at all".
    assert quota.spot(None).resource("nvidia.com/gpu") == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 0,
    }


def test_the_on_demand_pool_never_goes_negative() -> None:
    assert quota.on_demand(-8).nominal == 0
    assert quota.on_demand(40).resource("x")["nominalQuota"] == 40


def test_contracts_without_capacity_have_no_commitment_quota() -> None:
    with pytest.raises(ValueError, match="holds no capacity"):
        quota.commitment(T.SPOT, 8, lendable=False)


# -- the renderer ---------------------------------------------------------------------------


def test_the_pool_holds_what_nobody_committed() -> None:
    docs = render(
        state(
            ContractAtSite("a", "acme", T.RESERVED, (Share("H100", 100),)),
            ContractAtSite("i", "ops", T.INTERNAL, (Share("H100", 60, 20),)),
            ContractAtSite("s", "acme", T.SPOT, (Share("H100", 500),)),  # spot commits nothing
        )
    )
    pool = resources(queue(docs, "east-h100-on-demand"))["east-h100"]
    assert pool["nominalQuota"] == 256 - 100 - 60


def test_the_nominal_quotas_of_a_sold_out_site_add_up_to_its_supply() -> None:
    docs = render(
        state(
            ContractAtSite("a", "acme", T.RESERVED, (Share("H100", 200),)),
            ContractAtSite("b", "globex", T.RESERVED, (Share("H100", 56),)),
        )
    )
    total = sum(
        r["nominalQuota"]
        for d in docs
        if d["kind"] == "ClusterQueue"
        for r in resources(d).values()
    )
    assert total == 256


def test_gpus_of_other_vendors_are_counted_in_their_own_resource() -> None:
    docs = render(
        state(
            ContractAtSite("s", "acme", T.SPOT, (Share("H100", 8), Share("MI355X", 4))),
            pools=(H100, MI355X),
        )
    )
    groups = queue(docs, "s")["spec"]["resourceGroups"]
    assert [(g["coveredResources"], [f["name"] for f in g["flavors"]]) for g in groups] == [
        (["amd.com/gpu"], ["east-mi355x"]),
        (["nvidia.com/gpu"], ["east-h100"]),
    ]


def test_an_on_demand_contract_on_every_accelerator_gets_a_queue_per_accelerator() -> None:
    docs = render(
        state(
            ContractAtSite("od", "acme", T.ON_DEMAND, (Share("H100", None), Share("MI355X", None))),
            pools=(H100, MI355X),
        )
    )
    local = {
        d["metadata"]["name"]: d["spec"]["clusterQueue"] for d in docs if d["kind"] == "LocalQueue"
    }
    assert local == {"od-h100": "east-h100-on-demand", "od-mi355x": "east-mi355x-on-demand"}
    assert not [d for d in docs if d["kind"] == "ClusterQueue" and d["metadata"]["name"] == "od"]


def test_manifests_come_in_apply_order_and_the_same_state_renders_the_same() -> None:
    s = state(
        ContractAtSite("zeta", "acme", T.RESERVED, (Share("H100", 8),)),
        ContractAtSite("alpha", "globex", T.SPOT, (Share("H100", 8),)),
    )
    docs = render(s)
    kinds = [KIND_ORDER.index(d["kind"]) for d in docs]
    assert kinds == sorted(kinds)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ClusterQueue"] == [
        "alpha",
        "east-h100-on-demand",
        "zeta",
    ]
    reordered = SiteState(s.site, s.at, s.accelerators, tuple(reversed(s.contracts)))
    assert render(reordered) == docs


def test_v1beta1_names_the_cohort_cohort() -> None:
    docs = render(state(ContractAtSite("a", "acme", T.RESERVED, (Share("H100", 8),))), "v1beta1")
    cq = queue(docs, "a")
    assert cq["apiVersion"] == "kueue.x-k8s.io/v1beta1"
    assert cq["spec"]["cohort"] == "east" and "cohortName" not in cq["spec"]


def test_a_site_without_nodes_renders_nothing() -> None:
    assert render(SiteState("empty", AT, ())) == []


def test_a_contract_on_a_missing_accelerator_is_refused() -> None:
    with pytest.raises(ValueError, match="no such accelerator"):
        render(state(ContractAtSite("a", "acme", T.RESERVED, (Share("B200", 8),))))


def test_two_contracts_that_would_share_a_queue_name_are_refused() -> None:
    with pytest.raises(
        ValueError, match="two ClusterQueue objects would be named 'east-h100-on-demand'"
    ):
        render(
            state(ContractAtSite("east-h100-on-demand", "acme", T.RESERVED, (Share("H100", 8),)))
        )


def test_unknown_api_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Kueue API version"):
        render(state(), "v2")


def test_odd_contract_names_become_valid_distinct_kubernetes_names(crds: CrdSchemas) -> None:
    odd = ("Acme_Train 2027", "acme-train-2027", "ACME.train.2027", "x" * 63, "ünïcode")
    docs = render(state(*(ContractAtSite(n, "acme", T.RESERVED, (Share("H100", 1),)) for n in odd)))
    queues = [
        d
        for d in docs
        if d["kind"] == "ClusterQueue" and d["metadata"]["name"] != "east-h100-on-demand"
    ]
    assert len({q["metadata"]["name"] for q in queues}) == len(odd)
    assert {q["metadata"]["annotations"]["neocloud.io/contract"] for q in queues} == set(odd)
    crds.validate(docs)


@given(st.text(min_size=1, max_size=63))
def test_any_name_becomes_a_dns_label(name: str) -> None:
    label = names.dns_label(name)
    assert names.is_dns_label(label)
    assert names.dns_label(name) == label  # deterministic
    if names.is_dns_label(name):
        assert label == name  # valid names are kept as they are
    assert names.is_label_value(names.label_value(name))


def test_vendor_resources() -> None:
    assert AcceleratorPool("H100", "NVIDIA", 8).resource == "nvidia.com/gpu"
    assert AcceleratorPool("MI355X", "AMD", 8).resource == "amd.com/gpu"
    assert AcceleratorPool("XPU-9", "Example Corp", 8).resource == "examplecorp.com/gpu"
