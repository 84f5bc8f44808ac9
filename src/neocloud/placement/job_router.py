"""/v1/jobs: the shared pools' jobs (submit, list, show, cancel, finish) and the pass."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, status

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.db.engine import retrying
from neocloud.placement import job_service
from neocloud.placement.job_models import JobState
from neocloud.placement.job_schemas import (
    JobCreate,
    JobDetail,
    JobEnd,
    JobOut,
    ScheduleIn,
    ScheduleOut,
)

router = APIRouter(tags=["jobs"])
Reader = Annotated[Principal, Depends(require(P.JOBS_READ))]
Writer = Annotated[Principal, Depends(require(P.JOBS_WRITE))]
JobName = Annotated[str, Path(max_length=63)]


@router.post("/jobs", status_code=status.HTTP_201_CREATED, response_model=JobOut)
def submit_job(body: JobCreate, session: SessionDep, actor: Writer) -> JobOut:
    """Queue a job in its contract's pool; `state: unplaceable` (with the reason) if it
    could never run there. The next scheduling pass starts it."""
    with session.begin():
        return job_service.submit(session, actor=actor, body=body)


@router.get("/jobs", response_model=PageOut[JobOut])
def list_jobs(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    contract: Annotated[str | None, Query(max_length=63)] = None,
    state: JobState | None = None,
    site: Annotated[str | None, Query(max_length=63)] = None,
) -> PageOut[JobOut]:
    """Jobs, oldest first; tenants see only their own."""
    with session.begin():
        result = job_service.list_jobs(
            session, actor=actor, page=page, contract=contract, state=state, site=site
        )
        return PageOut(items=result.items, next_cursor=result.next_cursor)


@router.post("/jobs/schedule", response_model=ScheduleOut)
def schedule(
    session: SessionDep, actor: Writer, body: Annotated[ScheduleIn | None, Body()] = None
) -> ScheduleOut:
    """Run a scheduling pass now (every site with jobs, or one): what started, what was
    preempted and why, what can never run. Sites are locked in the order reconcile locks
    them; a deadlock or serialization failure is retried."""
    site = body.site if body else None
    return retrying(session, lambda: job_service.schedule(session, actor=actor, site=site))


@router.get("/jobs/{job}", response_model=JobDetail)
def get_job(job: JobName, session: SessionDep, actor: Reader) -> JobDetail:
    """One job, with its events (submitted, started, preempted and why, ended)."""
    with session.begin():
        return job_service.get_job(session, actor=actor, name=job)


@router.post("/jobs/{job}/cancel", response_model=JobOut)
def cancel_job(
    job: JobName, session: SessionDep, actor: Writer, body: Annotated[JobEnd | None, Body()] = None
) -> JobOut:
    """Take a queued job out, or stop a running one (409 once it has ended)."""
    with session.begin():
        return job_service.cancel(
            session, actor=actor, name=job, reason=body.reason if body else None
        )


@router.post("/jobs/{job}/finish", response_model=JobOut)
def finish_job(
    job: JobName, session: SessionDep, actor: Writer, body: Annotated[JobEnd | None, Body()] = None
) -> JobOut:
    """A running job ended (what its engine reports): its GPUs go to the next pass (409
    unless running)."""
    with session.begin():
        return job_service.finish(
            session, actor=actor, name=job, reason=body.reason if body else None
        )
