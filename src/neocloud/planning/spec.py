"""The scenario file as written: pydantic models that check shapes and ranges. References
between entries (a deal's site, a delivery's accelerator) and quarters are checked when the
file becomes a `Scenario` (see `scenario`). Documented field by field in docs/planning.md."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neocloud.planning.quarters import parse_quarter

Name = Annotated[str, Field(min_length=1, max_length=120)]
QuarterText = Annotated[str, Field(min_length=6, max_length=8, description="e.g. 2026Q3")]
Money = Annotated[float, Field(ge=0, le=1e12)]
Gpus = Annotated[int, Field(ge=0, le=100_000_000)]
Delay = dict[int, Annotated[float, Field(ge=0, le=1)]]
"""Probability that a delivery arrives k quarters late, for k = 0, 1, 2, ..."""
ByQuarter = int | dict[str, Gpus]
"""A constant, or values from a quarter on: {2026Q3: 10000, 2027Q1: 20000}."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_quarter(value: str) -> str:
    parse_quarter(value)
    return value


def _check_optional_quarter(value: str | None) -> str | None:
    return value if value is None else _check_quarter(value)


def _check_delay(value: Delay | None) -> Delay | None:
    if value is None:
        return None
    if not value:
        raise ValueError("give at least one delay, e.g. {0: 1.0}")
    if any(k < 0 or k > 20 for k in value):
        raise ValueError("delays are whole quarters from 0 to 20")
    total = sum(value.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"probabilities must sum to 1 (they sum to {total:g})")
    return value


class PoolSpec(Strict):
    accelerator: Name
    gpus: Gpus = 0
    block_gpus: Annotated[int, Field(ge=1, le=100_000)] | None = None
    kw_per_gpu: Annotated[float, Field(gt=0, le=100)] | None = None


class SiteSpec(Strict):
    name: Name
    power_mw: Annotated[float, Field(gt=0, le=100_000)]
    pue: Annotated[float, Field(ge=1, le=3)] = 1.2
    power_usd_per_mwh: Money | None = None
    accelerators: list[PoolSpec] = Field(default_factory=list)


class FleetSource(Strict):
    file: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    from_: Literal["database"] | None = Field(default=None, alias="from")
    sites: list[Name] | None = Field(
        default=None, description="only these sites of the fleet (default: all)"
    )

    @model_validator(mode="after")
    def _one(self) -> FleetSource:
        if (self.file is None) == (self.from_ is None):
            raise ValueError("give either 'file: fleet.yaml' or 'from: database'")
        return self


class DeliverySpec(Strict):
    name: Name
    site: Name | None = None
    accelerator: Name | None = None
    gpus: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    quarter: QuarterText | None = None
    delay: Delay | None = None
    block_gpus: Annotated[int, Field(ge=1, le=100_000)] | None = None
    kw_per_gpu: Annotated[float, Field(gt=0, le=100)] | None = None

    _q = field_validator("quarter")(_check_optional_quarter)
    _d = field_validator("delay")(_check_delay)


class DealSpec(Strict):
    name: Name
    customer: Name
    accelerator: Name | None = None
    gpus: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    mw: Annotated[float, Field(gt=0, le=100_000)] | None = None
    whole_site: bool = False
    site: Name | None = None
    start: QuarterText | list[QuarterText]
    term_quarters: Annotated[int, Field(ge=1, le=200)]
    price_per_gpu_hour: Money | None = None
    price_per_mw_month: Money | None = None
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | list[str]) -> str | list[str]:
        quarters = [value] if isinstance(value, str) else value
        if not 1 <= len(quarters) <= 2:
            raise ValueError("a start is a quarter or a window [earliest, latest]")
        for q in quarters:
            _check_quarter(q)
        if parse_quarter(quarters[0]) > parse_quarter(quarters[-1]):
            raise ValueError("the window's earliest quarter comes after its latest")
        return value

    @model_validator(mode="after")
    def _size(self) -> DealSpec:
        if self.whole_site:
            if self.gpus is not None or self.mw is not None or self.accelerator is not None:
                raise ValueError(
                    "a whole-site deal takes everything at the site: no gpus, mw or accelerator"
                )
        else:
            if (self.gpus is None) == (self.mw is None):
                raise ValueError("give either gpus or mw (or whole_site: true)")
            if self.accelerator is None:
                raise ValueError("give the accelerator (e.g. accelerator: GB200)")
        if self.price_per_gpu_hour is not None and self.price_per_mw_month is not None:
            raise ValueError("give price_per_gpu_hour or price_per_mw_month, not both")
        if self.whole_site and self.price_per_gpu_hour is None and self.price_per_mw_month is None:
            raise ValueError(
                "a whole-site deal needs a price (price_per_mw_month or price_per_gpu_hour)"
            )
        return self


class DemandSpec(Strict):
    name: Name
    accelerator: Name
    gpus: ByQuarter
    floor: ByQuarter = 0
    sites: list[Name] | None = None
    shortfall_cost_per_gpu_hour: Money | None = None


class InternalSpec(Strict):
    shortfall_cost_per_gpu_hour: Money | None = None
    demand: list[DemandSpec] = Field(default_factory=list)


class CostsSpec(Strict):
    power_usd_per_mwh: Money | dict[str, Money] = 70.0
    operations_per_gpu_hour: Money = 0.10
    depreciation_per_gpu_quarter: Money | dict[str, Money] | None = None


class OptimizerSpec(Strict):
    delivery_confidence: Annotated[float, Field(ge=0, le=1)] = 0.5
    time_limit_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    mip_gap: Annotated[float, Field(ge=0, le=0.5)] = 0.005
    explain: bool = True


class DecisionsSpec(Strict):
    accept: list[Name] = Field(default_factory=list)
    reject: list[Name] = Field(default_factory=list)
    place: dict[str, Name] = Field(default_factory=dict)
    start: dict[str, QuarterText] = Field(default_factory=dict)
    others: Literal["optimize", "reject"] = "optimize"


class ScenarioSpec(Strict):
    name: Name | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    extends: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    start: QuarterText
    horizon: Annotated[int, Field(ge=1, le=80)] = 12
    fleet: FleetSource | None = None
    sites: list[SiteSpec] = Field(default_factory=list)
    deliveries: list[DeliverySpec] = Field(default_factory=list)
    delivery_delay: Delay | None = None
    deals: list[DealSpec] = Field(default_factory=list)
    internal: InternalSpec = Field(default_factory=InternalSpec)
    costs: CostsSpec = Field(default_factory=CostsSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    decisions: DecisionsSpec | None = None

    _q = field_validator("start")(_check_quarter)
    _d = field_validator("delivery_delay")(_check_delay)
