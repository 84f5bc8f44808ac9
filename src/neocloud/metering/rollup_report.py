"""Reading the hourly rollups: per contract x site x accelerator and hour or day, a page at a
time (keyset on bucket, contract, site, accelerator), scoped to the caller's tenant."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.models import Contract
from neocloud.core.errors import InvalidInput, NotFound
from neocloud.fleet.models import Accelerator, Site
from neocloud.metering.hourly import REASON_COLUMN
from neocloud.metering.ledgers import Step
from neocloud.metering.models import RollupHour, UsageRollup
from neocloud.tenants.models import Tenant

MAX_HOURS = 24 * 400
"""The longest range one request may ask for (about 13 months)."""
SIX = Decimal("0.000001")


def gpu_hours(gpu_seconds: int) -> Decimal:
    """GPU-seconds as GPU-hours, to six places (half-even)."""
    return (Decimal(gpu_seconds) / 3600).quantize(SIX, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class RollupRow:
    start: datetime
    end: datetime
    contract: str
    tenant: str
    site: str
    accelerator: str
    allocated_gpu_seconds: int
    measured_gpu_seconds: int
    billable_gpu_seconds: int
    excluded_gpu_seconds: dict[str, int]
    energy_wh: int
    closed: bool
    """Whether every hour of the bucket is closed (allocated and energy final)."""


Cursor = tuple[int, int, int, int]


def _encode(key: Cursor) -> str:
    text = "rollup:" + ".".join(str(k) for k in key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, rest = raw.partition(":")
        parts = [int(p) for p in rest.split(".")]
        if kind != "rollup" or len(parts) != 4:
            raise ValueError(raw)
        return parts[0], parts[1], parts[2], parts[3]
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "cursor: not valid; pass the next_cursor of a previous page",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc


def _range(
    start: datetime | None, end: datetime | None, step: Step, now: datetime
) -> tuple[int, int]:
    """[first hour, end hour) widened to whole buckets; default: the last day."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")
    per = step.seconds // 3600
    hi = hour_of(end - timedelta(microseconds=1)) + 1 if end else hour_of(now) + 1
    lo = hour_of(start) if start else hi - 24
    lo, hi = lo - lo % per, hi + (-hi) % per
    if hi <= lo:
        raise InvalidInput("end: must be after start")
    if hi - lo > MAX_HOURS:
        raise InvalidInput(f"start: at most {MAX_HOURS} hours in one request")
    return lo, hi


def read(
    session: Session,
    *,
    actor: Principal,
    start: datetime | None,
    end: datetime | None,
    step: Step,
    contract: str | None,
    site: str | None,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> tuple[int, int, list[RollupRow], str | None]:
    """The rollups of [start, end) by `step`; returns the hour range, a page of rows and the
    next page's cursor."""
    lo, hi = _range(start, end, step, now)
    per = step.seconds // 3600
    r = UsageRollup
    bucket = (r.hour // per).label("bucket") if per > 1 else r.hour.label("bucket")
    sums = [
        sa.func.sum(getattr(r, c)).label(c)
        for c in (
            "allocated_gpu_seconds",
            "measured_gpu_seconds",
            "billable_gpu_seconds",
            "energy_wh",
            *REASON_COLUMN.values(),
        )
    ]
    stmt = (
        sa.select(bucket, r.contract_id, r.site_id, r.accelerator_id, *sums)
        .join(Contract, Contract.id == r.contract_id)
        .where(r.hour >= lo, r.hour < hi)
        .group_by(bucket, r.contract_id, r.site_id, r.accelerator_id)
    )
    stmt = actor.scope(stmt, Contract.tenant_id)
    if contract is not None:
        found = session.scalar(
            actor.scope(sa.select(Contract.id), Contract.tenant_id).where(Contract.name == contract)
        )
        if found is None:
            raise NotFound(f"contract '{contract}' not found")
        stmt = stmt.where(r.contract_id == found)
    if site is not None:
        site_id = session.scalar(sa.select(Site.id).where(Site.name == site))
        if site_id is None:
            raise NotFound(f"site '{site}' not found")
        stmt = stmt.where(r.site_id == site_id)
    if cursor:
        after = _decode(cursor)
        stmt = stmt.having(
            sa.tuple_(bucket, r.contract_id, r.site_id, r.accelerator_id) > sa.tuple_(*after)
        )
    stmt = stmt.order_by(bucket, r.contract_id, r.site_id, r.accelerator_id).limit(limit + 1)
    got = session.execute(stmt).all()
    more = len(got) > limit
    got = got[:limit]
    names = _names(session, {int(g.contract_id) for g in got})
    closed = set(
        session.scalars(
            sa.select(RollupHour.hour).where(
                RollupHour.hour >= lo, RollupHour.hour < hi, RollupHour.stale.is_(False)
            )
        )
    )
    rows = []
    for g in got:
        first = int(g.bucket) * per
        contract_name, tenant = names["contract"][g.contract_id]
        rows.append(
            RollupRow(
                start=at_hour(first),
                end=at_hour(first + per),
                contract=contract_name,
                tenant=tenant,
                site=names["site"][g.site_id][0],
                accelerator=names["accelerator"][g.accelerator_id][0],
                allocated_gpu_seconds=int(g.allocated_gpu_seconds),
                measured_gpu_seconds=int(g.measured_gpu_seconds),
                billable_gpu_seconds=int(g.billable_gpu_seconds),
                excluded_gpu_seconds={
                    reason.value: int(getattr(g, column))
                    for reason, column in REASON_COLUMN.items()
                    if getattr(g, column)
                },
                energy_wh=int(g.energy_wh),
                closed=all(h in closed for h in range(first, first + per)),
            )
        )
    last = got[-1] if got else None
    next_cursor = (
        _encode((int(last.bucket), last.contract_id, last.site_id, last.accelerator_id))
        if more and last is not None
        else None
    )
    return lo, hi, rows, next_cursor


def _names(session: Session, contracts: set[int]) -> dict[str, dict[int, tuple[str, str]]]:
    """Contract id -> (name, tenant); site and accelerator id -> (name, "")."""
    out: dict[str, dict[int, tuple[str, str]]] = {"contract": {}, "site": {}, "accelerator": {}}
    if not contracts:
        return out
    for cid, name, tenant in session.execute(
        sa.select(Contract.id, Contract.name, Tenant.name)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .where(Contract.id.in_(contracts))
    ):
        out["contract"][cid] = (name, tenant)
    for sid, name in session.execute(sa.select(Site.id, Site.name)):
        out["site"][sid] = (name, "")
    for aid, name in session.execute(sa.select(Accelerator.id, Accelerator.name)):
        out["accelerator"][aid] = (name, "")
    return out
