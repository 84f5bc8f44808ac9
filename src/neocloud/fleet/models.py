"""What the operator owns: accelerators, sites, topology (fabric > block > node), deliveries."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.db.base import Base, Quantity, Timestamped, str_enum


class SiteState(enum.StrEnum):
    PLANNED = "planned"
    BUILDING = "building"
    LIVE = "live"
    DRAINING = "draining"
    RETIRED = "retired"


class NodeState(enum.StrEnum):
    BURN_IN = "burn-in"
    AVAILABLE = "available"
    ALLOCATED = "allocated"
    DRAINING = "draining"
    FAILED = "failed"
    REPAIR = "repair"
    RETIRED = "retired"


class DeliveryState(enum.StrEnum):
    SCHEDULED = "scheduled"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Accelerator(Timestamped, Base):
    __tablename__ = "accelerators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    vendor: Mapped[str] = mapped_column(sa.String(63))
    memory_gb: Mapped[Decimal] = mapped_column(Quantity)
    tdp_w: Mapped[int] = mapped_column(sa.Integer)
    bf16_tflops: Mapped[Decimal] = mapped_column(Quantity)
    builtin: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class Site(Timestamped, Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    location: Mapped[str] = mapped_column(sa.String(200))
    power_mw: Mapped[Decimal] = mapped_column(Quantity)
    pue: Mapped[Decimal] = mapped_column(sa.Numeric(5, 3))
    state: Mapped[SiteState] = mapped_column(str_enum(SiteState))
    planned_on: Mapped[date | None] = mapped_column(sa.Date)
    building_on: Mapped[date | None] = mapped_column(sa.Date)
    live_on: Mapped[date | None] = mapped_column(sa.Date)
    draining_on: Mapped[date | None] = mapped_column(sa.Date)
    retired_on: Mapped[date | None] = mapped_column(sa.Date)
    spare_pct: Mapped[Decimal] = mapped_column(
        sa.Numeric(5, 2), default=Decimal(0), server_default="0"
    )
    """Share of each pool's nodes in service kept as hot spares for healing: placement never
    gives them to a new contract, and the capacity calendar does not sell them."""
    supply_generation: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    """Incremented by every change to what the site can supply (nodes, their states,
    deliveries, power, dates), so the capacity calendar's caches know when they are stale."""


class Fabric(Timestamped, Base):
    """A network fabric (a scale-out domain); the unit a training job wants to stay inside."""

    __tablename__ = "fabrics"
    __table_args__ = (sa.UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(63))


class Block(Timestamped, Base):
    """An NVLink or leaf-switch domain inside a fabric (for example one NVL72 rack)."""

    __tablename__ = "blocks"
    __table_args__ = (sa.UniqueConstraint("fabric_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fabric_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fabrics.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(63))


class Node(Timestamped, Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    fabric_id: Mapped[int] = mapped_column(sa.ForeignKey("fabrics.id"), index=True)
    block_id: Mapped[int] = mapped_column(sa.ForeignKey("blocks.id"), index=True)
    accelerator_id: Mapped[int] = mapped_column(sa.ForeignKey("accelerators.id"))
    gpus: Mapped[int] = mapped_column(sa.Integer)
    power_kw: Mapped[Decimal] = mapped_column(Quantity)
    state: Mapped[NodeState] = mapped_column(str_enum(NodeState), index=True)


class Delivery(Timestamped, Base):
    """A batch of nodes still to arrive, with the date the supplier promised."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    fabric: Mapped[str | None] = mapped_column(sa.String(63))
    accelerator_id: Mapped[int] = mapped_column(sa.ForeignKey("accelerators.id"))
    nodes: Mapped[int] = mapped_column(sa.Integer)
    gpus_per_node: Mapped[int] = mapped_column(sa.Integer)
    power_kw_per_node: Mapped[Decimal] = mapped_column(Quantity)
    expected_on: Mapped[date] = mapped_column(sa.Date)
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState))
    supplier: Mapped[str | None] = mapped_column(sa.String(120))
