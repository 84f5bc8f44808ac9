"""GET /v1/engines/kueue/manifests: what each site's Kueue should hold, as YAML or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.engines.kueue import service
from neocloud.engines.kueue.schemas import KueueManifests

router = APIRouter(tags=["engines"])
Operator = Annotated[Principal, Depends(require(P.ENGINES_READ))]
YAML = "application/yaml"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the manifests: JSON (grouped by site) or one YAML stream",
        "content": {YAML: {"schema": {"type": "string"}}},
    }
}
ApiVersion = Literal["v1beta2", "v1beta1"]


@router.get("/engines/kueue/manifests", response_model=KueueManifests, responses=RESPONSES)
def kueue_manifests(
    session: SessionDep,
    actor: Operator,
    site: Annotated[str | None, Query(max_length=63, description="one site (default: all)")] = None,
    at: Annotated[datetime | None, Query(description="the hour to express (default: now)")] = None,
    format: Annotated[Literal["json", "yaml"], Query(description="json or yaml")] = "json",
    api_version: Annotated[
        ApiVersion, Query(description="Kueue API version (v1beta1 for Kueue before 0.15)")
    ] = "v1beta2",
) -> KueueManifests | Response:
    """Per site: a Topology, a ResourceFlavor per accelerator, a Cohort, a ClusterQueue per
    contract in force (reserved: nominal quota; spot: borrowing; lendable: lending limit;
    internal floors never lent), the shared on-demand queues, and a Namespace and LocalQueues
    per tenant. See docs/engines.md#kubernetes--kueue."""
    with session.begin():
        result = service.manifests(session, actor=actor, site=site, at=at, api_version=api_version)
    if format == "yaml":
        return Response(service.as_yaml(result), media_type=YAML)
    return result
