"""What billing stores: price books and their entries, invoices (and credit notes and
showback statements) with their lines.

An invoice's lines are written once, with the invoice, and never change after it is issued:
corrections are credit notes (documents of their own that point at the invoice) and late
usage lands as adjustment lines on a later invoice. Each line keeps what it came from
(`source`: contract terms, hours, GPU-seconds, price entry), so it can be traced without the
rest of the database.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.billing.prices import Unit
from neocloud.contracts.models import ContractType
from neocloud.core.timeutil import utcnow
from neocloud.db.base import Base, Money, UTCDateTime, str_enum

Quantity = sa.Numeric(24, 6)
"""Line quantities and unit prices: GPU-hours to the micro-hour, prices to 6 places."""


class PriceBook(Base):
    """A currency's prices: the list book (no tenant) or one negotiated for a tenant."""

    __tablename__ = "price_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PriceEntry(Base):
    """One price of a book over [valid_from, valid_to): per accelerator (null: any), contract
    type and minimum term; volume tiers as [{from_gpu_hours, discount_pct}]."""

    __tablename__ = "price_entries"
    __table_args__ = (
        sa.Index("ix_price_entries_book_type", "book_id", "contract_type", "accelerator"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(sa.ForeignKey("price_books.id", ondelete="CASCADE"))
    accelerator: Mapped[str | None] = mapped_column(sa.String(63))
    contract_type: Mapped[ContractType] = mapped_column(str_enum(ContractType))
    min_term_months: Mapped[int] = mapped_column(sa.Integer, default=0)
    unit: Mapped[Unit] = mapped_column(str_enum(Unit))
    price: Mapped[Decimal] = mapped_column(Money)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit-note"
    SHOWBACK = "showback"
    """An internal tenant's statement: its cost at its prices, never billed."""


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"

    @property
    def final(self) -> bool:
        """Issued, paid or void: its lines never change again."""
        return self is not InvoiceStatus.DRAFT


class Invoice(Base):
    """A tenant's document for a billing period: an invoice, a credit note or a showback.

    `standing_key` is "tenant:period:currency:kind" while a period's invoice (or showback)
    stands, and null on credit notes and once void: a unique key both databases enforce, so
    that a period has at most one standing invoice per tenant however many runs race."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.Index("ix_invoices_tenant_period", "tenant_id", "period"),
        sa.Index("ix_invoices_period_status", "period", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind))
    status: Mapped[InvoiceStatus] = mapped_column(str_enum(InvoiceStatus))
    period: Mapped[str] = mapped_column(sa.String(7))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(sa.String(3))
    total: Mapped[Decimal] = mapped_column(Money)
    standing_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    credits_invoice_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InvoiceLine(Base):
    """One line: a charge of one contract (or a credit note's correction), rounded."""

    __tablename__ = "invoice_lines"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer)
    contract_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="SET NULL"), index=True
    )
    contract: Mapped[str | None] = mapped_column(sa.String(63))
    kind: Mapped[str] = mapped_column(sa.String(32))
    for_period: Mapped[str] = mapped_column(sa.String(7))
    """The period the line rates (an adjustment's is earlier than its invoice's)."""
    description: Mapped[str] = mapped_column(sa.String(2000))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(sa.String(16))
    unit_price: Mapped[Decimal] = mapped_column(Quantity)
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
