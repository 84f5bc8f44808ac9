"""The fleet file's `engine:` on fabrics: planned with the rest of the file, written after it.

A file owns the sites it names; for engines that means: a fabric of such a site whose entry
says `engine:` gets that engine and settings (taking over one set through the API), and a
fabric whose setting came from the file (`source: fleet`) but whose entry no longer says
`engine:` loses it. Settings made through the API on fabrics the file says nothing about are
left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.engines.models import EngineFabric
from neocloud.fleet.models import Fabric, Site

FabricKey = tuple[str, str]
Setting = dict[str, Any]
"""{"engine": name, "options": {...}} as the file gives it (options checked, defaults out)."""


def plan(
    session: Session, wanted: Mapping[FabricKey, Setting], sites: Collection[str]
) -> tuple[list[tuple[str, str, Setting | None, Setting]], list[tuple[str, str, Setting]]]:
    """(fabrics to set: site, fabric, before, after), (fabrics to unset: site, fabric, before)."""
    stored: dict[FabricKey, tuple[Setting, str]] = {
        (s, f): ({"engine": e, "options": o or {}}, src)
        for s, f, e, o, src in session.execute(
            sa.select(
                Site.name,
                Fabric.name,
                EngineFabric.engine,
                EngineFabric.options,
                EngineFabric.source,
            )
            .join(Fabric, Fabric.id == EngineFabric.fabric_id)
            .join(Site, Site.id == Fabric.site_id)
            .where(Site.name.in_(list(sites)))
        )
    }
    to_set = []
    for (site, fabric), after in sorted(wanted.items()):
        before, source = stored.get((site, fabric), (None, None))
        if before != after or source != "fleet":
            to_set.append((site, fabric, before, after))
    to_unset = [
        (site, fabric, before)
        for (site, fabric), (before, source) in sorted(stored.items())
        if source == "fleet" and (site, fabric) not in wanted
    ]
    return to_set, to_unset


def write(
    session: Session,
    actor: Principal,
    to_set: list[tuple[str, str, Setting | None, Setting]],
    to_unset: list[tuple[str, str, Setting]],
) -> None:
    """Write the planned settings (after the fabrics exist), one audit event each."""
    if not to_set and not to_unset:
        return
    ids = {
        (s, f): i
        for s, f, i in session.execute(
            sa.select(Site.name, Fabric.name, Fabric.id).join(Site, Site.id == Fabric.site_id)
        )
    }
    rows = {r.fabric_id: r for r in session.scalars(sa.select(EngineFabric))}
    for site, fabric, before, after in to_set:
        fid = ids[(site, fabric)]
        row = rows.get(fid)
        if row is None:
            session.add(
                EngineFabric(
                    fabric_id=fid, engine=after["engine"], options=after["options"], source="fleet"
                )
            )
        else:
            if row.engine != after["engine"]:
                row.health, row.usage_until, row.changes, row.drift = {}, None, [], []
            row.engine, row.options, row.source = after["engine"], after["options"], "fleet"
            row.next_attempt_at = None
        audit.record(
            session,
            actor,
            "engine.set",
            "fabric",
            f"{site}/{fabric}",
            before=before,
            after={**after, "source": "fleet"},
        )
    for site, fabric, before in to_unset:
        row = rows.get(ids[(site, fabric)])
        if row is not None:
            session.delete(row)
        audit.record(session, actor, "engine.unset", "fabric", f"{site}/{fabric}", before=before)
    session.flush()
