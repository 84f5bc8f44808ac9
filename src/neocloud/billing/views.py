"""Invoices as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from neocloud.billing.money import minor_unit
from neocloud.billing.schemas import InvoiceOut, InvoiceSummary, LineOut
from neocloud.tenants.models import Tenant


def summaries(session: Session, rows: Sequence[Invoice]) -> list[InvoiceSummary]:
    """Summaries of many invoices in three queries (tenants, line counts, credited numbers)."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    names = dict(
        session.execute(
            sa.select(Tenant.id, Tenant.name).where(Tenant.id.in_({r.tenant_id for r in rows}))
        ).all()
    )
    counts = dict(
        session.execute(
            sa.select(InvoiceLine.invoice_id, sa.func.count())
            .where(InvoiceLine.invoice_id.in_(ids))
            .group_by(InvoiceLine.invoice_id)
        ).all()
    )
    credited_ids = {r.credits_invoice_id for r in rows if r.credits_invoice_id}
    numbers = (
        dict(
            session.execute(
                sa.select(Invoice.id, Invoice.number).where(Invoice.id.in_(credited_ids))
            ).all()
        )
        if credited_ids
        else {}
    )
    return [
        InvoiceSummary(
            id=r.id,
            number=r.number,
            tenant=names[r.tenant_id],
            kind=r.kind,
            status=r.status,
            period=r.period,
            currency=r.currency,
            total=Decimal(r.total).quantize(minor_unit(r.currency)),
            lines=counts.get(r.id, 0),
            credits_invoice=numbers.get(r.credits_invoice_id) if r.credits_invoice_id else None,
            created_at=r.created_at,
            issued_at=r.issued_at,
            due_at=r.due_at,
            paid_at=r.paid_at,
            voided_at=r.voided_at,
        )
        for r in rows
    ]


def lines(session: Session, invoice_id: int) -> list[InvoiceLine]:
    return list(
        session.scalars(
            sa.select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
    )


def credited(session: Session, invoice_id: int) -> Decimal:
    """What credit notes (not void) have taken off an invoice, as a positive amount."""
    total = session.scalar(
        sa.select(sa.func.sum(Invoice.total)).where(
            Invoice.credits_invoice_id == invoice_id,
            Invoice.kind == DocumentKind.CREDIT_NOTE,
            Invoice.status != InvoiceStatus.VOID,
        )
    )
    return -Decimal(total or 0)


def detail(session: Session, inv: Invoice) -> InvoiceOut:
    head = summaries(session, [inv])[0]
    return InvoiceOut(
        **head.model_dump(),
        period_start=inv.period_start,
        period_end=inv.period_end,
        reason=inv.reason,
        credited=credited(session, inv.id).quantize(minor_unit(inv.currency)),
        items=[
            LineOut(
                position=x.position,
                contract=x.contract,
                kind=x.kind,
                for_period=x.for_period,
                description=x.description,
                quantity=Decimal(x.quantity),
                unit=x.unit,
                unit_price=Decimal(x.unit_price),
                amount=Decimal(x.amount).quantize(minor_unit(inv.currency)),
                source=x.source,
            )
            for x in lines(session, inv.id)
        ],
    )
