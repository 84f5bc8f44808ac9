"""GET /v1/engines/kueue/manifests over the world of world.py: every manifest is valid for
Kueue's CRDs, the YAML is the golden file byte for byte (on both databases), and each
contract's ClusterQueue says what its contract type means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neocloud.engines.kueue import yamlio
from neocloud.engines.kueue.crds import CrdSchemas
from tests.contracts.world import book, problem
from tests.engines.kueue.world import AT
from tests.golden import assert_golden

TESTDATA = Path(__file__).parent / "testdata"
SITES = ("east", "north", "west")
PATH = "/v1/engines/kueue/manifests"


def manifests(c: TestClient, site: str, **params: Any) -> list[dict[str, Any]]:
    r = c.get(PATH, params={"site": site, "at": AT, **params})
    assert r.status_code == 200, r.text
    (only,) = r.json()["sites"]
    assert only["site"] == site
    docs: list[dict[str, Any]] = only["manifests"]
    return docs


def quotas(docs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """ClusterQueue -> flavor -> its resource entry (nominalQuota, limits)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        if d["kind"] == "ClusterQueue":
            out[d["metadata"]["name"]] = {
                f["name"]: f["resources"][0]
                for g in d["spec"]["resourceGroups"]
                for f in g["flavors"]
            }
    return out


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("site", SITES)
def test_yaml_is_the_golden_file(kueue_world: TestClient, site: str) -> None:
    r = kueue_world.get(PATH, params={"site": site, "at": AT, "format": "yaml"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    assert_golden(TESTDATA / f"{site}.yaml", r.text)


@pytest.mark.parametrize("version", ["v1beta2", "v1beta1"])
def test_every_manifest_matches_the_kueue_crds(
    kueue_small: TestClient, crds: CrdSchemas, version: str
) -> None:
    r = kueue_small.get(PATH, params={"at": AT, "api_version": version})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["api_version"] == f"kueue.x-k8s.io/{version}"
    assert [s["site"] for s in body["sites"]] == list(SITES)
    docs = [d for s in body["sites"] for d in s["manifests"]]
    kinds = {d["kind"] for d in docs}
    assert kinds == {
        "Topology",
        "ResourceFlavor",
        "Cohort",
        "ClusterQueue",
        "Namespace",
        "LocalQueue",
    }
    for doc in docs:
        assert crds.errors(doc) == [], doc


def test_golden_files_are_valid_too(crds: CrdSchemas) -> None:
    for site in SITES:
        docs = yamlio.load((TESTDATA / f"{site}.yaml").read_text())
        assert docs, site
        crds.validate(docs)


def test_each_contract_type_is_expressed_in_quota(kueue_small: TestClient) -> None:
    east = quotas(manifests(kueue_small, "east"))
    flavor = "east-h100"
    # reserved: its GPUs, nothing borrowed, nothing lent
    assert east["acme-h100"][flavor] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 32,
        "borrowingLimit": 0,
        "lendingLimit": 0,
    }
    # reserved and lendable: all of it may be lent while idle
    assert east["globex-lend"][flavor]["lendingLimit"] == 16
    # internal with a floor of 16: only what is above the floor is ever lent
    assert east["ops-train"][flavor] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 48,
        "borrowingLimit": 0,
        "lendingLimit": 32,
    }
    # spot: owns nothing, borrows up to its GPUs
    assert east["globex-spot"][flavor] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 0,
        "borrowingLimit": 16,
    }
    # on-demand: the uncommitted GPUs (128 - 32 - 16 - 48), lendable to spot while idle
    assert east["east-h100-on-demand"][flavor] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": 32,
        "borrowingLimit": 0,
    }
    west = quotas(manifests(kueue_small, "west"))
    # dedicated-site: every GPU of the site, of each accelerator, nothing lent
    assert west["globex-west"] == {
        "west-gb200": {
            "name": "nvidia.com/gpu",
            "nominalQuota": 144,
            "borrowingLimit": 0,
            "lendingLimit": 0,
        },
        "west-h100": {
            "name": "nvidia.com/gpu",
            "nominalQuota": 32,
            "borrowingLimit": 0,
            "lendingLimit": 0,
        },
    }
    assert west["west-h100-on-demand"]["west-h100"]["nominalQuota"] == 0


def test_queues_preempt_as_their_type_says(kueue_small: TestClient) -> None:
    docs = manifests(kueue_small, "east")
    spot = by_name(docs, "ClusterQueue", "globex-spot")["spec"]
    assert spot["preemption"]["reclaimWithinCohort"] == "Never"
    assert spot["preemption"]["borrowWithinCohort"] == {"policy": "Never"}
    for owner in ("acme-h100", "globex-lend", "ops-train", "east-h100-on-demand"):
        spec = by_name(docs, "ClusterQueue", owner)["spec"]
        assert spec["preemption"]["reclaimWithinCohort"] == "Any", owner
        assert spec["cohortName"] == "east"


def test_tenants_get_namespaces_and_local_queues(kueue_small: TestClient) -> None:
    docs = manifests(kueue_small, "east")
    spaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    assert set(spaces) == {"tenant-acme", "tenant-globex", "tenant-ops"}
    assert spaces["tenant-acme"]["metadata"]["labels"]["neocloud.io/tenant"] == "acme"
    queues = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]["clusterQueue"]
        for d in docs
        if d["kind"] == "LocalQueue"
    }
    assert queues == {
        ("tenant-acme", "acme-h100"): "acme-h100",
        ("tenant-acme", "acme-od"): "east-h100-on-demand",
        ("tenant-globex", "globex-lend"): "globex-lend",
        ("tenant-globex", "globex-spot"): "globex-spot",
        ("tenant-ops", "ops-train"): "ops-train",
    }
    # A contract's queue admits only its tenant's namespaces; the on-demand pool its
    # on-demand tenants'.
    acme = by_name(docs, "ClusterQueue", "acme-h100")["spec"]["namespaceSelector"]
    assert acme == {"matchLabels": {"neocloud.io/tenant": "acme"}}
    pool = by_name(docs, "ClusterQueue", "east-h100-on-demand")["spec"]["namespaceSelector"]
    assert pool["matchExpressions"] == [
        {"key": "neocloud.io/tenant", "operator": "In", "values": ["acme"]}
    ]


def test_flavors_point_at_the_sites_topology(kueue_small: TestClient) -> None:
    docs = manifests(kueue_small, "west")
    topology = by_name(docs, "Topology", "west")
    assert [lv["nodeLabel"] for lv in topology["spec"]["levels"]] == [
        "neocloud.io/fabric",
        "neocloud.io/block",
        "kubernetes.io/hostname",
    ]
    flavors = [d for d in docs if d["kind"] == "ResourceFlavor"]
    assert [f["metadata"]["name"] for f in flavors] == ["west-gb200", "west-h100"]
    for f in flavors:
        assert f["spec"]["topologyName"] == "west"
        assert f["spec"]["nodeLabels"]["neocloud.io/site"] == "west"
    assert flavors[0]["spec"]["nodeLabels"]["neocloud.io/accelerator"] == "GB200"


def test_before_the_contracts_start_only_the_pool_is_there(kueue_small: TestClient) -> None:
    docs = manifests(kueue_small, "east", at="2026-12-31T23:59:00Z")
    assert set(quotas(docs)) == {"east-h100-on-demand"}
    assert quotas(docs)["east-h100-on-demand"]["east-h100"]["nominalQuota"] == 128
    assert not [d for d in docs if d["kind"] in ("Namespace", "LocalQueue")]
    pool = by_name(docs, "ClusterQueue", "east-h100-on-demand")["spec"]
    assert "namespaceSelector" not in pool  # Kueue's null selector: nobody may submit


def test_a_cancelled_contract_gives_its_gpus_back_to_the_pool(kueue_small: TestClient) -> None:
    r = kueue_small.post("/v1/contracts/acme-h100/cancel", json={"reason": "test"})
    assert r.status_code == 200, r.text
    east = quotas(manifests(kueue_small, "east"))
    assert "acme-h100" not in east
    assert east["east-h100-on-demand"]["east-h100"]["nominalQuota"] == 64


def test_a_contract_on_gpus_still_to_be_delivered_gets_a_flavor_without_nodes(
    kueue_small: TestClient, crds: CrdSchemas
) -> None:
    delivery = {
        "name": "north-b200",
        "site": "north",
        "fabric": "nb",
        "accelerator": "B200",
        "nodes": 2,
        "gpus_per_node": 8,
        "power_kw_per_node": "14",
        "expected_on": "2028-02-01",
    }
    assert kueue_small.post("/v1/deliveries", json=delivery).status_code == 201
    term = {"start": "2028-03-01T00:00:00Z", "end": "2028-04-01T00:00:00Z"}
    book(
        kueue_small,
        name="acme-b200",
        tenant="acme",
        type="reserved",
        accelerator="B200",
        gpus=16,
        site="north",
        **term,
    )
    docs = manifests(kueue_small, "north", at="2028-03-02T00:00:00Z")
    crds.validate(docs)
    assert quotas(docs)["acme-b200"]["north-b200"]["nominalQuota"] == 16
    assert quotas(docs)["north-b200-on-demand"]["north-b200"]["nominalQuota"] == 0
    assert by_name(docs, "ResourceFlavor", "north-b200")["spec"]["nodeLabels"] == {
        "neocloud.io/site": "north",
        "neocloud.io/accelerator": "B200",
    }


def test_a_floor_given_as_a_share_is_counted_as_the_calendar_counts_it(
    kueue_small: TestClient,
) -> None:
    # 10% of east's 128 H100 GPUs is 12.8: the floor is 13 GPUs, so 16 - 13 may be lent.
    book(
        kueue_small,
        name="ops-share",
        tenant="ops",
        type="internal",
        accelerator="H100",
        gpus=16,
        site="east",
        lendable=True,
        floors=[{"share": "0.1"}],
        start="2027-01-01T00:00:00Z",
        end="2027-06-01T00:00:00Z",
    )
    east = quotas(manifests(kueue_small, "east"))
    assert east["ops-share"]["east-h100"]["nominalQuota"] == 16
    assert east["ops-share"]["east-h100"]["lendingLimit"] == 3


def test_at_is_rounded_down_to_its_hour(kueue_small: TestClient) -> None:
    r = kueue_small.get(PATH, params={"site": "north", "at": "2027-02-01T10:42:17Z"})
    assert r.status_code == 200, r.text
    assert r.json()["at"].startswith("2027-02-01T10:00:00")


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_instant_out_of_range_is_422_not_a_crash(kueue_small: TestClient, at: str) -> None:
    problem(kueue_small.get(PATH, params={"at": at}), 422, "out of range")


def test_unknown_site_is_404(kueue_small: TestClient) -> None:
    problem(kueue_small.get(PATH, params={"site": "nowhere"}), 404, "nowhere")


def test_unknown_api_version_is_422(kueue_small: TestClient) -> None:
    r = kueue_small.get(PATH, params={"api_version": "v1alpha1"})
    problem(r, 422)
