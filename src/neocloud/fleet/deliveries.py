"""Hardware deliveries: batches of nodes still to arrive, and their slips."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, encode_cursor
from neocloud.fleet import generation
from neocloud.fleet.models import Accelerator, Delivery, DeliveryState, Site
from neocloud.fleet.schemas import DeliveryOut


def _select() -> sa.Select[*tuple[Any, ...]]:
    return (
        sa.select(Delivery, Site.name, Accelerator.name)
        .join(Site, Delivery.site_id == Site.id)
        .join(Accelerator, Delivery.accelerator_id == Accelerator.id)
    )


def _out(d: Delivery, site: str, acc: str) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        name=d.name,
        site=site,
        fabric=d.fabric,
        accelerator=acc,
        nodes=d.nodes,
        gpus_per_node=d.gpus_per_node,
        gpus=d.nodes * d.gpus_per_node,
        power_kw_per_node=d.power_kw_per_node,
        expected_on=d.expected_on,
        state=d.state,
        supplier=d.supplier,
    )


def _view(d: DeliveryOut) -> dict[str, Any]:
    return d.model_dump(mode="json", exclude={"id"})


def list_deliveries(
    session: Session,
    *,
    actor: Principal,
    page: PageRequest,
    site: str | None = None,
    state: DeliveryState | None = None,
) -> Page[DeliveryOut]:
    actor.demand(Permission.FLEET_READ)
    stmt = _select()
    if site:
        stmt = stmt.where(Site.name == site)
    if state:
        stmt = stmt.where(Delivery.state == state)
    if page.after_id is not None:
        stmt = stmt.where(Delivery.id > page.after_id)
    rows = list(session.execute(stmt.order_by(Delivery.id).limit(page.limit + 1)).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page([_out(*r) for r in rows], encode_cursor(rows[-1][0].id) if more else None)


def get_delivery(session: Session, *, actor: Principal, name: str) -> DeliveryOut:
    actor.demand(Permission.FLEET_READ)
    row = session.execute(_select().where(Delivery.name == name)).first()
    if row is None:
        raise NotFound(f"delivery '{name}' not found")
    return _out(*row)


def create_delivery(session: Session, *, actor: Principal, fields: dict[str, Any]) -> DeliveryOut:
    actor.demand(Permission.FLEET_WRITE)
    if session.scalar(sa.select(Delivery.id).where(Delivery.name == fields["name"])) is not None:
        raise Conflict(
            f"a delivery named '{fields['name']}' already exists",
            errors=[{"loc": ["name"], "msg": "duplicate"}],
        )
    site_id = session.scalar(sa.select(Site.id).where(Site.name == fields["site"]))
    if site_id is None:
        raise InvalidInput(
            f"unknown site '{fields['site']}'", errors=[{"loc": ["site"], "msg": "unknown site"}]
        )
    acc_id = session.scalar(
        sa.select(Accelerator.id).where(Accelerator.name == fields["accelerator"])
    )
    if acc_id is None:
        raise InvalidInput(
            f"unknown accelerator '{fields['accelerator']}'",
            errors=[{"loc": ["accelerator"], "msg": "unknown accelerator"}],
        )
    values = {k: v for k, v in fields.items() if k not in ("site", "accelerator")}
    session.add(
        Delivery(**values, site_id=site_id, accelerator_id=acc_id, state=DeliveryState.SCHEDULED)
    )
    session.flush()
    generation.bump(session, [site_id])
    out = get_delivery(session, actor=actor, name=fields["name"])
    audit.record(session, actor, "delivery.create", "delivery", out.name, after=_view(out))
    return out


def update_delivery(
    session: Session, *, actor: Principal, name: str, changes: dict[str, Any]
) -> DeliveryOut:
    """Record a slip (new expected date), a changed quantity, a cancellation or the arrival."""
    actor.demand(Permission.FLEET_WRITE)
    delivery = session.scalar(sa.select(Delivery).where(Delivery.name == name).with_for_update())
    if delivery is None:
        raise NotFound(f"delivery '{name}' not found")
    for required in ("expected_on", "state", "nodes"):
        if required in changes and changes[required] is None:
            raise InvalidInput(
                f"{required} cannot be null", errors=[{"loc": [required], "msg": "null"}]
            )
    if delivery.state is not DeliveryState.SCHEDULED and changes:
        raise Conflict(f"delivery '{name}' is {delivery.state.value} and can no longer change")
    before = _view(get_delivery(session, actor=actor, name=name))
    for key, value in changes.items():
        setattr(delivery, key, value)
    session.flush()
    out = get_delivery(session, actor=actor, name=name)
    if _view(out) != before:
        generation.bump(session, [delivery.site_id])
        audit.record(
            session, actor, "delivery.update", "delivery", name, before=before, after=_view(out)
        )
    return out
