"""API shapes for tokens and audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from neocloud.auth.roles import Role


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["ci-deployer"])
    role: Role
    tenant: str | None = Field(default=None, description="Tenant name; required for tenant roles")
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    tenant_id: int | None
    prefix: str = Field(description="The first characters of the secret, to recognise it")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown once; store it now.")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    object_type: str
    object_id: str
    tenant_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
