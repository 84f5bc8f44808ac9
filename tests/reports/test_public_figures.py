"""The economics of the demo fleet, which is shaped like the public figures
(shared/reference/public-figures.md), stay believable next to the listed neocloud's."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.billing import reports
from neocloud.billing.report_periods import Step
from neocloud.billing.report_schemas import RevenuePerMwReport
from neocloud.db.engine import transaction
from neocloud.demo import scenario

REFERENCE = Decimal("8800000")
LOW, HIGH = REFERENCE / 2, REFERENCE * 2


def test_revenue_per_active_mw_is_within_a_believable_range_of_the_public_figure(
    factory: sessionmaker[Session],
) -> None:
    """CoreWeave earned about $8.8M per MW-year of active power in 2025 ($5.13B over an
    average of ~580 MW). The demo's year from June 2026 (all of memphis-1 sold whole for
    300 MW at reserved prices per MW-month, codeloom's 4,608 reserved GB200 at memphis-2,
    400 MW) must come within a factor of two of it: $4.4M-$17.6M per MW-year.

    Why a factor of two: per MW-year, a fleet earns its price per GPU-hour x 8,760 hours x
    the share sold, over the facility power per GPU. At the published prices (a one-year
    H100 at ~$2.35-2.72, GB200 at $10.50 list less the term discount) and 1.3-1.8 kW of
    facility power per GPU, a MW fully sold at long-term prices earns roughly $12M-$25M a
    year; one sold at half its capacity, or at spot prices, half of that. The listed
    figure sits inside because its active MW include halls still ramping to revenue. The
    same bound holds against installed power (the nodes' power x PUE), the narrower
    denominator for a site that is only partly built out, like memphis-2.
    """
    with transaction(factory) as s:
        scenario.load(s)
    with factory() as s, s.begin():
        got = reports.build(
            s,
            actor=SYSTEM,
            name="revenue-per-mw",
            start=datetime(2026, 6, 1, tzinfo=UTC),
            end=datetime(2027, 6, 1, tzinfo=UTC),
            step=Step.MONTH,
            as_of=datetime(2027, 6, 1, tzinfo=UTC),
            now=datetime(2027, 6, 1, tzinfo=UTC),
        )
    assert isinstance(got, RevenuePerMwReport)
    assert got.revenue_per_mw_year is not None and got.revenue_per_installed_mw_year is not None
    assert LOW <= got.revenue_per_mw_year <= HIGH, got.revenue_per_mw_year
    assert LOW <= got.revenue_per_installed_mw_year <= HIGH, got.revenue_per_installed_mw_year
    # Both sites hold customer contracts the whole year: 300 + 400 MW active.
    assert got.active_mw == Decimal("700.000")
    assert {s.site for s in got.sites} == {"memphis-1", "memphis-2"}
    # A year of the whole-site sale is most of the revenue (the largest customer's share is
    # high, as the listed neocloud's was: 62% in 2024, 67% in 2025).
    assert got.sites[0].recognized > 4 * got.sites[1].recognized
    assert got.reference_per_mw_year == REFERENCE
