"""Properties of rating over a contract's whole life, period by period as invoices bill it:
what was billed is always what was recognized plus what is deferred (prepayment not yet
drawn), nothing is left deferred at the end, and a committed contract's lines sum to its
value (`contract_value`) to the cent, however the term falls across months."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.billing import months
from neocloud.billing.prices import PriceBook
from neocloud.billing.rating import CHARGES, Carry, ChargeKind, Held, Terms, Usage, rate
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.models import Contract, ContractType, PriceModel
from neocloud.contracts.views import contract_value
from tests.billing.helpers import at

BOOK = PriceBook("empty", "USD", ())
EPOCH_H = hour_of(at("2026-01-01"))


@st.composite
def contracts(draw: st.DrawFn) -> tuple[Contract, Terms, list[Held]]:
    model = draw(st.sampled_from(list(PriceModel)))
    kind = (
        ContractType.DEDICATED_SITE
        if model is PriceModel.PER_MW_MONTH
        else draw(st.sampled_from([ContractType.RESERVED, ContractType.DEDICATED_SITE]))
    )
    start = EPOCH_H + draw(st.integers(0, 24 * 400))
    end = start + draw(st.integers(1, 24 * 800))
    gpus = draw(st.integers(1, 50_000))
    price = Decimal(draw(st.integers(1, 10**9))) / Decimal(10 ** draw(st.integers(0, 4)))
    mw = Decimal(draw(st.integers(1, 400_000))) / 1000
    pct = Decimal(draw(st.integers(0, 100)))
    c = Contract(
        name="prop",
        type=kind,
        price_model=model,
        price=price,
        gpus=gpus,
        mw=mw,
        start_at=at_hour(start),
        end_at=at_hour(end),
        currency="USD",
        take_or_pay=True,
        prepayment_pct=pct,
        sla_tier="none",
    )
    return c, Terms.of(c, "H100"), [Held(start, end, gpus)]


def life(terms: Terms, held: list[Held], usage: dict[str, int]) -> list[list]:  # type: ignore[type-arg]
    """Each period's lines from the term's first month to its last, carrying as the
    invoicing service does."""
    out = []
    carry = Carry()
    p = months.month_of(at_hour(terms.start_h))
    while p.start_h < terms.end_h:
        lines = rate(terms, p, held, Usage(usage.get(p.label, 0)), None, BOOK, carry)
        carry = Carry(
            prepaid=carry.prepaid + sum(c.amount for c in lines if c.kind is ChargeKind.PREPAYMENT),
            drawn=carry.drawn
            - sum(c.amount for c in lines if c.kind is ChargeKind.PREPAYMENT_APPLIED),
            spent=carry.spent + sum(c.amount for c in lines if c.kind in CHARGES),
        )
        out.append((lines, carry))
        p = p.next()
    return out


@settings(max_examples=300, deadline=None)
@given(contracts())
def test_billed_is_recognized_plus_deferred_and_sums_to_the_value(
    contract: tuple[Contract, Terms, list[Held]],
) -> None:
    c, terms, held = contract
    billed = recognized = Decimal(0)
    for lines, carry in life(terms, held, {}):
        billed += sum(x.amount for x in lines)
        recognized += sum(x.amount for x in lines if x.recognized)
        deferred = carry.prepaid - carry.drawn
        assert deferred >= 0
        assert billed == recognized + deferred
    assert deferred == 0
    assert recognized == billed == contract_value(c)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 24 * 300),
    st.integers(1, 24 * 500),
    st.integers(0, 50),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=24),
)
def test_usage_contracts_with_a_commitment_are_trued_up_to_it(
    offset: int, hours: int, pct: int, commitment: int, used: list[int]
) -> None:
    start = EPOCH_H + offset
    terms = Terms(
        contract="od",
        type=ContractType.ON_DEMAND,
        price_model=PriceModel.PER_GPU_HOUR,
        price=Decimal("3.99"),
        start_h=start,
        end_h=start + hours,
        accelerator="H100",
        commitment=Decimal(commitment),
        prepayment_pct=Decimal(pct),
    )
    labels = []
    p = months.month_of(at_hour(start))
    while p.start_h < terms.end_h:
        labels.append(p.label)
        p = p.next()
    usage = dict(zip(labels, used, strict=False))
    periods = life(terms, [], usage)
    billed = sum(sum(x.amount for x in lines) for lines, _ in periods)
    charged = periods[-1][1].spent
    # the charges plus the true-up reach the commitment (or exceed it), prepayment all drawn
    true_up = sum(x.amount for lines, _ in periods for x in lines if x.kind is ChargeKind.TRUE_UP)
    assert charged + true_up >= commitment
    assert periods[-1][1].prepaid == periods[-1][1].drawn
    assert billed == charged + true_up
    assert (at_hour(terms.end_h) - at_hour(terms.start_h)) > timedelta(0)
