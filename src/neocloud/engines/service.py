"""Engine use cases: which engine manages a fabric, its status and drift, marks, and the
reconcile (`reconcile.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import NotFound
from neocloud.core.paging import PageRequest, encode_cursor
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.engines import registry
from neocloud.engines.models import EngineFabric, EngineMark
from neocloud.engines.schemas import (
    ActionOut,
    FabricEngineList,
    FabricEngineOut,
    MarkOut,
)
from neocloud.fleet.models import Fabric, Site

STALE_AFTER = timedelta(minutes=10)
"""With no successful reconcile for this long, a fabric's engine state reads as stale."""


def fabric_id(session: Session, site: str, fabric: str) -> int:
    fid = session.scalar(
        sa.select(Fabric.id)
        .join(Site, Site.id == Fabric.site_id)
        .where(Site.name == site, Fabric.name == fabric)
    )
    if fid is None:
        raise NotFound(f"fabric '{fabric}' of site '{site}' not found")
    return int(fid)


def engine_row(session: Session, site: str, fabric: str) -> EngineFabric:
    fid = fabric_id(session, site, fabric)
    row = session.scalar(sa.select(EngineFabric).where(EngineFabric.fabric_id == fid))
    if row is None:
        raise NotFound(f"no engine manages fabric '{fabric}' of site '{site}'")
    return row


def is_stale(row: EngineFabric, now: datetime) -> bool:
    if row.failures > 0 or row.last_success_at is None:
        return True
    return now - as_utc(row.last_success_at) > STALE_AFTER


def set_engine(
    session: Session,
    *,
    actor: Principal,
    site: str,
    fabric: str,
    engine: str,
    options: dict[str, Any] | None = None,
    source: str = "api",
) -> FabricEngineOut:
    """Give a fabric an engine (or change its settings); the next reconcile acts on it."""
    actor.demand(Permission.ENGINES_WRITE)
    checked = registry.check_options(engine, options)
    fid = fabric_id(session, site, fabric)
    row = session.scalar(sa.select(EngineFabric).where(EngineFabric.fabric_id == fid))
    before = None if row is None else {"engine": row.engine, "options": row.options}
    if row is None:
        row = EngineFabric(fabric_id=fid, engine=engine, options=checked, source=source)
        session.add(row)
    elif (row.engine, row.options, row.source) != (engine, checked, source):
        if row.engine != engine:
            row.health, row.usage_until, row.changes, row.drift = {}, None, [], []
        row.engine, row.options, row.source = engine, checked, source
        row.next_attempt_at = None
    else:
        return fabric_out(session, row, utcnow())
    session.flush()
    audit.record(
        session,
        actor,
        "engine.set",
        "fabric",
        f"{site}/{fabric}",
        before=before,
        after={"engine": engine, "options": checked, "source": source},
    )
    return fabric_out(session, row, utcnow())


def unset_engine(session: Session, *, actor: Principal, site: str, fabric: str) -> None:
    """No engine manages the fabric any more (what is on the engine is left as it is)."""
    actor.demand(Permission.ENGINES_WRITE)
    row = engine_row(session, site, fabric)
    audit.record(
        session, actor, "engine.unset", "fabric", f"{site}/{fabric}", before={"engine": row.engine}
    )
    session.delete(row)


def status(
    session: Session, *, actor: Principal, page: PageRequest | None = None
) -> FabricEngineList:
    """Every fabric an engine manages, by id, a page at a time."""
    actor.demand(Permission.ENGINES_READ)
    page = page or PageRequest()
    stmt = sa.select(EngineFabric).order_by(EngineFabric.id).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(EngineFabric.id > page.after_id)
    rows = list(session.scalars(stmt))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    now = utcnow()
    return FabricEngineList(
        items=[fabric_out(session, r, now) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


def fabric_status(session: Session, *, actor: Principal, site: str, fabric: str) -> FabricEngineOut:
    actor.demand(Permission.ENGINES_READ)
    return fabric_out(session, engine_row(session, site, fabric), utcnow())


def mark(
    session: Session,
    *,
    actor: Principal,
    site: str,
    fabric: str,
    kind: str,
    name: str,
    note: str | None = None,
) -> MarkOut:
    """The operator manages this engine object by hand: reconcile reports drift on it and
    never changes it (idempotent)."""
    actor.demand(Permission.ENGINES_WRITE)
    row = engine_row(session, site, fabric)
    found = session.scalar(
        sa.select(EngineMark).where(
            EngineMark.engine_fabric_id == row.id, EngineMark.kind == kind, EngineMark.name == name
        )
    )
    if found is None:
        found = EngineMark(
            engine_fabric_id=row.id, kind=kind, name=name, note=note, created_by=actor.name
        )
        session.add(found)
        audit.record(
            session,
            actor,
            "engine.mark",
            "fabric",
            f"{site}/{fabric}",
            after={"object": f"{kind}/{name}"},
        )
    elif found.note != note:
        found.note = note
    session.flush()
    return _mark_out(found)


def unmark(
    session: Session, *, actor: Principal, site: str, fabric: str, kind: str, name: str
) -> None:
    """neocloud manages the object again: the next reconcile corrects its drift."""
    actor.demand(Permission.ENGINES_WRITE)
    row = engine_row(session, site, fabric)
    found = session.scalar(
        sa.select(EngineMark).where(
            EngineMark.engine_fabric_id == row.id, EngineMark.kind == kind, EngineMark.name == name
        )
    )
    if found is None:
        raise NotFound(f"{kind}/{name} is not marked manual on {site}/{fabric}")
    session.delete(found)
    audit.record(
        session,
        actor,
        "engine.unmark",
        "fabric",
        f"{site}/{fabric}",
        before={"object": f"{kind}/{name}"},
    )


def manual_keys(session: Session, engine_fabric_id: int) -> set[str]:
    return {
        f"{k}/{n}"
        for k, n in session.execute(
            sa.select(EngineMark.kind, EngineMark.name).where(
                EngineMark.engine_fabric_id == engine_fabric_id
            )
        )
    }


def fabric_out(session: Session, row: EngineFabric, now: datetime) -> FabricEngineOut:
    site, fabric = session.execute(
        sa.select(Site.name, Fabric.name)
        .join(Fabric, Fabric.site_id == Site.id)
        .where(Fabric.id == row.fabric_id)
    ).one()
    kind = registry.ENGINES.get(row.engine)
    marks = session.scalars(
        sa.select(EngineMark)
        .where(EngineMark.engine_fabric_id == row.id)
        .order_by(EngineMark.kind, EngineMark.name)
    )
    return FabricEngineOut(
        site=site,
        fabric=fabric,
        engine=row.engine,
        capabilities=sorted(c.value for c in kind.capabilities) if kind else [],
        options=row.options or {},
        source=row.source,
        stale=is_stale(row, now),
        last_attempt_at=row.last_attempt_at,
        last_success_at=row.last_success_at,
        failures=row.failures,
        next_attempt_at=row.next_attempt_at,
        error=row.error,
        changes=[ActionOut(**a) for a in row.changes or []],
        drift=[ActionOut(**a) for a in row.drift or []],
        marks=[_mark_out(m) for m in marks],
        usage_until=row.usage_until,
        usage_events=row.usage_events,
    )


def _mark_out(m: EngineMark) -> MarkOut:
    return MarkOut(
        kind=m.kind, name=m.name, note=m.note, created_by=m.created_by, created_at=m.created_at
    )
