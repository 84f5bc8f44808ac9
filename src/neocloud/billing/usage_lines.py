"""The usage-priced lines of a period (usage, overage, volume tiers) and the SLA credit."""

from __future__ import annotations

from decimal import Decimal

from neocloud.billing import money
from neocloud.billing.charges import (
    Charge,
    ChargeKind,
    Terms,
    Usage,
    iso,
    line,
    money_text,
    price_text,
)
from neocloud.billing.credits import Availability, credit
from neocloud.billing.money import plain
from neocloud.billing.months import Period
from neocloud.billing.prices import PriceBook, PriceEntry, Tier
from neocloud.contracts.models import ContractType, PriceModel

ZERO = Decimal(0)


def usage_lines(terms: Terms, period: Period, usage: Usage, prices: PriceBook) -> list[Charge]:
    if terms.price_model is not PriceModel.PER_GPU_HOUR or terms.takes_or_pays:
        return []
    seconds = usage.billable_gpu_seconds
    if terms.type.holds_capacity:  # reserved without take-or-pay: the reservation's part
        seconds -= usage.overage_gpu_seconds
    if seconds <= 0:
        return []
    entry = prices.find(terms.accelerator, terms.type, period.start_h)
    return _tiered(
        terms,
        ChargeKind.USAGE,
        seconds,
        terms.price,
        entry,
        f"{terms.accelerator or 'GPU'} {terms.type.value} usage",
        usage,
        period,
    )


def overage_lines(terms: Terms, period: Period, usage: Usage, prices: PriceBook) -> list[Charge]:
    if not terms.type.holds_capacity or usage.overage_gpu_seconds <= 0:
        return []
    if terms.price_model is not PriceModel.PER_GPU_HOUR:
        return []  # a fee covers the whole site, however it is used
    entry = prices.find(terms.accelerator, ContractType.ON_DEMAND, period.start_h)
    rate = entry.price if entry is not None else terms.price
    return _tiered(
        terms,
        ChargeKind.OVERAGE,
        usage.overage_gpu_seconds,
        rate,
        entry,
        f"{terms.accelerator or 'GPU'} usage above the reservation, at on-demand rates",
        usage,
        period,
    )


def _tiered(
    terms: Terms,
    kind: ChargeKind,
    seconds: int,
    rate: Decimal,
    entry: PriceEntry | None,
    what: str,
    usage: Usage,
    period: Period,
) -> list[Charge]:
    """A usage line per volume band the seconds reach (one line when there are no tiers)."""
    bands: list[tuple[int, int | None, Decimal]] = []
    tiers: tuple[Tier, ...] = entry.tiers if entry is not None else ()
    edges = [0, *(t.from_gpu_hours * money.HOUR_SECONDS for t in tiers)]
    discounts = [ZERO, *(t.discount_pct for t in tiers)]
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        bands.append((lo, hi, discounts[i]))
    lines = []
    for lo, hi, discount in bands:
        part = min(seconds, hi) - lo if hi is not None else seconds - lo
        if part <= 0:
            continue
        unit = rate if not discount else money.EXACT.multiply(rate, 1 - discount / 100)
        band = ""
        if tiers:
            upper = f"{hi // money.HOUR_SECONDS:,}" if hi is not None else "+"
            band = f", GPU-hours {lo // money.HOUR_SECONDS:,}-{upper}".replace("-+", "+")
            if discount:
                band += f" ({plain(discount)}% volume discount)"
        source = {
            "rule": kind.value,
            "contract": terms.contract,
            "period": period.label,
            "gpu_seconds": part,
            "rate": str(rate),
            "discount_pct": str(discount),
            "price_entry": entry.ref if entry is not None else None,
            "rollup_hours": [
                iso(usage.first_hour) if usage.first_hour is not None else None,
                iso(usage.last_hour + 1) if usage.last_hour is not None else None,
            ],
        }
        lines.append(
            line(
                terms,
                kind,
                f"{what}{band}: {money.gpu_hours(part)} GPU-hours ({part:,} GPU-seconds) "
                f"at {price_text(unit)} per GPU-hour",
                money.gpu_hours(part),
                "GPU-hour",
                unit,
                money.per_hour(part, unit),
                source,
            )
        )
    return lines


def credit_lines(
    terms: Terms, period: Period, availability: Availability | None, charged: Decimal
) -> list[Charge]:
    if availability is None or charged <= 0:
        return []
    found = credit(terms.sla_tier, availability)
    if found is None:
        return []
    exact = money.pct(charged, found.pct)
    worst = sorted(availability.degraded_hours, key=lambda x: x[1])[:3]
    worst_text = ", ".join(f"{iso(h)[:13]}h {v * 100:.3f}%" for h, v in worst)
    return [
        line(
            terms,
            ChargeKind.SLA_CREDIT,
            f"SLA credit for {period.label}: {found.explain()} of {money_text(charged)}; "
            f"{len(availability.degraded_hours)} degraded hours (worst: {worst_text})",
            found.pct,
            "%",
            -charged / 100,
            -exact,
            {
                "rule": "sla-credit",
                "tier": terms.sla_tier,
                "availability": str(found.availability),
                "credit_pct": str(found.pct),
                "basis": str(charged),
                "contracted_gpu_hours": availability.contracted_gpu_hours,
                "degraded_hours": [[iso(h), str(v)] for h, v in availability.degraded_hours],
            },
        )
    ]
