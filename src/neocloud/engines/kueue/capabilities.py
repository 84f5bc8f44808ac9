"""What the Kueue engine can do, in the engine protocol's terms (`engines.protocol`).

Kueue is driven per site from rendered manifests (`neocloud engines kueue apply`, run where
the cluster's kubeconfig is), not by a per-fabric driver in the API process, so it is not in
`engines.registry`; its capabilities are declared here, each with why, and what it lacks
with what it would take.
"""

from __future__ import annotations

from collections.abc import Mapping

from neocloud.engines.protocol import Capability

NAME = "kueue"

CAPABILITIES: frozenset[Capability] = frozenset({Capability.QUOTAS, Capability.PREEMPTION})
"""QUOTAS: a ClusterQueue's nominal quota per contract caps its tenant's running GPUs.
PREEMPTION: spot runs only on borrowed quota, and the owners' `reclaimWithinCohort: Any`
requeues it when they need their GPUs back."""

LACKS: Mapping[Capability, str] = {
    Capability.RESERVATIONS: "quota is counted per flavor, not pinned to the nodes placement "
    "gave the contract (it would take a flavor per contract over node labels)",
    Capability.ACCOUNTING: "Workloads are not read back as usage events yet",
    Capability.NODE_HEALTH: "node conditions are not read back yet",
}
"""What Kueue does not do for neocloud yet, and why."""
