"""Running a billing period: rate every contract of every tenant (or one) and write the
period's draft invoices — customers' invoices, internal tenants' showback statements — in
one transaction.

A run loads what it needs in a few queries (`loading`), calls the pure `rating.rate` per
contract, finds late usage of periods already invoiced (`late`), then replaces the
period's drafts. Documents already issued, paid or void are never touched: a tenant whose
invoice for the period is final is left out, and a run that would change nothing but
finalized documents is refused (409) — corrections go on a credit note or, for late usage,
on the next period's invoice by themselves. Concurrent runs of a period take turns (an
advisory lock on PostgreSQL; SQLite has one writer), and the unique `standing_key` keeps a
period at one standing invoice per tenant whatever happens.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing import late, loading, money, months
from neocloud.billing.charges import Carry, Charge, ChargeKind, Usage
from neocloud.billing.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from neocloud.billing.months import Period
from neocloud.billing.price_service import Books
from neocloud.billing.rating import rate
from neocloud.core.errors import Conflict, InvalidInput
from neocloud.tenants.models import Tenant, TenantKind

ORDER = {k: i for i, k in enumerate(ChargeKind)}


@dataclass(frozen=True)
class Pending:
    """A line to write: the charge, whose contract it is and the period it rates."""

    contract_id: int | None
    tenant_id: int
    currency: str
    for_period: str
    charge: Charge


@dataclass(frozen=True)
class RunResult:
    period: Period
    documents: list[Invoice]
    kept: list[Invoice]
    replaced_drafts: int


def run(
    session: Session, *, actor: Principal, period: str, tenant: str | None, now: datetime
) -> RunResult:
    """Rate the period and write its drafts (see the module's doc)."""
    actor.demand(Permission.INVOICES_WRITE)
    p = months.parse(period)
    scope = _tenants(session, tenant)
    _lock(session, p)
    standing = list(
        session.scalars(
            sa.select(Invoice).where(
                Invoice.period == p.label,
                Invoice.kind != DocumentKind.CREDIT_NOTE,
                Invoice.status != InvoiceStatus.VOID,
            )
        )
    )
    standing = [i for i in standing if i.tenant_id in scope]
    kept = [i for i in standing if i.status.final]
    final = {i.tenant_id for i in kept}
    if tenant is not None and final:
        raise Conflict(
            f"period {p.label} is finalized for '{tenant}' ({_names(kept)}): "
            "correct it with a credit note; late usage goes on the next period by itself"
        )
    open_ids = None if tenant is None and not final else [t for t in scope if t not in final]
    pending = charges(session, p, open_ids, now)
    drafts = [i for i in standing if not i.status.final]
    if final and not pending and not drafts:
        raise Conflict(
            f"period {p.label} is finalized ({_names(kept)}) and nothing else is due in it: "
            "correct an invoice with a credit note; late usage goes on the next period"
        )
    _delete(session, [d.id for d in drafts])
    documents = _write(session, actor, p, scope, pending, now)
    audit.record(
        session,
        actor,
        "invoices.run",
        "period",
        p.label,
        after={
            "documents": [d.id for d in documents],
            "kept": [k.id for k in kept],
            "replaced_drafts": len(drafts),
        },
    )
    return RunResult(p, documents, kept, len(drafts))


def charges(
    session: Session, p: Period, tenant_ids: list[int] | None, now: datetime
) -> list[Pending]:
    """Every line the period's run writes for these tenants (None: every tenant), rating
    over loaded data."""
    if tenant_ids is not None and not tenant_ids:
        return []
    billed = loading.contracts(session, p, tenant_ids)
    ids = [b.id for b in billed]
    held = loading.claims(session, ids)
    used = loading.usage(session, p, held) if billed else {}
    available = loading.availability(session, p, billed, held, now)
    carried = loading.carries(session, p, ids)
    books = Books(session)
    out: list[Pending] = []
    for b in billed:
        for c in rate(
            b.terms,
            p,
            held.get(b.id, []),
            used.get(b.id, Usage()),
            available.get(b.id),
            books.for_tenant(b.tenant_id, b.terms.currency),
            carried.get(b.id, Carry()),
        ):
            out.append(Pending(b.id, b.tenant_id, b.terms.currency, p.label, c))
    for a in late.adjustments(session, p, tenant_ids, books):
        out.append(Pending(a.contract_id, a.tenant_id, a.currency, a.for_period, a.charge))
    return out


def _write(
    session: Session,
    actor: Principal,
    p: Period,
    scope: dict[int, Tenant],
    pending: list[Pending],
    now: datetime,
) -> list[Invoice]:
    groups: dict[tuple[int, str], list[Pending]] = defaultdict(list)
    for x in pending:
        groups[(x.tenant_id, x.currency)].append(x)
    heads: list[dict[str, Any]] = []
    for tid, currency in sorted(groups):
        kind = (
            DocumentKind.SHOWBACK
            if scope[tid].kind is TenantKind.INTERNAL
            else DocumentKind.INVOICE
        )
        heads.append(
            {
                "tenant_id": tid,
                "kind": kind,
                "status": InvoiceStatus.DRAFT,
                "period": p.label,
                "period_start": p.start,
                "period_end": p.end,
                "currency": currency,
                "total": money.total(x.charge.amount for x in groups[(tid, currency)]),
                "standing_key": f"{tid}:{p.label}:{currency}:{kind.value}",
                "created_by": actor.name,
                "created_at": now,
            }
        )
    documents: list[Invoice] = (
        list(
            session.scalars(
                sa.insert(Invoice).returning(Invoice, sort_by_parameter_order=True), heads
            )
        )
        if heads
        else []
    )
    rows: list[dict[str, Any]] = []
    for doc, (_, items) in zip(documents, sorted(groups.items()), strict=True):
        items.sort(key=lambda x: (x.charge.contract, x.for_period, ORDER[x.charge.kind]))
        for position, x in enumerate(items, start=1):
            c = x.charge
            rows.append(
                {
                    "invoice_id": doc.id,
                    "position": position,
                    "contract_id": x.contract_id,
                    "contract": c.contract,
                    "kind": c.kind.value,
                    "for_period": x.for_period,
                    "description": c.description[:2000],
                    "quantity": c.quantity,
                    "unit": c.unit,
                    "unit_price": c.unit_price,
                    "amount": c.amount,
                    "source": dict(c.source),
                }
            )
    if rows:
        session.execute(sa.insert(InvoiceLine), rows)
    return documents


def _tenants(session: Session, name: str | None) -> dict[int, Tenant]:
    stmt = sa.select(Tenant)
    if name is not None:
        stmt = stmt.where(Tenant.name == name)
    found = {t.id: t for t in session.scalars(stmt)}
    if name is not None and not found:
        raise InvalidInput(
            f"tenant: '{name}' is not a tenant",
            errors=[{"loc": ["body", "tenant"], "msg": "unknown tenant"}],
        )
    return found


def _lock(session: Session, p: Period) -> None:
    """Runs of the same period take turns (PostgreSQL; SQLite has one writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"neocloud.invoices.{p.label}".encode())
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _delete(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(sa.delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(ids)))
        session.execute(sa.delete(Invoice).where(Invoice.id.in_(ids)))


def _names(docs: list[Invoice]) -> str:
    shown = ", ".join(f"{d.number or d.id} {d.status.value}" for d in docs[:5])
    return shown + (f" and {len(docs) - 5} more" if len(docs) > 5 else "")
