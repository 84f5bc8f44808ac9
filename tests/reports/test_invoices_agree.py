"""The revenue reports and the invoices cannot disagree: month by month over a contract's
life, what rating bills equals what recognition earns plus what is deferred (a prepayment
billed and not yet drawn down), and over the whole life the lines sum to what was
recognized — the contract's value, to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.billing import months
from neocloud.billing.charges import CHARGES, Carry, ChargeKind, Held, Terms, Usage
from neocloud.billing.prices import PriceBook
from neocloud.billing.rating import rate
from neocloud.billing.revenue import Span, money, ratable, to_cents
from neocloud.capacity.timeline import HOURS_PER_MONTH, at_hour
from neocloud.contracts.models import ContractType, PriceModel

START = 490_000  # hours since the epoch: 2025-11-24
BOOK = PriceBook("none", "USD")


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["reserved", "dedicated", "fee"]),
    offset=st.integers(0, 24 * 400),
    hours=st.integers(1, 4 * 8760),
    gpus=st.integers(1, 50_000),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("90000"), places=4),
    mw=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("400"), places=3),
    prepayment=st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
)
def test_billed_equals_recognized_plus_deferred_every_month(
    kind: str,
    offset: int,
    hours: int,
    gpus: int,
    price: Decimal,
    mw: Decimal,
    prepayment: Decimal,
) -> None:
    start, end = START + offset, START + offset + hours
    model = {
        "reserved": PriceModel.PER_GPU_HOUR,
        "dedicated": PriceModel.PER_MW_MONTH,
        "fee": PriceModel.MONTHLY_FEE,
    }[kind]
    terms = Terms(
        contract="c",
        type=ContractType.DEDICATED_SITE if kind == "dedicated" else ContractType.RESERVED,
        price_model=model,
        price=price,
        start_h=start,
        end_h=end,
        gpus=gpus,
        mw=mw,
        take_or_pay=True,
        prepayment_pct=prepayment,
    )
    held = [Held(start, end, gpus)]
    if model is PriceModel.PER_GPU_HOUR:
        ob = ratable(price * gpus * hours, [Span("s", start, end, gpus)])
    else:
        size = mw if model is PriceModel.PER_MW_MONTH else Decimal(1)
        value = Fraction(price) * Fraction(size) * Fraction(hours, HOURS_PER_MONTH)
        ob = ratable(value, [Span("s", start, end, 1)])
    carry = Carry()
    billed = recognized = 0
    period = months.month_of(at_hour(start))
    while period.start_h < end:
        lines = rate(terms, period, held, Usage(), None, BOOK, carry)
        billed += sum(to_cents(c.amount) for c in lines)
        recognized += ob.amount(period.start_h, period.end_h)
        earned = sum(to_cents(c.amount) for c in lines if c.recognized)
        assert earned == ob.amount(period.start_h, period.end_h), period.label
        prepaid = carry.prepaid + sum(c.amount for c in lines if c.kind is ChargeKind.PREPAYMENT)
        drawn = carry.drawn - sum(
            c.amount for c in lines if c.kind is ChargeKind.PREPAYMENT_APPLIED
        )
        spent = carry.spent + sum(c.amount for c in lines if c.kind in CHARGES)
        carry = Carry(prepaid=prepaid, drawn=drawn, spent=spent)
        deferred = to_cents(prepaid - drawn)
        assert billed == recognized + deferred, period.label
        period = period.next()
    assert recognized == ob.value
    assert billed == ob.value  # the prepayment is all drawn down by the last month
    assert money(ob.value) >= 0
