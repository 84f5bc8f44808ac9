"""POST /v1/limits: answer a usage-limits question, with sites and custom chips read from
the live fleet (the arithmetic is `neocloud.planning.limits`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.capacity.loading import IN_SERVICE
from neocloud.core.errors import InvalidInput
from neocloud.fleet.models import Accelerator, Node, Site
from neocloud.planning import limits as core
from neocloud.planning.limits_schemas import LimitsRequest, to_question


def chips(session: Session) -> dict[str, core.Chip]:
    """The built-in chips, and the catalog's custom ones (node power from their TDP)."""
    out = dict(core.BUILTIN_CHIPS)
    for name, tdp, tflops in session.execute(
        sa.select(Accelerator.name, Accelerator.tdp_w, Accelerator.bf16_tflops)
    ):
        if name not in out:
            out[name] = core.Chip(name, float(tdp), float(tflops))
    return out


def site_blocks(session: Session, name: str, loc: tuple[str | int, ...]) -> list[core.Block]:
    """A site's GPUs in service, one block per chip, with their measured node power."""
    site = session.execute(sa.select(Site.id, Site.pue).where(Site.name == name)).first()
    if site is None:
        raise InvalidInput(
            f"{'.'.join(map(str, loc))}: no site named '{name}'",
            errors=[{"loc": list(loc), "msg": f"no site named '{name}'"}],
        )
    rows = session.execute(
        sa.select(Accelerator.name, sa.func.sum(Node.gpus), sa.func.sum(Node.power_kw))
        .join(Accelerator, Node.accelerator_id == Accelerator.id)
        .where(Node.site_id == site.id, Node.state.in_(IN_SERVICE))
        .group_by(Accelerator.name)
        .order_by(Accelerator.name)
    ).all()
    blocks = [
        core.Block(
            accelerator=str(acc),
            gpus=int(gpus),
            pue=float(site.pue),
            watts_per_gpu=float(kw) * 1000 / int(gpus),
            label=f"{name} {acc}",
            loc=loc,
        )
        for acc, gpus, kw in rows
        if gpus
    ]
    if not blocks:
        raise InvalidInput(
            f"{'.'.join(map(str, loc))}: site '{name}' has no GPUs in service",
            errors=[{"loc": list(loc), "msg": f"site '{name}' has no GPUs in service"}],
        )
    return blocks


def answer(session: Session, *, actor: Principal, request: LimitsRequest) -> dict[str, Any]:
    """The limits today and with the new block; naming a site needs fleet:read."""
    actor.demand(Permission.CATALOG_READ)
    sites: dict[tuple[str, int], list[core.Block]] = {}
    lists = [("capacity", request.capacity)]
    if request.add is not None:
        lists.append(("add", request.add.capacity))
    for which, blocks in lists:
        for i, block in enumerate(blocks):
            if block.site is not None:
                actor.demand(Permission.FLEET_READ)
                loc: tuple[str | int, ...] = (
                    (which, i, "site") if which == "capacity" else ("add", "capacity", i, "site")
                )
                sites[(which, i)] = site_blocks(session, block.site, loc)
    return core.usage_limits(to_question(request, sites), chips(session))
