"""Revenue recognized on consumption: what a contract's usage earns in the month it was used,
as rating prices it — the usage lines of on-demand and spot contracts (and of a reserved
contract without take-or-pay), and the overage of any contract that holds capacity (usage
above what it held, hour by hour, at on-demand rates).

Each calendar month (cut at `as_of`) is read and rated as the invoices read and rate it:
`loading.usage` sums the hourly rollups per contract with the overage worked out in the
database, the tenant's price book applies (`price_service.Books`), and `rating.rate` makes
the lines — never a second pricing of our own, so the reports and the invoices agree on
what usage is worth. A contract-month's amount is split across the sites it used in
proportion to the billable GPU-seconds there (largest remainder, exact to the cent). SLA
credits are issued on invoices against the whole month's charges; revenue here is before
them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing import loading, months
from neocloud.billing.charges import ChargeKind
from neocloud.billing.obligations import Booked
from neocloud.billing.price_service import Books
from neocloud.billing.rating import rate
from neocloud.billing.revenue import allocate, to_cents
from neocloud.capacity.timeline import Hour, at_hour
from neocloud.fleet.models import Site
from neocloud.metering.models import UsageRollup

EARNED = frozenset({ChargeKind.USAGE, ChargeKind.OVERAGE})
"""The lines of a month that are revenue on consumption (a commitment is ratable, a
prepayment is deferred, credits and true-ups are the invoices')."""
OVERAGE = frozenset({ChargeKind.OVERAGE})


def month_spans(lo: Hour, hi: Hour) -> list[months.Period]:
    """Calendar months covering [lo, hi), the first and last cut to the range."""
    out: list[months.Period] = []
    if hi <= lo:
        return out
    period = months.month_of(at_hour(lo))
    while period.start_h < hi:
        a, b = max(period.start_h, lo), min(period.end_h, hi)
        out.append(months.Period(a, b, period.label))
        period = period.next()
    return out


def recognized(
    session: Session, contracts: list[Booked], spans: list[tuple[Hour, Hour]], as_of: Hour
) -> Iterator[tuple[Booked, int, str, int]]:
    """(contract, period index, site, cents) for what the contracts' usage earned in the
    periods `spans` (whole months) before `as_of`."""
    lo, hi = spans[0][0], min(spans[-1][1], as_of)
    if not contracts or hi <= lo:
        return
    r = UsageRollup
    first, last = session.execute(
        sa.select(sa.func.min(r.hour), sa.func.max(r.hour)).where(
            r.hour >= lo, r.hour < hi, r.billable_gpu_seconds > 0
        )
    ).one()
    if first is None:
        return
    periods = month_spans(max(lo, int(first)), min(hi, int(last) + 1))
    by_id = {c.id: c for c in contracts}
    where_used = _sites(session, periods)
    held = {c.id: list(c.held) for c in contracts if c.held}
    books = Books(session)
    starts = [a for a, _ in spans]
    for i, period in enumerate(periods):
        span = max(k for k, a in enumerate(starts) if a <= period.start_h)
        for cid, usage in sorted(loading.usage(session, period, held).items()):
            contract = by_id.get(cid)
            if contract is None or (contract.obligation and not usage.overage_gpu_seconds):
                continue
            kinds = OVERAGE if contract.obligation else EARNED
            lines = rate(
                contract.terms,
                period,
                held.get(cid, []),
                usage,
                None,
                books.for_tenant(contract.tenant_id, contract.terms.currency),
            )
            cents = sum(to_cents(c.amount) for c in lines if c.kind in kinds)
            weights = where_used.get((cid, i)) or {contract.site or "-": 1}
            for site, part in allocate(cents, weights).items():
                yield contract, span, site, part


def _sites(session: Session, periods: list[months.Period]) -> dict[tuple[int, int], dict[str, int]]:
    """Billable GPU-seconds per (contract, month index) and site, in one query."""
    r = UsageRollup
    index = sa.case(*((r.hour < p.end_h, i) for i, p in enumerate(periods)), else_=len(periods))
    names = dict(session.execute(sa.select(Site.id, Site.name)).all())
    out: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for cid, sid, i, billable in session.execute(
        sa.select(r.contract_id, r.site_id, index, sa.func.sum(r.billable_gpu_seconds))
        .where(
            r.hour >= periods[0].start_h,
            r.hour < periods[-1].end_h,
            r.billable_gpu_seconds > 0,
        )
        .group_by(r.contract_id, r.site_id, index)
    ):
        out[(int(cid), int(i))][names.get(sid, str(sid))] = int(billable)
    return out
