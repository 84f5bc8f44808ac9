"""Remaining performance obligations (pure): what is contracted and not yet recognized, by
the period in which it will be.

The backlog of a ratable contract at `as_of` is its value less what it has recognized
before `as_of`, and it falls into future periods by the very schedule that recognizes it
(`Obligation.amount`), so backlog by quarter sums to value - recognized to the cent, and a
quarter's backlog is exactly what that quarter will recognize if nothing changes. Usage
contracts carry no backlog: nothing is owed until it is used.
"""

from __future__ import annotations

from neocloud.billing.revenue import Obligation
from neocloud.capacity.timeline import Hour


def remaining(obligation: Obligation, as_of: Hour) -> int:
    """Cents contracted and not recognized before `as_of`."""
    return obligation.value - obligation.recognized(as_of)


def by_period(obligation: Obligation, as_of: Hour, periods: list[tuple[Hour, Hour]]) -> list[int]:
    """Cents of the backlog at `as_of` that each period [a, b) will recognize (the part of a
    period before `as_of` is already recognized, so it counts for nothing here)."""
    marks: dict[Hour, int] = {}

    def mark(t: Hour) -> int:
        if t not in marks:
            marks[t] = obligation.recognized(t)
        return marks[t]

    out = []
    for a, b in periods:
        a = max(a, as_of, obligation.start)
        b = min(b, obligation.end)
        out.append(mark(b) - mark(a) if b > a else 0)
    return out
