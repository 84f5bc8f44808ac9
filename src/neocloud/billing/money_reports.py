"""The money reports: recognized revenue, backlog (RPO), customer concentration and revenue
per active MW, each summed from the recognized-revenue table (`recognized.cells`).

External revenue is what customers' contracts earn; the operator's own teams' contracts
are priced at a transfer price for showback and never counted as revenue, backlog or
concentration — they are reported apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from neocloud.billing import backlog as rpo
from neocloud.billing import obligations
from neocloud.billing import report_periods as periods
from neocloud.billing.active_power import active_power
from neocloud.billing.charts import top_series
from neocloud.billing.recognized import Cell, cells
from neocloud.billing.report_schemas import (
    BacklogContract,
    BacklogPeriod,
    BacklogReport,
    Chart,
    ChartSeries,
    ConcentrationPeriod,
    ConcentrationReport,
    CustomerShare,
    RevenuePeriod,
    RevenuePerMwPeriod,
    RevenuePerMwReport,
    RevenueReport,
    SiteMw,
)
from neocloud.billing.revenue import money
from neocloud.capacity.timeline import at_hour

if TYPE_CHECKING:
    from neocloud.billing.reports import Window

SHARE = Decimal("0.0001")
MW = Decimal("0.001")
HOURS_PER_YEAR = 8760
REFERENCE_PER_MW_YEAR = Decimal("8800000.00")
REFERENCE = (
    "CoreWeave 2025: revenue $5.13B / ~580 MW average active power = about $8.8M per "
    "MW-year (shared/reference/public-figures.md)"
)


def contracts(session: Session, currency: str) -> list[obligations.Booked]:
    return obligations.load(session, currency=currency)


def _amounts(sums: dict[str, int]) -> dict[str, Decimal]:
    """Cents by key as money, largest first (then by name)."""
    return {k: money(v) for k, v in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0])) if v}


def share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(SHARE) if whole else None


def _label(w: Window, i: int) -> str:
    return periods.label(w.step, w.periods[i][0])


def revenue(
    session: Session,
    w: Window,
    booked: list[obligations.Booked],
    currency: str,
    table: list[Cell] | None = None,
) -> RevenueReport:
    """`table`: the recognized-revenue cells of `booked` over `w`, when already worked out
    (the console's money view shares one between revenue, concentration and per MW)."""
    if table is None:
        table = cells(session, booked, w.periods, w.as_of)
    n = len(w.periods)
    ext = [c for c in table if not c.contract.internal]
    internal = [c for c in table if c.contract.internal]
    per: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(n)]
    for c in ext:
        p = per[c.period]
        p["site"][c.site] += c.cents
        p["customer"][c.contract.tenant] += c.cents
        p["type"][c.contract.type.value] += c.cents
        p["kind"]["ratable" if c.ratable else "consumption"] += c.cents
    showback = [0] * n
    showback_by_tenant: dict[str, int] = defaultdict(int)
    for c in internal:
        showback[c.period] += c.cents
        showback_by_tenant[c.contract.tenant] += c.cents
    rows = []
    for i, (a, b) in enumerate(w.periods):
        p = per[i]
        rows.append(
            RevenuePeriod(
                period=_label(w, i),
                start=at_hour(a),
                end=at_hour(b),
                recognized=money(sum(p["kind"].values())),
                ratable=money(p["kind"]["ratable"]),
                consumption=money(p["kind"]["consumption"]),
                showback=money(showback[i]),
                by_site=_amounts(p["site"]),
                by_customer=_amounts(p["customer"]),
                by_type=_amounts(p["type"]),
            )
        )
    totals = _totals(ext)
    labels = [r.period for r in rows]
    types = sorted({c.contract.type.value for c in ext})
    series = [
        ChartSeries(name=t, values=[r.by_type.get(t, Decimal(0)) for r in rows]) for t in types
    ]
    return RevenueReport(
        start=at_hour(w.lo),
        end=at_hour(w.hi),
        step=w.step,
        as_of=at_hour(w.as_of),
        currency=currency,
        recognized=money(sum(c.cents for c in ext)),
        ratable=money(sum(c.cents for c in ext if c.ratable)),
        consumption=money(sum(c.cents for c in ext if not c.ratable)),
        showback=money(sum(showback)),
        by_site=_amounts(totals["site"]),
        by_customer=_amounts(totals["customer"]),
        by_type=_amounts(totals["type"]),
        showback_by_tenant=_amounts(showback_by_tenant),
        periods=rows,
        chart=Chart(
            title=f"Recognized revenue by contract type ({currency})",
            kind="stacked",
            unit=currency,
            labels=labels,
            series=series or [ChartSeries(name="revenue", values=[r.recognized for r in rows])],
        ),
    )


def _totals(table: Iterable[Cell]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("site", "customer", "type")}
    for c in table:
        out["site"][c.site] += c.cents
        out["customer"][c.contract.tenant] += c.cents
        out["type"][c.contract.type.value] += c.cents
    return out


def backlog(
    session: Session, w: Window, booked: list[obligations.Booked], currency: str
) -> BacklogReport:
    del session
    n = len(w.periods)
    amounts = [0] * n
    by_customer_period: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    by_customer: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    total = internal = 0
    rows: list[BacklogContract] = []
    for c in booked:
        ob = c.obligation
        if ob is None:
            continue
        left = rpo.remaining(ob, w.as_of)
        if left <= 0:
            continue
        if c.internal:
            internal += left
            continue
        total += left
        by_customer[c.tenant] += left
        by_type[c.type.value] += left
        for i, cents in enumerate(rpo.by_period(ob, w.as_of, w.periods)):
            amounts[i] += cents
            if cents:
                by_customer_period[i][c.tenant] += cents
        rows.append(
            BacklogContract(
                contract=c.name,
                tenant=c.tenant,
                type=c.type.value,
                value=money(ob.value),
                recognized=money(ob.value - left),
                remaining=money(left),
            )
        )
    rows.sort(key=lambda r: (-r.remaining, r.contract))
    period_rows = [
        BacklogPeriod(
            period=periods.label(w.step, a),
            start=at_hour(a),
            end=at_hour(b),
            amount=money(amounts[i]),
            by_customer=_amounts(by_customer_period[i]),
        )
        for i, (a, b) in enumerate(w.periods)
    ]
    labels = [p.period for p in period_rows]
    return BacklogReport(
        as_of=at_hour(w.as_of),
        end=at_hour(w.hi),
        step=w.step,
        currency=currency,
        total=money(total),
        later=money(total - sum(amounts)),
        by_customer=_amounts(by_customer),
        by_type=_amounts(by_type),
        internal=money(internal),
        periods=period_rows,
        contracts=rows,
        chart=Chart(
            title=f"Backlog by {w.step.value} and customer ({currency})",
            kind="stacked",
            unit=currency,
            labels=labels,
            series=top_series(
                [p.by_customer for p in period_rows], [p.amount for p in period_rows]
            ),
        ),
    )


def concentration(
    session: Session,
    w: Window,
    booked: list[obligations.Booked],
    currency: str,
    table: list[Cell] | None = None,
) -> ConcentrationReport:
    if table is None:
        table = cells(session, booked, w.periods, w.as_of)
    ext = [c for c in table if not c.contract.internal]
    whole = _by_customer(ext)
    total = sum(whole.values())
    ranked = sorted(whole.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:5]
    hhi = (
        sum(Decimal(v) * Decimal(v) for _, v in ranked) * 10_000 / (Decimal(total) ** 2)
        if total
        else None
    )
    rows = []
    for i, (a, b) in enumerate(w.periods):
        sums = _by_customer(c for c in ext if c.period == i)
        whole_i = sum(sums.values())
        order = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append(
            ConcentrationPeriod(
                period=_label(w, i),
                start=at_hour(a),
                end=at_hour(b),
                recognized=money(whole_i),
                largest_customer=order[0][0] if order else None,
                largest_share=share(order[0][1], whole_i) if order else None,
                top_five_share=share(sum(v for _, v in order[:5]), whole_i) if order else None,
            )
        )
    return ConcentrationReport(
        start=at_hour(w.lo),
        end=at_hour(w.hi),
        step=w.step,
        as_of=at_hour(w.as_of),
        currency=currency,
        recognized=money(total),
        customers=len(ranked),
        largest_customer=top[0][0] if top else None,
        largest_share=share(top[0][1], total) if top else None,
        top_five_share=share(sum(v for _, v in top), total) if top else None,
        hhi=hhi.quantize(Decimal("0.1")) if hhi is not None else None,
        top_five=[
            CustomerShare(customer=k, recognized=money(v), share=share(v, total) or Decimal(0))
            for k, v in top
        ],
        periods=rows,
        chart=Chart(
            title="Share of external revenue, top five customers",
            kind="hbar",
            unit="share",
            labels=[k for k, _ in top] + (["others"] if len(ranked) > 5 else []),
            series=[
                ChartSeries(
                    name="share",
                    values=[share(v, total) or Decimal(0) for _, v in top]
                    + (
                        [share(sum(v for _, v in ranked[5:]), total) or Decimal(0)]
                        if len(ranked) > 5
                        else []
                    ),
                )
            ],
        ),
    )


def _by_customer(table: Iterable[Cell]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for c in table:
        out[c.contract.tenant] += c.cents
    return out


def revenue_per_mw(
    session: Session,
    w: Window,
    booked: list[obligations.Booked],
    currency: str,
    table: list[Cell] | None = None,
) -> RevenuePerMwReport:
    ext_contracts = [c for c in booked if not c.internal]
    if table is None:
        ext = cells(session, ext_contracts, w.periods, w.as_of)
    else:  # a contract's cells depend on its own terms, usage and tenant only
        ext = [c for c in table if not c.contract.internal]
    power = active_power(session, ext_contracts, w.periods, w.as_of)
    per_site: dict[str, int] = defaultdict(int)
    per_period = [0] * len(w.periods)
    for c in ext:
        per_site[c.site] += c.cents
        per_period[c.period] += c.cents
    total = sum(per_period)
    hours = max(0, min(w.hi, w.as_of) - w.lo)
    mw_hours = sum(power.mw_hours, Decimal(0))
    installed_mw_hours = sum((s.installed_mw * s.active_hours for s in power.sites), Decimal(0))
    rows = []
    for i, (a, b) in enumerate(w.periods):
        span = max(0, min(b, w.as_of) - a)
        rows.append(
            RevenuePerMwPeriod(
                period=_label(w, i),
                start=at_hour(a),
                end=at_hour(b),
                recognized=money(per_period[i]),
                active_mw=(power.mw_hours[i] / span).quantize(MW) if span else Decimal(0),
                revenue_per_mw_year=_per_mw_year(per_period[i], power.mw_hours[i]),
            )
        )
    return RevenuePerMwReport(
        start=at_hour(w.lo),
        end=at_hour(w.hi),
        step=w.step,
        as_of=at_hour(w.as_of),
        currency=currency,
        recognized=money(total),
        hours=hours,
        active_mw=(mw_hours / hours).quantize(MW) if hours else Decimal(0),
        active_mw_years=(mw_hours / HOURS_PER_YEAR).quantize(MW),
        revenue_per_mw_year=_per_mw_year(total, mw_hours),
        installed_mw=(installed_mw_hours / hours).quantize(MW) if hours else Decimal(0),
        revenue_per_installed_mw_year=_per_mw_year(total, installed_mw_hours),
        reference_per_mw_year=REFERENCE_PER_MW_YEAR,
        reference=REFERENCE,
        sites=[
            SiteMw(
                site=s.site,
                power_mw=s.power_mw,
                installed_mw=s.installed_mw.quantize(MW),
                active_hours=s.active_hours,
                recognized=money(per_site.get(s.site, 0)),
            )
            for s in power.sites
        ],
        periods=rows,
        chart=Chart(
            title=f"Revenue per active MW-year ({currency})",
            kind="bar",
            unit=currency,
            labels=[r.period for r in rows],
            series=[
                ChartSeries(
                    name="per MW-year",
                    values=[r.revenue_per_mw_year or Decimal(0) for r in rows],
                )
            ],
            reference=REFERENCE_PER_MW_YEAR,
            reference_label="CoreWeave 2025 (~$8.8M)",
        ),
    )


def _per_mw_year(cents: int, mw_hours: Decimal) -> Decimal | None:
    """Revenue per MW-year: cents x 8760 / MW-hours, as money (None with no active power)."""
    if not mw_hours:
        return None
    return money(int((Decimal(cents) * HOURS_PER_YEAR / mw_hours).to_integral_value()))
