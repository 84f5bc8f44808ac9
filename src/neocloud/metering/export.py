"""Usage export in the style of FOCUS (the FinOps Open Cost and Usage Specification, 1.x):
one row per contract x node x hour (or day) x charge, so that a tenant's FinOps tools read
our usage like a cloud bill.

Each (contract, node, bucket) gives a row of billable GPU-hours and one row per exclusion
reason, so billable + excluded = measured is visible in the file. Quantities are kept to the
GPU-second in integer `x_` columns; `ConsumedQuantity` is GPU-hours (seconds / 3600, a
decimal rounded half-even to 9 places, from which the seconds come back exactly). Costs stay
empty until billing prices usage. See docs/metering.md#export.

Rows are made as the query's sums stream by (`yield_per`): nothing holds a whole month.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.core.errors import InvalidInput, NotFound
from neocloud.metering.events import epoch
from neocloud.metering.export_query import usage_statement
from neocloud.metering.ledgers import Step
from neocloud.metering.store import at
from neocloud.tenants.models import Tenant

Kind = Literal["string", "timestamp", "decimal", "integer"]
QUANTUM = Decimal("1e-9")
"""GPU-hours to 9 places: a GPU-second is 1/3600 GPU-hour, which no finite decimal holds."""
MAX_DAYS = 366
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
YIELD_PER = 5_000
OPERATOR_ENV = "NEOCLOUD_OPERATOR_NAME"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    doc: str


def _c(name: str, kind: Kind, doc: str) -> Column:
    return Column(name, kind, doc)


COLUMNS: tuple[Column, ...] = (
    _c("AvailabilityZone", "string", "the node's fabric"),
    _c("BilledCost", "decimal", "empty until billing prices usage"),
    _c("BillingAccountId", "string", "the tenant's name"),
    _c("BillingAccountName", "string", "the tenant's display name"),
    _c("BillingAccountType", "string", "`Customer` or `Internal` (the tenant's kind)"),
    _c("BillingCurrency", "string", "the contract's currency"),
    _c("BillingPeriodEnd", "timestamp", "the first instant of the next calendar month (UTC)"),
    _c("BillingPeriodStart", "timestamp", "the calendar month's first instant (UTC)"),
    _c("ChargeCategory", "string", "`Usage`"),
    _c("ChargeClass", "string", "empty (no corrections)"),
    _c("ChargeDescription", "string", "what the row is, in words"),
    _c("ChargeFrequency", "string", "`Usage-Based`"),
    _c("ChargePeriodEnd", "timestamp", "the hour's (or day's) end, exclusive"),
    _c("ChargePeriodStart", "timestamp", "the hour's (or day's) start"),
    _c("ConsumedQuantity", "decimal", "GPU-hours of the row: GPU-seconds / 3600, 9 places"),
    _c("ConsumedUnit", "string", "`GPU-Hours`"),
    _c("ContractedCost", "decimal", "empty until billing prices usage"),
    _c("ContractedUnitPrice", "decimal", "empty until billing prices usage"),
    _c("EffectiveCost", "decimal", "empty until billing prices usage"),
    _c("InvoiceIssuerName", "string", "the operator (`NEOCLOUD_OPERATOR_NAME`, `neocloud`)"),
    _c("ListCost", "decimal", "empty until billing prices usage"),
    _c("ListUnitPrice", "decimal", "empty until billing prices usage"),
    _c("PricingCategory", "string", "by contract type: Committed, Standard, Dynamic, Other"),
    _c("PricingQuantity", "decimal", "billable GPU-hours: ConsumedQuantity, 0 on excluded rows"),
    _c("PricingUnit", "string", "`GPU-Hours`"),
    _c("ProviderName", "string", "the operator"),
    _c("PublisherName", "string", "the operator"),
    _c("RegionId", "string", "the site's name"),
    _c("RegionName", "string", "the site's display name (or name)"),
    _c("ResourceId", "string", "the node's name"),
    _c("ResourceName", "string", "the node's name"),
    _c("ResourceType", "string", "`GPU node`"),
    _c("ServiceCategory", "string", "`Compute`"),
    _c("ServiceName", "string", "`neocloud GPU`"),
    _c("SkuId", "string", "the accelerator model (`H100`, `GB200`, ...)"),
    _c("SkuPriceId", "string", "empty until billing prices usage"),
    _c("SubAccountId", "string", "the contract's name"),
    _c("SubAccountName", "string", "the contract's name"),
    _c("x_ContractType", "string", "reserved, dedicated-site, on-demand, spot or internal"),
    _c("x_MeasuredGpuSeconds", "integer", "GPU-seconds of the row (= billable + excluded)"),
    _c("x_BillableGpuSeconds", "integer", "GPU-seconds billed (0 on excluded rows)"),
    _c("x_ExcludedGpuSeconds", "integer", "GPU-seconds not billed (0 on billable rows)"),
    _c("x_ExclusionReason", "string", "why not billed; empty on billable rows"),
)
NAMES = tuple(c.name for c in COLUMNS)
PRICING_CATEGORY = {
    "reserved": "Committed",
    "dedicated-site": "Committed",
    "on-demand": "Standard",
    "spot": "Dynamic",
    "internal": "Other",
}


# --- the period --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    label: str
    """For file names: `2026-11`, or `20261103T10Z-20261105T00Z`."""


MONTH = re.compile(r"(\d{4})-(\d{2})")


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def resolve_period(
    *,
    period: str | None,
    start: datetime | None,
    end: datetime | None,
    granularity: Step,
    now: datetime,
) -> Period:
    """The calendar month `period` (YYYY-MM), or [start, end) widened to whole hours or days,
    or (given nothing) this month. A month in the future is fine: it is empty."""
    if period is not None and (start is not None or end is not None):
        raise InvalidInput("period: give either period or start and end, not both")
    if period is not None:
        found = MONTH.fullmatch(period)
        if not found or not 1 <= int(found[2]) <= 12:
            raise InvalidInput(f"period: '{period}' is not a month (YYYY-MM)")
        month = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
        if not EARLIEST <= month < LATEST:
            raise InvalidInput("period: must lie between 1970-01 and 8999-12")
        return Period(month, next_month(month), period)
    if start is None and end is None:
        month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Period(month, next_month(month), f"{month:%Y-%m}")
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise InvalidInput(f"{missing}: give start and end together (or a period)")
    lo_at, hi_at = _utc(start, "start"), _utc(end, "end")
    size = granularity.seconds
    lo_s, hi_s = epoch(lo_at), epoch(hi_at)
    lo, hi = lo_s - lo_s % size, hi_s + (-hi_s) % size
    if hi <= lo:
        raise InvalidInput("end: must be after start")
    if hi - lo > MAX_DAYS * 86_400:
        raise InvalidInput(f"end: at most {MAX_DAYS} days after start")
    s, e = at(lo), at(hi)
    return Period(s, e, f"{s:%Y%m%dT%HZ}-{e:%Y%m%dT%HZ}")


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"{name}: out of range") from exc
    if not EARLIEST <= value < LATEST:
        raise InvalidInput(f"{name}: must lie between 1970 and 8999")
    return value


# --- rows: the pure core -----------------------------------------------------------------


class Sum(NamedTuple):
    """One sum of the export query: GPU-seconds of a contract on a node in a bucket, as
    measured (`reason` None) or excluded for `reason`, with the names the rows show."""

    bucket: int
    reason: str | None
    gpu_seconds: int
    tenant: str
    tenant_name: str
    tenant_kind: str
    contract: str
    contract_type: str
    currency: str
    node: str
    site: str
    site_name: str | None
    fabric: str
    accelerator: str


def gpu_hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / 3600).quantize(QUANTUM, ROUND_HALF_EVEN)


def focus_rows(sums: Iterable[Sum], *, size: int, operator: str) -> Iterator[tuple[Any, ...]]:
    """FOCUS rows (values in `NAMES` order) from sums ordered so that each (contract, node,
    bucket) is contiguous: the billable row, then a row per exclusion reason."""
    for (_, _, bucket), group in itertools.groupby(sums, lambda s: (s.contract, s.node, s.bucket)):
        first, *rest = group
        measured, excluded = 0, dict[str, int]()
        for s in (first, *rest):
            if s.reason is None:
                measured += s.gpu_seconds
            else:
                excluded[s.reason] = excluded.get(s.reason, 0) + s.gpu_seconds
        static = _static(first, bucket, size, operator)
        billable = measured - sum(excluded.values())
        if billable > 0:
            yield _row(static, first, billable, None)
        for reason in sorted(excluded):
            if excluded[reason] > 0:
                yield _row(static, first, excluded[reason], reason)


def _static(s: Sum, bucket: int, size: int, operator: str) -> dict[str, Any]:
    start = at(bucket)
    month = start.replace(day=1, hour=0)
    return {
        "AvailabilityZone": s.fabric,
        "BilledCost": None,
        "BillingAccountId": s.tenant,
        "BillingAccountName": s.tenant_name,
        "BillingAccountType": str(s.tenant_kind).capitalize(),
        "BillingCurrency": s.currency,
        "BillingPeriodEnd": next_month(month),
        "BillingPeriodStart": month,
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": start + timedelta(seconds=size),
        "ChargePeriodStart": start,
        "ConsumedUnit": "GPU-Hours",
        "ContractedCost": None,
        "ContractedUnitPrice": None,
        "EffectiveCost": None,
        "InvoiceIssuerName": operator,
        "ListCost": None,
        "ListUnitPrice": None,
        "PricingCategory": PRICING_CATEGORY.get(str(s.contract_type), "Other"),
        "PricingUnit": "GPU-Hours",
        "ProviderName": operator,
        "PublisherName": operator,
        "RegionId": s.site,
        "RegionName": s.site_name or s.site,
        "ResourceId": s.node,
        "ResourceName": s.node,
        "ResourceType": "GPU node",
        "ServiceCategory": "Compute",
        "ServiceName": "neocloud GPU",
        "SkuId": s.accelerator,
        "SkuPriceId": None,
        "SubAccountId": s.contract,
        "SubAccountName": s.contract,
        "x_ContractType": str(s.contract_type),
    }


def _row(static: dict[str, Any], s: Sum, seconds: int, reason: str | None) -> tuple[Any, ...]:
    quantity = gpu_hours(seconds)
    what = f"{s.accelerator} GPU-hours on {s.node} under {s.contract}"
    row = {
        **static,
        "ChargeDescription": what if reason is None else f"{what}, not billed ({reason})",
        "ConsumedQuantity": quantity,
        "PricingQuantity": quantity if reason is None else Decimal(0).quantize(QUANTUM),
        "x_MeasuredGpuSeconds": seconds,
        "x_BillableGpuSeconds": seconds if reason is None else 0,
        "x_ExcludedGpuSeconds": 0 if reason is None else seconds,
        "x_ExclusionReason": reason,
    }
    return tuple(row[name] for name in NAMES)


# --- rows from the database --------------------------------------------------------------


def operator_name() -> str:
    """Who issues the bill (ProviderName, PublisherName, InvoiceIssuerName)."""
    return os.environ.get(OPERATOR_ENV, "").strip() or "neocloud"


def export_rows(
    session: Session,
    *,
    tenant_id: int | None,
    period: Period,
    granularity: Step,
    operator: str,
) -> Iterator[tuple[Any, ...]]:
    """The FOCUS rows of one tenant (or all, `tenant_id` None) over the period, streamed from
    the database `YIELD_PER` sums at a time (a server-side cursor on PostgreSQL). The caller
    holds the transaction open while it iterates."""
    size = granularity.seconds
    stmt = usage_statement(
        tenant_id=tenant_id, lo=epoch(period.start), hi=epoch(period.end), size=size
    )
    result = session.execute(stmt, execution_options={"yield_per": YIELD_PER})
    sums = (Sum(*row) for row in result)
    yield from focus_rows(sums, size=size, operator=operator)


def export_tenant(session: Session, *, actor: Principal, name: str | None) -> Tenant | None:
    """Whose usage: the tenant named (a tenant token: only its own; another tenant reads as
    unknown, 404), the caller's own tenant by default, or everyone's (None) for operators."""
    if name is None:
        if actor.tenant_id is None:
            return None
        return session.get_one(Tenant, actor.tenant_id)
    found = session.scalar(actor.scope(sa.select(Tenant).where(Tenant.name == name), Tenant.id))
    if found is None:
        raise NotFound(f"tenant '{name}' not found")
    return found
