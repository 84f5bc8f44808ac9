"""Token use cases: authenticate, create, list, revoke, bootstrap the first admin."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit, tokens
from neocloud.auth.cache import TOKENS
from neocloud.auth.models import ApiToken, AuditEvent
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission, Role
from neocloud.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.core.timeutil import utcnow
from neocloud.tenants.models import Tenant


def authenticate(session: Session, raw_token: str) -> Principal:
    return authenticate_row(session, raw_token)[0]


def authenticate_row(session: Session, raw_token: str) -> tuple[Principal, ApiToken]:
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == tokens.digest(raw_token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        raise Unauthorized("the token is unknown, revoked or expired")
    principal = Principal(token_id=row.id, name=row.name, role=row.role, tenant_id=row.tenant_id)
    return principal, row


def _token_view(row: ApiToken) -> dict[str, object]:
    return {
        "name": row.name,
        "role": row.role.value,
        "tenant_id": row.tenant_id,
        "prefix": row.prefix,
    }


def create_token(
    session: Session,
    *,
    actor: Principal,
    name: str,
    role: Role,
    tenant: str | None = None,
    expires_at: datetime | None = None,
    raw_token: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret (shown once, never stored)."""
    actor.demand(Permission.TOKENS_WRITE)
    tenant_row: Tenant | None = None
    if tenant is not None:
        tenant_row = session.scalar(sa.select(Tenant).where(Tenant.name == tenant))
        if tenant_row is None:
            raise InvalidInput(
                f"tenant '{tenant}' does not exist",
                errors=[{"loc": ["tenant"], "msg": "unknown tenant"}],
            )
    if role.is_tenant_role and tenant_row is None:
        raise InvalidInput(
            f"role '{role}' needs a tenant",
            errors=[{"loc": ["tenant"], "msg": "required for tenant roles"}],
        )
    if not role.is_tenant_role and tenant_row is not None:
        raise InvalidInput(
            f"role '{role}' is an operator role and takes no tenant",
            errors=[{"loc": ["tenant"], "msg": "not allowed for operator roles"}],
        )
    if actor.tenant_id is not None:
        if tenant_row is None or tenant_row.id != actor.tenant_id:
            raise Forbidden("a tenant token can only create tokens for its own tenant")
        if role is not Role.TENANT_ADMIN and role is not Role.TENANT_VIEWER:
            raise Forbidden("a tenant token can only create tenant roles")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput(
            "expires_at must be in the future",
            errors=[{"loc": ["expires_at"], "msg": "in the past"}],
        )
    secret = raw_token or tokens.generate()
    row = ApiToken(
        name=name,
        token_hash=tokens.digest(secret),
        prefix=tokens.display_prefix(secret),
        role=role,
        tenant_id=tenant_row.id if tenant_row else None,
        created_by_id=actor.token_id,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        "token",
        row.id,
        tenant_id=row.tenant_id,
        after=_token_view(row),
    )
    return row, secret


def list_tokens(session: Session, *, actor: Principal, page: PageRequest) -> Page[ApiToken]:
    actor.demand(Permission.TOKENS_READ)
    stmt = actor.scope(sa.select(ApiToken), ApiToken.tenant_id)
    return paginate(session, stmt, ApiToken.id, page)


def get_token(session: Session, *, actor: Principal, token_id: int) -> ApiToken:
    actor.demand(Permission.TOKENS_READ)
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} not found")
    actor.check_tenant(row.tenant_id, f"token {token_id}")
    return row


def revoke_token(session: Session, *, actor: Principal, token_id: int) -> ApiToken:
    actor.demand(Permission.TOKENS_WRITE)
    row = get_token(session, actor=actor, token_id=token_id)
    if row.revoked_at is None:
        before = _token_view(row) | {"revoked_at": None}
        row.revoked_at = utcnow()
        TOKENS.forget(row.token_hash)
        audit.record(
            session,
            actor,
            "token.revoke",
            "token",
            row.id,
            tenant_id=row.tenant_id,
            before=before,
            after=_token_view(row) | {"revoked_at": row.revoked_at.isoformat()},
        )
    return row


def has_any_token(session: Session) -> bool:
    return session.scalar(sa.select(sa.exists().where(ApiToken.id > 0))) or False


def bootstrap_admin(session: Session, raw_token: str) -> bool:
    """Make `raw_token` the first admin's token if no token exists yet; True if it did."""
    from neocloud.auth.principal import SYSTEM

    if has_any_token(session):
        return False
    create_token(
        session, actor=SYSTEM, name="bootstrap-admin", role=Role.ADMIN, raw_token=raw_token
    )
    return True


def list_audit_events(
    session: Session, *, actor: Principal, page: PageRequest, action: str | None = None
) -> Page[AuditEvent]:
    actor.demand(Permission.AUDIT_READ)
    stmt = actor.scope(sa.select(AuditEvent), AuditEvent.tenant_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return paginate(session, stmt, AuditEvent.id, page)
