"""/v1/tenants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.tenants import service
from neocloud.tenants.models import TenantKind
from neocloud.tenants.schemas import TenantCreate, TenantOut, TenantUpdate

router = APIRouter(tags=["tenants"])


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantOut)
def create_tenant(
    body: TenantCreate,
    session: SessionDep,
    actor: Annotated[Principal, Depends(require(P.TENANTS_WRITE))],
) -> TenantOut:
    with session.begin():
        return TenantOut.model_validate(
            service.create_tenant(session, actor=actor, **body.model_dump())
        )


@router.get("/tenants", response_model=PageOut[TenantOut])
def list_tenants(
    session: SessionDep,
    page: PageDep,
    actor: Annotated[Principal, Depends(require(P.TENANTS_READ))],
    kind: Annotated[TenantKind | None, Query()] = None,
) -> PageOut[TenantOut]:
    with session.begin():
        result = service.list_tenants(session, actor=actor, page=page, kind=kind)
        return PageOut(
            items=[TenantOut.model_validate(t) for t in result.items],
            next_cursor=result.next_cursor,
        )


@router.get("/tenants/{tenant}", response_model=TenantOut)
def get_tenant(
    tenant: str, session: SessionDep, actor: Annotated[Principal, Depends(require(P.TENANTS_READ))]
) -> TenantOut:
    with session.begin():
        return TenantOut.model_validate(service.get_tenant(session, actor=actor, name=tenant))


@router.patch("/tenants/{tenant}", response_model=TenantOut)
def update_tenant(
    tenant: str,
    body: TenantUpdate,
    session: SessionDep,
    actor: Annotated[Principal, Depends(require(P.TENANTS_WRITE))],
) -> TenantOut:
    with session.begin():
        changes = body.model_dump(exclude_unset=True)
        return TenantOut.model_validate(
            service.update_tenant(session, actor=actor, name=tenant, changes=changes)
        )
