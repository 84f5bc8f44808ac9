"""What the console's shell asks the API: who is signed in, and whether anything changed.

The console is static files (HTML, CSS, ES modules) that call the same `/v1` API as the CLI;
these endpoints are the only ones written for it: who is signed in, the state's version, and
the money view's five reports in one call (the same reports as `/v1/reports/{report}`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from neocloud.api.deps import SessionDep, require
from neocloud.auth.models import AuditEvent
from neocloud.auth.principal import Principal
from neocloud.auth.roles import ROLE_PERMISSIONS, Permission
from neocloud.billing import reports
from neocloud.billing.report_periods import Step
from neocloud.billing.report_schemas import MoneyViewReports
from neocloud.core.timeutil import utcnow
from neocloud.fleet.models import Node
from neocloud.tenants.models import Tenant

STATIC = Path(__file__).parent / "static"

router = APIRouter(tags=["console"])

AnyoneSignedIn = Annotated[Principal, Depends(require(Permission.CATALOG_READ))]
ReportReader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]


class MeOut(BaseModel):
    name: str
    role: str
    operator: bool
    tenant: str | None
    tenant_display_name: str | None
    permissions: list[str]


class VersionOut(BaseModel):
    version: str


@router.get("/me", response_model=MeOut)
def me(session: SessionDep, principal: AnyoneSignedIn) -> MeOut:
    """The signed-in token: its role, its tenant (for tenant roles) and what it may do."""
    tenant = session.get(Tenant, principal.tenant_id) if principal.tenant_id else None
    session.rollback()
    return MeOut(
        name=principal.name,
        role=principal.role.value,
        operator=principal.is_operator,
        tenant=tenant.name if tenant else None,
        tenant_display_name=tenant.display_name if tenant else None,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[principal.role]),
    )


@router.get("/console/version", response_model=VersionOut)
def version(session: SessionDep, _principal: AnyoneSignedIn) -> VersionOut:
    """A value that moves whenever state a view shows moves: every change is audited, and
    nodes' health also moves by the placement loop. The console polls it to refresh."""
    audit = session.scalar(sa.select(sa.func.max(AuditEvent.id)))
    nodes = session.scalar(sa.select(sa.func.max(Node.updated_at)))
    session.rollback()
    return VersionOut(version=f"{audit or 0}:{nodes.isoformat() if nodes else '-'}")


@router.get("/console/money", response_model=MoneyViewReports)
def money(
    session: SessionDep,
    actor: ReportReader,
    start: Annotated[datetime | None, Query(description="from (UTC; widened to the step)")] = None,
    end: Annotated[datetime | None, Query(description="until (UTC; widened to the step)")] = None,
    step: Annotated[
        Step | None, Query(description="revenue, revenue per MW and concentration by")
    ] = None,
    backlog_step: Annotated[Step | None, Query(description="backlog by")] = None,
    util_step: Annotated[Step | None, Query(description="utilization by")] = None,
    as_of: Annotated[
        datetime | None, Query(description="money is recognized before this instant (default now)")
    ] = None,
    currency: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "USD",
) -> MoneyViewReports:
    """The money view's reports in one call and one transaction: revenue, revenue-per-mw and
    concentration over [start, end) by `step`, backlog from `as_of` by `backlog_step`,
    utilization over [start, end) by `util_step` — each as `GET /v1/reports/{report}` with
    those parameters answers, the recognized revenue worked out once for the three."""
    with session.begin():
        return reports.money_view(
            session,
            actor=actor,
            start=start,
            end=end,
            step=step,
            backlog_step=backlog_step,
            util_step=util_step,
            as_of=as_of,
            currency=currency,
            now=utcnow(),
        )


def mount(app: FastAPI) -> None:
    """Serve the console at `/` (after every other route, so `/v1`, `/docs` and `/metrics`
    keep theirs)."""
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="console")
