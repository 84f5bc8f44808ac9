"""List prices and term discounts: what a quote charges when sales has not set a price.

Figures from shared/reference/public-figures.md (2026 list prices, USD per GPU-hour):
H100 3.99 (Lambda), H200 4.59 (RunPod), B200 6.69 (Lambda), GB200 10.50 (CoreWeave);
GB300 is estimated at 1.2x GB200. Reserved capacity is discounted with the term, up to the
"up to 60%" CoreWeave advertises (a one-year H100 comes to about $2.59, near the $2.35-2.72
market quotes); spot runs at 35% of list (SF Compute's $2.11 against CoreWeave's $6.16).
Internal contracts carry a transfer price (cost recovery, for showback). A dedicated site is
priced per MW-month at what its GPUs would fetch as reserved capacity for the same term.

These figures are the seed of billing's list price book (`list-usd`, made by migration
0010); bookings and quotes price from that book when they are given it (`book`), so a price
set there (`neocloud prices set`) is what the next quote offers. Without a book, or for a
chip the book does not price, the figures here answer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from neocloud.capacity.timeline import FOREVER, HOURS_PER_MONTH, Hour
from neocloud.contracts.models import ContractType

if TYPE_CHECKING:
    from neocloud.billing.prices import PriceBook

LIST_PRICE = {
    "H100": Decimal("3.99"),
    "H200": Decimal("4.59"),
    "B200": Decimal("6.69"),
    "GB200": Decimal("10.50"),
    "GB300": Decimal("12.60"),
}
H100_TFLOPS = Decimal(989)
TERM_DISCOUNTS = [  # (minimum term in months, discount)
    (36, Decimal("0.55")),
    (24, Decimal("0.45")),
    (12, Decimal("0.35")),
    (6, Decimal("0.25")),
    (3, Decimal("0.15")),
    (1, Decimal("0.10")),
]
SPOT_SHARE = Decimal("0.35")
INTERNAL_SHARE = Decimal("0.40")
CENT = Decimal("0.0001")


def list_price(accelerator: str, bf16_tflops: Decimal) -> Decimal:
    """On-demand list price per GPU-hour; custom chips priced by their BF16 speed vs H100."""
    if accelerator in LIST_PRICE:
        return LIST_PRICE[accelerator]
    return (LIST_PRICE["H100"] * Decimal(bf16_tflops) / H100_TFLOPS).quantize(CENT, ROUND_HALF_UP)


def term_discount(hours: int) -> Decimal:
    months = hours / HOURS_PER_MONTH
    for minimum, discount in TERM_DISCOUNTS:
        if months >= minimum:
            return discount
    return Decimal(0)


def gpu_hour_rate(
    kind: ContractType,
    accelerator: str,
    bf16_tflops: Decimal,
    hours: int,
    book: PriceBook | None = None,
    at: Hour | None = None,
) -> Decimal:
    """The GPU-hour rate of a contract type and term: the book's entry in force at `at`
    (default: the latest) when it prices the chip, else the figures above."""
    if book is not None:
        entry = book.find(accelerator, kind, FOREVER - 1 if at is None else at, hours)
        if entry is not None:
            return entry.price.quantize(CENT, ROUND_HALF_UP)
    base = list_price(accelerator, bf16_tflops)
    if kind is ContractType.SPOT:
        rate = base * SPOT_SHARE
    elif kind is ContractType.INTERNAL:
        rate = base * INTERNAL_SHARE
    elif kind is ContractType.ON_DEMAND:
        rate = base
    else:
        rate = base * (1 - term_discount(hours))
    return rate.quantize(CENT, ROUND_HALF_UP)


def per_mw_month(gpu_hours_value_per_month: Decimal, mw: Decimal) -> Decimal:
    return (gpu_hours_value_per_month / mw).quantize(Decimal("0.01"), ROUND_HALF_UP)


def months(hours: int) -> Decimal:
    return (Decimal(hours) / HOURS_PER_MONTH).quantize(Decimal("0.01"), ROUND_HALF_UP)
