"""API shapes of the operator's reports (GET /v1/reports/{report}).

Money is a decimal string with two places in the report's currency; shares are fractions to
four places (0.6700 = 67%); GPUs are averages over the period's hours. Every report carries
the `chart` it is drawn from (the PNG and the console draw the same figures).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from neocloud.billing.report_periods import Step


class ReportName(enum.StrEnum):
    REVENUE = "revenue"
    BACKLOG = "backlog"
    REVENUE_PER_MW = "revenue-per-mw"
    UTILIZATION = "utilization"
    CONCENTRATION = "concentration"
    CAPACITY_SPLIT = "capacity-split"


class ReportInfo(BaseModel):
    name: ReportName
    title: str
    description: str
    steps: list[Step]
    default_step: Step


class ChartSeries(BaseModel):
    name: str
    values: list[Decimal]


class Chart(BaseModel):
    """What the PNG and the console draw: one value per label for each series."""

    title: str
    kind: Literal["bar", "stacked", "line", "hbar"]
    unit: str
    labels: list[str]
    series: list[ChartSeries]
    reference: Decimal | None = None
    reference_label: str | None = None


Money = Decimal
Amounts = dict[str, Decimal]


class Period(BaseModel):
    period: str = Field(description="the period's name: 2026-05, 2026-Q2, 2026-05-01, ...")
    start: datetime
    end: datetime


class RevenuePeriod(Period):
    recognized: Money = Field(description="external revenue recognized in the period")
    ratable: Money
    consumption: Money
    showback: Money = Field(description="internal contracts at transfer price (not revenue)")
    by_site: Amounts
    by_customer: Amounts
    by_type: Amounts


class RevenueReport(BaseModel):
    report: Literal["revenue"] = "revenue"
    start: datetime
    end: datetime
    step: Step
    as_of: datetime
    currency: str
    recognized: Money
    ratable: Money
    consumption: Money
    showback: Money
    by_site: Amounts
    by_customer: Amounts
    by_type: Amounts
    showback_by_tenant: Amounts
    periods: list[RevenuePeriod]
    chart: Chart


class BacklogPeriod(Period):
    amount: Money
    by_customer: Amounts


class BacklogContract(BaseModel):
    contract: str
    tenant: str
    type: str
    value: Money = Field(description="price x what the contract holds over its life")
    recognized: Money = Field(description="recognized before as_of")
    remaining: Money


class BacklogReport(BaseModel):
    report: Literal["backlog"] = "backlog"
    as_of: datetime
    end: datetime
    step: Step
    currency: str
    total: Money = Field(description="external remaining performance obligations")
    later: Money = Field(description="backlog recognized after `end`")
    by_customer: Amounts
    by_type: Amounts
    internal: Money = Field(description="internal contracts' remaining showback (not backlog)")
    periods: list[BacklogPeriod]
    contracts: list[BacklogContract]
    chart: Chart


class SiteMw(BaseModel):
    site: str
    power_mw: Decimal
    installed_mw: Decimal
    active_hours: int
    recognized: Money


class RevenuePerMwPeriod(Period):
    recognized: Money
    active_mw: Decimal = Field(description="active MW, averaged over the period's hours")
    revenue_per_mw_year: Money | None


class RevenuePerMwReport(BaseModel):
    report: Literal["revenue-per-mw"] = "revenue-per-mw"
    start: datetime
    end: datetime
    step: Step
    as_of: datetime
    currency: str
    recognized: Money
    hours: int = Field(description="hours of the range up to as_of")
    active_mw: Decimal
    active_mw_years: Decimal
    revenue_per_mw_year: Money | None
    installed_mw: Decimal
    revenue_per_installed_mw_year: Money | None
    reference_per_mw_year: Money
    reference: str
    sites: list[SiteMw]
    periods: list[RevenuePerMwPeriod]
    chart: Chart


class UtilizationPoint(Period):
    total_gpus: Decimal
    allocated_gpus: Decimal
    used_gpus: Decimal
    allocated_share: Decimal | None
    used_share: Decimal | None


class UtilizationSite(BaseModel):
    site: str
    gpus: int
    allocated_share: Decimal | None
    used_share: Decimal | None
    periods: list[UtilizationPoint]


class UtilizationReport(BaseModel):
    report: Literal["utilization"] = "utilization"
    start: datetime
    end: datetime
    step: Step
    gpus: int
    allocated_share: Decimal | None
    used_share: Decimal | None
    periods: list[UtilizationPoint]
    sites: list[UtilizationSite]
    chart: Chart


class CustomerShare(BaseModel):
    customer: str
    recognized: Money
    share: Decimal


class ConcentrationPeriod(Period):
    recognized: Money
    largest_customer: str | None
    largest_share: Decimal | None
    top_five_share: Decimal | None


class ConcentrationReport(BaseModel):
    report: Literal["concentration"] = "concentration"
    start: datetime
    end: datetime
    step: Step
    as_of: datetime
    currency: str
    recognized: Money
    customers: int
    largest_customer: str | None
    largest_share: Decimal | None
    top_five_share: Decimal | None
    hhi: Decimal | None = Field(description="Herfindahl-Hirschman index, 0-10000")
    top_five: list[CustomerShare]
    periods: list[ConcentrationPeriod]
    chart: Chart


class SplitPoint(Period):
    supply_gpus: Decimal
    internal_gpus: Decimal
    external_gpus: Decimal
    free_gpus: Decimal
    internal_share: Decimal | None = Field(description="internal / (internal + external)")


class SplitSite(BaseModel):
    site: str
    periods: list[SplitPoint]


class CapacitySplitReport(BaseModel):
    report: Literal["capacity-split"] = "capacity-split"
    start: datetime
    end: datetime
    step: Step
    periods: list[SplitPoint]
    sites: list[SplitSite]
    chart: Chart


AnyReport = (
    RevenueReport
    | BacklogReport
    | RevenuePerMwReport
    | UtilizationReport
    | ConcentrationReport
    | CapacitySplitReport
)
Report = Annotated[AnyReport, Field(discriminator="report")]


class MoneyViewReports(BaseModel):
    """The five reports the console's money view draws (GET /v1/console/money), built in one
    transaction: revenue, revenue per MW and concentration share one recognized-revenue
    table instead of working it out three times."""

    revenue: RevenueReport
    revenue_per_mw: RevenuePerMwReport | None = Field(
        description="null when it cannot be worked out for these parameters"
    )
    backlog: BacklogReport
    utilization: UtilizationReport
    concentration: ConcentrationReport
