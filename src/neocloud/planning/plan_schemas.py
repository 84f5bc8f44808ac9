"""API shapes of /v1/plans: asking for a plan, and a run with its progress and report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from neocloud.planning.models import PlanStatus

MAX_SCENARIO_CHARS = 1_000_000
ScenarioText = Annotated[
    str, Field(min_length=1, max_length=MAX_SCENARIO_CHARS, description="YAML or JSON text")
]


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: ScenarioText | dict[str, Any] = Field(
        description="the scenario (docs/planning.md): its YAML text, or the same as a JSON object"
    )
    compare: ScenarioText | dict[str, Any] | None = Field(
        default=None, description="a second scenario to compare it with (e.g. 'keep the site')"
    )
    runs: Annotated[int, Field(ge=0, le=10_000, description="Monte Carlo runs (0: none)")] = 1000
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


class PlanRunOut(BaseModel):
    """A run without its report (listings)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    status: PlanStatus
    progress: float
    message: str
    runs: int
    seed: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    attempts: int


class PlanRunDetail(PlanRunOut):
    """A run with what was asked and, once it succeeded, the report and its charts."""

    scenario: str
    compare: str | None
    result: dict[str, Any] | None = Field(description="the report (docs/planning.md) when done")
    charts: list[str] = Field(description="URLs of the report's PNG charts when done")


class PlanExample(BaseModel):
    """A built-in scenario file: send its `text` as `scenario` (or `compare`) as it is."""

    file: str = Field(description="its file name, which other scenarios may `extends`")
    name: str = Field(description="the scenario's name in reports")
    description: str
    text: str = Field(description="the YAML text")


class PlanComparison(BaseModel):
    """Two built-in scenarios to compare: the story's choice."""

    name: str
    description: str
    scenario: str = Field(description="the file of the scenario to send as `scenario`")
    compare: str = Field(description="the file of the scenario to send as `compare`")


class PlanExamplesOut(BaseModel):
    scenarios: list[PlanExample]
    comparisons: list[PlanComparison]
