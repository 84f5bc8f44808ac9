"""How each contract type becomes a ClusterQueue's quota: the mapping in one place.

Kueue's words (a ClusterQueue's quota per flavor and resource):
- nominalQuota: what the queue owns;
- lendingLimit: how much of its *unused* nominal quota other queues of the cohort may
  borrow (null: all of it; 0: none) — a lent GPU comes back by preemption when the owner's
  own workload needs it (`reclaimWithinCohort`);
- borrowingLimit: how much more than its nominal quota it may take from the cohort (null:
  no limit; 0: none).

| contract | nominal | borrowing | lending |
|---|---|---|---|
| reserved, internal | its GPUs | 0 | 0, or GPUs - floor when lendable |
| dedicated-site | every GPU of the site | 0 | 0 |
| spot | 0 | its GPUs (null when it has no size) | — |
| on-demand (shared, per accelerator) | the site's uncommitted GPUs | 0 | null |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neocloud.contracts.models import ContractType

HOLDING = frozenset({ContractType.RESERVED, ContractType.INTERNAL, ContractType.DEDICATED_SITE})


@dataclass(frozen=True)
class FlavorQuota:
    nominal: int
    borrowing_limit: int | None
    """None: no limit (Kueue's null)."""
    lending_limit: int | None
    """None: all of the unused nominal quota may be lent (Kueue's null)."""

    def resource(self, name: str) -> dict[str, Any]:
        """The `resources[]` entry of a flavor, null limits left out (Kueue reads a missing
        limit as no limit)."""
        out: dict[str, Any] = {"name": name, "nominalQuota": self.nominal}
        if self.borrowing_limit is not None:
            out["borrowingLimit"] = self.borrowing_limit
        if self.lending_limit is not None:
            out["lendingLimit"] = self.lending_limit
        return out


def commitment(type: ContractType, gpus: int, *, lendable: bool, floor: int = 0) -> FlavorQuota:
    """A contract that holds capacity owns its GPUs and borrows nothing. It lends only when
    lendable, and never its floor; a dedicated site is never lent (it bought exclusivity)."""
    if type not in HOLDING:
        raise ValueError(f"a {type} contract holds no capacity")
    lends = lendable and type is not ContractType.DEDICATED_SITE
    return FlavorQuota(
        nominal=gpus,
        borrowing_limit=0,
        lending_limit=max(0, gpus - max(0, floor)) if lends else 0,
    )


def spot(gpus: int | None) -> FlavorQuota:
    """Spot owns nothing: everything it runs is borrowed, so the owners take it back."""
    return FlavorQuota(nominal=0, borrowing_limit=gpus, lending_limit=None)


def on_demand(free_gpus: int) -> FlavorQuota:
    """The uncommitted GPUs, shared first come first served; idle ones may be lent to spot."""
    return FlavorQuota(nominal=max(0, free_gpus), borrowing_limit=0, lending_limit=None)


OWNER_PREEMPTION: dict[str, Any] = {
    "withinClusterQueue": "LowerPriority",
    "reclaimWithinCohort": "Any",
}
"""A queue with nominal quota takes back what it lent, whatever the borrower's priority;
inside the queue, the tenant's own priorities decide."""

ON_DEMAND_PREEMPTION: dict[str, Any] = {
    "withinClusterQueue": "Never",
    "reclaimWithinCohort": "Any",
}
"""On-demand work is never preempted by other on-demand work; idle uncommitted GPUs lent to
spot come back."""

SPOT_PREEMPTION: dict[str, Any] = {
    "withinClusterQueue": "LowerPriority",
    "reclaimWithinCohort": "Never",
    "borrowWithinCohort": {"policy": "Never"},
}
"""Spot never preempts anyone else's work: it only runs on what is idle."""


def preemption(type: ContractType) -> dict[str, Any]:
    if type is ContractType.SPOT:
        return SPOT_PREEMPTION
    if type is ContractType.ON_DEMAND:
        return ON_DEMAND_PREEMPTION
    return OWNER_PREEMPTION
