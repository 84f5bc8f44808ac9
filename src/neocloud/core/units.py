"""Power units. Facility power = IT power x PUE; kept as Decimal so sums are exact."""

from __future__ import annotations

from decimal import Decimal

KW_PER_MW = Decimal(1000)


def kw_to_mw(kw: Decimal) -> Decimal:
    return kw / KW_PER_MW


def facility_mw(it_kw: Decimal, pue: Decimal) -> Decimal:
    """Power a site draws from the grid for `it_kw` of IT load at the given PUE."""
    return (it_kw * pue / KW_PER_MW).quantize(Decimal("0.001"))
