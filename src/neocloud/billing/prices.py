"""Price books as plain data: entries per accelerator and contract type, with validity,
term steps and volume tiers; the lookup rating uses, and the check for gaps and overlaps.

A book is in one currency. Each entry prices one **key** — (accelerator, contract type,
minimum term in months) — over [valid_from, valid_to); a key's entries must tile time
without gaps or overlaps once it has begun, so that every hour has exactly one price. Price
changes take effect at the start of a month (a billing period is priced by the entries in
force at its start, never by two prices at once).

Volume tiers are graduated discounts on a usage line: GPU-hours of a contract's period from
`from_gpu_hours` on are `discount_pct` cheaper, whatever the contract's negotiated rate.
"""

from __future__ import annotations

import enum
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal

from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour, at_hour
from neocloud.contracts.models import ContractType


class Unit(enum.StrEnum):
    GPU_HOUR = "gpu-hour"
    """Per GPU-hour, billed per second."""
    MONTH = "month"
    """A fixed fee per calendar month."""
    MW_MONTH = "mw-month"
    """A fixed fee per MW of the site per calendar month."""


@dataclass(frozen=True)
class Tier:
    from_gpu_hours: int
    discount_pct: Decimal


@dataclass(frozen=True)
class PriceEntry:
    accelerator: str | None
    """None: any accelerator (a site's MW-month price)."""
    contract_type: ContractType
    unit: Unit
    price: Decimal
    valid_from_h: Hour
    valid_to_h: Hour | None = None
    min_term_months: int = 0
    tiers: tuple[Tier, ...] = ()
    ref: str = ""
    """Where the entry lives (book and entry id), quoted on the lines it prices."""

    @property
    def key(self) -> tuple[str | None, ContractType, int]:
        return (self.accelerator, self.contract_type, self.min_term_months)

    def valid_at(self, hour: Hour) -> bool:
        return self.valid_from_h <= hour and (self.valid_to_h is None or hour < self.valid_to_h)


@dataclass(frozen=True)
class PriceBook:
    name: str
    currency: str = "USD"
    entries: tuple[PriceEntry, ...] = field(default_factory=tuple)

    def find(
        self, accelerator: str | None, kind: ContractType, at: Hour, term_hours: int = 0
    ) -> PriceEntry | None:
        """The entry in force at `at` for the accelerator and type, on the longest term step
        the term reaches (a 14-month reservation gets the 12-month price)."""
        best: PriceEntry | None = None
        for e in self.entries:
            if e.contract_type is not kind or e.accelerator != accelerator or not e.valid_at(at):
                continue
            if e.min_term_months * HOURS_PER_MONTH > term_hours:
                continue
            if best is None or e.min_term_months > best.min_term_months:
                best = e
        return best


@dataclass(frozen=True)
class Problem:
    index: int
    """Position of the entry in what was given."""
    field: str
    msg: str


def problems(entries: Sequence[PriceEntry]) -> list[Problem]:
    """Everything wrong with a book's entries, each naming the entry: bad values, and for
    each key, overlaps and gaps between consecutive validity ranges."""
    found: list[Problem] = []
    by_key: dict[tuple[str | None, ContractType, int], list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        found.extend(_entry_problems(i, e))
        by_key[e.key].append(i)
    for key, indexes in by_key.items():
        ordered = sorted(indexes, key=lambda i: entries[i].valid_from_h)
        for a, b in itertools.pairwise(ordered):
            prev, nxt = entries[a], entries[b]
            name = _key_name(key)
            if prev.valid_to_h is None or prev.valid_to_h > nxt.valid_from_h:
                found.append(
                    Problem(
                        b,
                        "valid_from",
                        f"overlaps entry {a} for {name} (both price "
                        f"{_day(nxt.valid_from_h)}); end entry {a} at {_day(nxt.valid_from_h)}",
                    )
                )
            elif prev.valid_to_h < nxt.valid_from_h:
                found.append(
                    Problem(
                        b,
                        "valid_from",
                        f"leaves a gap for {name} after entry {a}: nothing prices "
                        f"{_day(prev.valid_to_h)} to {_day(nxt.valid_from_h)}",
                    )
                )
    return sorted(found, key=lambda p: p.index)


def _entry_problems(i: int, e: PriceEntry) -> Iterable[Problem]:
    if e.price < 0:
        yield Problem(i, "price", "must not be negative")
    if e.valid_to_h is not None and e.valid_to_h <= e.valid_from_h:
        yield Problem(i, "valid_to", "must be after valid_from")
    for name, h in (("valid_from", e.valid_from_h), ("valid_to", e.valid_to_h)):
        if h is not None and not _month_start(h):
            yield Problem(i, name, "prices change at the start of a month (YYYY-MM-01T00:00Z)")
    if e.unit is Unit.MW_MONTH and e.contract_type is not ContractType.DEDICATED_SITE:
        yield Problem(i, "unit", "mw-month prices are for dedicated-site contracts")
    if e.unit is not Unit.GPU_HOUR and e.accelerator is not None and e.tiers:
        yield Problem(i, "tiers", "volume tiers apply to GPU-hour prices only")
    if e.min_term_months < 0:
        yield Problem(i, "min_term_months", "must not be negative")
    last = 0
    for t in e.tiers:
        if t.from_gpu_hours <= last:
            yield Problem(i, "tiers", "from_gpu_hours must be positive and rise tier by tier")
        if not Decimal(0) < t.discount_pct <= Decimal(100):
            yield Problem(i, "tiers", "discount_pct must be above 0 and at most 100")
        last = t.from_gpu_hours


def _month_start(h: Hour) -> bool:
    at = at_hour(h)
    return at.day == 1 and at.hour == 0


def _day(h: Hour) -> str:
    return at_hour(h).astimezone(UTC).strftime("%Y-%m-%d")


def _key_name(key: tuple[str | None, ContractType, int]) -> str:
    acc, kind, months = key
    term = f", {months}+ months" if months else ""
    return f"{acc or 'any accelerator'} {kind.value}{term}"
