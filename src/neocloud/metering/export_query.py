"""The one query behind the usage export: the ledgers cut at hour (or day) boundaries and
summed per contract, node, bucket and reason in the database.

Usage arrives as short intervals (an engine may report every 10 s), so a month of a large
tenant is hundreds of millions of rows: they are split and summed where they are stored, and
only the sums (one per contract x node x bucket x reason) travel to Python, ordered so that
each (contract, node, bucket) is contiguous and can be turned into rows as it streams by.

An interval lies in the bucket of its start unless it crosses a boundary; an interval is at
most a day long (`MAX_INTERVAL_S`), so a crossing one reaches at most 24 buckets further,
which a join with a small table of offsets 1..24 produces, for the crossing intervals only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from neocloud.contracts.models import Contract
from neocloud.fleet.models import Accelerator, Fabric, Node, Site
from neocloud.metering.events import MAX_INTERVAL_S
from neocloud.metering.models import UsageExclusion, UsageInterval
from neocloud.metering.store import at
from neocloud.tenants.models import Tenant


class epoch_seconds(FunctionElement[int]):  # noqa: N801 (an SQL function's name)
    """Whole seconds since 1970 of a stored UTC time, in SQL (each dialect its own way)."""

    type = sa.BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps the naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _least(a: Any, b: Any) -> sa.ColumnElement[int]:
    return sa.case((a < b, a), else_=b)


def usage_statement(*, tenant_id: int | None, lo: int, hi: int, size: int) -> sa.Select[Any]:
    """GPU-seconds in [lo, hi) (epoch seconds, whole buckets of `size` seconds) per contract,
    node, bucket and reason (NULL: measured), with the names the export shows, ordered by
    tenant, contract, node and bucket. `tenant_id`: only that tenant's contracts."""
    lo_at, hi_at, earliest = at(lo), at(hi), at(lo - MAX_INTERVAL_S)
    ui, ue = UsageInterval, UsageExclusion
    measured = sa.select(
        ui.contract_id.label("contract_id"),
        ui.node_id.label("node_id"),
        ui.gpus.label("gpus"),
        epoch_seconds(ui.start_at).label("s"),
        epoch_seconds(ui.end_at).label("e"),
        sa.cast(sa.null(), sa.String(32)).label("reason"),
    ).where(ui.start_at < hi_at, ui.start_at >= earliest, ui.end_at > lo_at)
    excluded = (
        sa.select(
            ue.contract_id,
            ui.node_id,
            ui.gpus,
            epoch_seconds(ue.start_at),
            epoch_seconds(ue.end_at),
            sa.cast(ue.reason, sa.String(32)),
        )
        .join(ui, ui.id == ue.interval_id)
        .where(ue.start_at < hi_at, ue.start_at >= earliest, ue.end_at > lo_at)
    )
    if tenant_id is not None:
        own = sa.select(Contract.id).where(Contract.tenant_id == tenant_id)
        measured = measured.where(ui.contract_id.in_(own))
        excluded = excluded.where(ue.contract_id.in_(own))
    st = sa.union_all(measured, excluded).cte("stretches").c

    first_bucket = st.s // size * size
    first = sa.select(
        st.contract_id,
        st.node_id,
        st.reason,
        first_bucket.label("bucket"),
        (st.gpus * (_least(st.e, first_bucket + size) - st.s)).label("gpu_seconds"),
    )
    offsets = sa.union_all(
        *(sa.select(sa.literal(k, sa.BigInteger).label("k")) for k in range(1, 86_400 // size + 1))
    ).subquery("offsets")
    later_bucket = (st.s // size + offsets.c.k) * size
    later = (
        sa.select(
            st.contract_id,
            st.node_id,
            st.reason,
            later_bucket.label("bucket"),
            (st.gpus * (_least(st.e, later_bucket + size) - later_bucket)).label("gpu_seconds"),
        )
        .join(offsets, later_bucket < st.e)
        .where(st.e > (st.s // size + 1) * size)
    )
    pieces = sa.union_all(first, later).subquery("pieces")
    p = pieces.c
    usage = (
        sa.select(
            p.contract_id,
            p.node_id,
            p.bucket,
            p.reason,
            sa.cast(sa.func.sum(p.gpu_seconds), sa.BigInteger).label("gpu_seconds"),
        )
        .where(p.bucket >= lo, p.bucket < hi)
        .group_by(p.contract_id, p.node_id, p.bucket, p.reason)
        .subquery("usage")
    )
    u = usage.c
    return (
        sa.select(
            u.bucket,
            u.reason,
            u.gpu_seconds,
            Tenant.name,
            Tenant.display_name,
            Tenant.kind,
            Contract.name,
            Contract.type,
            Contract.currency,
            Node.name,
            Site.name,
            Site.display_name,
            Fabric.name,
            Accelerator.name,
        )
        .join(Contract, Contract.id == u.contract_id)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .join(Node, Node.id == u.node_id)
        .join(Site, Site.id == Node.site_id)
        .join(Fabric, Fabric.id == Node.fabric_id)
        .join(Accelerator, Accelerator.id == Node.accelerator_id)
        .order_by(Tenant.name, Contract.name, Node.name, u.bucket)
    )
