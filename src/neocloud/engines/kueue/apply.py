"""Server-side apply requests for manifests, built without a cluster (pure).

Each object becomes one `PATCH` of its own URL with `Content-Type:
application/apply-patch+yaml`, `fieldManager=neocloud` and `force=true`: the API server
merges it with what is there, neocloud owns the fields it sets (and takes them over from
whoever set them by hand — the contract is the source of truth), and fields others own
(status, a Namespace's other labels) are left alone. Sending the same manifests twice
changes nothing. `dry_run` adds `dryRun=All`: the server checks everything (schemas, CEL
rules, Kueue's webhooks) and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

FIELD_MANAGER = "neocloud"
CONTENT_TYPE = "application/apply-patch+yaml"
PLURALS = {
    "Namespace": "namespaces",
    "Topology": "topologies",
    "ResourceFlavor": "resourceflavors",
    "Cohort": "cohorts",
    "ClusterQueue": "clusterqueues",
    "LocalQueue": "localqueues",
    "WorkloadPriorityClass": "workloadpriorityclasses",
}


@dataclass(frozen=True)
class ApplyRequest:
    """One HTTP request to the Kubernetes API server."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any]

    @property
    def what(self) -> str:
        """The object, as people name it: `ClusterQueue acme-h100`, `LocalQueue tenant-acme/acme-h100`."""
        meta = self.body["metadata"]
        ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
        return f"{self.body['kind']} {ns}{meta['name']}"


def object_path(manifest: dict[str, Any]) -> str:
    """The URL of the object: /api/v1/... for the core group, /apis/GROUP/VERSION/... else."""
    api, kind = manifest["apiVersion"], manifest["kind"]
    plural = PLURALS.get(kind)
    if plural is None:
        raise ValueError(f"cannot apply a {kind}: unknown kind")
    meta = manifest["metadata"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    namespace = meta.get("namespace")
    scope = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
    return f"{base}{scope}/{plural}/{quote(meta['name'], safe='')}"


def requests(
    manifests: Iterable[dict[str, Any]],
    *,
    dry_run: bool = False,
    field_manager: str = FIELD_MANAGER,
) -> list[ApplyRequest]:
    """The requests that apply `manifests`, in their order (the renderer's order puts what
    an object refers to first: a LocalQueue's Namespace, a flavor's Topology)."""
    query: list[tuple[str, str]] = [("fieldManager", field_manager), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    return [
        ApplyRequest(
            method="PATCH",
            path=object_path(m),
            query=tuple(query),
            headers=(("Content-Type", CONTENT_TYPE), ("Accept", "application/json")),
            body=m,
        )
        for m in manifests
    ]
