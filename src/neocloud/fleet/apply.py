"""`fleet apply`: parse, expand, diff against the database, write the difference.

All checks run before the first write, and the writes share one transaction, so a bad file
changes nothing. Writes use set-based SQL (executemany inserts, updates by primary key), so
a 125,000-node fleet applies at close to the speed of a plain bulk insert.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core import yamlfile
from neocloud.core.errors import Conflict, InvalidInput
from neocloud.core.timeutil import utcnow
from neocloud.engines import fleet_sync
from neocloud.fleet import generation
from neocloud.fleet.expand import ExpandError, expand
from neocloud.fleet.models import (
    Accelerator,
    Block,
    Delivery,
    DeliveryState,
    Fabric,
    Node,
    NodeState,
    Site,
)
from neocloud.fleet.plan import (
    DELIVERY_FIELDS,
    SITE_FIELDS,
    FleetPlan,
    PlanError,
    Snapshot,
    StoredNode,
    plan,
)
from neocloud.fleet.spec import FleetFile

CHUNK = 5000


@dataclass
class ApplyResult:
    plan: FleetPlan
    applied: bool

    def summary(self) -> dict[str, Any]:
        return {"applied": self.applied, **self.plan.summary()}


def parse(text: str | bytes) -> tuple[FleetFile, yamlfile.LineMap]:
    data, lines = yamlfile.load(text, "fleet file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(
            "fleet file must be a mapping with 'sites', 'deliveries' and 'accelerators'"
        )
    spec: FleetFile = yamlfile.validate(FleetFile, data, lines, "fleet file")
    return spec, lines


def _located(lines: yamlfile.LineMap, path: tuple[str | int, ...], message: str) -> str:
    line = lines.line_of(path)
    return f"line {line}: {message}" if line else message


def load_snapshot(session: Session) -> Snapshot:
    acc = {
        a.name: {
            "vendor": a.vendor,
            "memory_gb": a.memory_gb,
            "tdp_w": a.tdp_w,
            "bf16_tflops": a.bf16_tflops,
            "builtin": a.builtin,
        }
        for a in session.scalars(sa.select(Accelerator))
    }
    sites = {
        s.name: {f: getattr(s, f) for f in SITE_FIELDS} for s in session.scalars(sa.select(Site))
    }
    fabrics = {
        (s, f)
        for s, f in session.execute(
            sa.select(Site.name, Fabric.name).join(Fabric, Fabric.site_id == Site.id)
        )
    }
    blocks = {
        (s, f, b)
        for s, f, b in session.execute(
            sa.select(Site.name, Fabric.name, Block.name)
            .join(Fabric, Fabric.site_id == Site.id)
            .join(Block, Block.fabric_id == Fabric.id)
        )
    }
    node_rows = session.execute(
        sa.select(
            Node.id,
            Node.name,
            Site.name,
            Fabric.name,
            Block.name,
            Accelerator.name,
            Node.gpus,
            Node.power_kw,
            Node.state,
        )
        .join(Site, Node.site_id == Site.id)
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Block, Node.block_id == Block.id)
        .join(Accelerator, Node.accelerator_id == Accelerator.id)
    )
    nodes = {r[1]: StoredNode(*r) for r in node_rows}
    deliveries = {}
    for d, site_name, acc_name in session.execute(
        sa.select(Delivery, Site.name, Accelerator.name)
        .join(Site, Delivery.site_id == Site.id)
        .join(Accelerator, Delivery.accelerator_id == Accelerator.id)
    ):
        deliveries[d.name] = {
            f: getattr(d, f) for f in DELIVERY_FIELDS if f not in ("site", "accelerator")
        } | {"site": site_name, "accelerator": acc_name}
    return Snapshot(acc, sites, fabrics, blocks, nodes, deliveries)


def _lock(session: Session) -> None:
    """Serialise fleet applies (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(4242001)"))


def apply_fleet_file(
    session: Session, *, actor: Principal, text: str | bytes, dry_run: bool = False
) -> ApplyResult:
    actor.demand(Permission.FLEET_WRITE)
    spec, lines = parse(text)
    try:
        desired = expand(spec)
    except ExpandError as exc:
        raise InvalidInput(
            _located(lines, exc.path, exc.message),
            errors=[{"loc": list(exc.path), "line": lines.line_of(exc.path), "msg": exc.message}],
        ) from exc
    _lock(session)
    snapshot = load_snapshot(session)
    try:
        fleet_plan = plan(spec, desired, snapshot)
    except PlanError as exc:
        error_cls = Conflict if exc.conflict else InvalidInput
        raise error_cls(
            _located(lines, exc.path, exc.message),
            errors=[{"loc": list(exc.path), "line": lines.line_of(exc.path), "msg": exc.message}],
        ) from exc
    fleet_plan.engines_set, fleet_plan.engines_unset = fleet_sync.plan(
        session, desired.engines, [s.name for s in spec.sites]
    )
    if dry_run or fleet_plan.empty:
        return ApplyResult(fleet_plan, applied=False)
    write_plan(session, fleet_plan)
    fleet_sync.write(session, actor, fleet_plan.engines_set, fleet_plan.engines_unset)
    generation.bump(session)
    audit.record(
        session, actor, "fleet.apply", "fleet", "-", after=fleet_plan.summary(sample=3)["counts"]
    )
    for change in fleet_plan.summary(sample=0)["changes"]:
        if change["kind"] in ("site", "delivery", "accelerator"):
            audit.record(
                session,
                actor,
                f"{change['kind']}.{change['op']}",
                change["kind"],
                change["name"],
                before=change.get("before"),
                after=change.get("after"),
            )
    return ApplyResult(fleet_plan, applied=True)


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def write_plan(session: Session, p: FleetPlan) -> None:
    conn = session.connection()
    now = utcnow()
    stamps = {"created_at": now, "updated_at": now}
    if p.accelerators_create:
        conn.execute(
            sa.insert(Accelerator),
            [{**a, "builtin": False, **stamps} for a in p.accelerators_create],
        )
    for name, _, after in p.accelerators_update:
        conn.execute(
            sa.update(Accelerator).where(Accelerator.name == name).values(**after, updated_at=now)
        )
    acc_ids = dict(conn.execute(sa.select(Accelerator.name, Accelerator.id)).all())

    if p.sites_create:
        conn.execute(sa.insert(Site), [{**s, **stamps} for s in p.sites_create])
    for name, _, after in p.sites_update:
        conn.execute(sa.update(Site).where(Site.name == name).values(**after, updated_at=now))
    site_ids = dict(conn.execute(sa.select(Site.name, Site.id)).all())

    if p.fabrics_create:
        conn.execute(
            sa.insert(Fabric),
            [{"site_id": site_ids[s], "name": f, **stamps} for s, f in p.fabrics_create],
        )
    fabric_ids = {
        (s, f): i
        for s, f, i in conn.execute(
            sa.select(Site.name, Fabric.name, Fabric.id).join(Site, Fabric.site_id == Site.id)
        )
    }
    if p.blocks_create:
        for chunk in _chunks(p.blocks_create):
            conn.execute(
                sa.insert(Block),
                [{"fabric_id": fabric_ids[(s, f)], "name": b, **stamps} for s, f, b in chunk],
            )
    block_ids = {
        (s, f, b): i
        for s, f, b, i in conn.execute(
            sa.select(Site.name, Fabric.name, Block.name, Block.id)
            .join(Fabric, Block.fabric_id == Fabric.id)
            .join(Site, Fabric.site_id == Site.id)
        )
    }

    for chunk in _chunks(p.nodes_create):
        conn.execute(
            sa.insert(Node),
            [
                {
                    "name": n.name,
                    "site_id": site_ids[n.site],
                    "fabric_id": fabric_ids[(n.site, n.fabric)],
                    "block_id": block_ids[(n.site, n.fabric, n.block)],
                    "accelerator_id": acc_ids[n.accelerator],
                    "gpus": n.gpus,
                    "power_kw": n.power_kw,
                    "state": n.initial_state,
                    **stamps,
                }
                for n in chunk
            ],
        )
    if p.nodes_update:
        node_table = cast(sa.Table, Node.__table__)
        stmt = (
            sa.update(node_table)
            .where(node_table.c.id == sa.bindparam("node_id"))
            .values(
                site_id=sa.bindparam("site_id"),
                fabric_id=sa.bindparam("fabric_id"),
                block_id=sa.bindparam("block_id"),
                accelerator_id=sa.bindparam("accelerator_id"),
                gpus=sa.bindparam("gpus"),
                power_kw=sa.bindparam("power_kw"),
                state=sa.bindparam("state"),
                updated_at=now,
            )
        )
        for chunk in _chunks(p.nodes_update):
            conn.execute(
                stmt,
                [
                    {
                        "node_id": stored.id,
                        "site_id": site_ids[n.site],
                        "fabric_id": fabric_ids[(n.site, n.fabric)],
                        "block_id": block_ids[(n.site, n.fabric, n.block)],
                        "accelerator_id": acc_ids[n.accelerator],
                        "gpus": n.gpus,
                        "power_kw": n.power_kw,
                        "state": n.initial_state
                        if stored.state is NodeState.RETIRED
                        else stored.state,
                    }
                    for stored, n, _ in chunk
                ],
            )
    for chunk in _chunks(p.nodes_retire):
        conn.execute(
            sa.update(Node)
            .where(Node.id.in_([n.id for n in chunk]))
            .values(state=NodeState.RETIRED, updated_at=now)
        )

    def delivery_row(d: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in d.items() if k not in ("site", "accelerator")}
        if "site" in d:
            row["site_id"] = site_ids[d["site"]]
        if "accelerator" in d:
            row["accelerator_id"] = acc_ids[d["accelerator"]]
        return row

    if p.deliveries_create:
        conn.execute(
            sa.insert(Delivery), [{**delivery_row(d), **stamps} for d in p.deliveries_create]
        )
    for name, _, after in p.deliveries_update:
        conn.execute(
            sa.update(Delivery)
            .where(Delivery.name == name)
            .values(**delivery_row(after), updated_at=now)
        )
    if p.deliveries_cancel:
        conn.execute(
            sa.update(Delivery)
            .where(Delivery.name.in_(p.deliveries_cancel))
            .values(state=DeliveryState.CANCELLED, updated_at=now)
        )
