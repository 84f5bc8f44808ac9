"""The desired state of one site's Kueue, as plain data: what the renderer needs and nothing
else, so that it can be built by hand in tests as easily as read from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from neocloud.contracts.models import ContractType

API_GROUP = "kueue.x-k8s.io"
API_VERSIONS = ("v1beta2", "v1beta1")
"""Served by Kueue v0.15 and later (v1beta2 is stored); v1beta1 for older installations."""
DEFAULT_API_VERSION = "v1beta2"

GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
"""The extended resource each vendor's device plugin advertises."""


def gpu_resource(vendor: str) -> str:
    """The resource a node's GPUs are counted in: `nvidia.com/gpu`, `amd.com/gpu`, and for
    another vendor `<vendor>.com/gpu` (what its device plugin should be told to name them)."""
    key = "".join(ch for ch in vendor.lower() if ch.isalnum() or ch == "-").strip("-")
    return GPU_RESOURCES.get(key, f"{key or 'vendor'}.com/gpu")


@dataclass(frozen=True)
class AcceleratorPool:
    """One accelerator at the site: the GPUs of its nodes in service (spares left out)."""

    name: str
    vendor: str
    gpus: int

    @property
    def resource(self) -> str:
        return gpu_resource(self.vendor)


@dataclass(frozen=True)
class Share:
    """What a contract holds of one accelerator at the site now: its GPUs (None: no limit,
    a spot contract with no size) and the part of them that is an internal floor."""

    accelerator: str
    gpus: int | None
    floor: int = 0


@dataclass(frozen=True)
class ContractAtSite:
    """A contract in force at the site. Contracts that hold capacity carry their claims in
    force as `shares`; spot and on-demand ones the accelerators they may run on (every one
    of the site's when the contract names none)."""

    name: str
    tenant: str
    type: ContractType
    shares: tuple[Share, ...]
    lendable: bool = False


@dataclass(frozen=True)
class SiteState:
    site: str
    at: datetime
    accelerators: tuple[AcceleratorPool, ...]
    contracts: tuple[ContractAtSite, ...] = field(default=())

    def pool(self, accelerator: str) -> AcceleratorPool | None:
        return next((a for a in self.accelerators if a.name == accelerator), None)
