"""The capacity calendar of one site: supply, commitments and what is free, over time.

Pure: plain dataclasses in, plain answers out; no database. `capacity.state` loads a
`SiteBook` from the database, the booking service asks it whether new claims fit, and the
quote planner asks it what a customer could still buy.

A *pool* is site x accelerator x fabric: GPUs in one pool are interchangeable for the
calendar (placement later decides which nodes). The invariants, at every hour:

- per pool: committed <= supply;
- per site: committed IT power <= the site's facility power / PUE;
- per site and accelerator: customer commitments <= supply - internal floor;
- a site held by a dedicated-site contract holds nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from functools import cached_property

from neocloud.capacity.timeline import FOREVER, Hour, Steps, add, combine, minus

PoolKey = tuple[int, int, str]
"""(site id, accelerator id, fabric name): pools are named, so a fabric still to be
delivered is the same pool before and after its nodes arrive."""


@dataclass(frozen=True)
class SiteInfo:
    id: int
    name: str
    pue: Decimal
    power_mw: Decimal
    live_from: Hour
    live_until: Hour
    generation: int = 0

    @property
    def it_watts(self) -> int:
        """The IT load the site can power: facility MW / PUE."""
        return int(self.power_mw * 1_000_000 / self.pue)


@dataclass(frozen=True)
class Pool:
    site_id: int
    accelerator_id: int
    accelerator: str
    fabric: str
    gpus_per_node: int
    block_gpus: int
    watts_per_gpu: int
    supply: Steps
    out_of_service: int = 0

    @property
    def key(self) -> PoolKey:
        return (self.site_id, self.accelerator_id, self.fabric)


@dataclass(frozen=True)
class Claim:
    """GPUs of one pool held by one contract over [start, end)."""

    contract_id: int
    pool: PoolKey
    start: Hour
    end: Hour
    gpus: int
    internal: bool = False
    exclusive: bool = False

    def overlaps(self, start: Hour, end: Hour) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class Floor:
    """Capacity of one accelerator at one site that sales cannot take, over [start, end).

    Either a GPU count or a share of the site's supply of that accelerator.
    """

    contract_id: int
    site_id: int
    accelerator_id: int
    start: Hour
    end: Hour
    gpus: int | None = None
    share: Decimal | None = None

    def level(self, supply: int) -> int:
        if self.gpus is not None:
            return self.gpus
        assert self.share is not None
        return int((self.share * supply).to_integral_value(ROUND_CEILING))


def claims_steps(claims: Iterable[Claim]) -> Steps:
    deltas: list[tuple[Hour, int]] = []
    for c in claims:
        deltas += [(c.start, c.gpus), (c.end, -c.gpus)]
    return Steps.from_deltas(deltas)


@dataclass
class SiteBook:
    """Everything the calendar knows about one site, with its derived step functions."""

    site: SiteInfo
    pools: dict[PoolKey, Pool]
    claims: list[Claim] = field(default_factory=list)
    floors: list[Floor] = field(default_factory=list)
    _memo: dict[tuple[PoolKey, bool], Steps] = field(default_factory=dict, repr=False)
    _heads: dict[int, Steps] = field(default_factory=dict, repr=False)

    def with_changes(
        self,
        *,
        add_claims: Iterable[Claim] = (),
        drop_contract: int | None = None,
        add_floors: Iterable[Floor] = (),
    ) -> SiteBook:
        """The book as it would be after a booking (a new object; this one is unchanged)."""
        claims = [c for c in self.claims if c.contract_id != drop_contract]
        floors = [f for f in self.floors if f.contract_id != drop_contract]
        return SiteBook(self.site, self.pools, [*claims, *add_claims], [*floors, *add_floors])

    # --- derived step functions ------------------------------------------------------------

    @cached_property
    def committed(self) -> dict[PoolKey, Steps]:
        by_pool: dict[PoolKey, list[Claim]] = defaultdict(list)
        for c in self.claims:
            by_pool[c.pool].append(c)
        return {key: claims_steps(by_pool.get(key, [])) for key in self.pools}

    def pool_free(self, key: PoolKey) -> Steps:
        return minus(self.pools[key].supply, self.committed[key])

    @cached_property
    def accelerators(self) -> dict[int, list[PoolKey]]:
        out: dict[int, list[PoolKey]] = defaultdict(list)
        for key in self.pools:
            out[key[1]].append(key)
        return dict(out)

    def supply_of(self, accelerator_id: int) -> Steps:
        return add(*(self.pools[k].supply for k in self.accelerators.get(accelerator_id, [])))

    def _committed_of(self, accelerator_id: int, internal: bool) -> Steps:
        return claims_steps(
            c for c in self.claims if c.pool[1] == accelerator_id and c.internal == internal
        )

    @cached_property
    def floor_levels(self) -> dict[int, Steps]:
        """Per accelerator, the floor in force at each hour (the largest floor that applies)."""
        out: dict[int, Steps] = {}
        for acc in {f.accelerator_id for f in self.floors}:
            supply = self.supply_of(acc)
            hours = sorted({h for f in self.floors for h in (f.start, f.end)} | set(supply.hours))
            points: list[tuple[Hour, int]] = []
            previous = 0
            for h in hours:
                level = max(
                    (
                        f.level(supply.at(h))
                        for f in self.floors
                        if f.accelerator_id == acc and f.start <= h < f.end
                    ),
                    default=0,
                )
                points.append((h, level - previous))
                previous = level
            out[acc] = Steps.from_deltas(points)
        return out

    def floor_of(self, accelerator_id: int) -> Steps:
        return self.floor_levels.get(accelerator_id, Steps())

    def customer_headroom(self, accelerator_id: int) -> Steps:
        """What customers may still take of an accelerator here: supply - customer
        commitments - max(internal commitments, floor)."""
        memo = self._heads.get(accelerator_id)
        if memo is None:
            memo = self._heads[accelerator_id] = self._customer_headroom(accelerator_id)
        return memo

    def _customer_headroom(self, accelerator_id: int) -> Steps:
        return combine(
            lambda s, cu, it, fl: s - cu - max(it, fl),
            self.supply_of(accelerator_id),
            self._committed_of(accelerator_id, internal=False),
            self._committed_of(accelerator_id, internal=True),
            self.floor_of(accelerator_id),
        )

    def floor_headroom(self, accelerator_id: int) -> Steps:
        """Supply above the floor not yet sold to customers (what a quote 'uses up')."""
        return combine(
            lambda s, cu, fl: s - cu - fl,
            self.supply_of(accelerator_id),
            self._committed_of(accelerator_id, internal=False),
            self.floor_of(accelerator_id),
        )

    @cached_property
    def committed_watts(self) -> Steps:
        deltas: list[tuple[Hour, int]] = []
        for c in self.claims:
            w = c.gpus * self.pools[c.pool].watts_per_gpu if c.pool in self.pools else 0
            deltas += [(c.start, w), (c.end, -w)]
        return Steps.from_deltas(deltas)

    @cached_property
    def power_free_watts(self) -> Steps:
        return minus(Steps.constant(self.site.it_watts), self.committed_watts)

    @cached_property
    def exclusive_holders(self) -> Steps:
        """How many dedicated-site contracts hold the site at each hour."""
        spans: dict[int, tuple[Hour, Hour]] = {}
        for c in self.claims:
            if c.exclusive:
                a, b = spans.get(c.contract_id, (c.start, c.end))
                spans[c.contract_id] = (min(a, c.start), max(b, c.end))
        return Steps.from_deltas(d for a, b in spans.values() for d in ((a, 1), (b, -1)))

    @cached_property
    def other_holders(self) -> Steps:
        """How many claims that are not dedicated-site hold GPUs here at each hour."""
        deltas: list[tuple[Hour, int]] = []
        for c in self.claims:
            if not c.exclusive:
                deltas += [(c.start, 1), (c.end, -1)]
        return Steps.from_deltas(deltas)

    def available(self, key: PoolKey, internal: bool) -> Steps:
        """GPUs of a pool a new commitment could take at each hour, every invariant counted."""
        memo = self._memo.get((key, internal))
        if memo is None:
            memo = self._memo[(key, internal)] = self._available(key, internal)
        return memo

    def _available(self, key: PoolKey, internal: bool) -> Steps:
        per_gpu = max(1, self.pools[key].watts_per_gpu)
        parts = [self.pool_free(key), self.power_free_watts, self.exclusive_holders]
        if internal:
            return combine(
                lambda free, watts, excl: 0 if excl else max(0, min(free, watts // per_gpu)),
                *parts,
            )
        return combine(
            lambda free, watts, excl, head: (
                0 if excl else max(0, min(free, head, watts // per_gpu))
            ),
            *parts,
            self.customer_headroom(key[1]),
        )

    # --- invariants --------------------------------------------------------------------------

    def violations(self, start: Hour = 0, end: Hour = FOREVER) -> list[Violation]:
        """Every invariant broken between `start` and `end`, with the figures."""
        out: list[Violation] = []
        for key in self.pools:
            for a, b, least in self.pool_free(key).below(0, start, end):
                out.append(Violation("oversold", self.site.id, key, a, b, -least))
        for a, b, least in self.power_free_watts.below(0, start, end):
            out.append(Violation("power", self.site.id, None, a, b, -least))
        for acc in self.accelerators:
            if acc not in self.floor_levels:
                continue
            for a, b, least in self.floor_headroom(acc).below(0, start, end):
                out.append(Violation("floor", self.site.id, (self.site.id, acc, ""), a, b, -least))
        both = combine(lambda e, o: e * (e + o - 1), self.exclusive_holders, self.other_holders)
        for a, b, n in _above(both, 0, start, end):
            out.append(Violation("exclusive", self.site.id, None, a, b, n))
        return out


@dataclass(frozen=True)
class Violation:
    """An invariant broken over [start, end): `amount` is GPUs (or watts for power)."""

    kind: str  # oversold | power | floor | exclusive
    site_id: int
    pool: PoolKey | None
    start: Hour
    end: Hour
    amount: int


def _above(steps: Steps, level: int, start: Hour, end: Hour) -> Iterable[tuple[Hour, Hour, int]]:
    negated = Steps(steps.hours, [-v for v in steps.values], -steps.base)
    for a, b, least in negated.below(-level, start, end):
        yield a, b, -least
