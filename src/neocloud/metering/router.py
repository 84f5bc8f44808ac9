"""/v1/usage/events (ingest) and /v1/usage (the ledgers)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.core.errors import InvalidInput, NeocloudError
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.metering import adjustments, availability, events, ingest, ledgers
from neocloud.metering.models import ExclusionReason
from neocloud.metering.schemas import (
    AdjustmentIn,
    AdjustmentOut,
    AvailabilityHour,
    AvailabilityOut,
    IngestOut,
    LedgerOut,
    RejectOut,
    UsageOut,
)

router = APIRouter(tags=["metering"])
Writer = Annotated[Principal, Depends(require(P.USAGE_WRITE))]
Reader = Annotated[Principal, Depends(require(P.USAGE_READ))]
Adjuster = Annotated[Principal, Depends(require(P.USAGE_ADJUST))]
ContractReader = Annotated[Principal, Depends(require(P.CONTRACTS_READ))]


class PayloadTooLarge(NeocloudError):
    status = 413
    title = "Payload too large"


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "time", "data"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "source": {"type": "string", "minLength": 1, "maxLength": 200},
        "type": {"type": "string", "enum": list(events.TYPES)},
        "time": {"type": "string", "format": "date-time"},
        "data": {"type": "object"},
    },
}
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "maxItems": events.MAX_BATCH, "items": EVENT_SCHEMA}
            }
        },
    }
}


@router.post(
    "/usage/events",
    response_model=IngestOut,
    openapi_extra=BODY,
    responses={413: {"description": "more than 10,000 events, or a body over 32 MiB"}},
)
async def post_events(request: Request, session: SessionDep, actor: Writer) -> IngestOut:
    """Ingest a batch of up to 10,000 usage (`neocloud.usage.v1`) and telemetry
    (`neocloud.telemetry.v1`) events, idempotent on (tenant, source, id): resent events are
    counted as duplicates, never twice. Each bad event is rejected with its reason; the good
    ones are kept. See docs/metering.md."""
    body = await request.body()
    try:
        raws = events.split_batch(body)
    except events.BatchError as exc:
        if exc.too_large:
            raise PayloadTooLarge(str(exc)) from exc
        raise InvalidInput(str(exc)) from exc
    window = ingest.window_from_env()

    def work() -> ingest.IngestResult:
        return ingest.ingest_batch(session, actor=actor, raws=raws, now=utcnow(), window=window)

    result = await run_in_threadpool(retrying, session, work)
    return IngestOut(
        received=result.received,
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=[RejectOut(index=r.index, id=r.id, reason=r.reason) for r in result.rejected],
    )


@router.get("/usage", response_model=UsageOut)
def get_usage(
    session: SessionDep,
    actor: Reader,
    contract: Annotated[str | None, Query(max_length=63)] = None,
    start: datetime | None = None,
    end: datetime | None = None,
    step: ledgers.Step = ledgers.Step.HOUR,
) -> UsageOut:
    """Measured, billable and excluded (by reason) GPU-seconds per contract and hour or day
    (default: the last day; tenants: their own contracts)."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")
    with session.begin():
        lo, hi, rows = ledgers.ledgers(
            session, actor=actor, contract=contract, start=start, end=end, step=step, now=utcnow()
        )
    return UsageOut(
        step=step.value,
        start=lo,
        end=hi,
        items=[
            LedgerOut(
                contract=r.contract,
                tenant=r.tenant,
                start=r.start,
                end=r.end,
                measured_gpu_seconds=r.bucket.measured,
                billable_gpu_seconds=r.bucket.billable,
                excluded_gpu_seconds=dict(sorted(r.bucket.excluded.items())),
            )
            for r in rows
        ],
    )


@router.post("/usage/exclusions", status_code=status.HTTP_201_CREATED, response_model=AdjustmentOut)
def record_exclusion(body: AdjustmentIn, session: SessionDep, actor: Adjuster) -> AdjustmentOut:
    """Record that a contract's usage (on one node, or all) in [start, end) is not billed,
    for `maintenance` or an `operator-fault`: carved out of what is stored now, and of what
    arrives later. Only what is still billable is taken."""
    for name, value in (("start", body.start), ("end", body.end)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")

    def work() -> adjustments.Recorded:
        return adjustments.record(
            session,
            actor=actor,
            contract=body.contract,
            node=body.node,
            reason=ExclusionReason(body.reason),
            start=body.start,
            end=body.end,
            note=body.note,
            now=utcnow(),
        )

    done = retrying(session, work)
    return AdjustmentOut(
        id=done.id,
        contract=done.contract,
        node=done.node,
        reason=done.reason.value,
        start=done.start,
        end=done.end,
        intervals=done.intervals,
        excluded_gpu_seconds=done.gpu_seconds,
    )


@router.get("/contracts/{contract}/availability", response_model=AvailabilityOut)
def get_availability(
    contract: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: ContractReader,
    start: datetime | None = None,
    end: datetime | None = None,
) -> AvailabilityOut:
    """Hourly availability (usable / contracted GPUs, from placement's degradations) over
    [start, end), on whole hours (default: the last 24 hours up to the end of this one): the
    input to SLA credits."""
    if end is None:
        end = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if start is None:
        start = end - timedelta(hours=24)
    with session.begin():
        name, hours, overall = availability.contract_availability(
            session, actor=actor, name=contract, start=start, end=end
        )
        return AvailabilityOut(
            contract=name,
            start=start,
            end=end,
            availability=overall,
            hours=[AvailabilityHour(**vars(h)) for h in hours],
        )
