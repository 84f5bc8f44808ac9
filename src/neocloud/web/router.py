"""What the console's shell asks the API: who is signed in, and whether anything changed.

The console is static files (HTML, CSS, ES modules) that call the same `/v1` API as the CLI;
these two endpoints are the only ones written for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from neocloud.api.deps import SessionDep, require
from neocloud.auth.models import AuditEvent
from neocloud.auth.principal import Principal
from neocloud.auth.roles import ROLE_PERMISSIONS, Permission
from neocloud.fleet.models import Node
from neocloud.tenants.models import Tenant

STATIC = Path(__file__).parent / "static"

router = APIRouter(tags=["console"])

AnyoneSignedIn = Annotated[Principal, Depends(require(Permission.CATALOG_READ))]


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


def mount(app: FastAPI) -> None:
    """Serve the console at `/` (after every other route, so `/v1`, `/docs` and `/metrics`
    keep theirs)."""
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="console")
