"""Ratable recognition (pure): any contract, cut into any periods, recognizes exactly its
value, to the cent; each period is within a cent of its exact pro-rata share; sites and
periods split amounts without losing a cent; backlog is what is left."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.billing import backlog
from neocloud.billing import report_periods as periods
from neocloud.billing.obligations import obligation_of
from neocloud.billing.report_periods import Step
from neocloud.billing.revenue import Obligation, Span, allocate, div_half_even, money, to_cents
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.models import Contract, ContractState, ContractType, PriceModel
from neocloud.contracts.views import contract_value

YEAR = 8760
BASE = hour_of(datetime(2026, 1, 1, tzinfo=UTC))


def h(day: str) -> int:
    return hour_of(datetime.fromisoformat(day).replace(tzinfo=UTC))


def contract(
    model: PriceModel, start: int, hours: int, price: Decimal, gpus: int, mw: Decimal
) -> Contract:
    return Contract(
        name="c",
        tenant_id=1,
        type=ContractType.DEDICATED_SITE
        if model is PriceModel.PER_MW_MONTH
        else ContractType.RESERVED,
        state=ContractState.BOOKED,
        gpus=gpus,
        mw=mw,
        start_at=at_hour(start),
        end_at=at_hour(start + hours),
        price_model=model,
        price=price,
    )


prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("250000"), places=4)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(list(PriceModel)),
    offset=st.integers(0, 5 * YEAR),
    hours=st.integers(1, 20 * YEAR),
    price=prices,
    gpus=st.integers(1, 300_000),
    mw=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("2000"), places=3),
    cuts=st.lists(st.floats(0, 1), max_size=40),
)
def test_any_term_cut_into_any_periods_recognizes_its_contract_value_to_the_cent(
    model: PriceModel,
    offset: int,
    hours: int,
    price: Decimal,
    gpus: int,
    mw: Decimal,
    cuts: list[float],
) -> None:
    start = BASE + offset
    c = contract(model, start, hours, price, gpus, mw)
    claims = [Span("s1", start, start + hours, gpus)]
    ob = obligation_of(c, claims, "s1")
    assert ob.value == to_cents(contract_value(c))
    bounds = sorted({start, start + hours, *(start + int(x * hours) for x in cuts)})
    amounts = ob.schedule(bounds)
    assert sum(amounts) == ob.value
    assert all(a >= 0 for a in amounts)
    for (a, b), amount in zip(itertools.pairwise(bounds), amounts, strict=True):
        exact = ob.exact * (b - a) / hours  # its share of the unrounded value, in cents
        assert abs(amount - exact) <= 1, (a, b, amount, exact)


@settings(max_examples=200, deadline=None)
@given(
    value=st.integers(0, 10**14),
    spans=st.lists(
        st.tuples(
            st.sampled_from("abc"), st.integers(0, 500), st.integers(1, 500), st.integers(1, 10**5)
        ),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(-10, 1100), max_size=12),
    as_of=st.integers(-10, 1100),
)
def test_periods_sites_and_backlog_never_lose_a_cent(
    value: int,
    spans: list[tuple[str, int, int, int]],
    cuts: list[int],
    as_of: int,
) -> None:
    ob = Obligation(Fraction(value), tuple(Span(s, a, a + n, w) for s, a, n, w in spans))
    bounds = sorted({-10, 1100, *cuts})
    pairs = list(itertools.pairwise(bounds))
    assert sum(ob.amount(a, b) for a, b in pairs) == value
    for a, b in pairs:
        assert sum(ob.by_site(a, b).values()) == ob.amount(a, b)
    # The backlog at as_of is what the future periods will recognize, and what is left.
    assert backlog.remaining(ob, as_of) + ob.recognized(as_of) == value
    assert sum(backlog.by_period(ob, as_of, pairs)) == backlog.remaining(ob, as_of)


@given(
    total=st.integers(0, 10**12),
    weights=st.dictionaries(st.text(max_size=3), st.integers(0, 10**9), min_size=1),
)
def test_allocate_sums_exactly_and_each_part_is_within_a_cent(
    total: int, weights: dict[str, int]
) -> None:
    parts = allocate(total, weights)
    assert sum(parts.values()) == total
    whole = sum(weights.values())
    if whole:
        for key, w in weights.items():
            assert abs(parts.get(key, 0) - Fraction(total * w, whole)) < 1


def test_half_even_division() -> None:
    assert [div_half_even(n, 2) for n in (1, 3, 5, 7)] == [0, 2, 2, 4]
    assert div_half_even(7, 3) == 2 and div_half_even(8, 3) == 3
    assert money(123456) == Decimal("1234.56") and str(money(0)) == "0.00"
    assert to_cents(Decimal("0.005")) == 0 and to_cents(Decimal("0.015")) == 2


def test_a_reserved_contract_by_month_by_hand() -> None:
    """16 H100 at $2.50 from 15 January to 15 April 2027: each month earns its hours."""
    start, end = h("2027-01-15"), h("2027-04-15")
    c = contract(PriceModel.PER_GPU_HOUR, start, end - start, Decimal("2.50"), 16, Decimal(0))
    ob = obligation_of(c, [Span("east", start, end, 16)], "east")
    months = [h(d) for d in ("2027-01-01", "2027-02-01", "2027-03-01", "2027-04-01", "2027-05-01")]
    assert [money(x) for x in ob.schedule(months)] == [
        Decimal("16320.00"),  # 17 days x 24 h x 16 GPUs x 2.50
        Decimal("26880.00"),  # 28 days
        Decimal("29760.00"),  # 31 days
        Decimal("13440.00"),  # 14 days
    ]
    assert money(ob.value) == contract_value(c) == Decimal("86400.00")


def test_remainders_are_carried_not_lost() -> None:
    """$100.00 over three equal hours: 33.33, 33.34, 33.33 (cumulative half-even)."""
    ob = Obligation(Fraction(10_000), (Span("s", 0, 3, 1),))
    assert ob.schedule([0, 1, 2, 3]) == [3333, 3334, 3333]


def test_periods_name_and_tile_the_calendar() -> None:
    lo, hi = h("2026-11-15"), h("2027-03-02")
    months = periods.buckets(
        periods.floor(Step.MONTH, lo), periods.ceil(Step.MONTH, hi), Step.MONTH
    )
    assert [periods.label(Step.MONTH, a) for a, _ in months] == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
        "2027-03",
    ]
    assert months[0][0] == h("2026-11-01") and months[-1][1] == h("2027-04-01")
    quarters = periods.buckets(h("2026-11-01"), h("2027-07-01"), Step.QUARTER)
    assert [periods.label(Step.QUARTER, a) for a, _ in quarters] == [
        "2026-Q4",
        "2027-Q1",
        "2027-Q2",
    ]
    assert quarters[0] == (h("2026-11-01"), h("2027-01-01"))  # cut to the range
    week = periods.floor(Step.WEEK, h("2026-12-03"))  # a Thursday
    assert at_hour(week) == datetime(2026, 11, 30, tzinfo=UTC)
    assert periods.label(Step.WEEK, week) == "2026-W49"
    assert periods.following(Step.YEAR, h("2026-06-01")) == h("2027-01-01")
