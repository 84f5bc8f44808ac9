"""`apply`: the exact server-side-apply requests (a pure function, checked without a
cluster), and the clear errors when no cluster can be used.

What the API server then does with the requests is left to a real cluster: no fake
Kubernetes API stands in for one here.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neocloud.contracts.models import ContractType as T
from neocloud.engines.kueue import cluster
from neocloud.engines.kueue.apply import (
    ApplyRequest,
    list_requests,
    object_path,
    prune_requests,
    requests,
)
from neocloud.engines.kueue.model import AcceleratorPool, ContractAtSite, Share, SiteState
from neocloud.engines.kueue.render import render

STATE = SiteState(
    "east",
    datetime(2027, 2, 1, tzinfo=UTC),
    (AcceleratorPool("H100", "NVIDIA", 64),),
    (ContractAtSite("acme-h100", "acme", T.RESERVED, (Share("H100", 32),)),),
)
APPLY_QUERY = (("fieldManager", "neocloud"), ("force", "true"))
HEADERS = (("Content-Type", "application/apply-patch+yaml"), ("Accept", "application/json"))


def test_one_patch_per_object_to_its_own_url_in_apply_order() -> None:
    docs = render(STATE)
    reqs = requests(docs)
    assert [(r.method, r.path) for r in reqs] == [
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/topologies/east"),
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/resourceflavors/east-h100"),
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/cohorts/east"),
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/acme-h100"),
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/east-h100-on-demand"),
        ("PATCH", "/api/v1/namespaces/tenant-acme"),
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/namespaces/tenant-acme/localqueues/acme-h100"),
    ]
    for r, doc in zip(reqs, docs, strict=True):
        assert r.query == APPLY_QUERY
        assert r.headers == HEADERS
        assert r.body is doc  # the manifest itself is the apply body, nothing added


def test_the_exact_request_for_a_cluster_queue() -> None:
    cq = next(d for d in render(STATE) if d["metadata"]["name"] == "acme-h100")
    (r,) = requests([cq], dry_run=True)
    assert r == ApplyRequest(
        what="ClusterQueue acme-h100",
        method="PATCH",
        path="/apis/kueue.x-k8s.io/v1beta2/clusterqueues/acme-h100",
        query=(*APPLY_QUERY, ("dryRun", "All")),
        headers=HEADERS,
        body={
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {
                "name": "acme-h100",
                "labels": {
                    "app.kubernetes.io/managed-by": "neocloud",
                    "neocloud.io/site": "east",
                    "neocloud.io/contract": "acme-h100",
                    "neocloud.io/contract-type": "reserved",
                    "neocloud.io/tenant": "acme",
                },
                "annotations": {"neocloud.io/contract": "acme-h100"},
            },
            "spec": {
                "cohortName": "east",
                "namespaceSelector": {"matchLabels": {"neocloud.io/tenant": "acme"}},
                "queueingStrategy": "BestEffortFIFO",
                "preemption": {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any"},
                "resourceGroups": [
                    {
                        "coveredResources": ["nvidia.com/gpu"],
                        "flavors": [
                            {
                                "name": "east-h100",
                                "resources": [
                                    {
                                        "name": "nvidia.com/gpu",
                                        "nominalQuota": 32,
                                        "borrowingLimit": 0,
                                        "lendingLimit": 0,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
        },
    )
    assert r.what == "ClusterQueue acme-h100"


def test_listing_finds_only_what_neocloud_put_there_for_the_site() -> None:
    reqs = list_requests("east", "kueue.x-k8s.io/v1beta2")
    selector = (("labelSelector", "app.kubernetes.io/managed-by=neocloud,neocloud.io/site=east"),)
    assert [(r.method, r.path, r.query) for r in reqs] == [
        ("GET", f"/apis/kueue.x-k8s.io/v1beta2/{plural}", selector)
        for plural in ("localqueues", "clusterqueues", "cohorts", "resourceflavors", "topologies")
    ]


def test_prune_deletes_what_is_no_longer_rendered_queues_first() -> None:
    docs = render(STATE)
    found = {
        "LocalQueue": [
            {"metadata": {"name": "acme-h100", "namespace": "tenant-acme"}},
            {"metadata": {"name": "old-contract", "namespace": "tenant-globex"}},
        ],
        "ClusterQueue": [
            {"metadata": {"name": "old-contract"}},
            {"metadata": {"name": "acme-h100"}},
            {"metadata": {"name": "east-h100-on-demand"}},
        ],
        "ResourceFlavor": [{"metadata": {"name": "east-b200"}}],
    }
    deletes = prune_requests(found, docs, api_version="kueue.x-k8s.io/v1beta2", dry_run=True)
    assert [(r.method, r.path, r.what) for r in deletes] == [
        (
            "DELETE",
            "/apis/kueue.x-k8s.io/v1beta2/namespaces/tenant-globex/localqueues/old-contract",
            "LocalQueue tenant-globex/old-contract",
        ),
        (
            "DELETE",
            "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/old-contract",
            "ClusterQueue old-contract",
        ),
        (
            "DELETE",
            "/apis/kueue.x-k8s.io/v1beta2/resourceflavors/east-b200",
            "ResourceFlavor east-b200",
        ),
    ]
    assert all(r.query == (("dryRun", "All"),) for r in deletes)
    assert deletes[0].body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Background",
    }
    # what is rendered is never deleted, whatever the cluster holds
    current = {d["kind"]: [d] for d in docs}
    assert prune_requests(current, docs, api_version="kueue.x-k8s.io/v1beta2") == []


def test_paths_of_other_versions_and_unknown_kinds() -> None:
    lq = {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "LocalQueue",
        "metadata": {"name": "q", "namespace": "tenant-a"},
    }
    assert object_path(lq) == "/apis/kueue.x-k8s.io/v1beta1/namespaces/tenant-a/localqueues/q"
    assert requests([lq], field_manager="ops")[0].query[0] == ("fieldManager", "ops")
    with pytest.raises(ValueError, match="unknown kind"):
        object_path({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})


def test_no_kubeconfig_is_a_clear_error() -> None:
    with pytest.raises(cluster.KubeError) as caught:
        cluster.kubeconfig_path(None, {})
    assert caught.value.code == 2
    assert "--kubeconfig" in caught.value.message and "KUBECONFIG" in caught.value.message
    assert cluster.kubeconfig_path(None, {"KUBECONFIG": "/k"}) == "/k"
    assert cluster.kubeconfig_path("/flag", {"KUBECONFIG": "/k"}) == "/flag"


def test_a_kubeconfig_that_does_not_exist_or_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(cluster.KubeError) as caught:
        cluster.connect(str(tmp_path / "missing"))
    assert caught.value.code == 2 and "missing" in caught.value.message
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(cluster.KubeError) as caught:
        cluster.connect(str(bad))
    assert caught.value.code == 2


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters:
  - name: site
    cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
  - name: ops
    user: {{token: test-token}}
contexts:
  - name: site
    context: {{cluster: site, user: ops}}
current-context: site
"""
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_cluster_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    """The real Kubernetes client, pointed at a loopback port nobody listens on."""
    server = f"https://127.0.0.1:{free_port()}"
    client = cluster.connect(str(kubeconfig(tmp_path / "config", server)))
    sent: list[str] = []
    with client, pytest.raises(cluster.KubeError) as caught:
        cluster.send(client, requests(render(STATE)), lambda r: sent.append(r.what))
    assert sent == []
    assert caught.value.code == 1
    assert caught.value.message.startswith(f"cannot reach {server}")
    assert "0 object(s) done before it" in caught.value.message


def test_a_status_message_is_shown_as_the_cluster_wrote_it() -> None:
    body = b'{"kind":"Status","message":"admission webhook denied it","code":422}'
    assert cluster._message(body) == "admission webhook denied it"
    assert cluster._message("plain text") == "plain text"
    assert cluster._message(None) == "no detail"
