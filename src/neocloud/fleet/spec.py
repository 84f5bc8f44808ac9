"""The fleet file: what a person writes to declare sites, topology, nodes and deliveries.

Documented in docs/fleet-file.md. Counts with name patterns keep a 200,000-GPU site short.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from neocloud.core.names import Slug
from neocloud.fleet.models import NodeState, SiteState

MAX_GPUS_PER_NODE = 1024
MAX_NODE_KW = Decimal(2000)
MAX_SITE_MW = Decimal(100_000)
MAX_COUNT = 1_000_000

Pattern = Annotated[
    str, Field(min_length=1, max_length=120, description="name or pattern such as 'n{i:03d}'")
]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcceleratorSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    vendor: Annotated[str, Field(min_length=1, max_length=63)]
    memory_gb: Annotated[Decimal, Field(gt=0, le=100_000)]
    tdp_w: Annotated[int, Field(gt=0, le=100_000)]
    bf16_tflops: Annotated[Decimal, Field(gt=0, le=1_000_000)]


class NodeGroupSpec(Strict):
    name: Pattern = "{block}-n{i:02d}"
    count: Count = 1
    start: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 1
    accelerator: Annotated[str, Field(min_length=1, max_length=63)]
    gpus: Annotated[int, Field(ge=1, le=MAX_GPUS_PER_NODE, description="GPUs per node")]
    power_kw: Annotated[Decimal, Field(gt=0, le=MAX_NODE_KW, description="IT power per node")]
    initial_state: NodeState = Field(
        default=NodeState.AVAILABLE,
        description="state of nodes when first created; later the operator's actions own it",
    )

    @field_validator("initial_state")
    @classmethod
    def _creatable(cls, value: NodeState) -> NodeState:
        if value not in (NodeState.AVAILABLE, NodeState.BURN_IN):
            raise ValueError("nodes are created 'available' or 'burn-in'")
        return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class BlockSpec(Strict):
    name: Pattern = "b{i:03d}"
    count: Count = 1
    start: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 1
    nodes: list[NodeGroupSpec] = Field(min_length=1)

    _wrap = field_validator("nodes", mode="before")(_as_list)


class FabricSpec(Strict):
    name: Pattern = "f{i:02d}"
    count: Count = 1
    start: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 1
    blocks: list[BlockSpec] = Field(default_factory=list)
    engine: str | dict[str, Any] | None = Field(
        default=None,
        description="the engine that manages its nodes: `slurm`, or {name: slurm, cluster: ...}",
    )

    _wrap = field_validator("blocks", mode="before")(_as_list)

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, dict) and not isinstance(value.get("name"), str):
            raise ValueError("an engine mapping needs 'name' (e.g. name: slurm)")
        return value


class SiteDates(Strict):
    planned: date | None = None
    building: date | None = None
    live: date | None = None
    draining: date | None = None
    retired: date | None = None


class SiteSpec(Strict):
    name: Slug
    display_name: Annotated[str | None, Field(max_length=200)] = None
    location: Annotated[str, Field(min_length=1, max_length=200, description="place, or an orbit")]
    power_mw: Annotated[Decimal, Field(gt=0, le=MAX_SITE_MW, description="facility power")]
    pue: Annotated[Decimal, Field(ge=1, le=3)]
    spare_pct: Annotated[
        Decimal,
        Field(ge=0, le=50, description="% of each pool's nodes kept as hot spares for healing"),
    ] = Decimal(0)
    state: SiteState = SiteState.PLANNED
    dates: SiteDates = Field(default_factory=SiteDates)
    fabrics: list[FabricSpec] = Field(default_factory=list)


class DeliverySpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")]
    site: Slug
    fabric: Annotated[str | None, Field(max_length=63)] = None
    accelerator: Annotated[str, Field(min_length=1, max_length=63)]
    nodes: Count
    gpus_per_node: Annotated[int, Field(ge=1, le=MAX_GPUS_PER_NODE)]
    power_kw_per_node: Annotated[Decimal, Field(gt=0, le=MAX_NODE_KW)]
    expected_on: date
    supplier: Annotated[str | None, Field(max_length=120)] = None


class FleetFile(Strict):
    api_version: Annotated[str, Field(alias="apiVersion")] = "neocloud/v1"
    accelerators: list[AcceleratorSpec] = Field(default_factory=list)
    sites: list[SiteSpec] = Field(default_factory=list)
    deliveries: list[DeliverySpec] = Field(default_factory=list)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "neocloud/v1":
            raise ValueError("only 'neocloud/v1' is understood")
        return value
