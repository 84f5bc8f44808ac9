"""What a period's run reads, in a handful of queries whatever the number of contracts:
the contracts in force, their claims, their usage summed per contract in the database (with
the hour-by-hour overage above what they held), availability for the few that were degraded,
and what earlier invoices carried (prepayment, spend)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from neocloud.billing.charges import CHARGES, Carry, ChargeKind, Held, Terms, Usage
from neocloud.billing.credits import Availability
from neocloud.billing.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from neocloud.billing.months import Period
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.models import Contract, ContractState
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Accelerator
from neocloud.metering.availability import Stretch, hourly
from neocloud.placement.models import Degradation


def among(session: Session, column: Any, values: Iterable[int]) -> sa.ColumnElement[bool]:
    """`column IN values`: one array parameter on PostgreSQL however many values there are
    (a run may name 10,000 contracts), a list on SQLite."""
    wanted = sorted(set(values))
    if session.get_bind().dialect.name == "postgresql":
        found: sa.ColumnElement[bool] = column == sa.any_(
            sa.bindparam(None, wanted, type_=postgresql.ARRAY(sa.Integer))
        )
        return found
    result: sa.ColumnElement[bool] = column.in_(wanted)
    return result


@dataclass(frozen=True)
class Billed:
    """A contract to rate: its row's identity, its tenant and its terms."""

    id: int
    tenant_id: int
    terms: Terms


def contracts(session: Session, period: Period, tenant_ids: Iterable[int] | None) -> list[Billed]:
    """Booked and cancelled contracts whose term meets the period (a cancelled one is billed
    up to the hour its claims were cut). Columns, not ORM objects: a run may read 10,000."""
    c = Contract
    stmt = (
        sa.select(
            c.id,
            c.tenant_id,
            c.name,
            c.type,
            c.price_model,
            c.price,
            c.start_at,
            c.end_at,
            Accelerator.name,
            c.currency,
            c.gpus,
            c.mw,
            c.take_or_pay,
            c.prepayment_pct,
            c.commitment,
            c.sla_tier,
            c.state,
            c.cancelled_at,
        )
        .outerjoin(Accelerator, Accelerator.id == c.accelerator_id)
        .where(
            c.state.in_([ContractState.BOOKED, ContractState.CANCELLED]),
            c.start_at < period.end,
            c.end_at > period.start,
        )
        .order_by(c.id)
    )
    if tenant_ids is not None:
        stmt = stmt.where(among(session, c.tenant_id, tenant_ids))
    out = []
    for r in session.execute(stmt):
        start_h, end_h = hour_of(r.start_at), hour_of(r.end_at)
        if r.state is ContractState.CANCELLED and r.cancelled_at is not None:
            end_h = max(start_h, min(end_h, _ceil_hour(as_utc(r.cancelled_at))))
        terms = Terms(
            contract=r.name,
            type=r.type,
            price_model=r.price_model,
            price=Decimal(r.price),
            start_h=start_h,
            end_h=end_h,
            accelerator=r[8],
            currency=r.currency,
            gpus=r.gpus,
            mw=None if r.mw is None else Decimal(r.mw),
            take_or_pay=r.take_or_pay,
            prepayment_pct=Decimal(r.prepayment_pct or 0),
            commitment=None if r.commitment is None else Decimal(r.commitment),
            sla_tier=r.sla_tier,
        )
        out.append(Billed(r.id, r.tenant_id, terms))
    return out


def claims(session: Session, ids: list[int]) -> dict[int, list[Held]]:
    """Every claim of the contracts, over their whole terms (the committed value needs it)."""
    out: dict[int, list[Held]] = defaultdict(list)
    for cid, a, b, gpus in session.execute(
        sa.select(
            CapacityClaim.contract_id,
            CapacityClaim.start_h,
            CapacityClaim.end_h,
            CapacityClaim.gpus,
        ).where(among(session, CapacityClaim.contract_id, ids))
    ):
        out[cid].append(Held(a, b, gpus))
    return out


TOTALS_SQL = sa.text(
    """
    SELECT contract_id, SUM(billable_gpu_seconds), SUM(measured_gpu_seconds),
           MAX(billable_gpu_seconds),
           CASE WHEN MIN(site_id) = MAX(site_id) AND MIN(accelerator_id) = MAX(accelerator_id)
                THEN 1 ELSE 0 END,
           MIN(CASE WHEN billable_gpu_seconds > 0 THEN hour END),
           MAX(CASE WHEN billable_gpu_seconds > 0 THEN hour END)
    FROM usage_rollups
    WHERE hour >= :lo AND hour < :hi
    GROUP BY contract_id
    """
)
"""Usage per contract over [lo, hi), summed from the hourly rollups in one scan (no DISTINCT,
so PostgreSQL aggregates it in parallel); with the largest row, which is the busiest hour's
billable GPU-seconds when the contract ran at one site on one accelerator."""

OVERAGE_SQL = sa.text(
    """
    WITH r AS (
        SELECT contract_id, hour, SUM(billable_gpu_seconds) AS b
        FROM usage_rollups
        WHERE hour >= :lo AND hour < :hi AND contract_id IN :ids
        GROUP BY contract_id, hour
    ), h AS (
        SELECT r.contract_id, r.hour, r.b, COALESCE(SUM(c.gpus), 0) AS held
        FROM r LEFT JOIN capacity_claims c
          ON c.contract_id = r.contract_id AND c.start_h <= r.hour AND c.end_h > r.hour
        GROUP BY r.contract_id, r.hour, r.b
    )
    SELECT contract_id, SUM(CASE WHEN b > held * 3600 THEN b - held * 3600 ELSE 0 END)
    FROM h GROUP BY contract_id
    """
).bindparams(sa.bindparam("ids", expanding=True))
"""The overage, hour by hour: billable GPU-seconds above the GPUs the claims held then."""


def usage(session: Session, period: Period, held: dict[int, list[Held]]) -> dict[int, Usage]:
    """Each contract's usage of the period. The overage (which needs every hour against the
    claims) is worked out only for the contracts holding capacity whose busiest hour could
    exceed the least they held in the period — few or none, since metering bills a contract
    only on nodes it holds."""
    bounds = {"lo": period.start_h, "hi": period.end_h}
    totals = {int(r[0]): r for r in session.execute(TOTALS_SQL, bounds)}
    suspects = [
        cid
        for cid, r in totals.items()
        if cid in held and (not r[4] or int(r[3] or 0) > least_held(held[cid], period) * 3600)
    ]
    over: dict[int, int] = {}
    if suspects:
        over = {
            int(cid): int(v or 0)
            for cid, v in session.execute(OVERAGE_SQL, {**bounds, "ids": suspects})
        }
    return {
        cid: Usage(
            billable_gpu_seconds=int(b or 0),
            overage_gpu_seconds=over.get(cid, 0),
            measured_gpu_seconds=int(m or 0),
            first_hour=None if first is None else int(first),
            last_hour=None if last is None else int(last),
        )
        for cid, (_, b, m, _, _, first, last) in totals.items()
    }


def least_held(held: list[Held], period: Period) -> int:
    """The fewest GPUs the claims hold at any hour of the period."""
    edges = sorted(
        {period.start_h}
        | {x.start_h for x in held if period.start_h < x.start_h < period.end_h}
        | {x.end_h for x in held if period.start_h < x.end_h < period.end_h}
    )
    return min(sum(x.gpus for x in held if x.start_h <= h < x.end_h) for h in edges)


def availability(
    session: Session,
    period: Period,
    billed: list[Billed],
    held: dict[int, list[Held]],
    now: datetime,
) -> dict[int, Availability]:
    """The period's availability of the contracts with an SLA that were degraded in it
    (metering's hourly figures); the others were whole and earn no credit."""
    promised = {b.id for b in billed if b.terms.sla_tier in ("standard", "premium", "critical")}
    if not promised:
        return {}
    stretches: dict[int, list[Stretch]] = defaultdict(list)
    for d in session.scalars(
        sa.select(Degradation).where(
            Degradation.contract_id.in_(sorted(promised)),
            Degradation.started_at < period.end,
            sa.or_(Degradation.ended_at.is_(None), Degradation.ended_at > period.start),
        )
    ):
        stretches[d.contract_id].append(
            Stretch(d.started_at, d.ended_at, d.contracted_gpus, d.usable_gpus)
        )
    out = {}
    end = min(period.end_h, hour_of(now) + 1)
    for cid, found in stretches.items():
        contracted: dict[int, int] = defaultdict(int)
        for x in held.get(cid, []):
            for h in range(max(x.start_h, period.start_h), min(x.end_h, period.end_h)):
                contracted[h] += x.gpus
        hours = hourly(contracted, found, period.start_h, max(end, period.start_h), now)
        whole = [(hour_of(h.start), h.contracted_gpus, h.availability) for h in hours]
        whole += [(h, contracted.get(h, 0), Decimal(1)) for h in range(end, period.end_h)]
        out[cid] = Availability.from_hours(whole)
    return out


def carries(session: Session, period: Period, ids: list[int]) -> dict[int, Carry]:
    """What invoices of earlier periods (not void) billed each contract: prepayment,
    prepayment drawn, and charges toward a commitment."""
    if not ids:
        return {}
    sums: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for cid, kind, amount in session.execute(
        sa.select(InvoiceLine.contract_id, InvoiceLine.kind, sa.func.sum(InvoiceLine.amount))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.status != InvoiceStatus.VOID,
            Invoice.kind != DocumentKind.CREDIT_NOTE,
            Invoice.period < period.label,
            among(session, InvoiceLine.contract_id, ids),
        )
        .group_by(InvoiceLine.contract_id, InvoiceLine.kind)
    ):
        if cid is not None:
            sums[cid][kind] += Decimal(amount)
    spent_kinds = {k.value for k in CHARGES} | {ChargeKind.ADJUSTMENT.value}
    return {
        cid: Carry(
            prepaid=s[ChargeKind.PREPAYMENT.value],
            drawn=-s[ChargeKind.PREPAYMENT_APPLIED.value],
            spent=sum((v for k, v in s.items() if k in spent_kinds), Decimal(0)),
        )
        for cid, s in sums.items()
    }


def _ceil_hour(value: datetime) -> int:
    h = hour_of(value)
    return h if at_hour(h) == value else h + 1
