"""Draining a site: move every contract it holds elsewhere, one contract at a time.

The plan takes the site's contracts that still hold capacity there (in force or to come),
largest first, and tries to move each (a `move` amendment, from the next hour or its start:
the same checks as a booking — capacity, power, topology, internal floors) to the target
sites in the order given (by default every other site, by name). A dedicated-site contract
cannot move (it is the site). A dry run makes every move inside savepoints of one
transaction, so each step sees the capacity the steps before it took, and rolls all of it
back; a real drain commits each move on its own (step by step: a move that fails leaves the
ones before it done and the site's allocations whole), then marks the site `draining` and
reconciles placement on the site and the targets, so the nodes follow the contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission, Role
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts import amendments
from neocloud.contracts.models import Contract, ContractType
from neocloud.contracts.schemas import AmendmentCreate, AmendmentKind
from neocloud.core.errors import InvalidInput, NeocloudError, NotFound
from neocloud.core.timeutil import utcnow
from neocloud.fleet import generation
from neocloud.fleet.models import Site, SiteState
from neocloud.placement.store import HOLDING


@dataclass
class Step:
    contract: str
    tenant_id: int
    type: str
    gpus: int
    to: str | None
    effective: datetime | None
    done: bool
    reason: str


def _contracts_at(session: Session, site_id: int) -> list[Contract]:
    """The contracts holding capacity at the site from the next hour on, largest first."""
    h = hour_of(utcnow())
    held = (
        sa.select(CapacityClaim.contract_id, sa.func.sum(CapacityClaim.gpus).label("g"))
        .where(CapacityClaim.site_id == site_id, CapacityClaim.end_h > h + 1)
        .group_by(CapacityClaim.contract_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(Contract)
        .join(held, held.c.contract_id == Contract.id)
        .where(Contract.state.in_(HOLDING))
        .order_by(held.c.g.desc(), Contract.name)
    )
    return list(rows.scalars())


def drain(
    session: Session,
    *,
    actor: Principal,
    site: str,
    to: list[str] | None = None,
    dry_run: bool = False,
) -> tuple[list[Step], list[int]]:
    """Plan (and unless `dry_run`, carry out) the drain of `site`; returns the steps and the
    ids of the sites whose placement must follow. A dry run leaves the caller's transaction
    to be rolled back; a real drain commits each step."""
    actor.demand(Permission.SITES_DRAIN)
    # The moves are the drain's: made with the rights it grants, under the caller's name.
    mover = Principal(actor.token_id, actor.name, Role.ADMIN, None)
    src = session.scalar(sa.select(Site).where(Site.name == site))
    if src is None:
        raise NotFound(f"site '{site}' not found")
    names = dict(session.execute(sa.select(Site.name, Site.id)).all())
    targets = to if to else sorted(n for n in names if n != site)
    for i, name in enumerate(targets):
        if name not in names:
            raise NotFound(f"site '{name}' not found (to[{i}])")
        if name == site:
            raise InvalidInput(
                f"to[{i}]: cannot drain '{site}' into itself",
                errors=[{"loc": ["body", "to", i], "msg": "the drained site"}],
            )
    steps: list[Step] = []
    touched = {src.id}
    for contract in _contracts_at(session, src.id):
        gpus = contract.gpus or 0
        if contract.type is ContractType.DEDICATED_SITE:
            steps.append(
                Step(
                    contract.name,
                    contract.tenant_id,
                    contract.type.value,
                    gpus,
                    None,
                    None,
                    False,
                    "a dedicated-site contract is the site itself: it cannot move",
                )
            )
            continue
        step = _move(session, mover, contract, targets, names, site)
        steps.append(step)
        if step.done and step.to:
            touched.add(names[step.to])
            if not dry_run:
                session.commit()
    if not dry_run:
        if src.state is SiteState.LIVE:
            src.state = SiteState.DRAINING
            generation.bump(session, [src.id])
        audit.record(
            session,
            actor,
            "site.drain",
            "site",
            site,
            after={
                "moved": [s.contract for s in steps if s.done],
                "cannot": [s.contract for s in steps if not s.done],
            },
        )
    return steps, sorted(touched)


def _move(
    session: Session,
    actor: Principal,
    contract: Contract,
    targets: list[str],
    names: dict[str, int],
    site: str,
) -> Step:
    """Move one contract to the first target that takes it (each try in a savepoint)."""
    why: list[str] = []
    gpus = contract.gpus or 0
    for target in targets:
        savepoint = session.begin_nested()
        try:
            amendments.amend(
                session,
                actor=actor,
                name=contract.name,
                body=AmendmentCreate(
                    kind=AmendmentKind.MOVE, site=target, reason=f"drain of {site}"
                ),
            )
        except NeocloudError as exc:
            savepoint.rollback()
            why.append(f"{target}: {exc.detail}")
            continue
        savepoint.commit()
        start = session.scalar(
            sa.select(sa.func.min(CapacityClaim.start_h)).where(
                CapacityClaim.contract_id == contract.id, CapacityClaim.site_id == names[target]
            )
        )
        return Step(
            contract.name,
            contract.tenant_id,
            contract.type.value,
            gpus,
            target,
            at_hour(start) if start is not None else None,
            True,
            f"moves to {target}",
        )
    return Step(
        contract.name,
        contract.tenant_id,
        contract.type.value,
        gpus,
        None,
        None,
        False,
        "; ".join(why) or "no target site",
    )
