"""Jobs of the shared pools: submit, read, cancel, finish, and run a scheduling pass.

Keyword-only use cases over a session and the caller. A tenant sees and touches only its
own jobs (another tenant's answer 404). The scheduling itself is `job_pass`; writers of a
job that may be running (cancel, finish) take its site's row lock first, as the pass does,
so that a pass never starts or preempts a job that was just ended.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.contracts.models import Contract, ContractType
from neocloud.contracts.resolve import bad
from neocloud.core.errors import Conflict, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet.models import Accelerator, Node, Site
from neocloud.placement import job_pass, job_pools, store
from neocloud.placement.job_models import Job, JobEvent, JobState
from neocloud.placement.job_schemas import (
    JobCreate,
    JobDetail,
    JobEventOut,
    JobGpu,
    JobOut,
    PreemptedOut,
    ScheduleOut,
)
from neocloud.placement.jobs import MILLI_PER_GPU, Shape
from neocloud.tenants.models import Tenant

log = logging.getLogger("neocloud.placement.jobs")


def submit(session: Session, *, actor: Principal, body: JobCreate) -> JobOut:
    """Queue a job (or record it `unplaceable`, with why, if it could never run)."""
    actor.demand(Permission.JOBS_WRITE)
    contract = session.scalar(sa.select(Contract).where(Contract.name == body.contract))
    if contract is None or (actor.tenant_id is not None and contract.tenant_id != actor.tenant_id):
        raise bad("contract", f"unknown contract '{body.contract}'")
    if contract.type not in job_pools.POOL_TYPES:
        raise bad(
            "contract",
            f"contract '{contract.name}' is {contract.type.value}: its work runs on its own "
            "nodes, not in a shared pool (jobs take internal, spot or on-demand contracts)",
        )
    if contract.state not in store.HOLDING or as_utc(contract.end_at) <= utcnow():
        raise Conflict(
            f"contract '{contract.name}' is not in force ({contract.state.value}, ends "
            f"{as_utc(contract.end_at).isoformat()})",
            errors=[{"loc": ["body", "contract"], "msg": "not in force"}],
        )
    if body.gpus > 1 and body.gpu_milli != MILLI_PER_GPU:
        raise bad("gpu_milli", "a job of several GPUs takes whole GPUs: gpu_milli must be 1000")
    site = _site(session, contract, body.site)
    types = _gpu_types(session, contract, body.gpu_types)
    name = body.name or f"job-{secrets.token_hex(5)}"
    if session.scalar(sa.select(Job.id).where(Job.name == name)) is not None:
        raise Conflict(
            f"a job named '{name}' already exists",
            errors=[{"loc": ["body", "name"], "msg": "duplicate"}],
        )
    now = utcnow()
    job = Job(
        name=name,
        tenant_id=contract.tenant_id,
        contract_id=contract.id,
        site_id=site.id,
        pool=contract.type.value,
        gpus=body.gpus,
        gpu_milli=body.gpu_milli,
        gpu_types=types,
        priority=body.priority,
        preemptible=contract.type is ContractType.SPOT,
        duration_s=body.duration_s,
        state=JobState.QUEUED,
        submitted_at=now,
        preemptions=0,
    )
    session.add(job)
    session.flush()
    job_pass.event(session, job, "submitted", now)
    shape = Shape(job.gpus, job.gpu_milli, frozenset(types))
    ceiling = job_pools.ceiling(session, site.id, contract)
    reason = job_pools.never_fits(ceiling, site.name, contract, shape)
    if reason is not None:
        job_pass.end(session, job, JobState.UNPLACEABLE, now, reason)
    audit.record(
        session,
        actor,
        "job.submit",
        "job",
        name,
        tenant_id=job.tenant_id,
        after={
            "contract": contract.name,
            "site": site.name,
            "gpus": job.gpus,
            "gpu_milli": job.gpu_milli,
            "state": job.state.value,
        },
    )
    return jobs_out(session, [job])[0]


def list_jobs(
    session: Session,
    *,
    actor: Principal,
    page: PageRequest,
    contract: str | None = None,
    state: JobState | None = None,
    site: str | None = None,
) -> Page[JobOut]:
    actor.demand(Permission.JOBS_READ)
    stmt = actor.scope(sa.select(Job), Job.tenant_id)
    if contract:
        stmt = stmt.join(Contract, Contract.id == Job.contract_id).where(Contract.name == contract)
    if state:
        stmt = stmt.where(Job.state == state)
    if site:
        stmt = stmt.join(Site, Site.id == Job.site_id).where(Site.name == site)
    result = paginate(session, stmt, Job.id, page)
    return Page(jobs_out(session, result.items), result.next_cursor)


def get_job(session: Session, *, actor: Principal, name: str) -> JobDetail:
    actor.demand(Permission.JOBS_READ)
    job = _job(session, actor, name)
    events = [
        JobEventOut(at=as_utc(e.at), kind=e.kind, reason=e.reason)
        for e in session.scalars(
            sa.select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)
        )
    ]
    return JobDetail(**jobs_out(session, [job])[0].model_dump(), events=events)


def cancel(session: Session, *, actor: Principal, name: str, reason: str | None = None) -> JobOut:
    """Take a job out: a queued one leaves the queue, a running one stops (its GPUs free)."""
    return _end(session, actor, name, JobState.CANCELLED, reason or "cancelled", "job.cancel")


def finish(session: Session, *, actor: Principal, name: str, reason: str | None = None) -> JobOut:
    """A running job ended (what an engine reports): its GPUs are free for the next pass."""
    return _end(session, actor, name, JobState.FINISHED, reason, "job.finish")


def schedule(
    session: Session, *, actor: Principal, site: str | None = None, now: datetime | None = None
) -> ScheduleOut:
    """Run a scheduling pass now (every site with jobs, or one); answers what started and
    what was preempted (a tenant: its own jobs)."""
    actor.demand(Permission.JOBS_WRITE)
    try:
        policy = job_pass.policy_from_env()
    except ValueError as exc:
        raise Conflict(f"the server's {job_pass.POLICY_ENV} is wrong: {exc}") from exc
    now = now or utcnow()
    site_ids: list[int] | None = None
    if site is not None:
        sid = session.scalar(sa.select(Site.id).where(Site.name == site))
        if sid is None:
            raise bad("site", f"unknown site '{site}'")
        site_ids = [sid]
    out = job_pass.schedule(session, now=now, policy=policy, site_ids=site_ids)
    counts = {
        "started": len(out.started),
        "preempted": len(out.preempted),
        "unplaceable": len(out.unplaceable),
        "cancelled": len(out.cancelled),
    }
    if any(counts.values()):
        audit.record(session, actor, "jobs.schedule", "site", site or "*", after=counts)

    def mine(jobs: Iterable[Job]) -> list[Job]:
        return [j for j in jobs if actor.tenant_id is None or j.tenant_id == actor.tenant_id]

    return ScheduleOut(
        at=now,
        policy=str(policy),
        started=jobs_out(session, mine(out.started)),
        preempted=[
            PreemptedOut(job=j.name, reason=why)
            for j, why in out.preempted
            if actor.tenant_id is None or j.tenant_id == actor.tenant_id
        ],
        unplaceable=jobs_out(session, mine(out.unplaceable)),
        cancelled=jobs_out(session, mine(out.cancelled)),
    )


def background_pass(session: Session) -> int:
    """The background round's pass (after placement's reconcile, in its transaction, inside
    a savepoint: a failed pass is logged and undone, the reconcile stands)."""
    try:
        policy = job_pass.policy_from_env()
    except ValueError:
        log.exception("jobs: no scheduling pass")
        return 0
    try:
        with session.begin_nested():
            out = job_pass.schedule(session, now=utcnow(), policy=policy)
    except Exception:  # the next round tries again
        log.exception("jobs: the scheduling pass failed")
        return 0
    return len(out.started) + len(out.preempted)


# --- helpers ------------------------------------------------------------------------------


def _job(session: Session, actor: Principal, name: str, *, lock: bool = False) -> Job:
    stmt = sa.select(Job).where(Job.name == name)
    job = session.scalar(stmt.with_for_update() if lock else stmt)
    if job is None:
        raise NotFound(f"job '{name}' not found")
    actor.check_tenant(job.tenant_id, f"job '{name}'")
    return job


def _end(
    session: Session, actor: Principal, name: str, state: JobState, reason: str | None, action: str
) -> JobOut:
    actor.demand(Permission.JOBS_WRITE)
    job = _job(session, actor, name)
    store.lock_site(session, job.site_id)
    job = _job(session, actor, name, lock=True)
    session.refresh(job)
    allowed = (
        (JobState.RUNNING,) if state is JobState.FINISHED else (JobState.QUEUED, JobState.RUNNING)
    )
    if job.state not in allowed:
        verb = "finish" if state is JobState.FINISHED else "cancel"
        raise Conflict(
            f"job '{name}' is {job.state.value}; only a "
            f"{' or '.join(s.value for s in allowed)} job can {verb}",
            errors=[{"loc": ["job"], "msg": job.state.value}],
        )
    before = job.state.value
    job_pass.end(session, job, state, utcnow(), reason)
    audit.record(
        session,
        actor,
        action,
        "job",
        name,
        tenant_id=job.tenant_id,
        before={"state": before},
        after={"state": job.state.value, "reason": reason},
    )
    return jobs_out(session, [job])[0]


def _site(session: Session, contract: Contract, name: str | None) -> Site:
    """The site a job runs at: the one named (among those the contract allows), or the
    contract's only site."""
    allowed = list(contract.sites or [])
    if contract.site_id is not None and (contract.type is ContractType.INTERNAL or not allowed):
        home = session.get(Site, contract.site_id)
        allowed = [home.name] if home else allowed
    if name is None:
        if len(allowed) != 1:
            where = f"several sites ({', '.join(allowed)})" if allowed else "any site"
            raise bad("site", f"contract '{contract.name}' runs at {where}: name one")
        name = allowed[0]
    elif allowed and name not in allowed:
        raise bad(
            "site", f"contract '{contract.name}' does not run at '{name}' ({', '.join(allowed)})"
        )
    site = session.scalar(sa.select(Site).where(Site.name == name))
    if site is None:
        raise bad("site", f"unknown site '{name}'")
    return site


def _gpu_types(session: Session, contract: Contract, given: list[str] | None) -> list[str]:
    """The acceptable models: those given (each a known accelerator), narrowed to the
    contract's accelerator when it has one."""
    names = sorted(set(given or []))
    known = set(session.scalars(sa.select(Accelerator.name).where(Accelerator.name.in_(names))))
    for i, n in enumerate(given or []):
        if n not in known:
            raise bad(["gpu_types", str(i)], f"unknown accelerator '{n}'")
    if contract.accelerator_id is None:
        return names
    own = session.scalar(
        sa.select(Accelerator.name).where(Accelerator.id == contract.accelerator_id)
    )
    if not names:
        return [own] if own else []
    return [own] if own in names else names  # none of the contract's: unplaceable, with why


def jobs_out(session: Session, jobs: list[Job]) -> list[JobOut]:
    """Jobs as the API shows them, with names for ids, in two or three queries."""
    if not jobs:
        return []
    tenants = dict(
        session.execute(
            sa.select(Tenant.id, Tenant.name).where(Tenant.id.in_({j.tenant_id for j in jobs}))
        ).all()
    )
    contracts = dict(
        session.execute(
            sa.select(Contract.id, Contract.name).where(
                Contract.id.in_({j.contract_id for j in jobs})
            )
        ).all()
    )
    sites = dict(
        session.execute(
            sa.select(Site.id, Site.name).where(Site.id.in_({j.site_id for j in jobs}))
        ).all()
    )
    node_ids = {int(n) for j in jobs for n, _ in j.placement or []}
    nodes = (
        dict(session.execute(sa.select(Node.id, Node.name).where(Node.id.in_(node_ids))).all())
        if node_ids
        else {}
    )
    return [
        JobOut(
            id=j.id,
            name=j.name,
            tenant=tenants.get(j.tenant_id, ""),
            contract=contracts.get(j.contract_id, ""),
            site=sites.get(j.site_id, ""),
            pool=j.pool,
            gpus=j.gpus,
            gpu_milli=j.gpu_milli,
            gpu_types=list(j.gpu_types or []),
            priority=j.priority,
            preemptible=j.preemptible,
            duration_s=j.duration_s,
            state=j.state,
            reason=j.reason,
            submitted_at=as_utc(j.submitted_at),
            started_at=as_utc(j.started_at) if j.started_at else None,
            finished_at=as_utc(j.finished_at) if j.finished_at else None,
            placement=[
                JobGpu(node=nodes.get(int(n), str(n)), gpu=int(g)) for n, g in j.placement or []
            ],
            preemptions=j.preemptions,
        )
        for j in jobs
    ]
