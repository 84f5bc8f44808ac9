"""API shapes of price books and invoices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from neocloud.billing.models import DocumentKind, InvoiceStatus
from neocloud.billing.prices import Unit
from neocloud.contracts.models import ContractType

Price = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=6)]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_gpu_hours: int = Field(ge=1, le=10**12, description="GPU-hours of a period from which on")
    discount_pct: Annotated[Decimal, Field(gt=0, le=100, max_digits=7, decimal_places=4)]


class PriceEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accelerator: Annotated[str | None, Field(max_length=63)] = Field(
        default=None, description="the model (H100, GB200, ...); null: any (a site's MW price)"
    )
    contract_type: ContractType
    min_term_months: int = Field(
        default=0, ge=0, le=240, description="the term from which this price applies"
    )
    unit: Unit = Unit.GPU_HOUR
    price: Price
    tiers: list[TierIn] = Field(default_factory=list, max_length=20)
    valid_from: datetime = Field(description="the first hour of a month, UTC")
    valid_to: datetime | None = Field(default=None, description="exclusive; null: until changed")


class PriceEntryOut(PriceEntryIn):
    model_config = ConfigDict(extra="ignore")

    id: int


class PriceBookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    tenant: Annotated[str | None, Field(max_length=63)] = Field(
        default=None, description="a book negotiated for one tenant (default: a list book)"
    )
    description: Annotated[str | None, Field(max_length=500)] = None
    entries: list[PriceEntryIn] = Field(default_factory=list, max_length=2000)


class PriceBookOut(BaseModel):
    id: int
    name: str
    currency: str
    tenant: str | None
    description: str | None
    entries: list[PriceEntryOut]


class PriceBookSummary(BaseModel):
    id: int
    name: str
    currency: str
    tenant: str | None
    description: str | None
    entry_count: int


class PriceBooksOut(BaseModel):
    items: list[PriceBookSummary]
    next_cursor: str | None = None


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Annotated[str, Field(max_length=7, description="YYYY-MM")]
    tenant: Annotated[str | None, Field(max_length=63)] = Field(
        default=None, description="one tenant (default: every tenant)"
    )


class LineOut(BaseModel):
    position: int
    contract: str | None
    kind: str
    for_period: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    source: dict[str, Any]


class InvoiceSummary(BaseModel):
    id: int
    number: str | None
    tenant: str
    kind: DocumentKind
    status: InvoiceStatus
    period: str
    currency: str
    total: Decimal
    lines: int
    credits_invoice: str | None = None
    created_at: datetime
    issued_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None


class InvoiceOut(InvoiceSummary):
    period_start: datetime
    period_end: datetime
    reason: str | None
    items: list[LineOut]
    credited: Decimal = Field(description="what credit notes have taken off this invoice")


class InvoicesOut(BaseModel):
    items: list[InvoiceSummary]
    next_cursor: str | None = None


class RunOut(BaseModel):
    period: str
    documents: list[InvoiceSummary]
    kept: list[InvoiceSummary] = Field(description="finalized documents the run left alone")
    replaced_drafts: int


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=500)] = None


class CreditNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    amount: Annotated[Decimal | None, Field(gt=0, max_digits=20, decimal_places=6)] = Field(
        default=None, description="default: all that is left to credit"
    )
