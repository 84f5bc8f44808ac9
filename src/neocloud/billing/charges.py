"""What rating produces and reads: charges (invoice lines to be), a contract's terms, what
it held and used, and what its earlier invoices carried. Plain frozen data; see `rating`."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from neocloud.billing import money
from neocloud.capacity.timeline import Hour, at_hour
from neocloud.contracts.models import ContractType, PriceModel

if TYPE_CHECKING:
    from neocloud.contracts.models import Contract

ZERO = Decimal(0)
SHOWN_PRICE = Decimal("0.000001")


class ChargeKind(enum.StrEnum):
    COMMITMENT = "commitment"
    USAGE = "usage"
    OVERAGE = "overage"
    SLA_CREDIT = "sla-credit"
    PREPAYMENT = "prepayment"
    PREPAYMENT_APPLIED = "prepayment-applied"
    TRUE_UP = "true-up"
    ADJUSTMENT = "adjustment"
    CREDIT_NOTE = "credit-note"

    @property
    def recognized(self) -> bool:
        """Revenue of the period (all but the prepayment's billing and drawing down, which
        move money between billed and deferred)."""
        return self not in (ChargeKind.PREPAYMENT, ChargeKind.PREPAYMENT_APPLIED)


CHARGES = (ChargeKind.COMMITMENT, ChargeKind.USAGE, ChargeKind.OVERAGE)
"""What a period charges for capacity and use: the basis of credits, drawdowns, spend."""


@dataclass(frozen=True)
class Charge:
    kind: ChargeKind
    contract: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    """Rounded to the currency's minor unit (the line's amount)."""
    source: Mapping[str, Any] = field(default_factory=dict)

    @property
    def recognized(self) -> bool:
        return self.kind.recognized


@dataclass(frozen=True)
class Terms:
    """What rating needs of a contract (see `contracts.models.Contract`)."""

    contract: str
    type: ContractType
    price_model: PriceModel
    price: Decimal
    start_h: Hour
    end_h: Hour
    accelerator: str | None = None
    currency: str = "USD"
    gpus: int | None = None
    mw: Decimal | None = None
    take_or_pay: bool = False
    prepayment_pct: Decimal = ZERO
    commitment: Decimal | None = None
    sla_tier: str = "none"

    @classmethod
    def of(cls, c: Contract, accelerator: str | None) -> Terms:
        from neocloud.capacity.timeline import hour_of

        return cls(
            contract=c.name,
            type=c.type,
            price_model=c.price_model,
            price=Decimal(c.price),
            start_h=hour_of(c.start_at),
            end_h=hour_of(c.end_at),
            accelerator=accelerator,
            currency=c.currency,
            gpus=c.gpus,
            mw=None if c.mw is None else Decimal(c.mw),
            take_or_pay=c.take_or_pay,
            prepayment_pct=Decimal(c.prepayment_pct or 0),
            commitment=None if c.commitment is None else Decimal(c.commitment),
            sla_tier=c.sla_tier,
        )

    @property
    def takes_or_pays(self) -> bool:
        """Billed for what it holds, used or not."""
        if not self.type.holds_capacity:
            return False
        return self.take_or_pay or self.type in (ContractType.DEDICATED_SITE, ContractType.INTERNAL)


@dataclass(frozen=True)
class Held:
    """GPUs a contract held over [start_h, end_h): one capacity claim."""

    start_h: Hour
    end_h: Hour
    gpus: int


@dataclass(frozen=True)
class Usage:
    """A contract's usage over a period, summed from metering's hourly rollups."""

    billable_gpu_seconds: int = 0
    overage_gpu_seconds: int = 0
    """Billable GPU-seconds above the contracted GPUs, hour by hour (read only for contracts
    that hold capacity)."""
    measured_gpu_seconds: int = 0
    first_hour: Hour | None = None
    last_hour: Hour | None = None

    @classmethod
    def from_hours(
        cls, billable: Mapping[Hour, int], held: Sequence[Held], measured: int | None = None
    ) -> Usage:
        """From billable GPU-seconds per hour and the claims (the overage worked out here is
        what the service's SQL works out in the database)."""
        over = 0
        for h, seconds in billable.items():
            gpus = sum(x.gpus for x in held if x.start_h <= h < x.end_h)
            over += max(0, seconds - gpus * money.HOUR_SECONDS)
        hours = [h for h, s in billable.items() if s]
        return cls(
            billable_gpu_seconds=sum(billable.values()),
            overage_gpu_seconds=over,
            measured_gpu_seconds=sum(billable.values()) if measured is None else measured,
            first_hour=min(hours) if hours else None,
            last_hour=max(hours) if hours else None,
        )


@dataclass(frozen=True)
class Carry:
    """What the contract's earlier invoices billed (the service sums their lines)."""

    prepaid: Decimal = ZERO
    drawn: Decimal = ZERO
    """Prepayment applied so far (a positive figure)."""
    spent: Decimal = ZERO
    """Commitment, usage and overage billed so far (toward a minimum commitment)."""


def line(
    terms: Terms,
    kind: ChargeKind,
    description: str,
    quantity: Decimal,
    unit: str,
    unit_price: Decimal,
    exact: Decimal,
    source: Mapping[str, Any],
) -> Charge:
    return Charge(
        kind=kind,
        contract=terms.contract,
        description=description,
        quantity=quantity.quantize(SHOWN_PRICE, context=money.EXACT),
        unit=unit,
        unit_price=unit_price.quantize(SHOWN_PRICE, context=money.EXACT),
        amount=money.round_line(exact, terms.currency),
        source={**source, "exact": str(exact)},
    )


def iso(h: Hour) -> str:
    return at_hour(h).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def money_text(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def price_text(value: Decimal) -> str:
    return money.plain(value.quantize(SHOWN_PRICE))
