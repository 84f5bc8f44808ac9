"""The accelerator catalog: built-in chips (seeded by the first migration) and custom ones."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.fleet.models import Accelerator, Delivery, Node

FIELDS = ("vendor", "memory_gb", "tdp_w", "bf16_tflops")


def _view(a: Accelerator) -> dict[str, Any]:
    return {"name": a.name, **{f: str(getattr(a, f)) for f in FIELDS}}


def list_accelerators(
    session: Session, *, actor: Principal, page: PageRequest
) -> Page[Accelerator]:
    actor.demand(Permission.CATALOG_READ)
    return paginate(session, sa.select(Accelerator), Accelerator.id, page)


def get_accelerator(session: Session, *, actor: Principal, name: str) -> Accelerator:
    actor.demand(Permission.CATALOG_READ)
    row = session.scalar(sa.select(Accelerator).where(Accelerator.name == name))
    if row is None:
        raise NotFound(f"accelerator '{name}' not found")
    return row


def resolve_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(sa.select(Accelerator.name, Accelerator.id)).all())


def create_accelerator(
    session: Session, *, actor: Principal, name: str, **fields: Any
) -> Accelerator:
    actor.demand(Permission.CATALOG_WRITE)
    if session.scalar(sa.select(Accelerator.id).where(Accelerator.name == name)) is not None:
        raise Conflict(
            f"an accelerator named '{name}' already exists",
            errors=[{"loc": ["name"], "msg": "duplicate"}],
        )
    row = Accelerator(name=name, builtin=False, **fields)
    session.add(row)
    session.flush()
    audit.record(session, actor, "accelerator.create", "accelerator", name, after=_view(row))
    return row


def update_accelerator(
    session: Session, *, actor: Principal, name: str, changes: dict[str, Any]
) -> Accelerator:
    actor.demand(Permission.CATALOG_WRITE)
    row = get_accelerator(session, actor=actor, name=name)
    if row.builtin:
        raise Conflict(f"'{name}' is a built-in accelerator and cannot be changed")
    if any(v is None for v in changes.values()):
        raise InvalidInput("accelerator fields cannot be null")
    before = _view(row)
    for key, value in changes.items():
        setattr(row, key, value)
    audit.record(
        session, actor, "accelerator.update", "accelerator", name, before=before, after=_view(row)
    )
    return row


def delete_accelerator(session: Session, *, actor: Principal, name: str) -> None:
    actor.demand(Permission.CATALOG_WRITE)
    row = get_accelerator(session, actor=actor, name=name)
    if row.builtin:
        raise Conflict(f"'{name}' is a built-in accelerator and cannot be deleted")
    in_use = session.scalar(
        sa.select(sa.func.count()).select_from(Node).where(Node.accelerator_id == row.id)
    )
    in_use = (in_use or 0) + (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.accelerator_id == row.id)
        )
        or 0
    )
    if in_use:
        raise Conflict(f"accelerator '{name}' is used by {in_use} node(s) or deliveries")
    audit.record(session, actor, "accelerator.delete", "accelerator", name, before=_view(row))
    session.delete(row)
