"""API shapes of the shared pools' jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from neocloud.core.names import Slug
from neocloud.placement.job_models import JobState
from neocloud.placement.jobs import MILLI_PER_GPU

Name = Annotated[str, Field(min_length=1, max_length=63)]
MAX_JOB_GPUS = 100_000
MAX_DURATION_S = 366 * 24 * 3600
MAX_PRIORITY = 1_000_000


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract: Name = Field(description="an internal, spot or on-demand contract of the tenant")
    gpus: Annotated[int, Field(ge=1, le=MAX_JOB_GPUS)] = Field(
        description="GPUs, all or nothing (a gang); several GPUs are whole GPUs"
    )
    gpu_milli: Annotated[int, Field(ge=1, le=MILLI_PER_GPU)] = Field(
        MILLI_PER_GPU, description="milli-GPUs per GPU: below 1000 shares one GPU (gpus 1)"
    )
    gpu_types: Annotated[list[Name] | None, Field(max_length=20)] = Field(
        None, description="acceptable accelerators (default: any the contract runs on)"
    )
    priority: Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)] = Field(
        0, description="higher runs first; equal priorities in submission order"
    )
    duration_s: Annotated[int | None, Field(ge=1, le=MAX_DURATION_S)] = Field(
        None, description="expected run time in seconds (backfill plans with it); null: unknown"
    )
    name: Slug | None = Field(None, description="unique; default: generated")
    site: Name | None = Field(
        None, description="the site to run at, when the contract allows several"
    )


class JobGpu(BaseModel):
    node: str
    gpu: int = Field(description="the GPU's index on its node")


class JobEventOut(BaseModel):
    at: datetime
    kind: str = Field(
        description="submitted, started, preempted, finished, cancelled or unplaceable"
    )
    reason: str | None


class JobOut(BaseModel):
    id: int
    name: str
    tenant: str
    contract: str
    site: str
    pool: str = Field(description="internal, spot or on-demand")
    gpus: int
    gpu_milli: int
    gpu_types: list[str]
    priority: int
    preemptible: bool
    duration_s: int | None
    state: JobState
    reason: str | None = Field(description="why it is unplaceable, cancelled or was preempted")
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    placement: list[JobGpu] = Field(description="its GPUs while running, each taking gpu_milli")
    preemptions: int


class JobDetail(JobOut):
    events: list[JobEventOut] = Field(description="everything that happened to it, in order")


class JobEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=500)] = None


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Name | None = Field(None, description="only this site's pools")


class PreemptedOut(BaseModel):
    job: str
    reason: str


class ScheduleOut(BaseModel):
    at: datetime
    policy: str
    started: list[JobOut]
    preempted: list[PreemptedOut]
    unplaceable: list[JobOut]
    cancelled: list[JobOut] = Field(description="jobs whose contract ended")
