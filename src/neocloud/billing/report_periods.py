"""The periods reports are given by, in whole UTC hours: days, ISO weeks, months, quarters
and years.

Reports bucket money and GPUs by the periods finance closes books on, and a month or a
quarter is not a fixed number of hours; so every boundary is worked out on the calendar
(UTC) and kept as an hour since the epoch, the unit the capacity calendar and the rollups
count in. (Invoices' billing periods, always calendar months, are `billing.periods`.)
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from neocloud.capacity.timeline import Hour, at_hour, hour_of

MAX_BUCKETS = 2_000
"""The most periods one report answers (five years of days, forty of months)."""


class Step(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def floor(step: Step, hour: Hour) -> Hour:
    """The start of the period of `step` that holds `hour`."""
    if step is Step.DAY:
        return hour - hour % 24
    if step is Step.WEEK:
        days = hour // 24
        monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday
        return monday * 24
    t = at_hour(hour)
    if step is Step.MONTH:
        month = t.month
    elif step is Step.QUARTER:
        month = 3 * ((t.month - 1) // 3) + 1
    else:
        month = 1
    return hour_of(datetime(t.year, month, 1, tzinfo=UTC))


def following(step: Step, hour: Hour) -> Hour:
    """The start of the period after the one that holds `hour`."""
    start = floor(step, hour)
    if step is Step.DAY:
        return start + 24
    if step is Step.WEEK:
        return start + 168
    t = at_hour(start)
    months = {Step.MONTH: 1, Step.QUARTER: 3, Step.YEAR: 12}[step]
    index = t.year * 12 + t.month - 1 + months
    return hour_of(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))


def ceil(step: Step, hour: Hour) -> Hour:
    """`hour` if it starts a period, else the start of the next one."""
    start = floor(step, hour)
    return start if start == hour else following(step, hour)


def buckets(lo: Hour, hi: Hour, step: Step) -> list[tuple[Hour, Hour]]:
    """The periods that cover [lo, hi), each cut to the range (so the first and last may be
    partial when lo or hi is not on a boundary); stops once past MAX_BUCKETS."""
    out: list[tuple[Hour, Hour]] = []
    a = lo
    while a < hi and len(out) <= MAX_BUCKETS:
        b = min(following(step, a), hi)
        out.append((a, b))
        a = b
    return out


def label(step: Step, hour: Hour) -> str:
    """How finance names the period that holds `hour`: 2026-05-01, 2026-W18, 2026-05,
    2026-Q2, 2026."""
    t = at_hour(floor(step, hour))
    if step is Step.DAY:
        return t.strftime("%Y-%m-%d")
    if step is Step.WEEK:
        year, week, _ = t.isocalendar()
        return f"{year}-W{week:02d}"
    if step is Step.MONTH:
        return t.strftime("%Y-%m")
    if step is Step.QUARTER:
        return f"{t.year}-Q{(t.month - 1) // 3 + 1}"
    return str(t.year)
