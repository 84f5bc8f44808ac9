"""API shapes for tenants."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from neocloud.core.names import Slug
from neocloud.tenants.models import TenantKind


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: str = Field(min_length=1, max_length=200)
    kind: TenantKind = TenantKind.CUSTOMER
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    contact_email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    contact_email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str
    kind: TenantKind
    currency: str
    contact_email: str | None
    created_at: datetime
    updated_at: datetime
