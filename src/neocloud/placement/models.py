"""What placement stores: which node holds which contract (and which are hot spares), and
when contracts ran short of the GPUs they bought."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from neocloud.db.base import Base, UTCDateTime


class Allocation(Base):
    """A node held by a contract (or kept as a hot spare) from `since` until `until`.

    Rows are never rewritten: a node changing hands closes its row (`until`, `ended_by`) and
    opens a new one, so the history of every node and contract is kept. At most one open row
    per node (a partial unique index): a node belongs to at most one contract at a time.
    """

    __tablename__ = "allocations"
    __table_args__ = (
        sa.Index(
            "uq_allocations_open_node",
            "node_id",
            unique=True,
            postgresql_where=sa.text("until IS NULL"),
            sqlite_where=sa.text("until IS NULL"),
        ),
        sa.CheckConstraint("kind IN ('contract', 'spare')", name="kind"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    node_id: Mapped[int] = mapped_column(sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    contract_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str] = mapped_column(sa.String(32))
    """Why the node came: placed, grown, healed, spare."""
    ended_by: Mapped[str | None] = mapped_column(sa.String(32))
    """Why it went: ended, shrunk, failed, moved, unspared, drained."""


class Degradation(Base):
    """A stretch of time during which a contract had fewer usable GPUs than it bought.

    Opened when a reconcile leaves the contract short, closed (`ended_at`) when it is whole
    again; a change in the shortfall closes the row and opens another. Billing's SLA credits
    and metering's hourly availability read these.
    """

    __tablename__ = "degradations"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contracted_gpus: Mapped[int] = mapped_column(sa.Integer)
    usable_gpus: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.String(200))


class SpotLease(Base):
    """A spot contract running on a node nobody else holds, until it is preempted.

    When the node is needed (a contract gets it, or it becomes a spare) the lease is given
    notice: `notice_at` is set and `ends_at` is notice_at + the spot contract's notice period;
    the lease ends then (`ended_at` = `ends_at`, `end_reason` says why), never later. A lease
    also ends at once when its node fails or its contract ends. At most one running lease per
    node (a partial unique index).

    A lease on an idle node of a `lendable` contract is a loan: `lent_by_contract_id` names
    that contract, which keeps its allocation of the node throughout (a node is still held by
    one contract only); the loan gets notice when the owner needs the node back.
    """

    __tablename__ = "spot_leases"
    __table_args__ = (
        sa.Index(
            "uq_spot_leases_running_node",
            "node_id",
            unique=True,
            postgresql_where=sa.text("ended_at IS NULL"),
            sqlite_where=sa.text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[int] = mapped_column(sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    lent_by_contract_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contracts.id", ondelete="SET NULL"), index=True
    )
    """The owner whose idle node this is (null: a node nobody held)."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    end_reason: Mapped[str | None] = mapped_column(sa.String(200))
    preempted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    """Whether the lease ended because the capacity was taken back (after notice)."""
