"""The CRD validator catches what the API server would refuse: so that "every manifest is
valid" in the other tests means something."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from neocloud.contracts.models import ContractType as T
from neocloud.engines.kueue.crds import CrdSchemas, InvalidManifests, prepare
from neocloud.engines.kueue.model import AcceleratorPool, ContractAtSite, Share, SiteState
from neocloud.engines.kueue.render import render

STATE = SiteState(
    "east",
    datetime(2027, 2, 1, tzinfo=UTC),
    (AcceleratorPool("H100", "NVIDIA", 64),),
    (
        ContractAtSite("acme-h100", "acme", T.RESERVED, (Share("H100", 32),)),
        ContractAtSite("spot", "acme", T.SPOT, (Share("H100", 8),)),
    ),
)


@pytest.fixture
def docs() -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in render(STATE)}


def broken(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)


def test_rendered_manifests_pass(crds: CrdSchemas, docs: dict[str, dict[str, Any]]) -> None:
    crds.validate(docs.values())
    assert ("kueue.x-k8s.io/v1beta2", "ClusterQueue") in crds.kinds
    assert ("kueue.x-k8s.io/v1beta1", "Topology") in crds.kinds


def test_a_misspelt_field_is_refused(crds: CrdSchemas, docs: dict[str, dict[str, Any]]) -> None:
    cq = broken(docs["ClusterQueue/acme-h100"])
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["lendinglimit"] = 3
    (error,) = crds.errors(cq)
    assert "ClusterQueue acme-h100: spec.resourceGroups[0].flavors[0].resources[0]" in error
    assert "lendinglimit" in error


def test_a_bad_quantity_is_refused(crds: CrdSchemas, docs: dict[str, dict[str, Any]]) -> None:
    cq = broken(docs["ClusterQueue/acme-h100"])
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] = "32 GPUs"
    assert any("nominalQuota" in e and "does not match" in e for e in crds.errors(cq))
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] = "32Ki"
    assert crds.errors(cq) == []  # a quantity string is fine


def test_an_unknown_enum_value_is_refused(
    crds: CrdSchemas, docs: dict[str, dict[str, Any]]
) -> None:
    cq = broken(docs["ClusterQueue/spot"])
    cq["spec"]["preemption"]["reclaimWithinCohort"] = "Sometimes"
    assert any("reclaimWithinCohort" in e for e in crds.errors(cq))


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        (
            "ClusterQueue/acme-h100",
            lambda d: d["spec"]["resourceGroups"][0]["coveredResources"].append("cpu"),
            "flavors must have the same number of resources as the coveredResources",
        ),
        (
            "ClusterQueue/spot",
            lambda d: d["spec"].pop("cohortName"),
            "borrowingLimit",
        ),
        (
            "ClusterQueue/spot",
            lambda d: d["spec"]["preemption"].update(
                reclaimWithinCohort="Never", borrowWithinCohort={"policy": "LowerPriority"}
            ),
            "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never",
        ),
        (
            "Topology/east",
            lambda d: d["spec"]["levels"].reverse(),
            "kubernetes.io/hostname label can only be used at the lowest level",
        ),
        (
            "Topology/east",
            lambda d: d["spec"]["levels"].insert(0, {"nodeLabel": "neocloud.io/block"}),
            "spec.levels: must be unique",
        ),
        (
            "ResourceFlavor/east-h100",
            lambda d: d["spec"].pop("nodeLabels"),
            "at least one nodeLabel is required when topology is set",
        ),
    ],
)
def test_the_crds_cel_rules_are_checked(
    crds: CrdSchemas,
    docs: dict[str, dict[str, Any]],
    key: str,
    change: Any,
    message: str,
) -> None:
    doc = broken(docs[key])
    change(doc)
    errors = crds.errors(doc)
    assert errors, f"{key} should fail after the change"
    assert any(message in e for e in errors), errors


def test_a_cel_rule_without_a_python_version_fails_closed(
    crds: CrdSchemas, docs: dict[str, dict[str, Any]]
) -> None:
    flavor = broken(docs["ResourceFlavor/east-h100"])
    flavor["spec"]["nodeTaints"] = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    assert any("CEL rule not checked by neocloud" in e for e in crds.errors(flavor))


def test_metadata_is_checked(crds: CrdSchemas, docs: dict[str, dict[str, Any]]) -> None:
    lq = broken(next(d for k, d in docs.items() if k.startswith("LocalQueue/")))
    lq["metadata"]["name"] = "Acme_Queue"
    lq["metadata"].pop("namespace")
    lq["metadata"]["labels"]["neocloud.io/tenant"] = "not a label value!"
    errors = crds.errors(lq)
    assert len(errors) == 3, errors
    cq = broken(docs["ClusterQueue/acme-h100"])
    cq["metadata"]["namespace"] = "default"
    assert crds.errors(cq) == [
        "ClusterQueue acme-h100: metadata: a ClusterQueue is cluster-scoped: no namespace"
    ]


def test_unknown_kinds_and_versions_are_refused(
    crds: CrdSchemas, docs: dict[str, dict[str, Any]]
) -> None:
    cq = broken(docs["ClusterQueue/acme-h100"])
    cq["apiVersion"] = "kueue.x-k8s.io/v1alpha1"
    assert "no schema" in crds.errors(cq)[0]
    with pytest.raises(InvalidManifests) as caught:
        crds.validate([cq, docs["Cohort/east"]])
    assert len(caught.value.errors) == 1


def test_prepare_makes_int_or_string_explicit_and_closes_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"x-kubernetes-int-or-string": True},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    out = prepare(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["q"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "additionalProperties" not in out["properties"]["open"]
    assert "additionalProperties" not in schema  # the input is left alone
