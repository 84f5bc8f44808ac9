"""/v1/reports: the operator's reports as JSON or as a PNG chart (reports:read; tenants have
no access: the reports are about the operator's whole business)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.billing import charts, reports
from neocloud.billing.report_periods import Step
from neocloud.billing.report_schemas import AnyReport, Report, ReportInfo, ReportName
from neocloud.core.timeutil import utcnow

router = APIRouter(tags=["reports"])
Reader = Annotated[Principal, Depends(require(P.REPORTS_READ))]
PNG_BODY = {
    "responses": {
        "200": {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
    }
}


@router.get("/reports", response_model=list[ReportInfo])
def list_reports(actor: Reader) -> list[ReportInfo]:
    """The reports there are, with the steps each is given by."""
    return reports.catalog()


@router.get("/reports/{report}", response_model=Report, openapi_extra=PNG_BODY)
def get_report(
    request: Request,
    session: SessionDep,
    actor: Reader,
    report: Annotated[
        str,
        Path(
            max_length=63,
            description="see GET /v1/reports (an unknown name is 404 listing them)",
            json_schema_extra={"enum": [r.value for r in ReportName]},
        ),
    ],
    start: Annotated[datetime | None, Query(description="from (UTC; widened to the step)")] = None,
    end: Annotated[datetime | None, Query(description="until (UTC; widened to the step)")] = None,
    step: Annotated[Step | None, Query(description="the period to report by")] = None,
    as_of: Annotated[
        datetime | None, Query(description="money is recognized before this instant (default now)")
    ] = None,
    currency: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "USD",
    format: Literal["json", "png"] | None = None,
) -> Response | AnyReport:
    """One report (see docs/reports.md): JSON, or its chart with `format=png` (or
    `Accept: image/png`)."""
    with session.begin():
        out = reports.build(
            session,
            actor=actor,
            name=report,
            start=start,
            end=end,
            step=step,
            as_of=as_of,
            currency=currency,
            now=utcnow(),
        )
    wants_png = format == "png" or (
        format is None and "image/png" in request.headers.get("accept", "")
    )
    if wants_png:
        return Response(charts.png(out.chart), media_type="image/png")
    return out
