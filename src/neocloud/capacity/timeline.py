"""Hour-resolution step functions: the arithmetic of the capacity calendar.

Supply and commitments change only at a few instants (a delivery lands, a contract starts or
ends), so a quantity over years is kept as its breakpoints, not as one value per hour: a
3-year calendar of a pool with a hundred contracts is a few hundred numbers, and every
question the calendar asks ("the least free capacity between these two hours") is a binary
search and a short scan. Times are whole hours since the Unix epoch (`Hour`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

Hour = int
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER: Hour = 10**8
"""An hour far beyond any horizon (about year 13,000): the end of "until further notice"."""
HOURS_PER_MONTH = 730
"""A month as cloud price sheets count it (8,760 hours a year / 12)."""


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


@dataclass(frozen=True)
class Steps:
    """A piecewise-constant integer function of the hour.

    `values[i]` holds from `hours[i]` until `hours[i + 1]`; before `hours[0]` the value is
    `base`, after the last breakpoint the last value holds for ever.
    """

    hours: list[Hour] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    base: int = 0

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
    def constant(value: int) -> Steps:
        return Steps([], [], value)

    def deltas(self) -> Iterator[tuple[Hour, int]]:
        previous = self.base
        for hour, value in zip(self.hours, self.values, strict=True):
            yield hour, value - previous
            previous = value

    def at(self, hour: Hour) -> int:
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
        i = bisect.bisect_right(self.hours, start)
        least = self.base if i == 0 else self.values[i - 1]
        j = bisect.bisect_left(self.hours, end, lo=i)
        if j > i:
            least = min(least, min(self.values[i:j]))
        return least

    def max_over(self, start: Hour, end: Hour) -> int:
        i = bisect.bisect_right(self.hours, start)
        most = self.base if i == 0 else self.values[i - 1]
        j = bisect.bisect_left(self.hours, end, lo=i)
        if j > i:
            most = max(most, max(self.values[i:j]))
        return most

    def argmin_over(self, start: Hour, end: Hour) -> Hour:
        """The first hour in [start, end) at which the least value is reached."""
        best_hour, best = start, None
        for a, _, value in self.segments(start, end):
            if best is None or value < best:
                best_hour, best = a, value
        return best_hour

    def earliest_fit(self, need: int, duration: Hour, earliest: Hour, latest: Hour) -> Hour | None:
        """The first start s in [earliest, latest] with value >= need on all of [s, s+duration)."""
        start = earliest
        for a, b, value in self.segments(earliest, FOREVER):
            if start > latest:
                return None
            if a >= start + duration:
                return start
            if value < need:
                start = b
        return start if start <= latest else None

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


def combine(fn: Callable[..., int], *parts: Steps) -> Steps:
    """The pointwise `fn` of several step functions, e.g. supply minus commitments."""
    hours = sorted({h for p in parts for h in p.hours})
    base = fn(*(p.base for p in parts))
    cursors = [0] * len(parts)
    current = [p.base for p in parts]
    out_hours: list[Hour] = []
    out_values: list[int] = []
    level = base
    for hour in hours:
        for k, p in enumerate(parts):
            c = cursors[k]
            while c < len(p.hours) and p.hours[c] <= hour:
                current[k] = p.values[c]
                c += 1
            cursors[k] = c
        value = fn(*current)
        if value != level:
            out_hours.append(hour)
            out_values.append(value)
            level = value
    return Steps(out_hours, out_values, base)


def add(*parts: Steps) -> Steps:
    return Steps.from_deltas(
        (d for p in parts for d in p.deltas()), base=sum(p.base for p in parts)
    )


def minus(a: Steps, b: Steps) -> Steps:
    return Steps.from_deltas([*a.deltas(), *((h, -d) for h, d in b.deltas())], base=a.base - b.base)
