"""The renderer: one site's desired state in, its Kueue manifests out (pure).

Per site: a Topology (fabric > block > host) for topology-aware scheduling, a
ResourceFlavor per accelerator that points at it, a Cohort that every queue of the site
joins (so idle quota can be lent and taken back), a ClusterQueue per contract in force
(quotas from `quota.py`), a shared ClusterQueue per accelerator holding the GPUs nobody
committed (the on-demand pool, which spot may borrow while it is idle), a Namespace per
tenant and a LocalQueue per tenant and queue. The output is a list of dicts in a fixed
order (kind, then namespace and name), so the same state always renders the same bytes.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from neocloud.contracts.models import ContractType
from neocloud.engines.kueue import names, quota
from neocloud.engines.kueue.model import (
    API_GROUP,
    API_VERSIONS,
    DEFAULT_API_VERSION,
    AcceleratorPool,
    ContractAtSite,
    SiteState,
)

Manifest = dict[str, Any]
KIND_ORDER = ("Topology", "ResourceFlavor", "Cohort", "ClusterQueue", "Namespace", "LocalQueue")
"""Also the order `apply` sends them in: what an object refers to exists before it."""
QUEUEING = "BestEffortFIFO"
"""A job that does not fit yet does not hold back smaller ones that do."""


def render(state: SiteState, api_version: str = DEFAULT_API_VERSION) -> list[Manifest]:
    """Every manifest of the site, in apply order. Raises ValueError on a state that cannot
    be expressed (a contract on an accelerator the site does not have, two objects that
    would share a name)."""
    if api_version not in API_VERSIONS:
        raise ValueError(f"unknown Kueue API version {api_version!r} (known: {API_VERSIONS})")
    pools = {p.name: p for p in state.accelerators}
    for contract in state.contracts:
        for share in contract.shares:
            if share.accelerator not in pools:
                raise ValueError(
                    f"contract {contract.name!r} holds {share.accelerator} at {state.site}, "
                    "which has no such accelerator"
                )
    r = _Renderer(state, f"{API_GROUP}/{api_version}", api_version, pools)
    return r.manifests()


class _Renderer:
    def __init__(
        self,
        state: SiteState,
        api: str,
        version: str,
        pools: dict[str, AcceleratorPool],
    ) -> None:
        self.state = state
        self.api = api
        self.version = version
        self.pools = pools
        self.site = state.site

    def manifests(self) -> list[Manifest]:
        out: list[Manifest] = []
        if self.pools:
            out.append(self.topology())
            out += [self.flavor(p) for p in self.pools.values()]
            out.append(self.cohort())
            out += self.on_demand_queues()
            out += [
                self.contract_queue(c)
                for c in self.state.contracts
                if c.shares and c.type is not ContractType.ON_DEMAND
            ]
            out += self.tenant_objects()
        return _sorted_unique(out)

    def meta(self, name: str, **labels: str) -> dict[str, Any]:
        return {
            "name": name,
            "labels": {
                names.MANAGED_BY: "neocloud",
                names.SITE_LABEL: self.site,
                **labels,
            },
        }

    def topology(self) -> Manifest:
        levels = [names.FABRIC_LABEL, names.BLOCK_LABEL, names.HOSTNAME_LABEL]
        return {
            "apiVersion": self.api,
            "kind": "Topology",
            "metadata": self.meta(self.site),
            "spec": {"levels": [{"nodeLabel": label} for label in levels]},
        }

    def flavor(self, pool: AcceleratorPool) -> Manifest:
        return {
            "apiVersion": self.api,
            "kind": "ResourceFlavor",
            "metadata": self.meta(
                names.flavor(self.site, pool.name),
                **{names.ACCELERATOR_LABEL: names.label_value(pool.name)},
            ),
            "spec": {
                "nodeLabels": {
                    names.SITE_LABEL: self.site,
                    names.ACCELERATOR_LABEL: names.label_value(pool.name),
                },
                "topologyName": self.site,
            },
        }

    def cohort(self) -> Manifest:
        return {
            "apiVersion": self.api,
            "kind": "Cohort",
            "metadata": self.meta(self.site),
            "spec": {},
        }

    def cluster_queue(
        self,
        name: str,
        quotas: Iterable[tuple[str, quota.FlavorQuota]],
        preemption: dict[str, Any],
        selector: dict[str, Any] | None,
        labels: dict[str, str],
        annotations: dict[str, str] | None = None,
    ) -> Manifest:
        """A ClusterQueue with one resource group per GPU resource (an NVIDIA and an AMD
        flavor count different resources), flavors in name order."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for accelerator, q in sorted(quotas):
            resource = self.pools[accelerator].resource
            groups[resource].append(
                {"name": names.flavor(self.site, accelerator), "resources": [q.resource(resource)]}
            )
        spec: dict[str, Any] = {"cohortName" if self.version == "v1beta2" else "cohort": self.site}
        if selector is not None:
            spec["namespaceSelector"] = selector
        spec["queueingStrategy"] = QUEUEING
        spec["preemption"] = preemption
        spec["resourceGroups"] = [
            {"coveredResources": [resource], "flavors": flavors}
            for resource, flavors in sorted(groups.items())
        ]
        metadata = self.meta(name, **labels)
        if annotations:
            metadata["annotations"] = annotations
        return {"apiVersion": self.api, "kind": "ClusterQueue", "metadata": metadata, "spec": spec}

    def on_demand_queues(self) -> list[Manifest]:
        committed: dict[str, int] = defaultdict(int)
        for c in self.state.contracts:
            if c.type in quota.HOLDING:
                for share in c.shares:
                    committed[share.accelerator] += share.gpus or 0
        out = []
        for pool in self.pools.values():
            tenants = sorted(
                {c.tenant for c in self.state.contracts if self._on_demand_here(c, pool.name)}
            )
            selector = (
                {
                    "matchExpressions": [
                        {"key": names.TENANT_LABEL, "operator": "In", "values": tenants}
                    ]
                }
                if tenants
                else None  # Kueue's null selector: no namespace may submit
            )
            out.append(
                self.cluster_queue(
                    names.on_demand_queue(self.site, pool.name),
                    [(pool.name, quota.on_demand(pool.gpus - committed[pool.name]))],
                    quota.preemption(ContractType.ON_DEMAND),
                    selector,
                    {
                        names.CONTRACT_TYPE_LABEL: ContractType.ON_DEMAND.value,
                        names.ACCELERATOR_LABEL: names.label_value(pool.name),
                    },
                )
            )
        return out

    def contract_queue(self, c: ContractAtSite) -> Manifest:
        if c.type is ContractType.ON_DEMAND:
            raise ValueError("on-demand contracts share the site's on-demand queues")
        if c.type is ContractType.SPOT:
            quotas = [(s.accelerator, quota.spot(s.gpus)) for s in c.shares]
        else:
            quotas = [
                (
                    s.accelerator,
                    quota.commitment(c.type, s.gpus or 0, lendable=c.lendable, floor=s.floor),
                )
                for s in c.shares
            ]
        return self.cluster_queue(
            names.cluster_queue(c.name),
            quotas,
            quota.preemption(c.type),
            {"matchLabels": {names.TENANT_LABEL: c.tenant}},
            {
                names.CONTRACT_LABEL: names.label_value(c.name),
                names.CONTRACT_TYPE_LABEL: c.type.value,
                names.TENANT_LABEL: c.tenant,
            },
            {names.CONTRACT_ANNOTATION: c.name},
        )

    def _on_demand_here(self, c: ContractAtSite, accelerator: str) -> bool:
        return c.type is ContractType.ON_DEMAND and any(
            s.accelerator == accelerator for s in c.shares
        )

    def tenant_objects(self) -> list[Manifest]:
        """A Namespace per tenant with a queue here (labelled with the tenant, which the
        ClusterQueues' selectors match) and its LocalQueues."""
        queues: list[Manifest] = []
        for c in self.state.contracts:
            namespace = names.namespace(c.tenant)
            if c.type is ContractType.ON_DEMAND:
                several = len(c.shares) > 1
                for s in c.shares:
                    target = names.on_demand_queue(self.site, s.accelerator)
                    name = names.local_queue(c.name, s.accelerator if several else None)
                    queues.append(self.local_queue(c, namespace, name, target))
            elif c.shares:
                target = names.cluster_queue(c.name)
                queues.append(self.local_queue(c, namespace, names.local_queue(c.name), target))
        tenants = sorted({c.tenant for c in self.state.contracts if c.shares})
        spaces = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": names.namespace(t),
                    "labels": {names.MANAGED_BY: "neocloud", names.TENANT_LABEL: t},
                },
            }
            for t in tenants
        ]
        return spaces + queues

    def local_queue(
        self, c: ContractAtSite, namespace: str, name: str, cluster_queue: str
    ) -> Manifest:
        labels = {names.CONTRACT_LABEL: names.label_value(c.name), names.TENANT_LABEL: c.tenant}
        return {
            "apiVersion": self.api,
            "kind": "LocalQueue",
            "metadata": {"name": name, "namespace": namespace, **self.meta(name, **labels)},
            "spec": {"clusterQueue": cluster_queue},
        }


def _key(m: Manifest) -> tuple[int, str, str]:
    meta = m["metadata"]
    return KIND_ORDER.index(m["kind"]), meta.get("namespace", ""), meta["name"]


def _sorted_unique(manifests: list[Manifest]) -> list[Manifest]:
    out = sorted(manifests, key=_key)
    for before, after in itertools.pairwise(out):
        if _key(before) == _key(after):
            kind, namespace, name = after["kind"], *_key(after)[1:]
            where = f" in {namespace}" if namespace else ""
            raise ValueError(f"two {kind} objects would be named {name!r}{where}")
    return out
