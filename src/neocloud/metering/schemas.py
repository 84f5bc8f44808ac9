"""API shapes of metering: the ingest answer and the ledgers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class RejectOut(BaseModel):
    index: int = Field(description="position of the event in the batch (from 0)")
    id: str | None = Field(description="the event's id, when it could be read")
    reason: str = Field(description="what is wrong, led by the field: `data.gpus: ...`")


class IngestOut(BaseModel):
    received: int
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(
        description="good events stored before (or twice in the batch): acknowledged, not counted"
    )
    rejected: list[RejectOut]


class LedgerOut(BaseModel):
    contract: str
    tenant: str
    start: datetime
    end: datetime
    measured_gpu_seconds: int = Field(description="as received")
    billable_gpu_seconds: int = Field(description="measured less excluded")
    excluded_gpu_seconds: dict[str, int] = Field(
        description="by reason: outside-term, node-down, maintenance, operator-fault"
    )


class UsageOut(BaseModel):
    step: str
    start: datetime
    end: datetime
    items: list[LedgerOut]


class AdjustmentIn(BaseModel):
    """An operator's record that a contract's usage in [start, end) is not billed."""

    model_config = ConfigDict(extra="forbid")

    contract: Annotated[str, Field(max_length=63)]
    node: Annotated[str | None, Field(max_length=120)] = Field(
        None, description="only this node's usage (default: all of the contract's)"
    )
    reason: Literal["maintenance", "operator-fault"]
    start: datetime
    end: datetime
    note: Annotated[str | None, Field(max_length=500)] = None


class AdjustmentOut(BaseModel):
    id: int
    contract: str
    node: str | None
    reason: str
    start: datetime
    end: datetime
    intervals: int = Field(description="stored intervals it changed now")
    excluded_gpu_seconds: int = Field(description="GPU-seconds it took from billable now")


class AvailabilityHour(BaseModel):
    start: datetime
    contracted_gpus: int
    lost_gpu_seconds: int = Field(description="GPU-seconds contracted but not usable")
    availability: Decimal | None = Field(
        description="usable / contracted GPUs, time-weighted over the hour; null when nothing "
        "is contracted"
    )


class AvailabilityOut(BaseModel):
    contract: str
    start: datetime
    end: datetime
    availability: Decimal | None = Field(
        description="over the whole range, weighted by contracted GPU-hours"
    )
    hours: list[AvailabilityHour]


class RollupOut(BaseModel):
    start: datetime
    end: datetime
    contract: str
    tenant: str
    site: str
    accelerator: str
    allocated_gpu_seconds: int = Field(
        description="GPU-seconds the contract held (allocations, spot leases); final once closed"
    )
    measured_gpu_seconds: int = Field(description="used, as reported")
    billable_gpu_seconds: int = Field(description="measured less excluded")
    excluded_gpu_seconds: dict[str, int] = Field(
        description="by reason: outside-term, node-down, maintenance, operator-fault"
    )
    allocated_gpu_hours: Decimal
    used_gpu_hours: Decimal = Field(description="measured GPU-hours (6 places, half-even)")
    billable_gpu_hours: Decimal
    excluded_gpu_hours: dict[str, Decimal]
    energy_kwh: Decimal = Field(
        description="the GPUs' draw while the contract held them, from telemetry; final once closed"
    )
    closed: bool = Field(
        description="every hour of the bucket is closed: allocated and energy final"
    )


class RollupsOut(BaseModel):
    step: str
    start: datetime
    end: datetime
    items: list[RollupOut]
    next_cursor: str | None = None


class RollupRangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime = Field(description="the first hour (a whole hour, with offset)")
    end: datetime = Field(description="the hour after the last (a whole hour, with offset)")


class RollupRebuildOut(BaseModel):
    start: datetime
    end: datetime
    rows: int = Field(description="rollup rows written from the ledgers")
    hours_closed: int = Field(
        description="hours whose allocated GPU-seconds and energy were set again"
    )


class RollupCloseOut(BaseModel):
    hours_closed: list[datetime]
