"""The operator's reports: which there are, the range and step each is asked for, and the
service that builds one (`build`). The figures are worked out in `money_reports` (revenue,
backlog, revenue per MW, concentration) and `fleet_reports` (utilization, capacity split).

A range is widened to whole periods of its step (a month report from the 15th starts on
the 1st). Money is recognized only before `as_of` (default: now), so a report for a range
that reaches into the future shows what has been earned so far, and backlog starts there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing import fleet_reports, money_reports
from neocloud.billing import report_periods as periods
from neocloud.billing.recognized import Cell, cells
from neocloud.billing.report_periods import Step
from neocloud.billing.report_schemas import AnyReport, MoneyViewReports, ReportInfo, ReportName
from neocloud.capacity.timeline import Hour, hour_of
from neocloud.core.errors import InvalidInput, NeocloudError, NotFound

MONEY_STEPS = [Step.MONTH, Step.QUARTER, Step.YEAR]
FLEET_STEPS = [Step.DAY, Step.WEEK, Step.MONTH, Step.QUARTER, Step.YEAR]
CATALOG: dict[ReportName, ReportInfo] = {
    info.name: info
    for info in (
        ReportInfo(
            name=ReportName.REVENUE,
            title="Recognized revenue",
            description="external revenue recognized per period (ratable for reserved and "
            "dedicated-site contracts, on consumption for usage), by site, customer and "
            "contract type; internal showback apart",
            steps=MONEY_STEPS,
            default_step=Step.MONTH,
        ),
        ReportInfo(
            name=ReportName.BACKLOG,
            title="Remaining performance obligations",
            description="contracted value not yet recognized at as_of, by the quarter it will "
            "be recognized in, by customer and per contract",
            steps=MONEY_STEPS,
            default_step=Step.QUARTER,
        ),
        ReportInfo(
            name=ReportName.REVENUE_PER_MW,
            title="Revenue per active MW",
            description="external revenue recognized over the range, annualized, divided by "
            "the facility MW of live sites while they hold external contracts",
            steps=MONEY_STEPS,
            default_step=Step.QUARTER,
        ),
        ReportInfo(
            name=ReportName.UTILIZATION,
            title="GPU utilization",
            description="allocated / total and used / total GPUs per site and over the fleet, "
            "from the hourly rollups and the node inventory",
            steps=FLEET_STEPS,
            default_step=Step.DAY,
        ),
        ReportInfo(
            name=ReportName.CONCENTRATION,
            title="Customer concentration",
            description="the largest customer's share and the top five's of external revenue "
            "recognized over the range",
            steps=MONEY_STEPS,
            default_step=Step.QUARTER,
        ),
        ReportInfo(
            name=ReportName.CAPACITY_SPLIT,
            title="Internal vs external capacity",
            description="GPUs contracted by the operator's own teams and by customers, per "
            "site, against the GPUs installed",
            steps=FLEET_STEPS,
            default_step=Step.MONTH,
        ),
    )
}


@dataclass(frozen=True)
class Window:
    """A report's range [lo, hi) in whole periods of `step`, and the hour money stops at."""

    lo: Hour
    hi: Hour
    step: Step
    as_of: Hour
    periods: list[tuple[Hour, Hour]]


def catalog() -> list[ReportInfo]:
    return list(CATALOG.values())


def report_name(name: str) -> ReportName:
    """The report called `name`, or 404 naming the ones there are."""
    try:
        return ReportName(name)
    except ValueError:
        known = ", ".join(r.value for r in ReportName)
        raise NotFound(f"report '{name}' not found; the reports are: {known}") from None


def _bad(param: str, message: str) -> InvalidInput:
    return InvalidInput(f"{param}: {message}", errors=[{"loc": ["query", param], "msg": message}])


def _months_before(step: Step, hour: Hour, count: int) -> Hour:
    """The start of the period `count` periods of `step` before the one holding `hour`."""
    start = periods.floor(step, hour)
    for _ in range(count):
        start = periods.floor(step, start - 1)
    return start


def window(
    name: ReportName,
    *,
    start: datetime | None,
    end: datetime | None,
    step: Step | None,
    as_of: datetime | None,
    now: datetime,
    last_end: Hour | None = None,
) -> Window:
    """Resolve a report's parameters (defaults in docs/reports.md); 422 naming the bad one."""
    info = CATALOG[name]
    chosen = step or info.default_step
    if chosen not in info.steps:
        allowed = ", ".join(s.value for s in info.steps)
        raise _bad("step", f"{name.value} is reported by {allowed}, not {chosen.value}")
    a = hour_of(as_of or now)
    lo = hour_of(start) if start else None
    hi = hour_of(end - timedelta(microseconds=1)) + 1 if end else None
    if name is ReportName.BACKLOG:
        if start is not None:
            raise _bad("start", "a backlog starts at as_of; pass as_of instead")
        lo = a
        hi = periods.ceil(chosen, max(hi or last_end or a, a + 1))
        hi = max(hi, lo + 1)
    else:
        if hi is None:
            if name in (ReportName.UTILIZATION,):
                hi = max(periods.floor(Step.DAY, a), (lo or 0) + 1)
            elif name is ReportName.CAPACITY_SPLIT:
                hi = periods.following(Step.MONTH, (lo or a) + 24 * 730)
            else:
                hi = periods.following(Step.MONTH, a)
        if lo is None:
            if name is ReportName.UTILIZATION:
                lo = hi - 24 * 30 if chosen is Step.DAY else hi - 24 * 365
            elif name is ReportName.CAPACITY_SPLIT:
                lo = periods.floor(Step.MONTH, a)
            else:
                lo = _months_before(Step.MONTH, hi - 1, 11)
        if hi <= lo:
            raise _bad("end", "must be after start")
        lo, hi = periods.floor(chosen, lo), periods.ceil(chosen, hi)
    spans = periods.buckets(lo, hi, chosen)
    if len(spans) > periods.MAX_BUCKETS:
        raise _bad(
            "step",
            f"more than {periods.MAX_BUCKETS} {chosen.value}s in the range: use a coarser "
            "step or a shorter range",
        )
    return Window(lo=lo, hi=hi, step=chosen, as_of=a, periods=spans)


def build(
    session: Session,
    *,
    actor: Principal,
    name: str,
    start: datetime | None = None,
    end: datetime | None = None,
    step: Step | None = None,
    as_of: datetime | None = None,
    currency: str = "USD",
    now: datetime,
) -> AnyReport:
    """The report `name` as its API shape (one of `report_schemas.Report`)."""
    actor.demand(Permission.REPORTS_READ)
    report = report_name(name)
    for param, value in (("start", start), ("end", end), ("as_of", as_of)):
        if value is not None and not (1970 <= value.year <= 9000):
            raise _bad(param, "out of range")
    params: dict[str, Any] = {"start": start, "end": end, "step": step, "as_of": as_of, "now": now}
    if report is ReportName.UTILIZATION:
        return fleet_reports.utilization(session, window(report, **params))
    if report is ReportName.CAPACITY_SPLIT:
        return fleet_reports.capacity_split(session, window(report, **params))
    contracts = money_reports.contracts(session, currency)
    if report is ReportName.BACKLOG:
        last = max(
            (c.obligation.end for c in contracts if c.obligation and not c.internal),
            default=None,
        )
        return money_reports.backlog(
            session, window(report, **params, last_end=last), contracts, currency
        )
    w = window(report, **params)
    if report is ReportName.REVENUE:
        return money_reports.revenue(session, w, contracts, currency)
    if report is ReportName.CONCENTRATION:
        return money_reports.concentration(session, w, contracts, currency)
    return money_reports.revenue_per_mw(session, w, contracts, currency)


def _renamed(err: InvalidInput, param: str) -> InvalidInput:
    """A sub-report's 422 on `step`, named by the bundle's parameter for it."""
    if param == "step":
        return err
    errors = [
        {**e, "loc": [*e["loc"][:-1], param]} if list(e.get("loc", []))[-1:] == ["step"] else e
        for e in err.errors
    ]
    detail = f"{param}:{err.detail[5:]}" if err.detail.startswith("step:") else err.detail
    return InvalidInput(detail, errors=errors)


def money_view(
    session: Session,
    *,
    actor: Principal,
    start: datetime | None = None,
    end: datetime | None = None,
    step: Step | None = None,
    backlog_step: Step | None = None,
    util_step: Step | None = None,
    as_of: datetime | None = None,
    currency: str = "USD",
    now: datetime,
) -> MoneyViewReports:
    """What the console's money view draws, as `build` gives each report: revenue, revenue
    per MW and concentration over [start, end) by `step`, backlog from `as_of` by
    `backlog_step`, utilization over [start, end) by `util_step`. The three revenue reports
    sum the same recognized-revenue table, worked out once here (alone, each works it out:
    most of a money report's time)."""
    actor.demand(Permission.REPORTS_READ)
    for param, value in (("start", start), ("end", end), ("as_of", as_of)):
        if value is not None and not (1970 <= value.year <= 9000):
            raise _bad(param, "out of range")
    around = {"start": start, "end": end, "as_of": as_of, "now": now}

    def resolve(name: ReportName, param: str, chosen: Step | None, **extra: Any) -> Window:
        try:
            return window(name, step=chosen, **{**around, **extra})
        except InvalidInput as err:
            raise _renamed(err, param) from None

    contracts = money_reports.contracts(session, currency)
    last = max(
        (c.obligation.end for c in contracts if c.obligation and not c.internal), default=None
    )
    w_backlog = resolve(
        ReportName.BACKLOG, "backlog_step", backlog_step, start=None, end=None, last_end=last
    )
    w_util = resolve(ReportName.UTILIZATION, "util_step", util_step)
    w_revenue = resolve(ReportName.REVENUE, "step", step)
    w_conc = resolve(ReportName.CONCENTRATION, "step", step)
    table = cells(session, contracts, w_revenue.periods, w_revenue.as_of)

    def shared(w: Window) -> list[Cell] | None:
        return table if (w.periods, w.as_of) == (w_revenue.periods, w_revenue.as_of) else None

    try:
        w_mw = resolve(ReportName.REVENUE_PER_MW, "step", step)
        per_mw = money_reports.revenue_per_mw(session, w_mw, contracts, currency, shared(w_mw))
    except NeocloudError:
        per_mw = None
    return MoneyViewReports(
        revenue=money_reports.revenue(session, w_revenue, contracts, currency, table),
        revenue_per_mw=per_mw,
        backlog=money_reports.backlog(session, w_backlog, contracts, currency),
        utilization=fleet_reports.utilization(session, w_util),
        concentration=money_reports.concentration(
            session, w_conc, contracts, currency, shared(w_conc)
        ),
    )
