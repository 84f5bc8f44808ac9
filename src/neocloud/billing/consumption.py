"""Revenue recognized on consumption: on-demand and spot contracts earn what their billable
usage comes to under their terms, in the month it was used.

The amounts are rating's (`rating.rate`, its usage and overage lines for the month, cut at
`as_of`), never a second pricing of our own, so the reports and the invoices agree on what
usage is worth. Usage is read from metering's hourly rollups, summed per contract, site and
month in the database (one query); a contract-month's amount is split across its sites in
proportion to the billable GPU-seconds used there (largest remainder, exact to the cent).

The price book is the contract's own rate (no volume tiers) until price books are read here
too; SLA credits are issued on invoices, so revenue here is before credits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.billing import months
from neocloud.billing.charges import ChargeKind, Usage
from neocloud.billing.obligations import Booked
from neocloud.billing.prices import PriceBook
from neocloud.billing.rating import rate
from neocloud.billing.revenue import allocate, to_cents
from neocloud.capacity.timeline import Hour, at_hour
from neocloud.fleet.models import Site
from neocloud.metering.models import UsageRollup

EARNED = (ChargeKind.USAGE, ChargeKind.OVERAGE)
"""The lines of a usage contract's month that are revenue of that month."""


def month_spans(lo: Hour, hi: Hour) -> list[months.Period]:
    """Calendar months covering [lo, hi), the last cut at hi."""
    out: list[months.Period] = []
    if hi <= lo:
        return out
    period = months.month_of(at_hour(lo))
    while period.start_h < hi:
        out.append(months.Period(period.start_h, min(period.end_h, hi), period.label))
        period = period.next()
    return out


def recognized(
    session: Session, contracts: list[Booked], spans: list[tuple[Hour, Hour]], as_of: Hour
) -> Iterator[tuple[Booked, int, str, int]]:
    """(contract, period index, site, cents) for each usage contract's rated usage in the
    periods `spans` (whole months) before `as_of`."""
    by_id = {c.id: c for c in contracts if c.terms is not None}
    lo, hi = spans[0][0], min(spans[-1][1], as_of)
    if not by_id or hi <= lo:
        return
    r = UsageRollup
    first, last = session.execute(
        sa.select(sa.func.min(r.hour), sa.func.max(r.hour)).where(
            r.contract_id.in_(list(by_id)), r.hour >= lo, r.hour < hi, r.billable_gpu_seconds > 0
        )
    ).one()
    if first is None:
        return
    periods = month_spans(max(lo, int(first)), min(hi, int(last) + 1))
    index = sa.case(*((r.hour < p.end_h, i) for i, p in enumerate(periods)), else_=len(periods))
    sites = dict(session.execute(sa.select(Site.id, Site.name)).all())
    used: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for cid, sid, i, billable in session.execute(
        sa.select(r.contract_id, r.site_id, index, sa.func.sum(r.billable_gpu_seconds))
        .where(
            r.contract_id.in_(list(by_id)),
            r.hour >= periods[0].start_h,
            r.hour < periods[-1].end_h,
            r.billable_gpu_seconds > 0,
        )
        .group_by(r.contract_id, r.site_id, index)
    ):
        used[(int(cid), int(i))][sites.get(sid, str(sid))] = int(billable)
    starts = [a for a, _ in spans]
    for (cid, i), per_site in sorted(used.items()):
        contract, period = by_id[cid], periods[i]
        assert contract.terms is not None
        book = PriceBook("contract", contract.terms.currency)
        lines = rate(
            contract.terms,
            period,
            [],
            Usage(billable_gpu_seconds=sum(per_site.values())),
            None,
            book,
        )
        cents = sum(to_cents(c.amount) for c in lines if c.kind in EARNED)
        span = max(k for k, a in enumerate(starts) if a <= period.start_h)
        for site, part in allocate(cents, per_site).items():
            yield contract, span, site, part
