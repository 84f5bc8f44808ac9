"""Nodes out of service (failed or in repair) and the contracts they were taken from.

A failed node leaves its contract's allocation (the row ends `failed`) and the contract is
healed or marked degraded; this joins the two back so an operator sees, per node, whom the
failure hit, why the node was marked, and since when.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.models import AuditEvent
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.contracts.models import Contract
from neocloud.core.paging import Page, PageRequest, encode_cursor
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Accelerator, Block, Fabric, Node, NodeState, Site
from neocloud.placement.models import Allocation
from neocloud.placement.schemas import FailedNodeOut
from neocloud.tenants.models import Tenant

OUT_OF_SERVICE = (NodeState.FAILED, NodeState.REPAIR)


def failed_nodes(
    session: Session, *, actor: Principal, page: PageRequest, site: str | None = None
) -> Page[FailedNodeOut]:
    """Failed and in-repair nodes by id (keyset pages), each with the contract it held when
    it failed and the reason it was marked with."""
    actor.demand(Permission.FLEET_READ)
    stmt = (
        sa.select(
            Node.id,
            Node.name,
            Site.name,
            Fabric.name,
            Block.name,
            Accelerator.name,
            Node.gpus,
            Node.state,
            Node.updated_at,
        )
        .join(Site, Node.site_id == Site.id)
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Block, Node.block_id == Block.id)
        .join(Accelerator, Node.accelerator_id == Accelerator.id)
        .where(Node.state.in_(OUT_OF_SERVICE))
    )
    if site:
        stmt = stmt.where(Site.name == site)
    if page.after_id is not None:
        stmt = stmt.where(Node.id > page.after_id)
    rows = list(session.execute(stmt.order_by(Node.id).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    held = _held_when_failed(session, [r[0] for r in rows])
    marked = _last_marks(session, [r[1] for r in rows])
    items = []
    for nid, name, site_name, fabric, block, acc, gpus, state, updated in rows:
        contract, tenant = held.get(nid, (None, None))
        at, reason = marked.get(name, (updated, None))
        items.append(
            FailedNodeOut(
                name=name,
                site=site_name,
                fabric=fabric,
                block=block,
                accelerator=acc,
                gpus=gpus,
                state=state,
                since=as_utc(at),
                reason=reason,
                contract=contract,
                tenant=tenant,
            )
        )
    return Page(items, encode_cursor(rows[-1][0]) if more else None)


def _held_when_failed(session: Session, node_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Per node, the contract whose allocation of it ended last because it failed."""
    if not node_ids:
        return {}
    found: dict[int, tuple[str, str]] = {}
    for node_id, contract, tenant in session.execute(
        sa.select(Allocation.node_id, Contract.name, Tenant.name)
        .join(Contract, Contract.id == Allocation.contract_id)
        .join(Tenant, Tenant.id == Contract.tenant_id)
        .where(Allocation.node_id.in_(node_ids), Allocation.ended_by == "failed")
        .order_by(Allocation.until.desc(), Allocation.id.desc())
    ):
        found.setdefault(int(node_id), (str(contract), str(tenant)))
    return found


def _last_marks(session: Session, names: list[str]) -> dict[str, tuple[datetime, str | None]]:
    """Per node, when its state was last set and the reason given (from the audit log)."""
    if not names:
        return {}
    found: dict[str, tuple[datetime, str | None]] = {}
    for object_id, at, after in session.execute(
        sa.select(AuditEvent.object_id, AuditEvent.at, AuditEvent.after)
        .where(
            AuditEvent.action == "node.state",
            AuditEvent.object_type == "node",
            AuditEvent.object_id.in_(names),
        )
        .order_by(AuditEvent.id.desc())
    ):
        if object_id not in found:
            found[object_id] = (at, (after or {}).get("reason"))
    return found
