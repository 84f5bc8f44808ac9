"""/v1/usage/rollups: the hourly rollups per contract x site x accelerator, closing hours
and rebuilding a range from the ledgers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from neocloud.api.deps import SessionDep, require
from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.capacity.timeline import at_hour, hour_of, is_whole_hour
from neocloud.core.errors import InvalidInput
from neocloud.core.paging import MAX_LIMIT
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.metering import rollup_report, rollups
from neocloud.metering.ledgers import Step
from neocloud.metering.schemas import (
    RollupCloseOut,
    RollupOut,
    RollupRangeIn,
    RollupRebuildOut,
    RollupsOut,
)

router = APIRouter(tags=["metering"])
Reader = Annotated[Principal, Depends(require(P.USAGE_READ))]
Adjuster = Annotated[Principal, Depends(require(P.USAGE_ADJUST))]
KWH = Decimal("0.001")


def _out(r: rollup_report.RollupRow) -> RollupOut:
    hours = rollup_report.gpu_hours
    return RollupOut(
        start=r.start,
        end=r.end,
        contract=r.contract,
        tenant=r.tenant,
        site=r.site,
        accelerator=r.accelerator,
        allocated_gpu_seconds=r.allocated_gpu_seconds,
        measured_gpu_seconds=r.measured_gpu_seconds,
        billable_gpu_seconds=r.billable_gpu_seconds,
        excluded_gpu_seconds=r.excluded_gpu_seconds,
        allocated_gpu_hours=hours(r.allocated_gpu_seconds),
        used_gpu_hours=hours(r.measured_gpu_seconds),
        billable_gpu_hours=hours(r.billable_gpu_seconds),
        excluded_gpu_hours={k: hours(v) for k, v in r.excluded_gpu_seconds.items()},
        energy_kwh=Decimal(r.energy_wh) * KWH,
        closed=r.closed,
    )


@router.get("/usage/rollups", response_model=RollupsOut)
def get_rollups(
    session: SessionDep,
    actor: Reader,
    start: datetime | None = None,
    end: datetime | None = None,
    step: Step = Step.HOUR,
    contract: Annotated[str | None, Query(max_length=63)] = None,
    site: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RollupsOut:
    """Per contract x site x accelerator and hour (or day): allocated, used, billable and
    excluded GPU-hours, and energy (default: the last 24 hours; tenants: their own)."""
    with session.begin():
        lo, hi, rows, next_cursor = rollup_report.read(
            session,
            actor=actor,
            start=start,
            end=end,
            step=step,
            contract=contract,
            site=site,
            limit=limit,
            cursor=cursor,
            now=utcnow(),
        )
    return RollupsOut(
        step=step.value,
        start=at_hour(lo),
        end=at_hour(hi),
        items=[_out(r) for r in rows],
        next_cursor=next_cursor,
    )


@router.post("/usage/rollups/close", response_model=RollupCloseOut)
def close_rollups(session: SessionDep, actor: Adjuster) -> RollupCloseOut:
    """Close the hours that are due now (each API process also does so in the background):
    allocated GPU-seconds and energy are worked out and set."""
    hours = retrying(session, lambda: rollups.close_due(session, utcnow()))
    return RollupCloseOut(hours_closed=[at_hour(h) for h in hours])


@router.post("/usage/rollups/rebuild", response_model=RollupRebuildOut)
def rebuild_rollups(body: RollupRangeIn, session: SessionDep, actor: Adjuster) -> RollupRebuildOut:
    """Work a range of hours out again from the ledgers (usage) and placement's record
    (allocated, energy), replacing the running sums. For repairs; the sums kept at ingest
    are the same when nothing went wrong."""
    for name, value in (("start", body.start), ("end", body.end)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")
        if not is_whole_hour(value):
            raise InvalidInput(f"{name}: must be a whole hour")
    lo, hi = hour_of(body.start), hour_of(body.end)
    if hi <= lo:
        raise InvalidInput("end: must be after start")
    if hi - lo > rollup_report.MAX_HOURS:
        raise InvalidInput(f"end: at most {rollup_report.MAX_HOURS} hours in one request")

    def work() -> tuple[int, int]:
        now = utcnow()
        written = rollups.rebuild(session, lo, hi)
        closable = [h for h in range(lo, hi) if h < hour_of(now)]
        rollups.close(session, closable, now)
        audit.record(
            session,
            actor,
            "usage.rollups.rebuild",
            "usage",
            f"{body.start.isoformat()}/{body.end.isoformat()}",
            after={"rows": written, "hours_closed": len(closable)},
        )
        return written, len(closable)

    written, closed = retrying(session, work)
    return RollupRebuildOut(start=at_hour(lo), end=at_hour(hi), rows=written, hours_closed=closed)
