"""API shapes for the fleet inventory."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from neocloud.core.names import Slug
from neocloud.fleet.models import DeliveryState, NodeState, SiteState
from neocloud.fleet.spec import MAX_GPUS_PER_NODE, MAX_NODE_KW, MAX_SITE_MW, AcceleratorSpec


class AcceleratorCreate(AcceleratorSpec):
    pass


class AcceleratorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: Annotated[str | None, Field(min_length=1, max_length=63)] = None
    memory_gb: Annotated[Decimal | None, Field(gt=0, le=100_000)] = None
    tdp_w: Annotated[int | None, Field(gt=0, le=100_000)] = None
    bf16_tflops: Annotated[Decimal | None, Field(gt=0, le=1_000_000)] = None


class AcceleratorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    vendor: str
    memory_gb: Decimal
    tdp_w: int
    bf16_tflops: Decimal
    builtin: bool


class SiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: Annotated[str | None, Field(max_length=200)] = None
    location: Annotated[str, Field(min_length=1, max_length=200)]
    power_mw: Annotated[Decimal, Field(gt=0, le=MAX_SITE_MW)]
    pue: Annotated[Decimal, Field(ge=1, le=3)]
    spare_pct: Annotated[
        Decimal,
        Field(ge=0, le=50, description="% of each pool's nodes kept as hot spares for healing"),
    ] = Decimal(0)
    state: SiteState = SiteState.PLANNED
    planned_on: date | None = None
    building_on: date | None = None
    live_on: date | None = None
    draining_on: date | None = None
    retired_on: date | None = None


class SiteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[str | None, Field(max_length=200)] = None
    location: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    power_mw: Annotated[Decimal | None, Field(gt=0, le=MAX_SITE_MW)] = None
    pue: Annotated[Decimal | None, Field(ge=1, le=3)] = None
    spare_pct: Annotated[Decimal | None, Field(ge=0, le=50)] = None
    state: SiteState | None = None
    planned_on: date | None = None
    building_on: date | None = None
    live_on: date | None = None
    draining_on: date | None = None
    retired_on: date | None = None


class SiteOut(BaseModel):
    name: str
    display_name: str | None
    location: str
    state: SiteState
    power_mw: Decimal = Field(description="facility power the site may draw")
    pue: Decimal
    spare_pct: Decimal = Field(description="% of each pool's nodes kept as hot spares")
    gpus: int = Field(description="GPUs in service (all nodes but retired ones)")
    nodes: int
    gpus_by_accelerator: dict[str, int]
    gpus_by_state: dict[str, int]
    it_power_mw: Decimal = Field(description="IT power of the nodes in service")
    installed_power_mw: Decimal = Field(
        description="IT power x PUE: what the nodes draw at full load"
    )
    committed_power_mw: Decimal = Field(description="facility power of allocated nodes")
    headroom_mw: Decimal = Field(description="facility power not yet taken by installed nodes")
    scheduled_gpus: int = Field(description="GPUs in scheduled deliveries")
    planned_on: date | None
    building_on: date | None
    live_on: date | None
    draining_on: date | None
    retired_on: date | None


class FabricOut(BaseModel):
    name: str
    site: str
    blocks: int
    nodes: int
    gpus: int
    accelerators: list[str] = Field(description="accelerators of its nodes in service")
    nodes_by_state: dict[str, int] = Field(description="its nodes by state, retired included")


class BlockOut(BaseModel):
    name: str
    fabric: str
    site: str
    nodes: int
    gpus: int
    gpus_available: int
    nodes_by_state: dict[str, int] = Field(description="its nodes by state, retired included")


class NodeOut(BaseModel):
    id: int
    name: str
    site: str
    fabric: str
    block: str
    accelerator: str
    gpus: int
    power_kw: Decimal
    state: NodeState
    updated_at: datetime


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: NodeState
    reason: Annotated[str | None, Field(max_length=500)] = None


class DeliveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")]
    site: Slug
    fabric: Annotated[str | None, Field(max_length=63)] = None
    accelerator: Annotated[str, Field(min_length=1, max_length=63)]
    nodes: Annotated[int, Field(ge=1, le=1_000_000)]
    gpus_per_node: Annotated[int, Field(ge=1, le=MAX_GPUS_PER_NODE)]
    power_kw_per_node: Annotated[Decimal, Field(gt=0, le=MAX_NODE_KW)]
    expected_on: date
    supplier: Annotated[str | None, Field(max_length=120)] = None


class DeliveryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_on: date | None = None
    state: DeliveryState | None = None
    nodes: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    supplier: Annotated[str | None, Field(max_length=120)] = None


class DeliveryOut(BaseModel):
    id: int
    name: str
    site: str
    fabric: str | None
    accelerator: str
    nodes: int
    gpus_per_node: int
    gpus: int
    power_kw_per_node: Decimal
    expected_on: date
    state: DeliveryState
    supplier: str | None


class FleetApplyOut(BaseModel):
    applied: bool
    changed: bool
    counts: dict[str, int]
    changes: list[dict[str, Any]]
