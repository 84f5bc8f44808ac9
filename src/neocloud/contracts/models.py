"""Contracts, their revisions (full history), and stored quotes."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.core.timeutil import utcnow
from neocloud.db.base import Base, Money, Timestamped, UTCDateTime, str_enum


class ContractType(enum.StrEnum):
    RESERVED = "reserved"
    DEDICATED_SITE = "dedicated-site"
    ON_DEMAND = "on-demand"
    SPOT = "spot"
    INTERNAL = "internal"

    @property
    def holds_capacity(self) -> bool:
        """Reserved, dedicated and internal contracts are commitments; the others are not."""
        return self in (ContractType.RESERVED, ContractType.DEDICATED_SITE, ContractType.INTERNAL)


class ContractState(enum.StrEnum):
    """Stored states. `booked` reads as `active` during the term and `ended` after it."""

    QUOTED = "quoted"
    BOOKED = "booked"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


class PriceModel(enum.StrEnum):
    PER_GPU_HOUR = "per-gpu-hour"
    MONTHLY_FEE = "monthly-fee"
    PER_MW_MONTH = "per-mw-month"


class Contract(Timestamped, Base):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    type: Mapped[ContractType] = mapped_column(str_enum(ContractType))
    state: Mapped[ContractState] = mapped_column(str_enum(ContractState), index=True)
    accelerator_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accelerators.id"))
    gpus: Mapped[int | None] = mapped_column(sa.Integer)
    mw: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 3))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    sites: Mapped[list[str] | None] = mapped_column(sa.JSON)
    same_fabric: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    unit: Mapped[str] = mapped_column(sa.String(8), default="gpu")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    price_model: Mapped[PriceModel] = mapped_column(str_enum(PriceModel))
    price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    commitment: Mapped[Decimal | None] = mapped_column(Money)
    take_or_pay: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    prepayment_pct: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), default=Decimal(0))
    sla_tier: Mapped[str] = mapped_column(sa.String(32), default="none")
    lendable: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    notice_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    floors: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    quote_id: Mapped[int | None] = mapped_column(sa.ForeignKey("quotes.id"))
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str | None] = mapped_column(sa.String(2000))


class ContractRevision(Base):
    """One entry of a contract's history: what changed it, who, when, and how it stood after."""

    __tablename__ = "contract_revisions"
    __table_args__ = (sa.UniqueConstraint("contract_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int] = mapped_column(sa.Integer)
    action: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    actor: Mapped[str] = mapped_column(sa.String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class Quote(Base):
    """A quote as it was answered: the request and its ranked options (holds no capacity)."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    options: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
