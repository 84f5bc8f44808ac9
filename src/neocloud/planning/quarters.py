"""Quarters: the planner's unit of time. A quarter is three of billing's 730-hour months, so
a GPU-quarter is 2,190 GPU-hours and a planned price per GPU-hour rates the way an invoice
would."""

from __future__ import annotations

import re

from neocloud.capacity.timeline import HOURS_PER_MONTH

MONTHS_PER_QUARTER = 3
HOURS_PER_QUARTER = MONTHS_PER_QUARTER * HOURS_PER_MONTH
_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")


def parse_quarter(text: object) -> int:
    """'2026Q3' (or '2026-Q3') -> an absolute quarter number (year x 4 + quarter - 1)."""
    match = _QUARTER.match(str(text))
    if match is None:
        raise ValueError(f"'{text}' is not a quarter such as 2026Q3")
    year, q = int(match.group(1)), int(match.group(2))
    if not 2000 <= year <= 2100:
        raise ValueError(f"year {year} is out of range (2000-2100)")
    return year * 4 + q - 1


def label(quarter: int) -> str:
    """An absolute quarter number as '2026Q3'."""
    return f"{quarter // 4}Q{quarter % 4 + 1}"


def span(first: int, last: int) -> str:
    """'2027Q3' or '2027Q3-2028Q2' for absolute quarters first..last (inclusive)."""
    return label(first) if first == last else f"{label(first)}-{label(last)}"
