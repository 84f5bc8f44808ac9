"""Nodes: listing with filters, and state changes an operator makes by hand."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, NotFound
from neocloud.core.paging import Page, PageRequest, encode_cursor
from neocloud.fleet import generation
from neocloud.fleet.lifecycle import NODE_MOVES, node_move_allowed
from neocloud.fleet.models import Accelerator, Block, Fabric, Node, NodeState, Site
from neocloud.fleet.schemas import NodeOut

_COLUMNS = (
    Node.id,
    Node.name,
    Site.name,
    Fabric.name,
    Block.name,
    Accelerator.name,
    Node.gpus,
    Node.power_kw,
    Node.state,
    Node.updated_at,
)


def _select() -> sa.Select[*tuple[Any, ...]]:
    return (
        sa.select(*_COLUMNS)
        .join(Site, Node.site_id == Site.id)
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Block, Node.block_id == Block.id)
        .join(Accelerator, Node.accelerator_id == Accelerator.id)
    )


def _out(row: Any) -> NodeOut:
    i, name, site, fabric, block, acc, gpus, kw, state, updated = row
    return NodeOut(
        id=i,
        name=name,
        site=site,
        fabric=fabric,
        block=block,
        accelerator=acc,
        gpus=gpus,
        power_kw=kw,
        state=state,
        updated_at=updated,
    )


def list_nodes(
    session: Session,
    *,
    actor: Principal,
    page: PageRequest,
    site: str | None = None,
    fabric: str | None = None,
    block: str | None = None,
    accelerator: str | None = None,
    state: NodeState | None = None,
) -> Page[NodeOut]:
    actor.demand(Permission.FLEET_READ)
    stmt = _select()
    if site:
        stmt = stmt.where(Site.name == site)
    if fabric:
        stmt = stmt.where(Fabric.name == fabric)
    if block:
        stmt = stmt.where(Block.name == block)
    if accelerator:
        stmt = stmt.where(Accelerator.name == accelerator)
    if state:
        stmt = stmt.where(Node.state == state)
    if page.after_id is not None:
        stmt = stmt.where(Node.id > page.after_id)
    rows = list(session.execute(stmt.order_by(Node.id).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page([_out(r) for r in rows], encode_cursor(rows[-1][0]) if more else None)


def get_node(session: Session, *, actor: Principal, name: str) -> NodeOut:
    actor.demand(Permission.FLEET_READ)
    row = session.execute(_select().where(Node.name == name)).first()
    if row is None:
        raise NotFound(f"node '{name}' not found")
    return _out(row)


def set_node_state(
    session: Session, *, actor: Principal, name: str, state: NodeState, reason: str | None = None
) -> NodeOut:
    actor.demand(Permission.FLEET_WRITE)
    node = session.scalar(sa.select(Node).where(Node.name == name).with_for_update())
    if node is None:
        raise NotFound(f"node '{name}' not found")
    if node.state != state:
        if not node_move_allowed(node.state, state):
            allowed = ", ".join(sorted(s.value for s in NODE_MOVES[node.state])) or "none"
            raise Conflict(
                f"node '{name}' cannot go from {node.state.value} to {state.value} (allowed: {allowed})",
                errors=[{"loc": ["state"], "msg": "transition not allowed"}],
            )
        before = {"state": node.state.value}
        node.state = state
        generation.bump(session, [node.site_id])
        audit.record(
            session,
            actor,
            "node.state",
            "node",
            name,
            before=before,
            after={"state": state.value, "reason": reason},
        )
        session.flush()
    return get_node(session, actor=actor, name=name)
