"""Late usage: what the rollups say now about periods already invoiced, against what their
invoices billed. Usage may arrive up to metering's acceptance window (35 days) after it
happened, and an operator may exclude usage after the fact; an issued invoice never
changes, so the difference lands on the next invoice as an adjustment line, naming the
period it corrects and the GPU-seconds behind it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing import loading, money
from neocloud.billing.charges import Charge, ChargeKind, Usage
from neocloud.billing.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from neocloud.billing.months import Period
from neocloud.billing.price_service import Books
from neocloud.billing.rating import rate

LATE_PERIODS = 2
"""How many periods back late usage is looked for: the acceptance window (35 days) reaches
at most into the period before the last."""
USAGE_KINDS = (ChargeKind.USAGE.value, ChargeKind.OVERAGE.value, ChargeKind.ADJUSTMENT.value)


@dataclass(frozen=True)
class Adjustment:
    contract_id: int
    tenant_id: int
    currency: str
    for_period: str
    charge: Charge


def adjustments(
    session: Session, period: Period, tenant_ids: Iterable[int] | None, books: Books
) -> list[Adjustment]:
    """Adjustments for the tenants' (None: every tenant's) finalized invoices of the periods
    before `period`."""
    allowed = None if tenant_ids is None else set(tenant_ids)
    earlier = [period.previous()]
    while len(earlier) < LATE_PERIODS:
        earlier.append(earlier[-1].previous())
    finalized: dict[str, set[int]] = defaultdict(set)
    for tid, label in session.execute(
        sa.select(Invoice.tenant_id, Invoice.period).where(
            Invoice.period.in_([p.label for p in earlier]),
            Invoice.status.in_([InvoiceStatus.ISSUED, InvoiceStatus.PAID]),
            Invoice.kind != DocumentKind.CREDIT_NOTE,
        )
    ):
        if allowed is None or tid in allowed:
            finalized[label].add(tid)
    out: list[Adjustment] = []
    for q in earlier:
        if finalized.get(q.label):
            out.extend(_for_period(session, period, q, finalized[q.label], books))
    return out


def _for_period(
    session: Session, period: Period, q: Period, tenants: set[int], books: Books
) -> list[Adjustment]:
    billed = loading.contracts(session, q, tenants)
    if not billed:
        return []
    ids = [b.id for b in billed]
    held = loading.claims(session, ids)
    used = loading.usage(session, q, held)
    amounts: dict[int, Decimal] = defaultdict(Decimal)
    seconds: dict[int, int] = defaultdict(int)
    for cid, amount, source in session.execute(
        sa.select(InvoiceLine.contract_id, InvoiceLine.amount, InvoiceLine.source)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            InvoiceLine.for_period == q.label,
            InvoiceLine.kind.in_(USAGE_KINDS),
            loading.among(session, InvoiceLine.contract_id, ids),
            Invoice.status != InvoiceStatus.VOID,
            Invoice.kind != DocumentKind.CREDIT_NOTE,
            Invoice.period < period.label,
        )
    ):
        if cid is None:
            continue
        amounts[cid] += Decimal(amount)
        seconds[cid] += int((source or {}).get("gpu_seconds", 0))
    out = []
    for b in billed:
        t = b.terms
        lines = rate(
            t,
            q,
            held.get(b.id, []),
            used.get(b.id, Usage()),
            None,
            books.for_tenant(b.tenant_id, t.currency),
        )
        now = [c for c in lines if c.kind.value in USAGE_KINDS]
        rated = money.total(c.amount for c in now)
        rated_seconds = sum(int(c.source.get("gpu_seconds", 0)) for c in now)
        delta = rated - amounts[b.id]
        if not delta:
            continue
        more = rated_seconds - seconds[b.id]
        out.append(
            Adjustment(
                b.id,
                b.tenant_id,
                t.currency,
                q.label,
                Charge(
                    kind=ChargeKind.ADJUSTMENT,
                    contract=t.contract,
                    description=(
                        f"late usage for {q.label}: {more:+,} GPU-seconds since it was "
                        f"invoiced ({seconds[b.id]:,} billed, {rated_seconds:,} in the rollups "
                        f"now); {money.plain(amounts[b.id])} billed, {money.plain(rated)} due"
                    ),
                    quantity=Decimal(1),
                    unit="each",
                    unit_price=delta,
                    amount=delta,
                    source={
                        "rule": "late-usage",
                        "contract": t.contract,
                        "for_period": q.label,
                        "gpu_seconds": more,
                        "billed_gpu_seconds": seconds[b.id],
                        "rated_gpu_seconds": rated_seconds,
                        "billed_amount": str(amounts[b.id]),
                        "rated_amount": str(rated),
                    },
                ),
            )
        )
    return out
