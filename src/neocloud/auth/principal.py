"""Who is calling: the identity a request acts as, derived from its bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select

from neocloud.auth.roles import Permission, Role, allows
from neocloud.core.errors import Forbidden, NotFound

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Principal:
    token_id: int | None
    name: str
    role: Role
    tenant_id: int | None

    @property
    def is_operator(self) -> bool:
        return not self.role.is_tenant_role

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    def demand(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(f"role '{self.role}' may not {permission.value.replace(':', ' ')}")

    def scope(self, stmt: S, tenant_column: Any) -> S:
        """Restrict a query to the caller's tenant when the caller is a tenant."""
        if self.tenant_id is None:
            return stmt
        return stmt.where(tenant_column == self.tenant_id)

    def check_tenant(self, tenant_id: int | None, what: str) -> None:
        """Hide another tenant's object as if it did not exist (no existence leak)."""
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise NotFound(f"{what} not found")


SYSTEM = Principal(token_id=None, name="system", role=Role.ADMIN, tenant_id=None)
"""The identity of server-side commands (demo loading, `neocloud tokens create`)."""
