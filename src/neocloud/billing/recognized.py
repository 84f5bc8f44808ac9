"""Revenue recognized per contract, period and site: the table every money report sums.

Ratable contracts come from their obligations (`revenue.Obligation`), cut at `as_of`; usage
(and any contract's overage) from `consumption` (rating applied to the billable usage). A
cell holds cents.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sqlalchemy.orm import Session

from neocloud.billing import consumption
from neocloud.billing.obligations import Booked
from neocloud.capacity.timeline import Hour


@dataclass(frozen=True)
class Cell:
    contract: Booked
    period: int
    """Index of the period in the report's list."""
    site: str
    cents: int
    ratable: bool


def cells(
    session: Session, contracts: list[Booked], spans: list[tuple[Hour, Hour]], as_of: Hour
) -> list[Cell]:
    """Every non-zero amount recognized in the periods `spans`, before `as_of`."""
    out: list[Cell] = []
    if not spans:
        return out
    lo, hi = spans[0][0], min(spans[-1][1], as_of)
    starts = [a for a, _ in spans]
    for c in contracts:
        ob = c.obligation
        if ob is None or ob.end <= lo or ob.start >= hi:
            continue
        sites = {s.site for s in ob.spans}
        only = next(iter(sites)) if len(sites) == 1 else None
        first = max(0, bisect.bisect_right(starts, ob.start) - 1)
        last = bisect.bisect_left(starts, min(ob.end, hi))
        # One mark per period edge, cut to the contract's life and as_of.
        a = max(spans[first][0], ob.start)
        before = ob.recognized(a)
        for i in range(first, last):
            b = min(spans[i][1], hi, ob.end)
            if b <= a:
                continue
            after = ob.recognized(b)
            amount = after - before
            if amount:
                if only is not None:
                    out.append(Cell(c, i, only, amount, True))
                else:
                    parts = ob.split(a, b, amount)
                    out.extend(Cell(c, i, site, cents, True) for site, cents in parts.items())
            a, before = b, after
    for contract, period, site, cents in consumption.recognized(session, contracts, spans, as_of):
        out.append(Cell(contract, period, site, cents, False))
    return out
