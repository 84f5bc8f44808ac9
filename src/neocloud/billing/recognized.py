"""Revenue recognized per contract, period and site: the table every money report sums.

Ratable contracts come from their obligations (`revenue.Obligation`), cut at `as_of`; usage
(and any contract's overage) from `consumption` (rating applied to the billable usage). A
cell holds cents.
"""

from __future__ import annotations

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
    for c in contracts:
        ob = c.obligation
        if ob is None or ob.end <= lo or ob.start >= hi:
            continue
        sites = {s.site for s in ob.spans}
        only = next(iter(sites)) if len(sites) == 1 else None
        # Each period's edges cut to the contract's life and as_of; one mark per edge.
        edges = [(max(a, ob.start), min(b, as_of, ob.end)) for a, b in spans]
        marks: dict[Hour, int] = {}
        for i, (a, b) in enumerate(edges):
            if b <= a:
                continue
            for t in (a, b):
                if t not in marks:
                    marks[t] = ob.recognized(t)
            amount = marks[b] - marks[a]
            if not amount:
                continue
            if only is not None:
                out.append(Cell(c, i, only, amount, True))
            else:
                parts = ob.split(a, b, amount)
                out.extend(Cell(c, i, site, cents, True) for site, cents in parts.items())
    for contract, period, site, cents in consumption.recognized(session, contracts, spans, as_of):
        out.append(Cell(contract, period, site, cents, False))
    return out
