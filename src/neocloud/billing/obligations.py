"""Loading what the reports recognize: every booked contract with its tenant, and for the
ratable ones their obligation (value and the spans it is spread over), from the contracts
and the capacity calendar's claims — three queries, whatever the number of contracts.

The value of a per-GPU-hour contract is its price x the GPU-hours its claims hold: that is
`contract_value` (GPUs x term hours x price) for a contract as booked, and it follows the
contract when it is grown, shrunk or cancelled (a cancelled contract's claims end at the
hour it was cancelled from, so it stops recognizing there, and what it never held is never
recognized nor left in backlog). A monthly-fee or per-MW-month contract is time-ratable:
its value is the price x the months it ran (730 hours each, as priced), at its site. Values
are exact (fractions of a cent kept) until recognition rounds them (`revenue`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing.charges import Held, Terms
from neocloud.billing.revenue import Obligation, Span, ratable
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour, hour_of
from neocloud.contracts.models import Contract, ContractState, ContractType, PriceModel
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant, TenantKind


def is_ratable(terms: Terms) -> bool:
    """Recognized over the term: what rating bills as a commitment (take-or-pay capacity —
    reserved by default, dedicated sites, internal showback — and fees per month or per
    MW-month). On-demand, spot and a reserved contract without take-or-pay are recognized
    on consumption."""
    return terms.type.holds_capacity and (
        terms.takes_or_pays or terms.price_model is not PriceModel.PER_GPU_HOUR
    )


@dataclass(frozen=True)
class Booked:
    """A contract as the reports see it."""

    id: int
    name: str
    tenant_id: int
    tenant: str
    internal: bool
    """The tenant is one of the operator's own teams: its figures are showback, kept apart
    from external revenue."""
    type: ContractType
    currency: str
    start: Hour
    end: Hour
    site: str | None
    obligation: Obligation | None
    """None for the contracts recognized on consumption."""
    terms: Terms
    """What rating needs (the term of a cancelled contract ends where its claims were cut)."""
    claims: tuple[Span, ...] = ()
    """Its capacity claims: GPUs held at a site over [start, end)."""

    @property
    def held(self) -> tuple[Held, ...]:
        """The claims as rating reads them (for the overage above them)."""
        return tuple(Held(x.start, x.end, x.weight) for x in self.claims)


def load(session: Session, *, currency: str) -> list[Booked]:
    """Every contract in `currency` that was booked (drafts hold nothing and earn nothing)."""
    sites = dict(session.execute(sa.select(Site.id, Site.name)).all())
    c = Contract
    rows = session.execute(
        sa.select(
            c.id,
            c.name,
            c.tenant_id,
            c.type,
            c.state,
            c.price_model,
            c.price,
            c.mw,
            c.gpus,
            c.site_id,
            c.start_at,
            c.end_at,
            c.currency,
            c.take_or_pay,
            c.prepayment_pct,
            c.commitment,
            c.sla_tier,
            c.cancelled_at,
            Tenant.name.label("tenant"),
            Tenant.kind,
            Accelerator.name.label("accelerator"),
        )
        .join(Tenant, Tenant.id == c.tenant_id)
        .outerjoin(Accelerator, Accelerator.id == c.accelerator_id)
        .where(c.state != ContractState.QUOTED, c.currency == currency)
        .order_by(c.id)
    ).all()
    claims: dict[int, list[Span]] = defaultdict(list)
    if any(r.type.holds_capacity for r in rows):
        k = CapacityClaim
        stmt = sa.select(k.contract_id, k.site_id, k.start_h, k.end_h, k.gpus).join(
            c, c.id == k.contract_id
        )
        for cid, sid, a, b, gpus in session.execute(
            stmt.where(c.state != ContractState.QUOTED, c.currency == currency)
        ):
            claims[cid].append(Span(sites.get(sid, str(sid)), a, b, gpus))
    out = []
    for r in rows:
        site = sites.get(r.site_id) if r.site_id else None
        terms = _terms(r)
        held = claims.get(r.id, [])
        obligation = obligation_of(r, held, site) if is_ratable(terms) else None
        out.append(
            Booked(
                id=r.id,
                name=r.name,
                tenant_id=r.tenant_id,
                tenant=r.tenant,
                internal=r.kind is TenantKind.INTERNAL,
                type=r.type,
                currency=r.currency,
                start=terms.start_h,
                end=hour_of(r.end_at),
                site=site,
                obligation=obligation,
                terms=terms,
                claims=tuple(held),
            )
        )
    return out


def _terms(r: Any) -> Terms:
    """Rating's terms of a contract row; a cancelled one's end at the hour it was cut, as
    the invoices read it."""
    start_h, end_h = hour_of(r.start_at), hour_of(r.end_at)
    if r.state is ContractState.CANCELLED and r.cancelled_at is not None:
        cut = hour_of(r.cancelled_at - timedelta(microseconds=1)) + 1
        end_h = max(start_h, min(end_h, cut))
    return Terms(
        contract=r.name,
        type=r.type,
        price_model=r.price_model,
        price=Decimal(r.price),
        start_h=start_h,
        end_h=end_h,
        accelerator=r.accelerator,
        currency=r.currency,
        gpus=r.gpus,
        mw=None if r.mw is None else Decimal(r.mw),
        take_or_pay=r.take_or_pay,
        prepayment_pct=Decimal(r.prepayment_pct or 0),
        commitment=None if r.commitment is None else Decimal(r.commitment),
        sla_tier=r.sla_tier,
    )


def obligation_of(c: Any, claims: list[Span], site: str | None) -> Obligation:
    """A ratable contract's value and spans (see the module's docstring); `c` is a
    `Contract` or a row with its columns."""
    if c.price_model is PriceModel.PER_GPU_HOUR:
        gpu_hours = sum(s.before(s.end) for s in claims)
        return ratable(Decimal(gpu_hours) * c.price, claims)
    start = hour_of(c.start_at)
    end = hour_of(c.end_at)
    if c.state is ContractState.CANCELLED:
        end = max((s.end for s in claims), default=start)
    months = Fraction(max(0, end - start), HOURS_PER_MONTH)
    if c.price_model is PriceModel.PER_MW_MONTH:
        value = Fraction(c.mw or 0) * months * Fraction(c.price)
    else:
        value = months * Fraction(c.price)
    where = site or _largest_site(claims) or "-"
    return ratable(value, [Span(where, start, end, 1)])


def _largest_site(claims: list[Span]) -> str | None:
    held: dict[str, int] = defaultdict(int)
    for s in claims:
        held[s.site] += s.before(s.end)
    return max(held, key=lambda k: (held[k], k)) if held else None
