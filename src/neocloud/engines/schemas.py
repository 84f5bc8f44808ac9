"""API shapes of /v1/engines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class EngineSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Annotated[str, Field(min_length=1, max_length=32, description="e.g. slurm")]
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the engine's settings (Slurm: cluster, conf, bin_dir, prefix, users, timeout_s)",
    )


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str | None, Field(max_length=500)] = None


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Annotated[str | None, Field(max_length=63)] = None
    fabric: Annotated[str | None, Field(max_length=63, description="needs site")] = None
    dry_run: bool = Field(False, description="read the engine and say what would change")


class ActionOut(BaseModel):
    op: str
    """create, update or delete."""
    kind: str
    name: str
    detail: str
    error: str | None = None


class HealthStepOut(BaseModel):
    node: str
    op: str
    """fail or repair (in neocloud)."""
    reason: str


class UsageOut(BaseModel):
    runs: int
    events: int
    accepted: int
    duplicates: int
    rejected: int
    skipped: list[str] = Field(default_factory=list)
    """Runs that belong to no contract (job id: why)."""


class MarkOut(BaseModel):
    kind: str
    name: str
    note: str | None
    created_by: str
    created_at: datetime


class FabricEngineOut(BaseModel):
    site: str
    fabric: str
    engine: str
    capabilities: list[str]
    options: dict[str, Any]
    source: str
    stale: bool
    """What neocloud knows of the engine is old: the last reconcile failed, or none
    succeeded for a while."""
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    failures: int
    next_attempt_at: datetime | None
    error: str | None
    changes: list[ActionOut]
    """What the last successful reconcile changed."""
    drift: list[ActionOut]
    """What it left different: on manual objects, or refused by the engine."""
    marks: list[MarkOut]
    usage_until: datetime | None
    usage_events: int


class FabricEngineList(BaseModel):
    items: list[FabricEngineOut]
    next_cursor: str | None = None


class FabricReconcileOut(BaseModel):
    site: str
    fabric: str
    engine: str
    ok: bool
    skipped: str | None = None
    """Why nothing was done (another process holds the fabric)."""
    error: str | None = None
    stale: bool
    changes: list[ActionOut] = Field(default_factory=list)
    drift: list[ActionOut] = Field(default_factory=list)
    health: list[HealthStepOut] = Field(default_factory=list)
    usage: UsageOut | None = None


class ReconcileOut(BaseModel):
    at: datetime
    dry_run: bool
    items: list[FabricReconcileOut]
