"""/v1/accelerators, /v1/sites (with topology), /v1/nodes, /v1/deliveries, /v1/fleet/apply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.concurrency import run_in_threadpool

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.core.errors import InvalidInput
from neocloud.fleet import apply, catalog, deliveries, nodes, sites
from neocloud.fleet.models import DeliveryState, NodeState
from neocloud.fleet.schemas import (
    AcceleratorCreate,
    AcceleratorOut,
    AcceleratorUpdate,
    BlockOut,
    DeliveryCreate,
    DeliveryOut,
    DeliveryUpdate,
    FabricOut,
    FleetApplyOut,
    NodeOut,
    NodeUpdate,
    SiteCreate,
    SiteOut,
    SiteUpdate,
)

router = APIRouter(tags=["fleet"])
Reader = Annotated[Principal, Depends(require(P.FLEET_READ))]
Writer = Annotated[Principal, Depends(require(P.FLEET_WRITE))]
CatalogReader = Annotated[Principal, Depends(require(P.CATALOG_READ))]
CatalogWriter = Annotated[Principal, Depends(require(P.CATALOG_WRITE))]


@router.get("/accelerators", response_model=PageOut[AcceleratorOut])
def list_accelerators(
    session: SessionDep, page: PageDep, actor: CatalogReader
) -> PageOut[AcceleratorOut]:
    with session.begin():
        result = catalog.list_accelerators(session, actor=actor, page=page)
        return PageOut(
            items=[AcceleratorOut.model_validate(a, from_attributes=True) for a in result.items],
            next_cursor=result.next_cursor,
        )


@router.get("/accelerators/{accelerator}", response_model=AcceleratorOut)
def get_accelerator(accelerator: str, session: SessionDep, actor: CatalogReader) -> AcceleratorOut:
    with session.begin():
        return AcceleratorOut.model_validate(
            catalog.get_accelerator(session, actor=actor, name=accelerator), from_attributes=True
        )


@router.post("/accelerators", status_code=status.HTTP_201_CREATED, response_model=AcceleratorOut)
def create_accelerator(
    body: AcceleratorCreate, session: SessionDep, actor: CatalogWriter
) -> AcceleratorOut:
    """Add a custom chip to the catalog (the built-in ones cannot be changed)."""
    with session.begin():
        row = catalog.create_accelerator(session, actor=actor, **body.model_dump())
        return AcceleratorOut.model_validate(row, from_attributes=True)


@router.patch("/accelerators/{accelerator}", response_model=AcceleratorOut)
def update_accelerator(
    accelerator: str, body: AcceleratorUpdate, session: SessionDep, actor: CatalogWriter
) -> AcceleratorOut:
    with session.begin():
        row = catalog.update_accelerator(
            session, actor=actor, name=accelerator, changes=body.model_dump(exclude_unset=True)
        )
        return AcceleratorOut.model_validate(row, from_attributes=True)


@router.delete("/accelerators/{accelerator}", status_code=status.HTTP_204_NO_CONTENT)
def delete_accelerator(accelerator: str, session: SessionDep, actor: CatalogWriter) -> None:
    with session.begin():
        catalog.delete_accelerator(session, actor=actor, name=accelerator)


@router.get("/sites", response_model=PageOut[SiteOut])
def list_sites(session: SessionDep, page: PageDep, actor: Reader) -> PageOut[SiteOut]:
    """Each site with its GPUs, facility, installed and committed power, and lifecycle state."""
    with session.begin():
        result = sites.list_sites(session, actor=actor, page=page)
        return PageOut(items=result.items, next_cursor=result.next_cursor)


@router.post("/sites", status_code=status.HTTP_201_CREATED, response_model=SiteOut)
def create_site(body: SiteCreate, session: SessionDep, actor: Writer) -> SiteOut:
    with session.begin():
        return sites.create_site(session, actor=actor, fields=body.model_dump())


@router.get("/sites/{site}", response_model=SiteOut)
def get_site(site: str, session: SessionDep, actor: Reader) -> SiteOut:
    with session.begin():
        return sites.get_site(session, actor=actor, name=site)


@router.patch("/sites/{site}", response_model=SiteOut)
def update_site(site: str, body: SiteUpdate, session: SessionDep, actor: Writer) -> SiteOut:
    """Change power, PUE or lifecycle; refused with the figures if the nodes would no longer fit."""
    with session.begin():
        return sites.update_site(
            session, actor=actor, name=site, changes=body.model_dump(exclude_unset=True)
        )


@router.delete("/sites/{site}", status_code=status.HTTP_204_NO_CONTENT)
def delete_site(site: str, session: SessionDep, actor: Writer) -> None:
    with session.begin():
        sites.delete_site(session, actor=actor, name=site)


@router.get("/sites/{site}/fabrics", response_model=list[FabricOut])
def list_fabrics(site: str, session: SessionDep, actor: Reader) -> list[FabricOut]:
    with session.begin():
        return sites.list_fabrics(session, actor=actor, site=site)


@router.get("/sites/{site}/fabrics/{fabric}/blocks", response_model=list[BlockOut])
def list_blocks(site: str, fabric: str, session: SessionDep, actor: Reader) -> list[BlockOut]:
    with session.begin():
        return sites.list_blocks(session, actor=actor, site=site, fabric=fabric)


@router.get("/nodes", response_model=PageOut[NodeOut])
def list_nodes(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    site: Annotated[str | None, Query(max_length=63)] = None,
    fabric: Annotated[str | None, Query(max_length=63)] = None,
    block: Annotated[str | None, Query(max_length=63)] = None,
    accelerator: Annotated[str | None, Query(max_length=63)] = None,
    state: NodeState | None = None,
) -> PageOut[NodeOut]:
    with session.begin():
        result = nodes.list_nodes(
            session,
            actor=actor,
            page=page,
            site=site,
            fabric=fabric,
            block=block,
            accelerator=accelerator,
            state=state,
        )
        return PageOut(items=result.items, next_cursor=result.next_cursor)


@router.get("/nodes/{node}", response_model=NodeOut)
def get_node(node: str, session: SessionDep, actor: Reader) -> NodeOut:
    with session.begin():
        return nodes.get_node(session, actor=actor, name=node)


@router.patch("/nodes/{node}", response_model=NodeOut)
def update_node(node: str, body: NodeUpdate, session: SessionDep, actor: Writer) -> NodeOut:
    """Move a node through its lifecycle by hand (burn-in, available, draining, failed, repair)."""
    with session.begin():
        return nodes.set_node_state(
            session, actor=actor, name=node, state=body.state, reason=body.reason
        )


@router.get("/deliveries", response_model=PageOut[DeliveryOut])
def list_deliveries(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    site: Annotated[str | None, Query(max_length=63)] = None,
    state: DeliveryState | None = None,
) -> PageOut[DeliveryOut]:
    with session.begin():
        result = deliveries.list_deliveries(session, actor=actor, page=page, site=site, state=state)
        return PageOut(items=result.items, next_cursor=result.next_cursor)


@router.post("/deliveries", status_code=status.HTTP_201_CREATED, response_model=DeliveryOut)
def create_delivery(body: DeliveryCreate, session: SessionDep, actor: Writer) -> DeliveryOut:
    with session.begin():
        return deliveries.create_delivery(session, actor=actor, fields=body.model_dump())


@router.get("/deliveries/{delivery}", response_model=DeliveryOut)
def get_delivery(delivery: str, session: SessionDep, actor: Reader) -> DeliveryOut:
    with session.begin():
        return deliveries.get_delivery(session, actor=actor, name=delivery)


@router.patch("/deliveries/{delivery}", response_model=DeliveryOut)
def update_delivery(
    delivery: str, body: DeliveryUpdate, session: SessionDep, actor: Writer
) -> DeliveryOut:
    with session.begin():
        return deliveries.update_delivery(
            session, actor=actor, name=delivery, changes=body.model_dump(exclude_unset=True)
        )


FLEET_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "A fleet file (YAML; JSON is accepted too). See docs/fleet-file.md.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post("/fleet/apply", response_model=FleetApplyOut, openapi_extra=FLEET_FILE_BODY)
async def apply_fleet(
    request: Request,
    actor: Writer,
    dry_run: Annotated[bool, Query(description="only compute and return the difference")] = False,
) -> FleetApplyOut:
    """Apply a fleet file: idempotent; returns the difference it applied (or would apply)."""
    body = await request.body()
    if not body.strip():
        raise InvalidInput("the request body is empty: send a fleet file (YAML or JSON)")
    factory = request.app.state.sessionmaker

    def run() -> FleetApplyOut:
        with factory() as session, session.begin():
            result = apply.apply_fleet_file(session, actor=actor, text=body, dry_run=dry_run)
            return FleetApplyOut(**result.summary())

    return await run_in_threadpool(run)
