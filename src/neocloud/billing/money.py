"""The one rounding rule of billing, and the currencies it knows.

Amounts are computed exactly in Decimal (a local context of 60 significant digits, so a
GPU-second at a price per GPU-hour — a division by 3600 — loses nothing that can matter);
each invoice **line** is then rounded once, to the currency's minor unit, half to even
(banker's rounding: no drift up or down over many lines). A line derived from other lines
(an SLA credit, a prepayment drawn down) is computed from the rounded lines it derives from,
then rounded itself. An invoice's total is the sum of its rounded lines, so the lines always
add up to the invoice, to the cent.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal

MINOR_UNITS = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "SGD": 2,
    "INR": 2,
    "CNY": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
}
"""Digits after the point of each currency's smallest unit (ISO 4217); others: 2."""

ZERO = Decimal(0)
HOUR_SECONDS = 3600
EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_EVEN)
"""The context exact amounts are computed in (far more digits than any amount needs)."""


def minor_unit(currency: str) -> Decimal:
    """The smallest unit of `currency` as a Decimal: 0.01 for USD, 1 for JPY."""
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency.upper(), 2))


def round_line(amount: Decimal, currency: str) -> Decimal:
    """Round an exact amount to the currency's minor unit, half to even (the rule)."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_EVEN, context=EXACT)


def per_hour(gpu_seconds: int, price_per_gpu_hour: Decimal) -> Decimal:
    """The exact amount of `gpu_seconds` at a price per GPU-hour (billed per second)."""
    return EXACT.divide(EXACT.multiply(Decimal(gpu_seconds), price_per_gpu_hour), HOUR_SECONDS)


def share(amount: Decimal, numerator: int, denominator: int) -> Decimal:
    """`amount` x numerator / denominator, exactly (pro-rating a fee by hours)."""
    if denominator == 0:
        return ZERO
    return EXACT.divide(EXACT.multiply(amount, Decimal(numerator)), Decimal(denominator))


def pct(amount: Decimal, percent: Decimal) -> Decimal:
    """`percent`% of `amount`, exactly."""
    return EXACT.divide(EXACT.multiply(amount, percent), Decimal(100))


def total(amounts: Iterable[Decimal]) -> Decimal:
    """The sum of rounded lines: what an invoice comes to."""
    return sum(amounts, ZERO)


def gpu_hours(gpu_seconds: int) -> Decimal:
    """GPU-seconds as GPU-hours to 6 places (for display; amounts use the seconds)."""
    return (Decimal(gpu_seconds) / HOUR_SECONDS).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 100, 2.5, 0.0001."""
    text = f"{value.normalize():f}"
    return text
