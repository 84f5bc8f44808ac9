"""Rating by hand: one worked example per contract type, each figure computed on paper."""

from __future__ import annotations

from decimal import Decimal

from neocloud.billing import months
from neocloud.billing.credits import Availability
from neocloud.billing.prices import PriceBook, PriceEntry, Tier, Unit
from neocloud.billing.rating import Carry, ChargeKind, Held, Terms, Usage, rate
from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import ContractType, PriceModel
from tests.billing.helpers import at

NOV = months.parse("2026-11")  # 720 hours
D = Decimal
BOOK = PriceBook(
    "list-usd",
    "USD",
    (
        PriceEntry("H100", ContractType.ON_DEMAND, Unit.GPU_HOUR, D("3.99"), 0, ref="list-usd#1"),
        PriceEntry(
            "H200",
            ContractType.ON_DEMAND,
            Unit.GPU_HOUR,
            D("4.59"),
            0,
            tiers=(Tier(100, D("10")), Tier(1000, D("20"))),
            ref="list-usd#2",
        ),
    ),
)


def terms(kind: ContractType, **kw: object) -> Terms:
    base: dict[str, object] = {
        "contract": f"c-{kind.value}",
        "type": kind,
        "price_model": PriceModel.PER_GPU_HOUR,
        "price": D("2.59"),
        "start_h": hour_of(at("2026-01-01")),
        "end_h": hour_of(at("2027-01-01")),
        "accelerator": "H100",
    }
    return Terms(**{**base, **kw})  # type: ignore[arg-type]


def amounts(lines: list) -> dict[str, Decimal]:  # type: ignore[type-arg]
    out: dict[str, Decimal] = {}
    for c in lines:
        out[c.kind.value] = out.get(c.kind.value, D(0)) + c.amount
    return out


def test_reserved_take_or_pay_plus_overage_at_on_demand_rates() -> None:
    t = terms(ContractType.RESERVED, gpus=64, take_or_pay=True)
    held = [Held(t.start_h, t.end_h, 64)]
    h = NOV.start_h + 10
    # one hour ran 72 GPUs for half of it above the 64 held: 8 GPUs x 1800 s over
    usage = Usage.from_hours({h: 64 * 3600 + 8 * 1800, h + 1: 10 * 3600}, held)
    assert usage.overage_gpu_seconds == 14_400
    lines = rate(t, NOV, held, usage, None, BOOK)
    # 64 GPUs x 720 h x 2.59 = 119,347.20, used or not; 4 GPU-hours over at 3.99 = 15.96
    assert amounts(lines) == {"commitment": D("119347.20"), "overage": D("15.96")}
    over = next(c for c in lines if c.kind is ChargeKind.OVERAGE)
    assert over.source["gpu_seconds"] == 14_400 and over.source["price_entry"] == "list-usd#1"
    assert "46,080 contracted GPU-hours" in lines[0].description


def test_reserved_without_take_or_pay_bills_use_within_the_reservation() -> None:
    t = terms(ContractType.RESERVED, gpus=8, take_or_pay=False)
    held = [Held(t.start_h, t.end_h, 8)]
    usage = Usage(billable_gpu_seconds=36_000, overage_gpu_seconds=3_600)
    # 9 GPU-hours within at 2.59 = 23.31; 1 above at 3.99
    assert amounts(rate(t, NOV, held, usage, None, BOOK)) == {
        "usage": D("23.31"),
        "overage": D("3.99"),
    }


def test_whole_site_per_mw_month_fee_prorated_by_730_hour_months() -> None:
    t = terms(
        ContractType.DEDICATED_SITE,
        price_model=PriceModel.PER_MW_MONTH,
        price=D("250000"),
        mw=D("300"),
        accelerator=None,
        start_h=hour_of(at("2026-05-01")),
        end_h=hour_of(at("2030-05-01")),
    )
    # November: 300 MW x 250,000 x 720/730 = 73,972,602.739726... -> 73,972,602.74
    lines = rate(t, NOV, [], Usage(), None, BOOK)
    assert [c.amount for c in lines] == [D("73972602.74")]
    assert lines[0].unit == "MW-month" and "720/730" in lines[0].description
    # starting mid-month: 15 days = 360 hours -> 300 x 250,000 x 360/730 = 36,986,301.37
    half = rate(
        t.__class__(**{**t.__dict__, "start_h": hour_of(at("2026-11-16"))}),
        NOV,
        [],
        Usage(),
        None,
        BOOK,
    )
    assert half[0].amount == D("36986301.37")


def test_monthly_fee() -> None:
    t = terms(ContractType.DEDICATED_SITE, price_model=PriceModel.MONTHLY_FEE, price=D("7300"))
    # 7,300 x 720/730 = 7,200.00
    assert amounts(rate(t, NOV, [], Usage(), None, BOOK)) == {"commitment": D("7200.00")}


def test_on_demand_per_second_and_volume_tiers() -> None:
    t = terms(ContractType.ON_DEMAND, price=D("3.99"))
    # 1,234,567 GPU-seconds x 3.99 / 3600 = 1,368.3117583... -> 1,368.31
    lines = rate(t, NOV, [], Usage(billable_gpu_seconds=1_234_567), None, BOOK)
    assert [c.amount for c in lines] == [D("1368.31")]
    # H200 with tiers: 100 GPU-hours at 4.59 = 459.00; the next 900 at 10% off (4.131)
    # = 3,717.90; 500 more at 20% off (3.672) = 1,836.00
    t200 = terms(ContractType.ON_DEMAND, price=D("4.59"), accelerator="H200")
    lines = rate(t200, NOV, [], Usage(billable_gpu_seconds=1500 * 3600), None, BOOK)
    assert [c.amount for c in lines] == [D("459.00"), D("3717.90"), D("1836.00")]
    assert "10% volume discount" in lines[1].description


def test_spot_usage_at_the_contracts_rate() -> None:
    t = terms(ContractType.SPOT, price=D("3.675"), accelerator="GB200")
    # 576 GPUs x 100 h = 57,600 GPU-hours x 3.675 = 211,680.00
    lines = rate(t, NOV, [], Usage(billable_gpu_seconds=576 * 100 * 3600), None, BOOK)
    assert amounts(lines) == {"usage": D("211680.00")}


def test_internal_showback_is_the_held_capacity_at_its_price() -> None:
    t = terms(ContractType.INTERNAL, price=D("4.20"), accelerator="GB200", gpus=1000)
    held = [Held(t.start_h, t.end_h, 1000)]
    # 1,000 GPUs x 720 h x 4.20 = 3,024,000.00, whatever ran
    assert amounts(rate(t, NOV, held, Usage(), None, BOOK)) == {"commitment": D("3024000.00")}


def test_nothing_outside_the_term() -> None:
    t = terms(ContractType.RESERVED, take_or_pay=True, end_h=NOV.start_h)
    assert rate(t, NOV, [Held(t.start_h, t.end_h, 8)], Usage(), None, BOOK) == []


def test_prepayment_drawn_down_over_the_term() -> None:
    jan, feb, mar = (months.parse(p) for p in ("2027-01", "2027-02", "2027-03"))
    t = terms(
        ContractType.RESERVED,
        gpus=8,
        price=D("2.00"),
        take_or_pay=True,
        prepayment_pct=D("20"),
        start_h=jan.start_h,
        end_h=mar.end_h,
    )
    held = [Held(t.start_h, t.end_h, 8)]
    # value 8 x 2160 h x 2.00 = 34,560.00; prepaid 20% = 6,912.00
    first = rate(t, jan, held, Usage(), None, BOOK)
    assert amounts(first) == {
        "commitment": D("11904.00"),  # 8 x 744 x 2
        "prepayment": D("6912.00"),
        "prepayment-applied": D("-2380.80"),  # 20% of 11,904
    }
    carry = Carry(prepaid=D("6912.00"), drawn=D("2380.80"), spent=D("11904.00"))
    second = rate(t, feb, held, Usage(), None, BOOK, carry)
    assert amounts(second) == {"commitment": D("10752.00"), "prepayment-applied": D("-2150.40")}
    carry = Carry(prepaid=D("6912.00"), drawn=D("4531.20"), spent=D("22656.00"))
    third = rate(t, mar, held, Usage(), None, BOOK, carry)
    # the last period draws what is left: 6,912.00 - 4,531.20 = 2,380.80
    assert amounts(third) == {"commitment": D("11904.00"), "prepayment-applied": D("-2380.80")}
    billed = sum(c.amount for c in first + second + third)
    assert billed == D("34560.00")


def test_minimum_commitment_true_up_in_the_last_period() -> None:
    jan, feb = months.parse("2027-01"), months.parse("2027-02")
    t = terms(
        ContractType.ON_DEMAND,
        price=D("3.99"),
        commitment=D("10000"),
        start_h=jan.start_h,
        end_h=feb.end_h,
    )
    first = rate(t, jan, [], Usage(billable_gpu_seconds=1000 * 3600), None, BOOK)
    assert amounts(first) == {"usage": D("3990.00")}  # no true-up before the end
    last = rate(t, feb, [], Usage(500 * 3600), None, BOOK, Carry(spent=D("3990.00")))
    # 10,000 - (3,990 + 1,995) = 4,015.00
    assert amounts(last) == {"usage": D("1995.00"), "true-up": D("4015.00")}


def _degraded(hours: int, value: str, gpus: int = 64) -> Availability:
    return Availability.from_hours(
        (NOV.start_h + i, gpus, D(value) if i < hours else D(1)) for i in range(NOV.hours)
    )


def test_sla_credit_follows_the_ladder() -> None:
    t = terms(ContractType.RESERVED, gpus=64, take_or_pay=True, sla_tier="premium")
    held = [Held(t.start_h, t.end_h, 64)]
    # 24 hours at half: availability 1 - 24 x 0.5 / 720 = 98.333% < 99% -> 25% of 119,347.20
    lines = rate(t, NOV, held, Usage(), _degraded(24, "0.5"), BOOK)
    credit = next(c for c in lines if c.kind is ChargeKind.SLA_CREDIT)
    assert credit.amount == D("-29836.80")
    assert "98.333%" in credit.description and "below 99% credits 25%" in credit.description
    assert len(credit.source["degraded_hours"]) == 24
    # 99.95%: above premium's 99.9% target, no credit
    assert all(
        c.kind is not ChargeKind.SLA_CREDIT
        for c in rate(t, NOV, held, Usage(), _degraded(1, "0.64"), BOOK)
    )


def test_sla_credit_is_capped_by_the_tier() -> None:
    t = terms(ContractType.RESERVED, gpus=64, take_or_pay=True, sla_tier="standard")
    held = [Held(t.start_h, t.end_h, 64)]
    # 72 hours down: 90% < 95% -> 100%, capped at standard's 30% of 119,347.20 = 35,804.16
    lines = rate(t, NOV, held, Usage(), _degraded(72, "0"), BOOK)
    credit = next(c for c in lines if c.kind is ChargeKind.SLA_CREDIT)
    assert credit.amount == D("-35804.16") and "capped at 30%" in credit.description
    # no tier, no credit
    none = terms(ContractType.RESERVED, gpus=64, take_or_pay=True)
    assert {c.kind for c in rate(none, NOV, held, Usage(), _degraded(72, "0"), BOOK)} == {
        ChargeKind.COMMITMENT
    }


def test_lines_are_rounded_half_even() -> None:
    t = terms(ContractType.ON_DEMAND, price=D("90"))
    # ties go to the even cent: 1 s at 90 per GPU-hour = 0.025 -> 0.02; 3 s = 0.075 -> 0.08
    assert rate(t, NOV, [], Usage(1), None, BOOK)[0].amount == D("0.02")
    assert rate(t, NOV, [], Usage(3), None, BOOK)[0].amount == D("0.08")
