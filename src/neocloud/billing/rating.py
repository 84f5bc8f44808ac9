"""Rating: a contract's charges for a billing period, from its terms, what it held, what it
used and how available it was. Pure: no database, no clock — the live invoices, the
benchmark and the revenue reports call this same function.

How to call it::

    from neocloud.billing.rating import Terms, Held, Usage, Carry, rate
    from neocloud.billing.credits import Availability
    from neocloud.billing.prices import PriceBook
    from neocloud.billing import months

    charges = rate(
        Terms.of(contract, accelerator="GB200"),   # or Terms(...) by hand
        months.parse("2026-11"),
        held=[Held(start_h, end_h, gpus), ...],    # the contract's capacity claims (any range)
        usage=Usage(billable_gpu_seconds=..., overage_gpu_seconds=...),  # or Usage.from_hours
        availability=None,                         # or Availability.from_hours(...)
        prices=PriceBook("list-usd", "USD", entries),  # on-demand rates, volume tiers
        carry=Carry(),                             # prepayment and spend billed before
    )
    sum(c.amount for c in charges)                 # what the period bills (rounded lines)
    sum(c.amount for c in charges if c.recognized) # what it earns (revenue of the period)

The rules (docs/billing.md has worked examples):

- **commitment** — take-or-pay GPU-hours (reserved with take_or_pay, dedicated sites priced
  per GPU-hour, internal showback): contracted GPU-hours x price, used or not; a monthly fee
  or a per-MW-month fee: the fee x the share of the calendar month inside the term.
- **usage** — on-demand and spot (and reserved without take-or-pay): billable GPU-seconds x
  the contract's rate per GPU-hour, less the price book's volume-tier discounts.
- **overage** — contracts that hold capacity: GPU-seconds used above the contracted GPUs,
  hour by hour, at the price book's on-demand rate.
- **sla-credit** — the tier's ladder applied to the period's availability, on the period's
  charges (see `credits`).
- **prepayment** — in the period the term starts: prepayment_pct of the committed value
  (deferred: billed, not yet earned); **prepayment-applied** — each period draws the same
  share of its charges from it, and the term's last period draws what is left.
- **true-up** — in the term's last period: what the charges fell short of `commitment`.

Every amount is exact until its line is rounded (`money`). Each charge carries `source`:
the terms, hours, GPU-seconds and price entries it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from neocloud.billing import money
from neocloud.billing.charges import (
    CHARGES,
    Carry,
    Charge,
    ChargeKind,
    Held,
    Terms,
    Usage,
    iso,
    line,
    money_text,
    price_text,
)
from neocloud.billing.credits import Availability
from neocloud.billing.money import plain
from neocloud.billing.months import Period
from neocloud.billing.prices import PriceBook
from neocloud.billing.usage_lines import credit_lines, overage_lines, usage_lines
from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour
from neocloud.contracts.models import PriceModel

__all__ = [
    "CHARGES",
    "Carry",
    "Charge",
    "ChargeKind",
    "Held",
    "Terms",
    "Usage",
    "commitment",
    "committed_value",
    "rate",
]
ZERO = Decimal(0)


def rate(
    terms: Terms,
    period: Period,
    held: Sequence[Held],
    usage: Usage,
    availability: Availability | None,
    prices: PriceBook,
    carry: Carry = Carry(),
) -> list[Charge]:
    """The contract's charges for the period, each line rounded (see the module's doc)."""
    active = period.overlap(terms.start_h, terms.end_h)
    if active == 0 and usage.billable_gpu_seconds == 0:
        return []
    lines: list[Charge] = []
    commit = commitment(terms, period, held)
    if commit is not None:
        lines.append(commit)
    lines.extend(usage_lines(terms, period, usage, prices))
    lines.extend(overage_lines(terms, period, usage, prices))
    charged = money.total(c.amount for c in lines)
    lines.extend(credit_lines(terms, period, availability, charged))
    first = period.start_h <= terms.start_h < period.end_h
    last = period.start_h < terms.end_h <= period.end_h
    prepaid = carry.prepaid
    if first and terms.prepayment_pct > 0:
        value = committed_value(terms, held) or (terms.commitment or ZERO)
        amount = money.round_line(money.pct(value, terms.prepayment_pct), terms.currency)
        if amount:
            prepaid += amount
            lines.append(
                line(
                    terms,
                    ChargeKind.PREPAYMENT,
                    f"prepayment: {plain(terms.prepayment_pct)}% of the committed value "
                    f"{money_text(value)} {terms.currency}, drawn down over the term",
                    Decimal(1),
                    "each",
                    amount,
                    amount,
                    {"rule": "prepayment", "committed_value": str(value)},
                )
            )
    if last and terms.commitment and terms.commitment > 0:
        spent = carry.spent + charged
        short = terms.commitment - spent
        if short > 0:
            amount = money.round_line(short, terms.currency)
            lines.append(
                line(
                    terms,
                    ChargeKind.TRUE_UP,
                    f"minimum commitment true-up: committed {money_text(terms.commitment)}, "
                    f"charged {money_text(spent)} over the term",
                    Decimal(1),
                    "each",
                    amount,
                    amount,
                    {"rule": "true-up", "commitment": str(terms.commitment), "spent": str(spent)},
                )
            )
    balance = prepaid - carry.drawn
    if balance > 0 and (charged > 0 or last):
        draw = (
            balance
            if last
            else min(
                balance,
                money.round_line(money.pct(charged, terms.prepayment_pct), terms.currency),
            )
        )
        if draw > 0:
            lines.append(
                line(
                    terms,
                    ChargeKind.PREPAYMENT_APPLIED,
                    f"prepayment applied: {plain(terms.prepayment_pct)}% of this period's "
                    f"charges, {money_text(balance - draw)} left"
                    if not last
                    else f"prepayment applied: the remaining balance ({money_text(balance)})",
                    Decimal(1),
                    "each",
                    -draw,
                    -draw,
                    {"rule": "prepayment-applied", "balance_before": str(balance)},
                )
            )
    return lines


def commitment(terms: Terms, period: Period, held: Sequence[Held]) -> Charge | None:
    """The fixed part of the period: take-or-pay GPU-hours, a monthly or per-MW-month fee.

    A month of a fee is 730 hours, as contracts are priced and valued (`contract_value`): a
    calendar month bills the fee x its hours in the term / 730. The line is the term's
    amount rounded up to the period's end less the same rounded up to its start, so that
    however the term is cut into periods its lines sum to the contract's value to the cent.
    """
    a, b = max(terms.start_h, period.start_h), min(terms.end_h, period.end_h)
    if terms.price_model in (PriceModel.MONTHLY_FEE, PriceModel.PER_MW_MONTH):
        if b <= a:
            return None
        per_mw = terms.price_model is PriceModel.PER_MW_MONTH
        mw = (terms.mw or ZERO) if per_mw else Decimal(1)
        monthly = terms.price * mw
        hours = b - a
        fraction = money.share(Decimal(1), hours, HOURS_PER_MONTH)
        what = (
            f"whole-site fee: {plain(mw)} MW x {money_text(terms.price)} per MW-month"
            if per_mw
            else f"fixed monthly fee {money_text(terms.price)}"
        )
        return _cumulative(
            terms,
            f"{what} x {hours}/{HOURS_PER_MONTH} months ({hours} hours of {period.label})",
            fraction * mw,
            "MW-month" if per_mw else "month",
            terms.price,
            money.share(monthly, a - terms.start_h, HOURS_PER_MONTH),
            money.share(monthly, b - terms.start_h, HOURS_PER_MONTH),
            _term_source(terms, period, terms.price_model.value),
        )
    if not terms.takes_or_pays:
        return None
    parts = _held_in(held, period)
    gpu_hours = sum((y - x) * g for x, y, g in parts)
    if not gpu_hours:
        return None
    return _cumulative(
        terms,
        f"{terms.accelerator or 'GPU'} {terms.type.value} capacity, take-or-pay: "
        f"{gpu_hours:,} contracted GPU-hours ({_span(parts)}) at {price_text(terms.price)} "
        "per GPU-hour",
        Decimal(gpu_hours),
        "GPU-hour",
        terms.price,
        terms.price * _held_before(held, period.start_h),
        terms.price * _held_before(held, period.end_h),
        {
            **_term_source(terms, period, "take-or-pay"),
            "held": [[iso(x), iso(y), g] for x, y, g in parts],
            "gpu_hours": gpu_hours,
        },
    )


def _cumulative(
    terms: Terms,
    description: str,
    quantity: Decimal,
    unit: str,
    unit_price: Decimal,
    before: Decimal,
    after: Decimal,
    source: Mapping[str, Any],
) -> Charge:
    """A commitment line: the term's rounded amount to the period's end less to its start."""
    made = line(
        terms,
        ChargeKind.COMMITMENT,
        description,
        quantity,
        unit,
        unit_price,
        after - before,
        source,
    )
    rounded = money.round_line(after, terms.currency) - money.round_line(before, terms.currency)
    return replace(made, amount=rounded)


def _held_before(held: Sequence[Held], t: Hour) -> int:
    """GPU-hours the claims hold before hour t."""
    return sum(x.gpus * max(0, min(x.end_h, t) - x.start_h) for x in held if x.gpus > 0)


def committed_value(terms: Terms, held: Sequence[Held]) -> Decimal:
    """The term's commitment, as its invoices bill it (the contract's value, for a contract
    as booked): the lines of all its periods sum to this."""
    if terms.price_model is PriceModel.MONTHLY_FEE:
        exact = money.share(terms.price, terms.end_h - terms.start_h, HOURS_PER_MONTH)
    elif terms.price_model is PriceModel.PER_MW_MONTH:
        exact = money.share(
            terms.price * (terms.mw or ZERO), terms.end_h - terms.start_h, HOURS_PER_MONTH
        )
    elif terms.takes_or_pays:
        exact = terms.price * _held_before(held, terms.end_h)
    else:
        return ZERO
    return money.round_line(exact, terms.currency)


def _held_in(held: Sequence[Held], period: Period) -> list[tuple[Hour, Hour, int]]:
    parts = []
    for x in held:
        a, b = max(x.start_h, period.start_h), min(x.end_h, period.end_h)
        if b > a and x.gpus > 0:
            parts.append((a, b, x.gpus))
    return sorted(parts)


def _span(parts: list[tuple[Hour, Hour, int]]) -> str:
    gpus = {g for _, _, g in parts}
    a, b = parts[0][0], max(p[1] for p in parts)
    size = f"{gpus.pop():,} GPUs" if len(gpus) == 1 else "GPUs as claimed"
    return f"{size}, {iso(a)[:10]} to {iso(b)[:10]}"


def _term_source(terms: Terms, period: Period, rule: str) -> dict[str, Any]:
    a, b = max(terms.start_h, period.start_h), min(terms.end_h, period.end_h)
    return {
        "rule": rule,
        "contract": terms.contract,
        "period": period.label,
        "price_model": terms.price_model.value,
        "price": str(terms.price),
        "term": [iso(terms.start_h), iso(terms.end_h)],
        "billed_hours": [iso(a), iso(b)],
        "mw": None if terms.mw is None else str(terms.mw),
    }
