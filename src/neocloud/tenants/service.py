"""Tenant use cases. A tenant token sees exactly one tenant: its own."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.tenants.models import Tenant, TenantKind


def _view(t: Tenant) -> dict[str, Any]:
    return {
        "name": t.name,
        "display_name": t.display_name,
        "kind": t.kind.value,
        "currency": t.currency,
        "contact_email": t.contact_email,
    }


def create_tenant(
    session: Session,
    *,
    actor: Principal,
    name: str,
    display_name: str,
    kind: TenantKind = TenantKind.CUSTOMER,
    currency: str = "USD",
    contact_email: str | None = None,
) -> Tenant:
    actor.demand(Permission.TENANTS_WRITE)
    if actor.tenant_id is not None:
        raise NotFound("tenants cannot be created with a tenant token")
    if session.scalar(sa.select(Tenant.id).where(Tenant.name == name)) is not None:
        raise Conflict(
            f"a tenant named '{name}' already exists",
            errors=[{"loc": ["name"], "msg": "duplicate"}],
        )
    tenant = Tenant(
        name=name,
        display_name=display_name,
        kind=kind,
        currency=currency,
        contact_email=contact_email,
    )
    session.add(tenant)
    session.flush()
    audit.record(
        session,
        actor,
        "tenant.create",
        "tenant",
        tenant.name,
        tenant_id=tenant.id,
        after=_view(tenant),
    )
    return tenant


def list_tenants(
    session: Session, *, actor: Principal, page: PageRequest, kind: TenantKind | None = None
) -> Page[Tenant]:
    actor.demand(Permission.TENANTS_READ)
    stmt = actor.scope(sa.select(Tenant), Tenant.id)
    if kind is not None:
        stmt = stmt.where(Tenant.kind == kind)
    return paginate(session, stmt, Tenant.id, page)


def get_tenant(session: Session, *, actor: Principal, name: str) -> Tenant:
    actor.demand(Permission.TENANTS_READ)
    tenant = session.scalar(sa.select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise NotFound(f"tenant '{name}' not found")
    actor.check_tenant(tenant.id, f"tenant '{name}'")
    return tenant


def update_tenant(
    session: Session, *, actor: Principal, name: str, changes: dict[str, Any]
) -> Tenant:
    actor.demand(Permission.TENANTS_WRITE)
    tenant = get_tenant(session, actor=actor, name=name)
    for required in ("display_name", "currency"):
        if required in changes and changes[required] is None:
            raise InvalidInput(
                f"{required} cannot be null", errors=[{"loc": [required], "msg": "null"}]
            )
    before = _view(tenant)
    for field, value in changes.items():
        setattr(tenant, field, value)
    if _view(tenant) != before:
        audit.record(
            session,
            actor,
            "tenant.update",
            "tenant",
            tenant.name,
            tenant_id=tenant.id,
            before=before,
            after=_view(tenant),
        )
    return tenant
