"""Hour-resolution step functions: the arithmetic of the capacity calendar.

Supply and commitments change only at a few instants (a delivery lands, a contract starts or
ends), so a quantity over years is kept as its breakpoints, not as one value per hour: a
3-year calendar of a pool with a hundred contracts is a few hundred numbers, and every
question the calendar asks ("the least free capacity between these two hours") is a binary
search and a short scan. Times are whole hours since the Unix epoch (`Hour`).

`hours` and `values` are plain lists (the readable form every caller uses); the operations
that touch every breakpoint (building from thousands of claims, combining several functions,
the earliest fit) run on NumPy copies of them, made once per step function.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

Hour = int
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER: Hour = 10**8
"""An hour far beyond any horizon (about year 13,000): the end of "until further notice"."""
HOURS_PER_MONTH = 730
"""A month as cloud price sheets count it (8,760 hours a year / 12)."""
NEVER = 2**62
"""Past every hour (the end of a last segment, in the vectorised searches)."""

Ints = NDArray[np.int64]


def hour_of(value: datetime) -> Hour:
    """The hour that holds `value` (floor); naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - EPOCH).total_seconds() // 3600)


def hour_of_date(value: date) -> Hour:
    return hour_of(datetime(value.year, value.month, value.day, tzinfo=UTC))


def is_whole_hour(value: datetime) -> bool:
    return value.minute == 0 and value.second == 0 and value.microsecond == 0


def at_hour(hour: Hour) -> datetime:
    return EPOCH + timedelta(hours=hour)


class Steps:
    """A piecewise-constant integer function of the hour.

    `values[i]` holds from `hours[i]` until `hours[i + 1]`; before `hours[0]` the value is
    `base`, after the last breakpoint the last value holds for ever. Never changed once made.

    A step function computed with NumPy keeps its arrays and makes the lists only when they
    are read: one updated after each booking of a batch is asked a few questions, which the
    arrays answer, and would otherwise pay for two lists of every breakpoint each time.
    """

    def __init__(
        self, hours: list[Hour] | None = None, values: list[int] | None = None, base: int = 0
    ):
        self.__dict__["hours"] = [] if hours is None else hours
        self.__dict__["values"] = [] if values is None else values
        self.base = base

    @cached_property
    def hours(self) -> list[Hour]:
        return self.arrays[0].tolist()  # type: ignore[no-any-return]

    @cached_property
    def values(self) -> list[int]:
        return self.arrays[1].tolist()  # type: ignore[no-any-return]

    @property
    def _listed(self) -> bool:
        return "hours" in self.__dict__ and "values" in self.__dict__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Steps):
            return NotImplemented
        return (self.base, self.hours, self.values) == (other.base, other.hours, other.values)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Steps(hours={self.hours!r}, values={self.values!r}, base={self.base!r})"

    @staticmethod
    def from_deltas(deltas: Iterable[tuple[Hour, int]], base: int = 0) -> Steps:
        """Sum changes ("+8 GPUs from hour h") into a step function."""
        merged: dict[Hour, int] = {}
        for hour, delta in deltas:
            if delta:
                merged[hour] = merged.get(hour, 0) + delta
        hours: list[Hour] = []
        values: list[int] = []
        level = base
        for hour in sorted(merged):
            if merged[hour] == 0:
                continue
            level += merged[hour]
            hours.append(hour)
            values.append(level)
        return Steps(hours, values, base)

    @staticmethod
    def from_arrays(hours: Ints, deltas: Ints, base: int = 0) -> Steps:
        """`from_deltas` for NumPy arrays of hours and changes (thousands of claims at once)."""
        if hours.size == 0:
            return Steps([], [], base)
        order = np.argsort(hours, kind="stable")
        h, d = hours[order], deltas[order]
        firsts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
        merged = np.add.reduceat(d, firsts)
        keep = merged != 0
        return _steps(h[firsts][keep], base + np.cumsum(merged[keep]), base)

    @staticmethod
    def constant(value: int) -> Steps:
        return Steps([], [], value)

    @cached_property
    def arrays(self) -> tuple[Ints, Ints]:
        """`hours` and `values` as NumPy arrays (made once; neither is ever changed)."""
        return np.asarray(self.hours, dtype=np.int64), np.asarray(self.values, dtype=np.int64)

    def at_many(self, hours: Ints) -> Ints:
        """The value at each of `hours` (a sorted or unsorted array)."""
        h, v = self.arrays
        if h.size == 0:
            return np.full(hours.shape, self.base, dtype=np.int64)
        i = np.searchsorted(h, hours, side="right") - 1
        return np.where(i >= 0, v[np.maximum(i, 0)], self.base)

    def deltas(self) -> Iterator[tuple[Hour, int]]:
        previous = self.base
        for hour, value in zip(self.hours, self.values, strict=True):
            yield hour, value - previous
            previous = value

    def at(self, hour: Hour) -> int:
        if not self._listed:
            h, v = self.arrays
            k = int(h.searchsorted(hour, side="right")) - 1
            return self.base if k < 0 else int(v[k])
        i = bisect.bisect_right(self.hours, hour) - 1
        return self.base if i < 0 else self.values[i]

    def segments(self, start: Hour, end: Hour) -> Iterator[tuple[Hour, Hour, int]]:
        """The pieces of [start, end) on which the value is constant: (from, until, value)."""
        if start >= end:
            return
        i = bisect.bisect_right(self.hours, start)
        value = self.base if i == 0 else self.values[i - 1]
        cursor = start
        while i < len(self.hours) and self.hours[i] < end:
            yield cursor, self.hours[i], value
            cursor, value = self.hours[i], self.values[i]
            i += 1
        yield cursor, end, value

    def min_over(self, start: Hour, end: Hour) -> int:
        """The least value on [start, end) (the value at `start` when the range is empty)."""
        if not self._listed:
            return self._extreme(start, end, least=True)
        i = bisect.bisect_right(self.hours, start)
        least = self.base if i == 0 else self.values[i - 1]
        j = bisect.bisect_left(self.hours, end, lo=i)
        if j > i:
            least = min(least, min(self.values[i:j]))
        return least

    def min_over_many(self, starts: Ints, ends: Ints) -> Ints:
        """`min_over` of many ranges at once: a range-minimum table over the values answers
        each in constant time."""
        h, v = self.arrays
        i = np.searchsorted(h, starts, side="right")
        j = np.maximum(np.searchsorted(h, ends, side="left"), i)
        out = np.where(i > 0, v[np.maximum(i - 1, 0)], self.base) if v.size else i * 0 + self.base
        inside = np.flatnonzero(j > i)
        if inside.size:
            a, b = i[inside], j[inside]
            level = np.log2(b - a).astype(np.int64)  # the largest power of two that fits
            least = np.empty(inside.size, dtype=np.int64)
            for k in np.unique(level).tolist():
                pick = level == k
                runs = self._runs[k]
                least[pick] = np.minimum(runs[a[pick]], runs[b[pick] - (1 << k)])
            out[inside] = np.minimum(out[inside], least)
        return out

    @cached_property
    def _runs(self) -> list[Ints]:
        """Level k: the least of each run of 2**k consecutive values."""
        levels = [self.arrays[1]]
        while (1 << len(levels)) <= levels[0].size:
            half = 1 << (len(levels) - 1)
            levels.append(np.minimum(levels[-1][:-half], levels[-1][half:]))
        return levels

    def max_over(self, start: Hour, end: Hour) -> int:
        if not self._listed:
            return self._extreme(start, end, least=False)
        i = bisect.bisect_right(self.hours, start)
        most = self.base if i == 0 else self.values[i - 1]
        j = bisect.bisect_left(self.hours, end, lo=i)
        if j > i:
            most = max(most, max(self.values[i:j]))
        return most

    def _extreme(self, start: Hour, end: Hour, *, least: bool) -> int:
        """`min_over` (least) or `max_over` on the arrays."""
        h, v = self.arrays
        i = int(h.searchsorted(start, side="right"))
        first = self.base if i == 0 else int(v[i - 1])
        j = int(h.searchsorted(end, side="left"))
        if j <= i:
            return first
        inner = int(v[i:j].min() if least else v[i:j].max())
        return min(first, inner) if least else max(first, inner)

    def argmin_over(self, start: Hour, end: Hour) -> Hour:
        """The first hour in [start, end) at which the least value is reached."""
        if start >= end:
            return start
        i = bisect.bisect_right(self.hours, start)
        first = self.base if i == 0 else self.values[i - 1]
        j = bisect.bisect_left(self.hours, end, lo=i)
        if j > i:
            least = min(self.values[i:j])
            if least < first:
                return self.hours[self.values.index(least, i, j)]
        return start

    def earliest_fit(self, need: int, duration: Hour, earliest: Hour, latest: Hour) -> Hour | None:
        """The first start s in [earliest, latest] with value >= need on all of [s, s+duration).

        The answer is `earliest` or the end of a stretch below `need`: the first such
        candidate whose next stretch below `need` begins at least `duration` later.
        """
        if earliest > latest:
            return None
        if self.min_over(earliest, earliest + duration) >= need:
            return earliest  # the common answer, found with a binary search
        h, v = self.arrays
        i = bisect.bisect_right(self.hours, earliest)
        starts = np.concatenate(([earliest], h[i:]))
        ends = np.concatenate((h[i:], [NEVER]))
        short = np.concatenate(([self.at(earliest)], v[i:])) < need
        candidates = np.concatenate(([earliest], ends[short]))
        next_short = np.concatenate((starts[short], [NEVER]))
        ok = np.flatnonzero((next_short >= candidates + duration) & (candidates <= latest))
        return int(candidates[ok[0]]) if ok.size else None

    def below(self, level: int, start: Hour, end: Hour) -> Iterator[tuple[Hour, Hour, int]]:
        """Maximal pieces of [start, end) where the value is under `level`: (from, until, least)."""
        run: tuple[Hour, Hour, int] | None = None
        for a, b, value in self.segments(start, end):
            if value < level:
                run = (run[0], b, min(run[2], value)) if run else (a, b, value)
            elif run:
                yield run
                run = None
        if run:
            yield run


def _steps(hours: Ints, values: Ints, base: int) -> Steps:
    """A step function from arrays already in canonical form (each value differs from the last)."""
    out = Steps.__new__(Steps)
    out.base = int(base)
    out.__dict__["arrays"] = (hours, values)  # the cached_property; the lists come from it
    return out


def _aligned(parts: tuple[Steps, ...]) -> tuple[Ints, list[Ints]]:
    """Every breakpoint of the parts, and each part's value at each of them."""
    if not parts:
        return np.zeros(0, dtype=np.int64), []
    hours = np.unique(np.concatenate([p.arrays[0] for p in parts]))
    return hours, [p.at_many(hours) for p in parts]


def combine(fn: Callable[..., int], *parts: Steps) -> Steps:
    """The pointwise `fn` of several step functions, e.g. supply minus commitments.

    `fn` takes plain ints; `vcombine` is the same for a `fn` written for NumPy arrays.
    """
    base = fn(*(p.base for p in parts))
    hours, columns = _aligned(parts)
    out_hours: list[Hour] = []
    out_values: list[int] = []
    level = base
    for hour, *current in zip(hours.tolist(), *(c.tolist() for c in columns), strict=True):
        value = fn(*current)
        if value != level:
            out_hours.append(hour)
            out_values.append(value)
            level = value
    return Steps(out_hours, out_values, base)


def vcombine(fn: Callable[..., Any], *parts: Steps) -> Steps:
    """`combine` for a `fn` of NumPy arrays (np.minimum, np.where, arithmetic): one pass in C
    over all breakpoints instead of a Python call per breakpoint."""
    base = int(fn(*(np.int64(p.base) for p in parts)))
    hours, columns = _aligned(parts)
    values = np.broadcast_to(np.asarray(fn(*columns), dtype=np.int64), hours.shape)
    keep = values != np.concatenate(([base], values[:-1]))
    return _steps(hours[keep], values[keep], base)


def add(*parts: Steps) -> Steps:
    if len(parts) == 2:
        return _sum2(parts[0], parts[1], 1)
    return vcombine(lambda *v: sum(v, np.int64(0)), *parts)


def minus(a: Steps, b: Steps) -> Steps:
    return _sum2(a, b, -1)


def _sum2(a: Steps, b: Steps, sign: int) -> Steps:
    """a + sign * b, merging b's breakpoints into a's: when b is small (the claims of one
    booking) this is a few passes over a's arrays, with no sort of the whole."""
    if b.arrays[0].size > a.arrays[0].size:
        if sign == 1:
            return _sum2(b, a, 1)
        return vcombine(np.subtract, a, b)
    ah, av = a.arrays
    bh, _ = b.arrays
    at = np.searchsorted(ah, bh)
    new = (at == ah.size) | (ah[np.minimum(at, max(ah.size - 1, 0))] != bh) if ah.size else at == 0
    if new.any():
        extra = bh[new]
        hours = np.insert(ah, at[new], extra)
        values = np.insert(av, at[new], a.at_many(extra))
    else:
        hours, values = ah, av
    base = a.base + sign * b.base
    values = values + sign * b.at_many(hours)
    keep = values != np.concatenate(([base], values[:-1]))
    return _steps(hours[keep], values[keep], base)
