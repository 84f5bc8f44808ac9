"""Billing periods: calendar months (UTC), in the calendar's unit of whole hours.

A period is `YYYY-MM`; it runs from the first hour of the month to the first hour of the
next, half-open, so periods tile time with no gap and no overlap and a contract's hours fall
in exactly one period each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from neocloud.capacity.timeline import Hour, at_hour, hour_of
from neocloud.core.errors import InvalidInput

MONTH = re.compile(r"(\d{4})-(\d{2})")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month: [start_h, end_h) in hours since the epoch."""

    start_h: Hour
    end_h: Hour
    label: str

    @property
    def hours(self) -> int:
        return self.end_h - self.start_h

    @property
    def start(self) -> datetime:
        return at_hour(self.start_h)

    @property
    def end(self) -> datetime:
        return at_hour(self.end_h)

    def next(self) -> Period:
        return month_of(at_hour(self.end_h))

    def previous(self) -> Period:
        return month_of(at_hour(self.start_h - 1))

    def overlap(self, start_h: Hour, end_h: Hour) -> int:
        """Hours of [start_h, end_h) inside the period."""
        return max(0, min(end_h, self.end_h) - max(start_h, self.start_h))


def month(year: int, number: int) -> Period:
    first = datetime(year, number, 1, tzinfo=UTC)
    after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return Period(hour_of(first), hour_of(after), f"{year:04d}-{number:02d}")


def month_of(when: datetime) -> Period:
    """The period that holds `when`."""
    when = when.astimezone(UTC)
    return month(when.year, when.month)


def parse(text: str, field: str = "period") -> Period:
    """`YYYY-MM` as a period, or 422 naming the field (`2026-13` is no month)."""
    found = MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
    if not found or not 1 <= int(found[2]) <= 12:
        raise InvalidInput(
            f"{field}: '{text}' is not a month (YYYY-MM)",
            errors=[{"loc": ["body", field], "msg": "not a month (YYYY-MM)"}],
        )
    year = int(found[1])
    if not EARLIEST_YEAR <= year < LATEST_YEAR:
        raise InvalidInput(
            f"{field}: must lie between {EARLIEST_YEAR}-01 and {LATEST_YEAR - 1}-12",
            errors=[{"loc": ["body", field], "msg": "out of range"}],
        )
    return month(year, int(found[2]))
