"""API shapes of the capacity calendar: supply, committed and free over time; conflicts."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class Step(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Group(enum.StrEnum):
    """What a row of the calendar is: one pool (site x accelerator x fabric), or every pool
    of an accelerator at a site summed (the fabric reads `*`)."""

    POOL = "pool"
    ACCELERATOR = "accelerator"


class Bucket(BaseModel):
    start: datetime
    end: datetime
    supply: int
    committed: int
    free: int


class PoolSeries(BaseModel):
    site: str
    accelerator: str
    fabric: str
    gpus_per_node: int
    block_gpus: int
    out_of_service: int
    series: list[Bucket]


class CapacityOut(BaseModel):
    start: datetime
    end: datetime
    step: Step
    pools: list[PoolSeries]


class ShortContract(BaseModel):
    contract: str
    tenant: str
    short_gpus: int


class ConflictOut(BaseModel):
    kind: str  # oversold | power | floor | exclusive
    site: str
    accelerator: str | None
    fabric: str | None
    start: datetime
    end: datetime
    amount: Decimal
    unit: str  # gpus | mw
    detail: str
    contracts: list[ShortContract]
