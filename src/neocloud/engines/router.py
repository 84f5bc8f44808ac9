"""/v1/engines/fabrics/...: which engine manages each fabric, its status and drift, manual
marks; /v1/engines/reconcile: reconcile now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.engines import reconcile, service
from neocloud.engines.schemas import (
    EngineSetIn,
    FabricEngineList,
    FabricEngineOut,
    MarkIn,
    MarkOut,
    ReconcileIn,
    ReconcileOut,
)

router = APIRouter(tags=["engines"])
Reader = Annotated[Principal, Depends(require(P.ENGINES_READ))]
Writer = Annotated[Principal, Depends(require(P.ENGINES_WRITE))]
SiteName = Annotated[str, Path(max_length=63)]
FabricName = Annotated[str, Path(max_length=63)]
Kind = Annotated[str, Path(max_length=32, pattern=r"^[a-z][a-z-]*$")]
ObjectName = Annotated[str, Path(max_length=200)]


@router.get("/engines/fabrics", response_model=FabricEngineList)
def list_fabrics(session: SessionDep, actor: Reader, page: PageDep) -> FabricEngineList:
    """Every fabric an engine manages: its engine and settings, whether its state is stale,
    the last reconcile's changes and the drift it left, manual marks."""
    with session.begin():
        return service.status(session, actor=actor, page=page)


@router.get("/engines/fabrics/{site}/{fabric}", response_model=FabricEngineOut)
def get_fabric(
    site: SiteName, fabric: FabricName, session: SessionDep, actor: Reader
) -> FabricEngineOut:
    """One fabric's engine status (404 when no engine manages it)."""
    with session.begin():
        return service.fabric_status(session, actor=actor, site=site, fabric=fabric)


@router.put("/engines/fabrics/{site}/{fabric}", response_model=FabricEngineOut)
def set_fabric(
    site: SiteName, fabric: FabricName, body: EngineSetIn, session: SessionDep, actor: Writer
) -> FabricEngineOut:
    """Set the engine that manages the fabric's nodes, with its settings (422 naming a bad
    one); the next reconcile acts on it."""
    with session.begin():
        return service.set_engine(
            session, actor=actor, site=site, fabric=fabric, engine=body.engine, options=body.options
        )


@router.delete("/engines/fabrics/{site}/{fabric}", status_code=204, response_class=Response)
def unset_fabric(
    site: SiteName, fabric: FabricName, session: SessionDep, actor: Writer
) -> Response:
    """No engine manages the fabric any more; what is on the engine is left as it is."""
    with session.begin():
        service.unset_engine(session, actor=actor, site=site, fabric=fabric)
    return Response(status_code=204)


@router.put("/engines/fabrics/{site}/{fabric}/manual/{kind}/{name}", response_model=MarkOut)
def mark_manual(
    site: SiteName,
    fabric: FabricName,
    kind: Kind,
    name: ObjectName,
    session: SessionDep,
    actor: Writer,
    body: Annotated[MarkIn | None, Body()] = None,
) -> MarkOut:
    """Mark an engine object (`reservation/nc-acme-train`, `drain/node7`, ...) as managed by
    hand: reconcile reports its drift and never changes it."""
    with session.begin():
        return service.mark(
            session,
            actor=actor,
            site=site,
            fabric=fabric,
            kind=kind,
            name=name,
            note=body.note if body else None,
        )


@router.delete(
    "/engines/fabrics/{site}/{fabric}/manual/{kind}/{name}",
    status_code=204,
    response_class=Response,
)
def unmark_manual(
    site: SiteName,
    fabric: FabricName,
    kind: Kind,
    name: ObjectName,
    session: SessionDep,
    actor: Writer,
) -> Response:
    """neocloud manages the object again (404 when it was not marked)."""
    with session.begin():
        service.unmark(session, actor=actor, site=site, fabric=fabric, kind=kind, name=name)
    return Response(status_code=204)


@router.post("/engines/reconcile", response_model=ReconcileOut)
def reconcile_now(
    session: SessionDep, actor: Writer, body: Annotated[ReconcileIn | None, Body()] = None
) -> ReconcileOut:
    """Reconcile every managed fabric now (or a site's, or one): health back, drift
    corrected, usage read. An engine that does not answer makes its fabric stale (`ok`:
    false, `error`), never an error of this request. `dry_run` only says what would change."""
    body = body or ReconcileIn()
    return reconcile.reconcile(
        session, actor=actor, site=body.site, fabric=body.fabric, dry_run=body.dry_run
    )
