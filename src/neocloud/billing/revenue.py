"""Revenue recognition schedules (pure): how much of a contract's value each period earns.

Reserved, dedicated-site and internal contracts are recognized **ratably**: the value is
spread over the hours the contract holds capacity, in proportion to what it holds (GPUs for
a per-GPU-hour price, one unit an hour for a monthly or per-MW price). On-demand and spot
contracts are recognized **on consumption**: what rating makes of their usage in the period
(see `neocloud.billing.consumption`).

**The rounding rule.** Money is counted here in whole cents, as integers, and the value as
an exact fraction of cents (no rounding before the end). What a contract has recognized by
hour t is

    recognized(t) = round_half_even(exact value x W(t) / W)

where W(t) is the weight it held before t and W its weight over its whole life; a period
[a, b) earns recognized(b) - recognized(a). Each period is then within a cent of its exact
pro-rata share, and however the life is cut into periods, the periods sum to the value
rounded once (`contract_value`) to the cent: the rounding remainder is carried into the next
period rather than lost. It is the rule rating bills commitments by (`rating.commitment`),
so a month's ratable revenue is the month's commitment line. A period's amount is split
across sites by the largest-remainder method (each site gets its share rounded down, the
cents left over go to the largest fractions), so the sites sum to the period exactly too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from neocloud.capacity.timeline import Hour

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    """An amount as whole cents, rounded half-even (the contracts' own `contract_value` rule)."""
    return int(amount.quantize(CENT, ROUND_HALF_EVEN).scaleb(2))


def money(cents: int) -> Decimal:
    """Whole cents as a Decimal with two places."""
    return (Decimal(cents) / 100).quantize(CENT)


def div_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even (exact)."""
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q


def allocate(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """`total` cents split in proportion to `weights` by the largest-remainder method: the
    parts sum to `total` exactly; ties go to the key that sorts first."""
    whole = sum(weights.values())
    if total == 0 or whole <= 0:
        return {} if total == 0 else {"": total}
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for key, w in weights.items():
        q, r = divmod(total * w, whole)
        parts[key] = q
        remainders.append((-r, key))
    left = total - sum(parts.values())
    for _, key in sorted(remainders)[:left]:
        parts[key] += 1
    return {k: v for k, v in parts.items() if v}


@dataclass(frozen=True)
class Span:
    """Weight held at one site over [start, end): GPUs, or 1 for a time-ratable contract."""

    site: str
    start: Hour
    end: Hour
    weight: int

    def before(self, t: Hour) -> int:
        """Weight-hours of this span before hour t."""
        return self.weight * max(0, min(self.end, t) - self.start)


class Obligation:
    """What a ratable contract is to recognize: its exact value (in cents, kept as the
    integer ratio num / den) over its spans; `value` is that rounded once, half-even, to
    whole cents. Plain integers, so 10,000 contracts recognize in a fraction of a second."""

    __slots__ = ("den", "end", "num", "spans", "start", "total", "value")

    def __init__(self, exact: Fraction | int, spans: tuple[Span, ...]) -> None:
        self.num, self.den = exact.as_integer_ratio()
        self.spans = spans
        self.total = sum(s.before(s.end) for s in spans)
        self.value = div_half_even(self.num, self.den) if self.total else 0
        self.start = min((s.start for s in spans), default=0)
        self.end = max((s.end for s in spans), default=0)

    @property
    def exact(self) -> Fraction:
        """The value in cents, unrounded."""
        return Fraction(self.num, self.den)

    def recognized(self, t: Hour) -> int:
        """Cents recognized before hour t (the rule in the module's docstring)."""
        if self.total == 0 or t <= self.start:
            return 0
        if t >= self.end:
            return self.value
        held = 0
        for s in self.spans:
            if t > s.start:
                held += s.weight * ((s.end if s.end < t else t) - s.start)
        return div_half_even(self.num * held, self.den * self.total)

    def amount(self, a: Hour, b: Hour) -> int:
        """Cents earned in [a, b)."""
        return self.recognized(b) - self.recognized(a) if b > a else 0

    def by_site(self, a: Hour, b: Hour) -> dict[str, int]:
        """Cents earned in [a, b), per site (sums to `amount(a, b)` exactly)."""
        return self.split(a, b, self.amount(a, b))

    def split(self, a: Hour, b: Hour, amount: int) -> dict[str, int]:
        """`amount` (what [a, b) earns) split across sites by the weight each held then."""
        weights: dict[str, int] = {}
        for s in self.spans:
            w = s.before(b) - s.before(a)
            if w:
                weights[s.site] = weights.get(s.site, 0) + w
        return allocate(amount, weights)

    def schedule(self, bounds: Iterable[Hour]) -> list[int]:
        """Cents earned in each period between consecutive `bounds` (ascending)."""
        edges = list(bounds)
        marks = [self.recognized(t) for t in edges]
        return [b - a for a, b in itertools.pairwise(marks)]


def ratable(value: Fraction | Decimal, spans: Iterable[Span]) -> Obligation:
    """The obligation of a contract worth exactly `value` (currency units) that holds
    `spans` (empty spans dropped)."""
    kept = tuple(s for s in spans if s.end > s.start and s.weight > 0)
    num, den = value.as_integer_ratio()
    return Obligation(Fraction(num * 100, den), kept)
