"""API shapes for contracts, amendments and quotes."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neocloud.capacity.planner import Unit
from neocloud.contracts.models import ContractState, ContractType, PriceModel
from neocloud.core.names import Slug

MAX_GPUS = 10_000_000
MAX_MW = Decimal(100_000)
Gpus = Annotated[int, Field(gt=0, le=MAX_GPUS, description="a whole number of GPUs")]
Mw = Annotated[Decimal, Field(gt=0, le=MAX_MW, description="facility megawatts")]
Name = Annotated[str, Field(min_length=1, max_length=63)]


class SlaTier(enum.StrEnum):
    NONE = "none"
    STANDARD = "standard"  # 99.5% monthly availability
    PREMIUM = "premium"  # 99.9%
    CRITICAL = "critical"  # 99.99%


class FloorIn(BaseModel):
    """An internal floor: a GPU count or a share of the site's supply of the accelerator."""

    model_config = ConfigDict(extra="forbid")

    site: Name | None = Field(None, description="default: the site the contract is booked on")
    gpus: Annotated[int | None, Field(gt=0, le=MAX_GPUS)] = None
    share: Annotated[Decimal | None, Field(gt=0, le=1)] = None
    start: datetime | None = Field(None, description="default: the contract's start")
    end: datetime | None = Field(None, description="default: the contract's end")

    @model_validator(mode="after")
    def _one_measure(self) -> FloorIn:
        if (self.gpus is None) == (self.share is None):
            raise ValueError("give exactly one of 'gpus' or 'share'")
        return self


class Terms(BaseModel):
    """Price terms. Anything left out comes from the list price for the type and term."""

    model_config = ConfigDict(extra="forbid")

    price_model: PriceModel | None = None
    price: Annotated[Decimal | None, Field(ge=0, le=Decimal(10) ** 12)] = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    commitment: Annotated[Decimal | None, Field(ge=0, le=Decimal(10) ** 13)] = None
    take_or_pay: bool | None = None
    prepayment_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)
    sla_tier: SlaTier = SlaTier.NONE
    lendable: bool = False
    notice_minutes: Annotated[int | None, Field(ge=0, le=7 * 24 * 60)] = None


class ContractCreate(Terms):
    name: Slug | None = Field(None, description="default: generated from tenant and type")
    tenant: Name | None = Field(None, description="required unless booking from a quote")
    type: ContractType | None = None
    quote: Annotated[int | None, Field(gt=0)] = Field(None, description="book from this quote")
    option: Annotated[int, Field(ge=1, le=100)] = 1
    accelerator: Name | None = None
    gpus: Gpus | None = None
    mw: Mw | None = None
    site: Name | None = Field(None, description="the site (dedicated-site) or a single site")
    sites: Annotated[list[Name] | None, Field(max_length=50)] = None
    start: datetime | None = None
    end: datetime | None = None
    same_fabric: bool = False
    unit: Unit = Unit.GPU
    floors: Annotated[list[FloorIn] | None, Field(max_length=50)] = None
    relocate_internal: bool = Field(
        True, description="dedicated-site: move internal commitments off the site if needed"
    )
    book: bool = Field(True, description="false: record the contract as quoted, holding nothing")
    notes: Annotated[str | None, Field(max_length=2000)] = None


class AmendmentKind(enum.StrEnum):
    EXTEND = "extend"
    GROW = "grow"
    SHRINK = "shrink"
    MOVE = "move"


class AmendmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AmendmentKind
    end: datetime | None = Field(None, description="extend: the new end")
    gpus: Gpus | None = Field(None, description="grow/shrink: the new number of GPUs")
    site: Name | None = Field(None, description="move: the site to move to")
    sites: Annotated[list[Name] | None, Field(max_length=50)] = None
    effective: datetime | None = Field(
        None, description="grow/shrink/move: when it takes effect (default: now, or the start)"
    )
    reason: Annotated[str | None, Field(max_length=500)] = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=500)] = None


class ClaimOut(BaseModel):
    site: str
    accelerator: str
    fabric: str
    gpus: int
    start: datetime
    end: datetime
    exclusive: bool


class FloorOut(BaseModel):
    site: str
    accelerator: str
    gpus: int | None
    share: Decimal | None
    start: datetime
    end: datetime


class ContractOut(BaseModel):
    id: int
    name: str
    tenant: str
    tenant_id: int
    type: ContractType
    state: ContractState
    accelerator: str | None
    gpus: int | None
    mw: Decimal | None
    site: str | None
    sites: list[str] | None
    same_fabric: bool
    unit: Unit
    start: datetime
    end: datetime
    price_model: PriceModel
    price: Decimal
    currency: str
    commitment: Decimal | None
    take_or_pay: bool
    prepayment_pct: Decimal
    sla_tier: str
    lendable: bool
    notice_minutes: int | None
    contract_value: Decimal = Field(description="the price over the whole term, as booked")
    revision: int
    quote_id: int | None
    booked_at: datetime | None
    cancelled_at: datetime | None
    notes: str | None
    claims: list[ClaimOut]
    floors: list[FloorOut]


class RevisionOut(BaseModel):
    revision: int
    action: str
    reason: str | None
    actor: str
    at: datetime
    snapshot: dict[str, Any]


class QuoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: Name | None = Field(None, description="default: the caller's tenant")
    type: ContractType = ContractType.RESERVED
    accelerator: Name | None = None
    gpus: Gpus | None = None
    mw: Mw | None = None
    site: Name | None = None
    sites: Annotated[list[Name] | None, Field(max_length=50)] = None
    start_after: datetime | None = Field(None, description="earliest start (default: now)")
    start_before: datetime | None = Field(
        None, description="latest start (default: 90 days after start_after)"
    )
    months: Annotated[int | None, Field(gt=0, le=240)] = Field(None, description="730 h each")
    days: Annotated[int | None, Field(gt=0, le=7300)] = None
    hours: Annotated[int | None, Field(gt=0, le=175_200)] = None
    same_fabric: bool = False
    unit: Unit = Unit.GPU
    max_options: Annotated[int, Field(ge=1, le=20)] = 5

    @model_validator(mode="after")
    def _one_term(self) -> QuoteCreate:
        given = [x for x in (self.months, self.days, self.hours) if x is not None]
        if len(given) > 1:
            raise ValueError("give the term once: months, days or hours")
        return self


class UseOut(BaseModel):
    kind: str
    share: Decimal
    at: datetime
    detail: str


class PoolPart(BaseModel):
    fabric: str
    gpus: int


class RelocationOut(BaseModel):
    contract: str
    gpus: int
    start: datetime
    end: datetime
    from_site: str
    to_site: str
    parts: list[PoolPart]


class QuoteOption(BaseModel):
    option: int
    site: str
    accelerator: str | None
    start: datetime
    end: datetime
    gpus: int
    mw: Decimal
    price_model: PriceModel
    price: Decimal
    currency: str
    contract_value: Decimal
    pools: list[PoolPart]
    uses: list[UseOut]
    relocations: list[RelocationOut] = []


class MissingOut(BaseModel):
    site: str
    possible: int
    missing: int
    reason: str


class UnavailableOut(BaseModel):
    detail: str
    earliest_start: datetime | None
    earliest_site: str | None
    missing: list[MissingOut]


class QuoteOut(BaseModel):
    id: int
    tenant: str | None
    type: ContractType
    created_at: datetime
    expires_at: datetime
    request: dict[str, Any]
    options: list[QuoteOption]
    unavailable: UnavailableOut | None
