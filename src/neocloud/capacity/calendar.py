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

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, fields
from decimal import ROUND_CEILING, Decimal
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from neocloud.capacity.timeline import FOREVER, Hour, Ints, Steps, add, minus, vcombine

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
    """The site's ledger generation when the book was read (its commitments' version)."""
    supply_generation: int = 0
    """The site's supply generation when the book was read (its fleet's version)."""

    @property
    def generations(self) -> tuple[int, int]:
        return self.supply_generation, self.generation

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


@dataclass(frozen=True)
class ClaimTable:
    """A book's claims as NumPy columns, one row per claim: the whole-site sums (committed
    per pool, per accelerator, in watts) are then a few array operations, not a Python loop
    over thousands of claims."""

    start: Ints
    end: Ints
    gpus: Ints
    watts: Ints  # gpus x the pool's watts per GPU; 0 on a pool the book does not know
    pool: Ints  # index into the book's pools; -1 for an unknown one
    accelerator: Ints
    internal: NDArray[np.bool_]
    exclusive: NDArray[np.bool_]

    @staticmethod
    def of(
        claims: list[Claim], pools: dict[PoolKey, Pool], index: dict[PoolKey, int]
    ) -> ClaimTable:
        rows = [
            (
                c.start,
                c.end,
                c.gpus,
                c.gpus * pools[c.pool].watts_per_gpu if c.pool in pools else 0,
                index.get(c.pool, -1),
                c.pool[1],
                c.internal,
                c.exclusive,
            )
            for c in claims
        ]
        a = np.array(rows, dtype=np.int64).reshape(-1, 8)
        return ClaimTable(
            a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6] != 0, a[:, 7] != 0
        )

    def plus(self, other: ClaimTable) -> ClaimTable:
        return ClaimTable(
            **{
                f.name: np.concatenate((getattr(self, f.name), getattr(other, f.name)))
                for f in fields(self)
            }
        )

    def steps(self, rows: NDArray[np.bool_] | None = None, amount: Ints | None = None) -> Steps:
        """The sum over time of `amount` (default: GPUs) held by the selected claims."""
        amount = self.gpus if amount is None else amount
        a, b, x = (
            (self.start, self.end, amount)
            if rows is None
            else (
                self.start[rows],
                self.end[rows],
                amount[rows],
            )
        )
        return Steps.from_arrays(np.concatenate((a, b)), np.concatenate((x, -x)))


@dataclass
class SiteBook:
    """Everything the calendar knows about one site, with its derived step functions.

    A book never changes once built: a booking makes a new one (`with_changes`), so every
    derived step function is computed at most once per book and kept (`_memo`).
    """

    site: SiteInfo
    pools: dict[PoolKey, Pool]
    claims: list[Claim] = field(default_factory=list)
    floors: list[Floor] = field(default_factory=list)
    _table: ClaimTable | None = field(default=None, repr=False)
    _memo: dict[Hashable, Steps] = field(default_factory=dict, repr=False)

    def with_changes(
        self,
        *,
        add_claims: Iterable[Claim] = (),
        drop_contract: int | None = None,
        add_floors: Iterable[Floor] = (),
    ) -> SiteBook:
        """The book as it would be after a booking (a new object; this one is unchanged)."""
        added = list(add_claims)
        if drop_contract is None:
            claims, floors = self.claims, self.floors
        else:
            claims = [c for c in self.claims if c.contract_id != drop_contract]
            floors = [f for f in self.floors if f.contract_id != drop_contract]
        table = None
        if drop_contract is None and self._has_table:  # additions only: extend it
            table = self.table.plus(ClaimTable.of(added, self.pools, self.pool_index))
        return SiteBook(self.site, self.pools, [*claims, *added], [*floors, *add_floors], table)

    def refreshed(
        self, site: SiteInfo, add_claims: list[Claim], floors: list[Floor]
    ) -> SiteBook | None:
        """The same site after `add_claims` were booked and with `floors` as they now are
        (None when a new claim names a pool the book does not know: load it anew).

        What the new claims leave unchanged is carried over (the other pools, the other
        accelerators); the site-wide sums are updated by the new claims alone."""
        if any(c.pool not in self.pools for c in add_claims):
            return None
        same_floors = Counter(floors) == Counter(self.floors)
        if not add_claims and same_floors:
            return SiteBook(site, self.pools, self.claims, self.floors, self._table, self._memo)
        if not self._has_table:
            return SiteBook(site, self.pools, [*self.claims, *add_claims], floors)
        new = ClaimTable.of(add_claims, self.pools, self.pool_index)
        book = SiteBook(site, self.pools, [*self.claims, *add_claims], floors, self.table.plus(new))
        if same_floors:
            book._inherit(self, add_claims, new)
        return book

    def _inherit(self, parent: SiteBook, added: list[Claim], new: ClaimTable) -> None:
        """Carry the parent's derived step functions over to this book (the parent plus
        `added`, same floors): those the new claims leave unchanged as they are; those a fit
        reads that the new claims shift by their own sum (what is free in a pool, the
        customers' headroom, the free power) updated by that sum alone, a pass over the
        breakpoints instead of a sort of every claim; the rest made again when asked for."""
        index = self.pool_index
        pools = {c.pool for c in added}
        accelerators = {c.pool[1] for c in added}
        groups = {(c.pool[1], c.internal) for c in added}
        internal_accelerators = {c.pool[1] for c in added if c.internal}
        deltas: dict[Hashable, Steps] = {}  # the new claims' own sums, made once each

        def delta(key: Hashable, rows: NDArray[np.bool_]) -> Steps:
            if key not in deltas:
                deltas[key] = new.steps(rows)
            return deltas[key]

        def updated(key: Hashable, steps: Steps) -> Steps | None:
            assert isinstance(key, tuple)
            kind: str = key[0]
            if kind == "supply":
                return steps
            if kind in ("pool", "free"):
                if key[1] not in pools:
                    return steps
                if kind == "pool":
                    return None  # only the free capacity is asked for by fits
                return minus(steps, delta(key[1], new.pool == index[key[1]]))
            if kind == "committed":
                return steps if (key[1], key[2]) not in groups else None
            if kind in ("headroom", "floor-headroom"):
                if key[1] not in accelerators:
                    return steps
                if kind == "headroom" and key[1] in internal_accelerators:
                    return None  # max(internal, floor) is not shifted by a sum
                customers = (key[1], False)
                return minus(steps, delta(customers, (new.accelerator == key[1]) & ~new.internal))
            return None  # available and totals: made again when asked for

        for key, steps in dict(parent._memo).items():
            kept = updated(key, steps)
            if kept is not None:
                self._memo[key] = kept
        carried = dict(parent.__dict__)
        for name in ("accelerators", "floor_levels", "exclusive_holders"):
            if name in carried and (name != "exclusive_holders" or not new.exclusive.any()):
                self.__dict__[name] = carried[name]
        if "power_free_watts" in carried:
            watts = new.steps(amount=new.watts)
            self.__dict__["power_free_watts"] = minus(carried["power_free_watts"], watts)

    def _memoised(self, key: Hashable, make: Callable[[], Steps]) -> Steps:
        memo = self._memo.get(key)
        if memo is None:
            memo = self._memo[key] = make()
        return memo

    # --- derived step functions ------------------------------------------------------------

    @cached_property
    def pool_index(self) -> dict[PoolKey, int]:
        return {key: i for i, key in enumerate(self.pools)}

    @property
    def _has_table(self) -> bool:
        return self._table is not None or "table" in self.__dict__

    @cached_property
    def table(self) -> ClaimTable:
        if self._table is not None:
            return self._table
        return ClaimTable.of(self.claims, self.pools, self.pool_index)

    @property
    def committed(self) -> dict[PoolKey, Steps]:
        return {key: self.committed_in(key) for key in self.pools}

    def committed_in(self, key: PoolKey) -> Steps:
        t = self.table
        return self._memoised(("pool", key), lambda: t.steps(t.pool == self.pool_index[key]))

    def pool_free(self, key: PoolKey) -> Steps:
        return self._memoised(
            ("free", key), lambda: minus(self.pools[key].supply, self.committed_in(key))
        )

    @cached_property
    def accelerators(self) -> dict[int, list[PoolKey]]:
        out: dict[int, list[PoolKey]] = defaultdict(list)
        for key in self.pools:
            out[key[1]].append(key)
        return dict(out)

    def supply_of(self, accelerator_id: int) -> Steps:
        return self._memoised(
            ("supply", accelerator_id),
            lambda: add(*(self.pools[k].supply for k in self.accelerators.get(accelerator_id, []))),
        )

    def _committed_of(self, accelerator_id: int, internal: bool) -> Steps:
        t = self.table
        return self._memoised(
            ("committed", accelerator_id, internal),
            lambda: t.steps((t.accelerator == accelerator_id) & (t.internal == internal)),
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
        return self._memoised(
            ("headroom", accelerator_id),
            lambda: vcombine(
                lambda s, cu, it, fl: s - cu - np.maximum(it, fl),
                self.supply_of(accelerator_id),
                self._committed_of(accelerator_id, internal=False),
                self._committed_of(accelerator_id, internal=True),
                self.floor_of(accelerator_id),
            ),
        )

    def floor_headroom(self, accelerator_id: int) -> Steps:
        """Supply above the floor not yet sold to customers (what a quote 'uses up')."""
        return self._memoised(
            ("floor-headroom", accelerator_id),
            lambda: vcombine(
                lambda s, cu, fl: s - cu - fl,
                self.supply_of(accelerator_id),
                self._committed_of(accelerator_id, internal=False),
                self.floor_of(accelerator_id),
            ),
        )

    @cached_property
    def committed_watts(self) -> Steps:
        return self.table.steps(amount=self.table.watts)

    @cached_property
    def power_free_watts(self) -> Steps:
        return minus(Steps.constant(self.site.it_watts), self.committed_watts)

    @cached_property
    def exclusive_holders(self) -> Steps:
        """How many dedicated-site contracts hold the site at each hour."""
        spans: dict[int, tuple[Hour, Hour]] = {}
        for i in np.flatnonzero(self.table.exclusive).tolist():
            c = self.claims[i]
            a, b = spans.get(c.contract_id, (c.start, c.end))
            spans[c.contract_id] = (min(a, c.start), max(b, c.end))
        return Steps.from_deltas(d for a, b in spans.values() for d in ((a, 1), (b, -1)))

    @cached_property
    def other_holders(self) -> Steps:
        """How many claims that are not dedicated-site hold GPUs here at each hour."""
        others = ~self.table.exclusive
        return self.table.steps(others, np.ones_like(self.table.gpus))

    def available(self, key: PoolKey, internal: bool) -> Steps:
        """GPUs of a pool a new commitment could take at each hour, every invariant counted."""
        return self._memoised(("available", key, internal), lambda: self._available(key, internal))

    def _available(self, key: PoolKey, internal: bool) -> Steps:
        per_gpu = max(1, self.pools[key].watts_per_gpu)
        parts = [self.pool_free(key), self.power_free_watts, self.exclusive_holders]
        if internal:
            return vcombine(
                lambda free, watts, excl: np.where(
                    excl != 0, 0, np.maximum(0, np.minimum(free, watts // per_gpu))
                ),
                *parts,
            )
        return vcombine(
            lambda free, watts, excl, head: np.where(
                excl != 0, 0, np.maximum(0, np.minimum(np.minimum(free, head), watts // per_gpu))
            ),
            *parts,
            self.customer_headroom(key[1]),
        )

    def total_available(self, keys: tuple[PoolKey, ...], internal: bool) -> Steps:
        """`available` summed over several pools (the free capacity a quote compares with)."""
        return self._memoised(
            ("total", keys, internal),
            lambda: vcombine(
                lambda *v: sum((np.maximum(0, x) for x in v), np.int64(0)),
                *(self.available(k, internal) for k in keys),
            ),
        )

    def capacity(self, key: PoolKey, internal: bool, start: Hour, end: Hour) -> int:
        """The least of `available(key, internal)` over [start, end), from its parts: the
        least of each part bounds the least of their minimum, so nothing is combined."""
        return self.capacities([key], internal, start, end)[key]

    def capacities(
        self, keys: Iterable[PoolKey], internal: bool, start: Hour, end: Hour
    ) -> dict[PoolKey, int]:
        """`capacity` of several pools: the site-wide parts are looked at once for all."""
        keys = list(keys)
        if self.exclusive_holders.max_over(start, end) != 0:
            return dict.fromkeys(keys, 0)
        watts = self.power_free_watts.min_over(start, end)
        heads: dict[int, int] = {}
        out: dict[PoolKey, int] = {}
        for key in keys:
            least = min(
                self.pool_free(key).min_over(start, end),
                watts // max(1, self.pools[key].watts_per_gpu),
            )
            if not internal:
                if key[1] not in heads:
                    heads[key[1]] = self.customer_headroom(key[1]).min_over(start, end)
                least = min(least, heads[key[1]])
            out[key] = max(0, least)
        return out

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
            # Only while a floor is in force (an oversell with no floor is "oversold" alone),
            # and only what customers hold: a floor above supply with no customer is no sale.
            held = vcombine(
                lambda head, cu, fl: np.where(fl > 0, np.maximum(head, -cu), 0),
                self.floor_headroom(acc),
                self._committed_of(acc, internal=False),
                self.floor_of(acc),
            )
            for a, b, least in held.below(0, start, end):
                out.append(Violation("floor", self.site.id, (self.site.id, acc, ""), a, b, -least))
        both = vcombine(lambda e, o: e * (e + o - 1), self.exclusive_holders, self.other_holders)
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
