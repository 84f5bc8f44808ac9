"""Where and when a new commitment fits: the pure search behind quotes and bookings.

Given a site's `SiteBook` and a `Need` (so many GPUs of an accelerator, for so long, starting
in a window, with a topology constraint), it finds the earliest start and the claims that
would hold the GPUs, or says how much is missing and why. The same functions serve quotes
(search a window) and bookings (a fixed start, checked again under the site's lock).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from neocloud.capacity.calendar import Claim, PoolKey, SiteBook
from neocloud.capacity.timeline import Hour, add, at_hour

MAX_START_CANDIDATES = 400


class Unit(enum.StrEnum):
    """The indivisible piece a commitment is made of."""

    GPU = "gpu"
    NODE = "node"  # whole nodes (8 GPUs for an HGX node)
    BLOCK = "block"  # whole blocks (72 GPUs for an NVL72 domain)


@dataclass(frozen=True)
class Need:
    accelerator_id: int
    gpus: int
    duration: Hour
    earliest: Hour
    latest: Hour
    same_fabric: bool = False
    unit: Unit = Unit.GPU
    internal: bool = False

    def at(self, start: Hour) -> Need:
        return Need(
            self.accelerator_id,
            self.gpus,
            self.duration,
            start,
            start,
            self.same_fabric,
            self.unit,
            self.internal,
        )


@dataclass(frozen=True)
class Use:
    """Something an option uses up, in words and as a share."""

    kind: str  # free-capacity | floor-headroom | power
    share: Decimal
    at: Hour
    detail: str


@dataclass
class Fit:
    site_id: int
    start: Hour
    end: Hour
    parts: list[tuple[PoolKey, int]]
    uses: list[Use] = field(default_factory=list)

    @property
    def gpus(self) -> int:
        return sum(g for _, g in self.parts)

    def claims(self, contract_id: int, *, internal: bool, exclusive: bool = False) -> list[Claim]:
        return [
            Claim(contract_id, key, self.start, self.end, g, internal, exclusive)
            for key, g in self.parts
        ]


@dataclass(frozen=True)
class Shortfall:
    """Why a site cannot take a need at a start: the most it could take, and what binds."""

    site_id: int
    start: Hour
    possible: int
    missing: int
    reason: str


def unit_gpus(book: SiteBook, key: PoolKey, unit: Unit) -> int:
    pool = book.pools[key]
    if unit is Unit.NODE:
        return pool.gpus_per_node
    if unit is Unit.BLOCK:
        return pool.block_gpus
    return 1


def candidate_pools(book: SiteBook, need: Need) -> list[PoolKey]:
    """The site's pools of the accelerator whose unit divides the request."""
    return [
        key
        for key in book.accelerators.get(need.accelerator_id, [])
        if need.gpus % unit_gpus(book, key, need.unit) == 0
    ]


def _capacities(
    book: SiteBook, keys: list[PoolKey], need: Need, start: Hour, end: Hour
) -> dict[PoolKey, int]:
    """What each pool can take of `need` over [start, end), in whole units of the pool."""
    caps = book.capacities(keys, need.internal, start, end)
    for key, cap in caps.items():
        caps[key] = cap - cap % unit_gpus(book, key, need.unit)
    return caps


def fit_at(book: SiteBook, need: Need, start: Hour, prefer: tuple[PoolKey, ...] = ()) -> Fit | None:
    """Claims for `need` starting exactly at `start`, or None. Prefers the pools in `prefer`
    (where the contract already is), then one pool (the tightest that fits, leaving large
    pools whole for large requests), then the fewest pools."""
    end = start + need.duration
    caps = _capacities(book, candidate_pools(book, need), need, start, end)
    fitting = [k for k, cap in caps.items() if cap >= need.gpus]
    if fitting:
        best = min(fitting, key=lambda k: (k not in prefer, caps[k], k[2]))
        parts = [(best, need.gpus)]
    elif need.same_fabric:
        return None
    else:
        parts = _split(book, need, caps, prefer)
        if sum(g for _, g in parts) < need.gpus:
            return None
    # The pools share the site's power and (for customers) the floor's headroom.
    if len(parts) > 1:
        head = book.customer_headroom(need.accelerator_id)
        if not need.internal and head.min_over(start, end) < need.gpus:
            return None
        watts = sum(g * book.pools[k].watts_per_gpu for k, g in parts)
        if book.power_free_watts.min_over(start, end) < watts:
            return None
    return Fit(book.site.id, start, end, parts)


def _split(
    book: SiteBook, need: Need, caps: dict[PoolKey, int], prefer: tuple[PoolKey, ...]
) -> list[tuple[PoolKey, int]]:
    """Spread a need over several pools, largest first, each part whole units of its pool.
    Pools with larger units go first, so what is left stays a multiple of the smaller ones."""
    parts: list[tuple[PoolKey, int]] = []
    left = need.gpus
    order = sorted(
        caps, key=lambda k: (k not in prefer, -unit_gpus(book, k, need.unit), -caps[k], k[2])
    )
    for key in order:
        take = min(caps[key], left)
        take -= take % unit_gpus(book, key, need.unit)
        if take > 0:
            parts.append((key, take))
            left -= take
    return parts


def fit_holds(book: SiteBook, need: Need, fit: Fit) -> bool:
    """Whether the claims of `fit` (made by `fit_at` on an older book) still fit `book`:
    the checks `fit_at` made to offer them, made again."""
    pools = set(candidate_pools(book, need))
    if any(key not in pools for key, _ in fit.parts):
        return False
    caps = _capacities(book, [key for key, _ in fit.parts], need, fit.start, fit.end)
    if any(caps[key] < gpus for key, gpus in fit.parts):
        return False
    if len(fit.parts) > 1:
        head = book.customer_headroom(need.accelerator_id)
        if not need.internal and head.min_over(fit.start, fit.end) < need.gpus:
            return False
        watts = sum(g * book.pools[k].watts_per_gpu for k, g in fit.parts)
        if book.power_free_watts.min_over(fit.start, fit.end) < watts:
            return False
    return True


def _start_candidates(book: SiteBook, need: Need) -> list[Hour]:
    """The hours at which a split over several pools may start to fit: the window's start,
    and every rise of a pool's availability or of what the pools share (the customers'
    headroom under the floor, the site's power), which a pool's own figure may not show."""
    hours = {need.earliest}
    series = [book.available(key, need.internal) for key in candidate_pools(book, need)]
    if not need.internal:
        series.append(book.customer_headroom(need.accelerator_id))
    series.append(book.power_free_watts)
    for steps in series:
        h, v = steps.arrays
        rises = v > np.concatenate(([steps.base], v[:-1]))
        hours.update(h[rises & (h > need.earliest) & (h <= need.latest)].tolist())
    return sorted(hours)[:MAX_START_CANDIDATES]


def earliest_fit(book: SiteBook, need: Need) -> Fit | None:
    """The earliest start in the need's window at which this site can hold it."""
    best: Hour | None = None
    for key in candidate_pools(book, need):
        # The pool sells whole units and need.gpus is a multiple of the unit, so "at least
        # need.gpus available" already means "at least need.gpus in whole units".
        avail = book.available(key, need.internal)
        s = avail.earliest_fit(need.gpus, need.duration, need.earliest, need.latest)
        if s is not None and (best is None or s < best):
            best = s
    single = fit_at(book, need, best) if best is not None else None
    if need.same_fabric:
        return single
    # Several pools together may hold it earlier than any one pool can. Only starts where
    # the pools' total and the shared headroom both stay at the need all along can work
    # (a cheap test for hundreds of starts at once); `fit_at` decides among those.
    starts = np.array(_start_candidates(book, need), dtype=np.int64)
    ends = starts + need.duration
    total = book.total_available(tuple(candidate_pools(book, need)), need.internal)
    hopeful = total.min_over_many(starts, ends) >= need.gpus
    if not need.internal:
        head = book.customer_headroom(need.accelerator_id)
        hopeful &= head.min_over_many(starts, ends) >= need.gpus
    for start in starts[hopeful].tolist():
        if single is not None and start >= single.start:
            break
        fit = fit_at(book, need, start)
        if fit is not None:
            return fit
    return single


def shortfall(book: SiteBook, need: Need, start: Hour) -> Shortfall:
    """How much of `need` the site could hold from `start`, and the constraint that binds."""
    end = start + need.duration
    pools = candidate_pools(book, need)
    if not book.accelerators.get(need.accelerator_id):
        return Shortfall(book.site.id, start, 0, need.gpus, "the site has none of this accelerator")
    if not pools:
        return Shortfall(
            book.site.id, start, 0, need.gpus, f"no pool here sells whole {need.unit.value}s of it"
        )
    caps = _capacities(book, pools, need, start, end)
    if need.same_fabric:
        possible = max(caps.values())
    else:
        possible = sum(g for _, g in _split(book, need, caps, ()))
    if not need.internal:  # the floor's headroom is shared by all the pools
        possible = min(
            possible, max(0, book.customer_headroom(need.accelerator_id).min_over(start, end))
        )
    if not need.same_fabric and len(pools) > 1:  # and so is the site's power
        per_gpu = max(book.pools[k].watts_per_gpu for k in pools) or 1
        possible = min(possible, max(0, book.power_free_watts.min_over(start, end)) // per_gpu)
    possible = min(possible, need.gpus)
    reason = _binding(book, need, pools, start, end)
    return Shortfall(book.site.id, start, possible, need.gpus - possible, reason)


def _binding(book: SiteBook, need: Need, pools: list[PoolKey], start: Hour, end: Hour) -> str:
    if book.exclusive_holders.max_over(start, end) > 0:
        return "the site is held by a dedicated-site contract"
    free = sum(max(0, book.pool_free(k).min_over(start, end)) for k in pools)
    if need.same_fabric:
        free = max(max(0, book.pool_free(k).min_over(start, end)) for k in pools)
    if not need.internal:  # the floor binds first when it leaves less than is free
        head = book.customer_headroom(need.accelerator_id)
        least = head.min_over(start, end)
        if least < need.gpus and least < free:
            return (
                f"the internal floor leaves customers {max(0, least)} GPUs "
                f"(tightest {_when(head.argmin_over(start, end))})"
            )
    if free < need.gpus:
        hour = add(*(book.pool_free(k) for k in pools)).argmin_over(start, end)
        where = "in any one fabric" if need.same_fabric else "in all"
        return f"only {free} GPUs are free {where} at the tightest hour ({_when(hour)})"
    watts = book.power_free_watts.min_over(start, end)
    return f"the site's power leaves {max(0, watts) / 1e6:.1f} MW of IT load"


def _when(hour: Hour) -> str:
    t = at_hour(hour)
    return f"{t.date().isoformat()}, {t.year}-Q{(t.month - 1) // 3 + 1}"


def describe_uses(book: SiteBook, fit: Fit, need: Need, accelerator: str) -> list[Use]:
    """What an option takes: the share of free capacity, of the floor's headroom, of power."""
    uses: list[Use] = []
    site = book.site.name
    pools = candidate_pools(book, need) or [k for k, _ in fit.parts]
    free = book.total_available(tuple(pools), need.internal)
    least = free.min_over(fit.start, fit.end)
    hour = free.argmin_over(fit.start, fit.end)
    if least > 0:
        share = Decimal(fit.gpus) / Decimal(least)
        uses.append(
            Use(
                "free-capacity",
                _pct(share),
                hour,
                f"takes {_fmt(share)} of the free {accelerator} capacity at {site} "
                f"(tightest {_when(hour)})",
            )
        )
    # Only while a floor is in force during the option: a floor elsewhere in time is not "used".
    if not need.internal and book.floor_of(need.accelerator_id).max_over(fit.start, fit.end) > 0:
        head = book.floor_headroom(need.accelerator_id)
        least = head.min_over(fit.start, fit.end)
        hour = head.argmin_over(fit.start, fit.end)
        if least > 0:
            share = Decimal(fit.gpus) / Decimal(least)
            uses.append(
                Use(
                    "floor-headroom",
                    _pct(share),
                    hour,
                    f"takes {_fmt(share)} of the internal floor's headroom at {site} in "
                    f"{_when(hour).split(', ')[1]}",
                )
            )
    watts = sum(g * book.pools[k].watts_per_gpu for k, g in fit.parts)
    spare = book.power_free_watts.min_over(fit.start, fit.end)
    if spare > 0:
        share = Decimal(watts) / Decimal(spare)
        mw = Decimal(watts) * book.site.pue / Decimal(1_000_000)
        uses.append(
            Use(
                "power",
                _pct(share),
                fit.start,
                f"draws {mw.quantize(Decimal('0.1'))} MW, {_fmt(share)} of {site}'s spare power",
            )
        )
    return uses


def _pct(share: Decimal) -> Decimal:
    return share.quantize(Decimal("0.0001"))


def _fmt(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('1'))}%"
