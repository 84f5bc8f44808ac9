"""Server-side apply requests for manifests, built without a cluster (pure).

Each object becomes one `PATCH` of its own URL with `Content-Type:
application/apply-patch+yaml`, `fieldManager=neocloud` and `force=true`: the API server
merges it with what is there, neocloud owns the fields it sets (and takes them over from
whoever set them by hand — the contract is the source of truth), and fields others own
(status, a Namespace's other labels) are left alone. Sending the same manifests twice
changes nothing. `dry_run` adds `dryRun=All`: the server checks everything (schemas, CEL
rules, Kueue's webhooks) and stores nothing.

Pruning deletes what neocloud put on the cluster for the site and no longer renders (found
by the labels every rendered object carries), so an ended contract's quota does not linger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from neocloud.engines.kueue import names

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
    """One HTTP request to the Kubernetes API server, and the object it is about."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any] | None
    what: str
    """The object as people name it: `ClusterQueue acme-h100`, `LocalQueue tenant-acme/q`."""


def describe(kind: str, name: str, namespace: str | None = None) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def object_path(manifest: dict[str, Any]) -> str:
    """The URL of the object: /api/v1/... for the core group, /apis/GROUP/VERSION/... else."""
    meta = manifest["metadata"]
    return _path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])


def _path(api: str, kind: str, namespace: str | None, name: str | None) -> str:
    plural = PLURALS.get(kind)
    if plural is None:
        raise ValueError(f"cannot apply a {kind}: unknown kind")
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    scope = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
    return f"{base}{scope}/{plural}" + (f"/{quote(name, safe='')}" if name else "")


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
            what=describe(m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")),
        )
        for m in manifests
    ]


PRUNABLE = ("LocalQueue", "ClusterQueue", "Cohort", "ResourceFlavor", "Topology")
"""What `prune` may delete, in the order it deletes them (a queue before what it uses).
Namespaces are never deleted: a tenant's other objects live in them."""


def list_requests(site: str, api_version: str) -> list[ApplyRequest]:
    """GETs of neocloud's objects of one site, one per kind that may be pruned (LocalQueues
    from every namespace), selected by the labels every rendered object carries.
    `api_version`: group/version, as the manifests carry it (`kueue.x-k8s.io/v1beta2`)."""
    selector = f"{names.MANAGED_BY}=neocloud,{names.SITE_LABEL}={site}"
    return [
        ApplyRequest(
            method="GET",
            path=_path(api_version, kind, None, None),
            query=(("labelSelector", selector),),
            headers=(("Accept", "application/json"),),
            body=None,
            what=f"{kind} objects of site {site}",
        )
        for kind in PRUNABLE
    ]


def prune_requests(
    found: dict[str, list[dict[str, Any]]],
    manifests: Iterable[dict[str, Any]],
    *,
    api_version: str,
    dry_run: bool = False,
) -> list[ApplyRequest]:
    """DELETEs of the objects `found` on the cluster (kind -> the items of its list, as the
    API server answers them) that `manifests` no longer hold: the queues of contracts that
    ended, the flavor of an accelerator the site no longer has."""
    keep = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests}
    query = (("dryRun", "All"),) if dry_run else ()
    out = []
    for kind in PRUNABLE:
        items = sorted(
            (i["metadata"].get("namespace") or "", i["metadata"]["name"])
            for i in found.get(kind, [])
        )
        for namespace, name in items:
            if (kind, namespace or None, name) in keep:
                continue
            out.append(
                ApplyRequest(
                    method="DELETE",
                    path=_path(api_version, kind, namespace or None, name),
                    query=query,
                    headers=(("Content-Type", "application/json"), ("Accept", "application/json")),
                    body={
                        "apiVersion": "v1",
                        "kind": "DeleteOptions",
                        "propagationPolicy": "Background",
                    },
                    what=describe(kind, name, namespace or None),
                )
            )
    return out
