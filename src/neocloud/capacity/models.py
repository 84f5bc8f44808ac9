"""What the calendar stores: claims (capacity held by a contract), floors, per-site ledgers.

Claims keep their times as whole hours since the Unix epoch (`start_h`, `end_h`), the unit
the calendar computes in, so that loading a site's commitments needs no datetime parsing.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.db.base import Base


class CapacityLedger(Base):
    """One row per site: the lock bookings take, a generation that any change of the site's
    commitments increments (so caches of the calendar know when they are stale), and a count
    of removals (so they know whether the change was additions only)."""

    __tablename__ = "capacity_ledgers"

    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    removals: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    """How many times claims of the site were deleted (an amendment or a cancellation
    replaces a contract's claims): a cached book that saw the same count can be brought up
    to date from the claims added since, without reading the site whole."""


class CapacityClaim(Base):
    """GPUs of one pool (site x accelerator x fabric) held by a contract over [start, end)."""

    __tablename__ = "capacity_claims"
    __table_args__ = (
        sa.CheckConstraint("gpus > 0", name="gpus_positive"),
        sa.CheckConstraint("end_h > start_h", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    accelerator_id: Mapped[int] = mapped_column(sa.ForeignKey("accelerators.id"))
    fabric: Mapped[str] = mapped_column(sa.String(63))
    start_h: Mapped[int] = mapped_column(sa.Integer)
    end_h: Mapped[int] = mapped_column(sa.Integer)
    gpus: Mapped[int] = mapped_column(sa.Integer)
    internal: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    exclusive: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class CapacityFloor(Base):
    """An internal floor: GPUs (or a share) of an accelerator at a site that sales cannot take."""

    __tablename__ = "capacity_floors"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    accelerator_id: Mapped[int] = mapped_column(sa.ForeignKey("accelerators.id"))
    start_h: Mapped[int] = mapped_column(sa.Integer)
    end_h: Mapped[int] = mapped_column(sa.Integer)
    gpus: Mapped[int | None] = mapped_column(sa.Integer)
    share: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 4))
