"""The owner of a `lendable` contract takes back the nodes it lent to spot (see `lending`).

Every loan of a node the contract still holds gets notice at once: it ends after the spot
contract's notice period, like any preemption ("the owner reclaimed it"), and the next
reconcile records its end. Loans already on notice keep their end. Runs under the row lock
of every site involved, so a reconcile of those sites never interleaves with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from neocloud.contracts.models import Contract
from neocloud.core.errors import Conflict
from neocloud.fleet.models import Node, Site
from neocloud.placement import lending, spot, store
from neocloud.placement.models import Allocation, SpotLease


@dataclass(frozen=True)
class Reclaimed:
    lease: SpotLease
    node: str
    site: str
    gpus: int
    spot_contract: str


def reclaim(session: Session, owner: Contract, now: datetime) -> list[Reclaimed]:
    """Give notice to the contract's loans; returns every loan now on its way back. A
    contract with nothing lent is a 409 (saying whether it is lendable at all)."""
    held = sa.and_(
        Allocation.node_id == SpotLease.node_id,
        Allocation.contract_id == owner.id,
        Allocation.until.is_(None),
    )
    running = sa.and_(SpotLease.lent_by_contract_id == owner.id, SpotLease.ended_at.is_(None))
    sites = list(
        session.scalars(
            sa.select(Site.id)
            .join(Node, Node.site_id == Site.id)
            .join(SpotLease, SpotLease.node_id == Node.id)
            .join(Allocation, held)
            .where(running)
            .group_by(Site.id, Site.name)
            .order_by(Site.name)
        )
    )
    if not sites:
        why = "nothing of it is lent to spot" if owner.lendable else "it is not lendable"
        raise Conflict(
            f"contract '{owner.name}' has nothing to reclaim: {why}",
            errors=[{"loc": ["contract"], "msg": why}],
        )
    for site_id in sites:  # in name order, as a reconcile of all sites takes them
        store.lock_site(session, site_id)
    spot_contract = aliased(Contract)
    rows = session.execute(
        sa.select(SpotLease, Node.name, Site.name, Node.gpus, spot_contract)
        .join(Node, Node.id == SpotLease.node_id)
        .join(Site, Site.id == Node.site_id)
        .join(Allocation, held)
        .join(spot_contract, spot_contract.id == SpotLease.contract_id)
        .where(running)
        .order_by(Site.name, Node.name)
    )
    out: list[Reclaimed] = []
    for lease, node, site, gpus, contract in rows:
        if lease.notice_at is None:
            minutes = contract.notice_minutes
            notice = timedelta(
                minutes=spot.DEFAULT_NOTICE_MINUTES if minutes is None else int(minutes)
            )
            lease.notice_at, lease.ends_at = now, now + notice
            lease.end_reason = lending.RECLAIMED
        out.append(Reclaimed(lease, node, site, int(gpus), contract.name))
    session.flush()
    return out
