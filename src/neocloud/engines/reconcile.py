"""Reconciling a fabric with its engine: desired state from the database, actual state from
the engine, the difference applied, health and usage read back.

One pass over a fabric:

1. **claim** the fabric with a lease (a conditional UPDATE, committed): one process at a time
   talks to a fabric's engine, and no database transaction stays open while it answers;
2. **placement** of the fabric's site is brought up to date, so a contract booked a moment
   ago has its nodes and reaches the engine in this very pass;
3. **observe** the engine (its managed objects, its nodes' health);
4. **health back**: nodes the engine reports down are failed in neocloud (placement heals
   them at once), nodes it reports back are repaired (`engines.health`);
5. **diff** what the contracts, allocations and node states ask for (`protocol.desired`,
   mapped to the engine's objects) with what it has; objects marked manual are reported,
   never changed;
6. **apply** the actions (a refused action is reported; the others go on);
7. **usage back**: the engine's job accounting since the last read, as usage events through
   metering's ingest core (duplicates dropped there);
8. **record** what changed, what drifted, and release the lease.

If the engine does not answer (steps 3, 6, 7), the pass stops, the fabric's state reads
stale with the error, and the next attempt waits a backoff that doubles with each failure
(`BACKOFF_BASE` to `BACKOFF_MAX`); neocloud's API is not held up by it. A pass killed half-way
(the process dies) leaves its lease to expire; the next pass diffs again from what is.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import SYSTEM, Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.timeutil import utcnow
from neocloud.engines import health, registry, service, store, usage
from neocloud.engines.models import EngineFabric
from neocloud.engines.protocol import (
    Action,
    Capability,
    Engine,
    EngineUnavailable,
    FabricDesired,
    desired,
    diff,
)
from neocloud.engines.schemas import (
    ActionOut,
    FabricReconcileOut,
    HealthStepOut,
    ReconcileOut,
    UsageOut,
)
from neocloud.fleet.models import Fabric, Site
from neocloud.metering.ingest import ingest_batch, window_from_env
from neocloud.placement import service as placement

log = logging.getLogger("neocloud.engines")

LEASE = timedelta(minutes=5)
"""Longest a pass may hold a fabric; a pass that dies leaves it free after this."""
BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_MAX = timedelta(minutes=10)
USAGE_OVERLAP = timedelta(hours=2)
"""Accounting is read again this far back: a job's end reaches slurmdbd late."""
USAGE_FIRST = timedelta(days=1)
"""How far back the first read of a fabric's accounting goes."""
INGEST_BATCH = 5000


def backoff(failures: int) -> timedelta:
    """BACKOFF_BASE, doubled per failure in a row, at most BACKOFF_MAX."""
    return min(BACKOFF_BASE * (1 << min(max(failures - 1, 0), 16)), BACKOFF_MAX)


def reconcile(
    session: Session,
    *,
    actor: Principal,
    site: str | None = None,
    fabric: str | None = None,
    dry_run: bool = False,
    due_only: bool = False,
    now: datetime | None = None,
) -> ReconcileOut:
    """Reconcile every fabric an engine manages (or one site's, or one fabric). Manages its
    own transactions. `due_only` skips fabrics still in their backoff (the loop's way)."""
    actor.demand(Permission.ENGINES_WRITE)
    if fabric is not None and site is None:
        raise InvalidInput(
            "fabric needs site", errors=[{"loc": ["body", "site"], "msg": "required with fabric"}]
        )
    now = now or utcnow()
    with session.begin():
        stmt = (
            sa.select(EngineFabric.id, EngineFabric.next_attempt_at)
            .join(Fabric, Fabric.id == EngineFabric.fabric_id)
            .join(Site, Site.id == Fabric.site_id)
            .order_by(Site.name, Fabric.name)
        )
        if site is not None:
            if session.scalar(sa.select(Site.id).where(Site.name == site)) is None:
                raise NotFound(f"site '{site}' not found")
            stmt = stmt.where(Site.name == site)
        if fabric is not None:
            assert site is not None
            service.engine_row(session, site, fabric)
            stmt = stmt.where(Fabric.name == fabric)
        rows = list(session.execute(stmt))
    items = [
        reconcile_fabric(session, actor=actor, engine_fabric_id=rid, dry_run=dry_run, now=now)
        for rid, next_at in rows
        if not (due_only and next_at is not None and next_at > now)
    ]
    return ReconcileOut(at=now, dry_run=dry_run, items=items)


@dataclass
class _Pass:
    engine: Engine
    site: str
    fabric: str
    changes: list[ActionOut] = field(default_factory=list)
    drift: list[ActionOut] = field(default_factory=list)
    health: list[HealthStepOut] = field(default_factory=list)
    usage: UsageOut | None = None
    refused: int = 0


def reconcile_fabric(
    session: Session,
    *,
    actor: Principal,
    engine_fabric_id: int,
    dry_run: bool = False,
    now: datetime | None = None,
) -> FabricReconcileOut:
    now = now or utcnow()
    owner = uuid.uuid4().hex
    with session.begin():
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        if row is None:
            raise NotFound("the fabric has no engine any more")
        ref = store.fabric_ref(session, row.fabric_id)
        engine_name, options = row.engine, dict(row.options or {})
        claimed = (
            session.connection()
            .execute(
                sa.update(EngineFabric)
                .where(
                    EngineFabric.id == engine_fabric_id,
                    sa.or_(EngineFabric.lease_until.is_(None), EngineFabric.lease_until < now),
                )
                .values(lease_owner=owner, lease_until=now + LEASE, last_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
        stale = service.is_stale(row, now)
    base = FabricReconcileOut(
        site=ref.site, fabric=ref.name, engine=engine_name, ok=False, stale=stale
    )
    if claimed != 1:
        return base.model_copy(update={"skipped": "another reconcile holds this fabric"})
    try:
        engine = registry.make(engine_name, options, ref.name)
        run = _Pass(engine, ref.site, ref.name)
        _run(session, run, engine_fabric_id, ref, actor, dry_run, now)
    except EngineUnavailable as exc:
        return _failed(session, engine_fabric_id, owner, base, str(exc), now)
    except Exception as exc:  # recorded, never a crash of the loop or a 500
        log.exception("engines: reconcile of %s/%s failed", ref.site, ref.name)
        return _failed(session, engine_fabric_id, owner, base, f"internal error: {exc}", now)
    with session.begin():
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        assert row is not None
        if not dry_run:
            row.last_success_at = now
            row.failures = 0
            row.next_attempt_at = None
            row.error = (
                f"{run.refused} action(s) refused by the engine (see drift)"
                if run.refused
                else None
            )
            row.changes = [a.model_dump() for a in run.changes]
            row.drift = [a.model_dump() for a in run.drift]
            if run.changes or run.health:
                audit.record(
                    session,
                    actor,
                    "engine.reconcile",
                    "fabric",
                    f"{ref.site}/{ref.name}",
                    after={
                        "changes": [a.detail for a in run.changes][:200],
                        "health": [f"{h.op} {h.node}" for h in run.health],
                    },
                )
        _release(session, engine_fabric_id, owner)
        stale = service.is_stale(row, now)
    return base.model_copy(
        update={
            "ok": True,
            "stale": stale,
            "error": row.error,
            "changes": run.changes,
            "drift": run.drift,
            "health": run.health,
            "usage": run.usage,
        }
    )


def _run(
    session: Session,
    run: _Pass,
    engine_fabric_id: int,
    ref: store.FabricRef,
    actor: Principal,
    dry_run: bool,
    now: datetime,
) -> None:
    engine = run.engine
    if not dry_run:
        # contracts that started since placement last ran get their nodes first, so that a
        # contract booked just now reaches the engine in this very pass
        with session.begin():
            placement.reconcile_site(session, actor=actor, site_id=ref.site_id, now=now)
    with session.begin():
        view = store.load_fabric(session, ref, now)
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        assert row is not None
        memory = health.HealthMemory.from_json(row.health)
        manual = service.manual_keys(session, engine_fabric_id)
    observed = engine.observe([n.name for n in view.nodes])
    if Capability.NODE_HEALTH in engine.capabilities:
        steps, memory = health.health_steps(
            observed.nodes, {n.name: n.state for n in view.nodes}, memory, engine=engine.name
        )
        run.health = [HealthStepOut(node=s.node, op=s.op, reason=s.reason) for s in steps]
        if not dry_run:
            with session.begin():
                for s in steps:
                    _health_step(session, actor, s)
                row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
                assert row is not None
                row.health = memory.to_json()
            if steps:
                with session.begin():
                    view = store.load_fabric(session, ref, now)
    want = desired(view)
    plan = diff(engine.objects(want), observed.objects, order=engine.kinds, manual=manual)
    run.drift = [_out(a, "marked manual: reported, not changed") for a in plan.held]
    if dry_run:
        run.changes = [_out(a) for a in plan.actions]
        return
    for result in engine.apply(plan.actions):
        if result.error is None:
            run.changes.append(_out(result.action))
        else:
            run.refused += 1
            run.drift.append(_out(result.action, result.error))
    if Capability.ACCOUNTING in engine.capabilities:
        run.usage = _usage_back(session, engine, engine_fabric_id, want, now)


def _health_step(session: Session, actor: Principal, step: health.HealthStep) -> None:
    """Fail or repair through placement, so healing follows as for any failure."""
    try:
        if step.op == "fail":
            placement.fail_node(session, actor=actor, name=step.node, reason=step.reason)
        else:
            placement.repair_node(session, actor=actor, name=step.node, reason=step.reason)
    except (Conflict, NotFound) as exc:  # already so: nothing to do
        log.info("engines: %s %s: %s", step.op, step.node, exc)


def _usage_back(
    session: Session,
    engine: Engine,
    engine_fabric_id: int,
    want: FabricDesired,
    now: datetime,
) -> UsageOut:
    with session.begin():
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        assert row is not None
        since = (row.usage_until - USAGE_OVERLAP) if row.usage_until else now - USAGE_FIRST
    runs = engine.jobs(since, now)
    evs, skipped = usage.events(
        runs,
        source=engine.source,
        contract_of=lambda r: engine.contract_of(r, want),
        since=since,
        now=now,
    )
    out = UsageOut(
        runs=len(runs),
        events=len(evs),
        accepted=0,
        duplicates=0,
        rejected=0,
        skipped=[f"{s.job_id}: {s.reason}" for s in skipped][:50],
    )
    window = window_from_env()
    rejected: list[str] = []
    for i in range(0, len(evs), INGEST_BATCH):
        raws = [msgspec.Raw(msgspec.json.encode(e)) for e in evs[i : i + INGEST_BATCH]]
        with session.begin():
            result = ingest_batch(session, actor=SYSTEM, raws=raws, now=now, window=window)
        out.accepted += result.accepted
        out.duplicates += result.duplicates
        out.rejected += len(result.rejected)
        rejected += [f"{r.id}: {r.reason}" for r in result.rejected[:5]]
    if rejected:
        log.warning("engines: usage events rejected: %s", "; ".join(rejected[:5]))
    with session.begin():
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        assert row is not None
        row.usage_until = now
        row.usage_events += out.accepted
    return out


def _failed(
    session: Session,
    engine_fabric_id: int,
    owner: str,
    base: FabricReconcileOut,
    error: str,
    now: datetime,
) -> FabricReconcileOut:
    session.rollback()
    with session.begin():
        row = session.get(EngineFabric, engine_fabric_id, populate_existing=True)
        if row is None:
            return base.model_copy(update={"error": error, "stale": True})
        row.failures += 1
        row.error = error[:2000]
        row.next_attempt_at = now + backoff(row.failures)
        _release(session, engine_fabric_id, owner)
    log.warning("engines: %s/%s: %s", base.site, base.fabric, error)
    return base.model_copy(update={"error": error, "stale": True, "ok": False})


def _release(session: Session, engine_fabric_id: int, owner: str) -> None:
    """Give the fabric back, if this pass still holds it (a conditional UPDATE: the lease is
    the database's, not this session's copy of the row)."""
    session.execute(
        sa.update(EngineFabric)
        .where(EngineFabric.id == engine_fabric_id, EngineFabric.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _out(a: Action, error: str | None = None) -> ActionOut:
    return ActionOut(op=a.op.value, kind=a.kind, name=a.name, detail=a.describe(), error=error)
