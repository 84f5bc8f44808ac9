"""How a contract reads: its effective state, its value, its API shape and its history entry."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.capacity.models import CapacityClaim, CapacityFloor
from neocloud.capacity.planner import Unit
from neocloud.capacity.timeline import HOURS_PER_MONTH, at_hour
from neocloud.contracts.models import Contract, ContractRevision, ContractState, PriceModel
from neocloud.contracts.schemas import ClaimOut, ContractOut, FloorOut
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant

CENT = Decimal("0.01")
RECORDED = "neocloud.contract_out"
"""Key of a contract's `InstanceState.info`: the shape its last snapshot recorded."""
MICRO = Decimal("0.000001")  # the scale money is stored at
MILLI = Decimal("0.001")


def effective_state(c: Contract, now: datetime | None = None) -> ContractState:
    """A booked contract is `active` during its term and `ended` after it."""
    if c.state is not ContractState.BOOKED:
        return c.state
    now = now or utcnow()
    if as_utc(c.end_at) <= now:
        return ContractState.ENDED
    if as_utc(c.start_at) <= now:
        return ContractState.ACTIVE
    return ContractState.BOOKED


def contract_value(c: Contract) -> Decimal:
    hours = Decimal((as_utc(c.end_at) - as_utc(c.start_at)).total_seconds() / 3600)
    months = hours / HOURS_PER_MONTH
    if c.price_model is PriceModel.PER_GPU_HOUR:
        value = Decimal(c.gpus or 0) * hours * c.price
    elif c.price_model is PriceModel.PER_MW_MONTH:
        value = Decimal(c.mw or 0) * months * c.price
    else:
        value = months * c.price
    return value.quantize(CENT)


def contract_out(session: Session, c: Contract) -> ContractOut:
    """The API shape of a contract. Right after `record_revision` in the same transaction it
    is the one the revision recorded (nothing has changed since), read once more for free."""
    recorded = sa.inspect(c).info.pop(RECORDED, None)
    if (
        recorded is not None
        and recorded[0] is session.get_transaction()
        and recorded[1] == c.revision
        and not session.is_modified(c)
    ):
        out: ContractOut = recorded[2]
        return out
    return contracts_out(session, [c])[0]


def contracts_out(session: Session, rows: list[Contract]) -> list[ContractOut]:
    """API shapes for several contracts, with three queries in all (no N+1)."""
    ids = [c.id for c in rows]
    names: dict[int, str] = {}
    accs: dict[int, str] = {}
    tenants: dict[int, str] = {}
    labels = sa.union_all(
        sa.select(sa.literal("site"), Site.id, Site.name),
        sa.select(sa.literal("accelerator"), Accelerator.id, Accelerator.name),
        sa.select(sa.literal("tenant"), Tenant.id, Tenant.name).where(
            Tenant.id.in_({c.tenant_id for c in rows})
        ),
    )
    for kind, key, label in session.execute(labels):
        {"site": names, "accelerator": accs, "tenant": tenants}[kind][key] = label
    claims: dict[int, list[ClaimOut]] = defaultdict(list)
    floors: dict[int, list[FloorOut]] = defaultdict(list)
    if ids:
        k = CapacityClaim
        for cid, sid, acc, fabric, g, a, b, excl in session.execute(
            sa.select(
                k.contract_id,
                k.site_id,
                k.accelerator_id,
                k.fabric,
                k.gpus,
                k.start_h,
                k.end_h,
                k.exclusive,
            )
            .where(k.contract_id.in_(ids))
            .order_by(k.contract_id, k.start_h, k.site_id, k.fabric)
        ):
            claims[cid].append(
                ClaimOut(
                    site=names[sid],
                    accelerator=accs[acc],
                    fabric=fabric,
                    gpus=g,
                    start=at_hour(a),
                    end=at_hour(b),
                    exclusive=excl,
                )
            )
        f = CapacityFloor
        for cid, sid, acc, fg, share, a, b in session.execute(
            sa.select(
                f.contract_id, f.site_id, f.accelerator_id, f.gpus, f.share, f.start_h, f.end_h
            )
            .where(f.contract_id.in_(ids))
            .order_by(f.contract_id, f.start_h)
        ):
            floors[cid].append(
                FloorOut(
                    site=names[sid],
                    accelerator=accs[acc],
                    gpus=fg,
                    share=share,
                    start=at_hour(a),
                    end=at_hour(b),
                )
            )
    now = utcnow()
    return [
        shape(
            c,
            tenant=tenants[c.tenant_id],
            accelerator=accs.get(c.accelerator_id) if c.accelerator_id else None,
            site=names.get(c.site_id) if c.site_id else None,
            claims=claims.get(c.id, []),
            floors=floors.get(c.id, []),
            now=now,
        )
        for c in rows
    ]


def shape(
    c: Contract,
    *,
    tenant: str,
    accelerator: str | None,
    site: str | None,
    claims: list[ClaimOut],
    floors: list[FloorOut],
    now: datetime | None = None,
) -> ContractOut:
    """The API shape of a contract whose names, claims and floors the caller has at hand
    (claims ordered by start, site id and fabric; floors by start)."""
    return ContractOut(
        id=c.id,
        name=c.name,
        tenant=tenant,
        tenant_id=c.tenant_id,
        type=c.type,
        state=effective_state(c, now),
        accelerator=accelerator,
        gpus=c.gpus,
        mw=_scaled(c.mw, MILLI),
        site=site,
        sites=c.sites,
        same_fabric=c.same_fabric,
        unit=Unit(c.unit),
        start=as_utc(c.start_at),
        end=as_utc(c.end_at),
        price_model=c.price_model,
        price=c.price.quantize(MICRO),
        currency=c.currency,
        commitment=_scaled(c.commitment, MICRO),
        take_or_pay=c.take_or_pay,
        prepayment_pct=Decimal(c.prepayment_pct).quantize(CENT),
        sla_tier=c.sla_tier,
        lendable=c.lendable,
        notice_minutes=c.notice_minutes,
        contract_value=contract_value(c),
        revision=c.revision,
        quote_id=c.quote_id,
        booked_at=c.booked_at,
        cancelled_at=c.cancelled_at,
        notes=c.notes,
        claims=claims,
        floors=floors,
    )


def _scaled(value: Decimal | None, scale: Decimal) -> Decimal | None:
    """A figure as the database stores it, so a contract reads the same before and after."""
    return None if value is None else Decimal(value).quantize(scale)


def snapshot(session: Session, c: Contract) -> dict[str, Any]:
    """The contract as it stands, for the history and the audit log (JSON-safe)."""
    session.flush()
    out = contracts_out(session, [c])[0]
    sa.inspect(c).info[RECORDED] = (session.get_transaction(), c.revision, out)
    return snapshot_of(c, out)


def snapshot_of(c: Contract, out: ContractOut) -> dict[str, Any]:
    """A history/audit snapshot from the contract's API shape."""
    snap = out.model_dump(mode="json")
    snap.pop("state", None)
    snap["stored_state"] = c.state.value
    return snap


def record_revision(
    session: Session, actor: Principal, c: Contract, action: str, reason: str | None
) -> dict[str, Any]:
    snap = snapshot(session, c)
    session.add(
        ContractRevision(
            contract_id=c.id,
            revision=c.revision,
            action=action,
            reason=reason,
            actor=actor.name,
            snapshot=snap,
        )
    )
    return snap
