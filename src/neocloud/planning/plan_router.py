"""/v1/plans: ask the planner for a plan — run in the background, with progress — and read
the runs, their reports and charts (plans:read / plans:write: operators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.planning import runs
from neocloud.planning.models import PlanRun, PlanStatus
from neocloud.planning.plan_schemas import (
    PlanCreate,
    PlanExamplesOut,
    PlanRunDetail,
    PlanRunOut,
)

router = APIRouter(tags=["planning"])
Reader = Annotated[Principal, Depends(require(P.PLANS_READ))]
Writer = Annotated[Principal, Depends(require(P.PLANS_WRITE))]
RunId = Annotated[int, Path(ge=1, le=2**62)]
PNG = {
    "responses": {
        "200": {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
    }
}


def _detail(row: PlanRun) -> PlanRunDetail:
    done = row.status == PlanStatus.SUCCEEDED
    return PlanRunDetail.model_validate(
        {
            **PlanRunOut.model_validate(row).model_dump(),
            "scenario": row.scenario,
            "compare": row.compare,
            "result": row.result if done else None,
            "charts": [f"/v1/plans/{row.id}/charts/{c}.png" for c in runs.CHARTS] if done else [],
        }
    )


@router.post("/plans", status_code=status.HTTP_202_ACCEPTED, response_model=PlanRunDetail)
def create_plan(
    body: PlanCreate, request: Request, response: Response, session: SessionDep, actor: Writer
) -> PlanRunDetail:
    """Check the scenario(s) now (422 with the line of what is wrong) and queue the run; a
    planner thread of an API process runs it. Follow `Location` for its progress."""
    with session.begin():
        row = runs.submit(
            session,
            actor=actor,
            scenario=body.scenario,
            compare=body.compare,
            runs=body.runs,
            seed=body.seed,
        )
        out = _detail(row)
    planner = getattr(request.app.state, "planner", None)
    if planner is not None:
        planner.wake()
    response.headers["Location"] = f"/v1/plans/{out.id}"
    return out


@router.get("/plans", response_model=PageOut[PlanRunOut])
def list_plans(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    status: Annotated[PlanStatus | None, Query(description="only runs in this state")] = None,
) -> PageOut[PlanRunOut]:
    with session.begin():
        found = runs.list_runs(session, actor=actor, page=page, status=status)
        items = [PlanRunOut.model_validate(r) for r in found.items]
    return PageOut(items=items, next_cursor=found.next_cursor)


@router.get("/plans/examples", response_model=PlanExamplesOut)
def plan_examples(actor: Reader) -> PlanExamplesOut:
    """The built-in scenarios (the story of docs/planning.md) with their YAML text, ready to
    be sent to POST /v1/plans as they are or edited, and the story's comparison."""
    return PlanExamplesOut.model_validate(runs.examples())


@router.get("/plans/{plan_id}", response_model=PlanRunDetail)
def get_plan(plan_id: RunId, session: SessionDep, actor: Reader) -> PlanRunDetail:
    """The run: status, progress and message while it works; the report when it is done."""
    with session.begin():
        return _detail(runs.get_run(session, actor=actor, run_id=plan_id))


@router.get("/plans/{plan_id}/charts/{chart}.png", openapi_extra=PNG, response_class=Response)
def get_plan_chart(
    plan_id: RunId,
    chart: Annotated[str, Path(max_length=63, json_schema_extra={"enum": list(runs.CHARTS)})],
    session: SessionDep,
    actor: Reader,
) -> Response:
    """A chart of a finished run: revenue, utilization, coverage (fan charts per quarter) or
    comparison (bars of the totals); 409 while the run is not done."""
    with session.begin():
        png = runs.chart(session, actor=actor, run_id=plan_id, name=chart)
    return Response(png, media_type="image/png")
