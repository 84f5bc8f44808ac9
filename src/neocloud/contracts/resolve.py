"""Turning names in a request into rows, and times into calendar hours, with clear errors."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.capacity.timeline import Hour, hour_of, is_whole_hour
from neocloud.core.errors import InvalidInput, NotFound
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant

MAX_TERM_HOURS = 20 * 8760


def bad(field: str | list[str], msg: str) -> InvalidInput:
    loc = [field] if isinstance(field, str) else field
    return InvalidInput(f"{'.'.join(loc)}: {msg}", errors=[{"loc": ["body", *loc], "msg": msg}])


def tenant(session: Session, actor: Principal, name: str | None) -> Tenant:
    """The tenant a request is for; a tenant token may name only its own (or none)."""
    if name is None:
        if actor.tenant_id is None:
            raise bad("tenant", "required: name the tenant the contract is for")
        row = session.get(Tenant, actor.tenant_id)
        assert row is not None
        return row
    row = session.scalar(sa.select(Tenant).where(Tenant.name == name))
    if row is None or (actor.tenant_id is not None and row.id != actor.tenant_id):
        raise NotFound(f"tenant '{name}' not found")
    return row


def accelerator(session: Session, name: str | None, field: str = "accelerator") -> Accelerator:
    if name is None:
        raise bad(field, "required for this contract type")
    row = session.scalar(sa.select(Accelerator).where(Accelerator.name == name))
    if row is None:
        raise bad(field, f"unknown accelerator '{name}'")
    return row


def site(session: Session, name: str, field: str | list[str] = "site") -> Site:
    row = session.scalar(sa.select(Site).where(Site.name == name))
    if row is None:
        raise bad(field, f"unknown site '{name}'")
    return row


def sites(
    session: Session, one: str | None, many: list[str] | None, field: str = "sites"
) -> list[Site] | None:
    """The sites a request allows (None: any)."""
    names = [one] if one else []
    names += many or []
    if not names:
        return None
    out: list[Site] = []
    for i, name in enumerate(dict.fromkeys(names)):
        out.append(site(session, name, "site" if one and i == 0 else [field, str(i)]))
    return out


def hour(value: datetime, field: str) -> Hour:
    if not is_whole_hour(as_utc(value)):
        raise bad(
            field, f"{value.isoformat()} is not on the hour (the calendar counts whole hours)"
        )
    return hour_of(value)


def term(start: datetime | None, end: datetime | None) -> tuple[Hour, Hour]:
    if start is None:
        raise bad("start", "required")
    if end is None:
        raise bad("end", "required")
    a, b = hour(start, "start"), hour(end, "end")
    if b <= a:
        raise bad("end", f"must be after start ({start.isoformat()}), got {end.isoformat()}")
    if b - a > MAX_TERM_HOURS:
        raise bad("end", "a term may be at most 20 years")
    return a, b
