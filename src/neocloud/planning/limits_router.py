"""/v1/limits: what GPUs serving a model give each plan tier's users (see docs/limits.md).
Anyone who may read the catalog may ask; naming a site of the fleet needs fleet:read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.planning import limits_service
from neocloud.planning.limits_schemas import LimitsOut, LimitsRequest

router = APIRouter(tags=["planning"])
Reader = Annotated[Principal, Depends(require(P.CATALOG_READ))]


@router.post("/limits", response_model=LimitsOut)
def post_limits(body: LimitsRequest, session: SessionDep, actor: Reader) -> dict[str, Any]:
    """Sustainable tokens a minute at peak and off-peak, per-tier limits (tokens a minute,
    messages per 5 hours and per week), and what a new block (`add`) changes."""
    with session.begin():
        return limits_service.answer(session, actor=actor, request=body)
