"""An invoice's life: draft -> issued -> paid, or void; credit notes for corrections.

Issuing gives the document its number and its due date; from then on its lines never
change. A paid invoice cannot be voided (the money moved): a credit note corrects it. A
credit note is a document of its own, issued at once, that takes an amount (at most what
is left to credit) off an issued or paid invoice. Tenants read only their own documents;
another tenant's answers 404, like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing import money, months, views
from neocloud.billing.charges import ChargeKind
from neocloud.billing.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.tenants.models import Tenant

PAYMENT_TERMS = timedelta(days=30)
PREFIX = {
    DocumentKind.INVOICE: "INV",
    DocumentKind.CREDIT_NOTE: "CN",
    DocumentKind.SHOWBACK: "SB",
}


def list_invoices(
    session: Session,
    *,
    actor: Principal,
    page: PageRequest,
    period: str | None = None,
    tenant: str | None = None,
    status: InvoiceStatus | None = None,
    kind: DocumentKind | None = None,
) -> Page[Invoice]:
    actor.demand(Permission.INVOICES_READ)
    stmt = actor.scope(sa.select(Invoice), Invoice.tenant_id)
    if period is not None:
        stmt = stmt.where(Invoice.period == months.parse(period).label)
    if tenant is not None:
        tid = session.scalar(sa.select(Tenant.id).where(Tenant.name == tenant))
        stmt = stmt.where(Invoice.tenant_id == (tid if tid is not None else -1))
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if kind is not None:
        stmt = stmt.where(Invoice.kind == kind)
    return paginate(session, stmt, Invoice.id, page)


def get(session: Session, *, actor: Principal, invoice_id: int, lock: bool = False) -> Invoice:
    actor.demand(Permission.INVOICES_READ)
    stmt = sa.select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        stmt = stmt.with_for_update()
    inv = session.scalar(stmt)
    if inv is None:
        raise NotFound(f"invoice {invoice_id} not found")
    actor.check_tenant(inv.tenant_id, f"invoice {invoice_id}")
    return inv


def issue(session: Session, *, actor: Principal, invoice_id: int, now: datetime) -> Invoice:
    """Number it, date it, make it final. A period is issued only once it is over."""
    inv = _writable(session, actor, invoice_id)
    if inv.status is not InvoiceStatus.DRAFT:
        raise Conflict(f"invoice {_label(inv)} is {inv.status.value}: only a draft is issued")
    if now < inv.period_end:
        raise Conflict(
            f"invoice {_label(inv)} is for {inv.period}, which is not over until "
            f"{inv.period_end:%Y-%m-%d %H:%M} UTC: issue it after that (or run the period again)"
        )
    inv.status = InvoiceStatus.ISSUED
    inv.number = f"{PREFIX[inv.kind]}-{inv.period}-{inv.id:06d}"
    inv.issued_at = now
    if inv.kind is DocumentKind.INVOICE:
        inv.due_at = now + PAYMENT_TERMS
    _audit(session, actor, inv, "invoice.issue")
    return inv


def pay(session: Session, *, actor: Principal, invoice_id: int, now: datetime) -> Invoice:
    inv = _writable(session, actor, invoice_id)
    if inv.kind is not DocumentKind.INVOICE:
        raise Conflict(f"{_label(inv)} is a {inv.kind.value}: only an invoice is paid")
    if inv.status is not InvoiceStatus.ISSUED:
        raise Conflict(f"invoice {_label(inv)} is {inv.status.value}: only an issued one is paid")
    inv.status = InvoiceStatus.PAID
    inv.paid_at = now
    _audit(session, actor, inv, "invoice.pay")
    return inv


def void(
    session: Session, *, actor: Principal, invoice_id: int, reason: str | None, now: datetime
) -> Invoice:
    """Cancel a draft or an issued invoice (its period may then be run again for the
    tenant). Paid invoices and credit notes cannot be voided: a credit note corrects them."""
    inv = _writable(session, actor, invoice_id)
    if inv.status is InvoiceStatus.PAID:
        raise Conflict(
            f"invoice {_label(inv)} is paid and cannot be voided: write a credit note "
            f"(POST /v1/invoices/{inv.id}/credit-notes)"
        )
    if inv.status is InvoiceStatus.VOID:
        raise Conflict(f"invoice {_label(inv)} is void already")
    if inv.kind is DocumentKind.CREDIT_NOTE:
        raise Conflict(f"{_label(inv)} is a credit note: it cannot be voided")
    credited = views.credited(session, inv.id)
    if credited:
        raise Conflict(
            f"invoice {_label(inv)} carries credit notes ({money.plain(credited)}): "
            "it cannot be voided"
        )
    inv.status = InvoiceStatus.VOID
    inv.standing_key = None
    inv.voided_at = now
    inv.reason = reason
    _audit(session, actor, inv, "invoice.void")
    return inv


def credit_note(
    session: Session,
    *,
    actor: Principal,
    invoice_id: int,
    reason: str,
    amount: Decimal | None,
    now: datetime,
) -> Invoice:
    """A credit note against an issued or paid invoice, issued at once."""
    inv = _writable(session, actor, invoice_id)
    if inv.kind is not DocumentKind.INVOICE or inv.status not in (
        InvoiceStatus.ISSUED,
        InvoiceStatus.PAID,
    ):
        raise Conflict(
            f"{_label(inv)} is a {inv.status.value} {inv.kind.value}: credit notes correct "
            "issued or paid invoices (a draft is run again, or voided)"
        )
    left = Decimal(inv.total) - views.credited(session, inv.id)
    if amount is None:
        amount = left
    unit = money.minor_unit(inv.currency)
    if amount != amount.quantize(unit):
        raise InvalidInput(
            f"amount: {inv.currency} has {money.MINOR_UNITS.get(inv.currency, 2)} decimal places",
            errors=[{"loc": ["body", "amount"], "msg": "finer than the currency's minor unit"}],
        )
    if amount <= 0 or amount > left:
        raise InvalidInput(
            f"amount: {money.plain(amount)} is more than is left to credit on "
            f"{_label(inv)} ({money.plain(left)} {inv.currency})",
            errors=[{"loc": ["body", "amount"], "msg": "more than is left to credit"}],
        )
    note = Invoice(
        tenant_id=inv.tenant_id,
        kind=DocumentKind.CREDIT_NOTE,
        status=InvoiceStatus.ISSUED,
        period=inv.period,
        period_start=inv.period_start,
        period_end=inv.period_end,
        currency=inv.currency,
        total=-amount,
        standing_key=None,
        credits_invoice_id=inv.id,
        reason=reason,
        created_by=actor.name,
        issued_at=now,
    )
    session.add(note)
    session.flush()
    note.number = f"{PREFIX[note.kind]}-{note.period}-{note.id:06d}"
    session.add(
        InvoiceLine(
            invoice_id=note.id,
            position=1,
            contract_id=None,
            contract=None,
            kind=ChargeKind.CREDIT_NOTE.value,
            for_period=inv.period,
            description=f"credit against invoice {inv.number}: {reason}",
            quantity=Decimal(1),
            unit="each",
            unit_price=-amount,
            amount=-amount,
            source={"rule": "credit-note", "credits": inv.number, "reason": reason},
        )
    )
    _audit(session, actor, note, "invoice.credit_note")
    return note


def _writable(session: Session, actor: Principal, invoice_id: int) -> Invoice:
    actor.demand(Permission.INVOICES_WRITE)
    return get(session, actor=actor, invoice_id=invoice_id, lock=True)


def _label(inv: Invoice) -> str:
    return inv.number or f"{inv.id} ({inv.kind.value} draft for {inv.period})"


def _audit(session: Session, actor: Principal, inv: Invoice, action: str) -> None:
    audit.record(
        session,
        actor,
        action,
        "invoice",
        inv.id,
        tenant_id=inv.tenant_id,
        after={"number": inv.number, "status": inv.status.value, "total": str(inv.total)},
    )
