"""/v1/capacity (JSON or CSV) and /v1/capacity/conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.capacity import service
from neocloud.capacity.schemas import CapacityOut, ConflictOut, Group, Step

router = APIRouter(tags=["capacity"])
Reader = Annotated[Principal, Depends(require(P.CAPACITY_READ))]
CSV_BODY = {
    "responses": {
        "200": {"content": {"text/csv": {"schema": {"type": "string"}}}},
    }
}


@router.get("/capacity", response_model=CapacityOut, openapi_extra=CSV_BODY)
def get_capacity(
    request: Request,
    session: SessionDep,
    actor: Reader,
    start: Annotated[datetime, Query(description="from (UTC)")],
    end: Annotated[datetime, Query(description="until (UTC)")],
    step: Step = Step.DAY,
    site: Annotated[str | None, Query(max_length=63)] = None,
    accelerator: Annotated[str | None, Query(max_length=63)] = None,
    group: Group = Group.POOL,
    format: Literal["json", "csv"] | None = None,
) -> CapacityOut | Response:
    """Supply, committed and free GPUs per pool (site x accelerator x fabric) per step.

    Per bucket: the least supply, the most committed and the least free. `group=accelerator`
    sums each site's pools of an accelerator first (a row per site x accelerator, fabric
    `*`). `format=csv` (or `Accept: text/csv`) returns one row per pool and bucket.
    """
    with session.begin():
        report = service.capacity(
            session,
            actor=actor,
            start=start,
            end=end,
            step=step,
            site=site,
            accelerator=accelerator,
            group=group,
        )
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(service.capacity_csv(report), media_type="text/csv")
    return report


@router.get("/capacity/conflicts", response_model=list[ConflictOut])
def get_conflicts(
    session: SessionDep,
    actor: Reader,
    start: Annotated[datetime | None, Query(description="from (default: now)")] = None,
    end: Annotated[datetime | None, Query()] = None,
) -> list[ConflictOut]:
    """Where supply no longer covers commitments (a late delivery, retired nodes, a power
    cut): which contracts are short, by how much, from when. Nothing is dropped."""
    with session.begin():
        return service.conflicts(session, actor=actor, start=start, end=end)
