"""Turning names in a request into rows, and times into calendar hours, with clear errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


class Names:
    """Tenants, accelerators and sites looked up by name once for several requests (a batch
    of bookings): `prefetch` reads them in three queries; names it did not read fall back
    to a query each."""

    def __init__(self) -> None:
        self.rows: dict[tuple[type, str], Any] = {}

    def prefetch(
        self, session: Session, tenants: set[str], accelerators: set[str], sites: set[str]
    ) -> None:
        wanted: tuple[tuple[Any, set[str]], ...] = (
            (Tenant, tenants),
            (Accelerator, accelerators),
            (Site, sites),
        )
        for model, names in wanted:
            if not names:
                continue
            for name in names:
                self.rows[(model, name)] = None
            for row in session.scalars(sa.select(model).where(model.name.in_(names))):
                self.rows[(model, row.name)] = row

    def get(self, session: Session, model: Any, name: str) -> Any:
        key = (model, name)
        if key not in self.rows:
            self.rows[key] = session.scalar(sa.select(model).where(model.name == name))
        return self.rows[key]


def _by_name(session: Session, model: Any, name: str, lookup: Names | None) -> Any:
    if lookup is not None:
        return lookup.get(session, model, name)
    return session.scalar(sa.select(model).where(model.name == name))


def tenant(
    session: Session, actor: Principal, name: str | None, lookup: Names | None = None
) -> Tenant:
    """The tenant a request is for; a tenant token may name only its own (or none)."""
    if name is None:
        if actor.tenant_id is None:
            raise bad("tenant", "required: name the tenant the contract is for")
        row = session.get(Tenant, actor.tenant_id)
        assert row is not None
        return row
    found: Tenant | None = _by_name(session, Tenant, name, lookup)
    if found is None or (actor.tenant_id is not None and found.id != actor.tenant_id):
        raise NotFound(f"tenant '{name}' not found")
    return found


def accelerator(
    session: Session, name: str | None, field: str = "accelerator", lookup: Names | None = None
) -> Accelerator:
    if name is None:
        raise bad(field, "required for this contract type")
    row: Accelerator | None = _by_name(session, Accelerator, name, lookup)
    if row is None:
        raise bad(field, f"unknown accelerator '{name}'")
    return row


def site(
    session: Session, name: str, field: str | list[str] = "site", lookup: Names | None = None
) -> Site:
    row: Site | None = _by_name(session, Site, name, lookup)
    if row is None:
        raise bad(field, f"unknown site '{name}'")
    return row


def sites(
    session: Session,
    one: str | None,
    many: list[str] | None,
    field: str = "sites",
    lookup: Names | None = None,
) -> list[Site] | None:
    """The sites a request allows (None: any)."""
    names = [one] if one else []
    names += many or []
    if not names:
        return None
    out: list[Site] = []
    for i, name in enumerate(dict.fromkeys(names)):
        out.append(site(session, name, "site" if one and i == 0 else [field, str(i)], lookup))
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
