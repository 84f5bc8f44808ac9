"""Tenants: the operator's own teams (internal) and its customers."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.db.base import Base, Timestamped, str_enum


class TenantKind(enum.StrEnum):
    INTERNAL = "internal"
    CUSTOMER = "customer"


class Tenant(Timestamped, Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[TenantKind] = mapped_column(str_enum(TenantKind))
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    contact_email: Mapped[str | None] = mapped_column(sa.String(320))
