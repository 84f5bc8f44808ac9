"""SLA credits: each tier's ladder and cap, and the credit a period's availability earns.

A contract's `sla_tier` names its ladder. Availability is metering's hourly figure
(`neocloud.metering.availability.hourly`: usable / contracted GPUs, time-weighted), taken
over the billing period weighted by contracted GPU-hours — a month's uptime, as cloud SLAs
count it. The credit is the share of the contract's charges for the period that the
deepest step reached names, capped at the tier's cap. Ladders follow the market's (see
shared/reference/public-figures.md: "10% below 99.99%, 25% below 99.9%, 100% below 95%";
CoreWeave caps credits at 50%, Nebius pays 10-30%).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from neocloud.billing.money import EXACT, plain

SHOWN = Decimal("0.001")


@dataclass(frozen=True)
class Step:
    below: Decimal
    """Availability (a fraction) under which the step applies."""
    credit_pct: Decimal


@dataclass(frozen=True)
class Ladder:
    tier: str
    target: Decimal
    steps: tuple[Step, ...]
    """Deepest last: each step's `below` is lower than the one before."""
    cap_pct: Decimal
    """No period's credit exceeds this share of the contract's charges for it."""


def _ladder(tier: str, cap: str, *steps: tuple[str, str]) -> Ladder:
    made = tuple(Step(Decimal(b), Decimal(p)) for b, p in steps)
    return Ladder(tier, made[0].below, made, Decimal(cap))


LADDERS: dict[str, Ladder] = {
    "standard": _ladder("standard", "30", ("0.995", "10"), ("0.99", "25"), ("0.95", "100")),
    "premium": _ladder("premium", "50", ("0.999", "10"), ("0.99", "25"), ("0.95", "100")),
    "critical": _ladder("critical", "100", ("0.9999", "10"), ("0.999", "25"), ("0.95", "100")),
}
"""`none` has no ladder: no promise, no credit."""


@dataclass(frozen=True)
class Availability:
    """A contract's availability over a period, from the hourly figures."""

    contracted_gpu_hours: int
    """Σ contracted GPUs over the period's hours (the weight)."""
    available_gpu_hours: Decimal
    """Σ contracted GPUs x availability over the same hours."""
    degraded_hours: tuple[tuple[int, Decimal], ...] = ()
    """(hour, availability) of every hour below 1, for the explanation."""

    @property
    def value(self) -> Decimal | None:
        if self.contracted_gpu_hours <= 0:
            return None
        return EXACT.divide(self.available_gpu_hours, Decimal(self.contracted_gpu_hours))

    @classmethod
    def from_hours(cls, hours: Iterable[tuple[int, int, Decimal | None]]) -> Availability:
        """From (hour, contracted GPUs, availability) as `metering.availability.hourly` gives
        them; hours with nothing contracted carry no weight."""
        weight, available = 0, Decimal(0)
        degraded: list[tuple[int, Decimal]] = []
        for hour, gpus, value in hours:
            if not gpus or value is None:
                continue
            weight += gpus
            available += gpus * value
            if value < 1:
                degraded.append((hour, value))
        return cls(weight, available, tuple(degraded))


@dataclass(frozen=True)
class Credit:
    ladder: Ladder
    availability: Decimal
    step: Step
    pct: Decimal
    """The share credited: the step's, or the cap if lower."""
    capped: bool

    def explain(self) -> str:
        shown = (self.availability * 100).quantize(SHOWN, ROUND_HALF_EVEN)
        target = plain(self.ladder.target * 100)
        below = plain(self.step.below * 100)
        text = (
            f"availability {shown}% against the {self.ladder.tier} target of {target}%: "
            f"below {below}% credits {plain(self.step.credit_pct)}%"
        )
        if self.capped:
            text += f", capped at {plain(self.ladder.cap_pct)}%"
        return text


def credit(tier: str, availability: Availability) -> Credit | None:
    """The credit the period's availability earns under the tier, or None."""
    ladder = LADDERS.get(tier)
    value = availability.value
    if ladder is None or value is None:
        return None
    reached = [s for s in ladder.steps if value < s.below]
    if not reached:
        return None
    step = reached[-1]
    pct = min(step.credit_pct, ladder.cap_pct)
    return Credit(ladder, value, step, pct, capped=pct < step.credit_pct)
