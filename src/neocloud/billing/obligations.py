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
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing.charges import Terms
from neocloud.billing.revenue import Obligation, Span, ratable
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour, hour_of
from neocloud.contracts.models import Contract, ContractState, ContractType, PriceModel
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant, TenantKind

RATABLE = frozenset({ContractType.RESERVED, ContractType.DEDICATED_SITE, ContractType.INTERNAL})
"""Types recognized over their term; the others are recognized on consumption."""


@dataclass(frozen=True)
class Booked:
    """A contract as the reports see it."""

    id: int
    name: str
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
    """None for the types recognized on consumption."""
    terms: Terms | None = None
    """What rating needs, for the types recognized on consumption."""


def load(session: Session, *, currency: str) -> list[Booked]:
    """Every contract in `currency` that was booked (drafts hold nothing and earn nothing)."""
    sites = dict(session.execute(sa.select(Site.id, Site.name)).all())
    rows = session.execute(
        sa.select(Contract, Tenant.name, Tenant.kind, Accelerator.name)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .outerjoin(Accelerator, Accelerator.id == Contract.accelerator_id)
        .where(Contract.state != ContractState.QUOTED, Contract.currency == currency)
        .order_by(Contract.id)
    ).all()
    ratable_ids = [c.id for c, _, _, _ in rows if c.type in RATABLE]
    claims: dict[int, list[Span]] = defaultdict(list)
    if ratable_ids:
        k = CapacityClaim
        for cid, sid, a, b, gpus in session.execute(
            sa.select(k.contract_id, k.site_id, k.start_h, k.end_h, k.gpus).where(
                k.contract_id.in_(ratable_ids)
            )
        ):
            claims[cid].append(Span(sites.get(sid, str(sid)), a, b, gpus))
    out = []
    for c, tenant, kind, accelerator in rows:
        site = sites.get(c.site_id) if c.site_id else None
        ratably = c.type in RATABLE
        obligation = obligation_of(c, claims.get(c.id, []), site) if ratably else None
        out.append(
            Booked(
                id=c.id,
                name=c.name,
                tenant=tenant,
                internal=kind is TenantKind.INTERNAL,
                type=c.type,
                currency=c.currency,
                start=hour_of(c.start_at),
                end=hour_of(c.end_at),
                site=site,
                obligation=obligation,
                terms=None if ratably else Terms.of(c, accelerator),
            )
        )
    return out


def obligation_of(c: Contract, claims: list[Span], site: str | None) -> Obligation:
    """A ratable contract's value and spans (see the module's docstring)."""
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
