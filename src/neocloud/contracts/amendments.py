"""Amendments (extend, grow, shrink, move) and cancellation of booked contracts.

An amendment passes the same checks as a new booking: the part of the contract that does
not change is kept, the contract's own claims are set aside, and the changed part is fitted
under the sites' locks. Every change adds a revision to the contract's history.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.capacity import state
from neocloud.capacity.calendar import Claim, Floor
from neocloud.capacity.planner import Unit
from neocloud.capacity.timeline import Hour, at_hour, hour_of
from neocloud.contracts import relocation, resolve
from neocloud.contracts.booking import check_floors, locked_contract
from neocloud.contracts.models import Contract, ContractState, ContractType
from neocloud.contracts.placing import (
    Request,
    current_claims,
    current_floors,
    place,
    replace_commitments,
    write_claims,
)
from neocloud.contracts.schemas import AmendmentCreate, AmendmentKind
from neocloud.contracts.views import effective_state, record_revision
from neocloud.core.errors import Conflict
from neocloud.core.timeutil import utcnow
from neocloud.fleet.models import Accelerator


def _next_hour() -> Hour:
    return hour_of(utcnow()) + 1


def _cut(claims: list[Claim], at: Hour) -> tuple[list[Claim], list[Claim]]:
    """Split claims at an hour: (the part before, the part from then on)."""
    before: list[Claim] = []
    after: list[Claim] = []
    for c in claims:
        if c.end <= at:
            before.append(c)
        elif c.start >= at:
            after.append(c)
        else:
            before.append(
                Claim(c.contract_id, c.pool, c.start, at, c.gpus, c.internal, c.exclusive)
            )
            after.append(Claim(c.contract_id, c.pool, at, c.end, c.gpus, c.internal, c.exclusive))
    return before, after


def amend(session: Session, *, actor: Principal, name: str, body: AmendmentCreate) -> Contract:
    actor.demand(Permission.CONTRACTS_WRITE)
    c = locked_contract(session, actor, name)
    now_state = effective_state(c)
    if now_state in (ContractState.ENDED, ContractState.CANCELLED, ContractState.QUOTED):
        raise Conflict(
            f"contract '{name}' is {now_state.value}: only a booked or active contract can be amended"
        )
    start = resolve.hour(c.start_at, "start")
    end = resolve.hour(c.end_at, "end")
    kind = body.kind
    if kind is AmendmentKind.EXTEND:
        if body.end is None:
            raise resolve.bad("end", "required to extend")
        new_end = resolve.hour(body.end, "end")
        if new_end <= end:
            raise resolve.bad("end", f"must be after the current end ({at_hour(end).isoformat()})")
        _extend(session, actor, c, end, new_end)
        c.end_at = at_hour(new_end)
    else:
        eff = (
            resolve.hour(body.effective, "effective")
            if body.effective
            else max(start, _next_hour())
        )
        if not start <= eff < end:
            raise resolve.bad("effective", "must fall within the contract's term")
        if kind in (AmendmentKind.GROW, AmendmentKind.SHRINK):
            if body.gpus is None:
                raise resolve.bad("gpus", f"required to {kind.value}")
            if c.type is ContractType.DEDICATED_SITE:
                raise resolve.bad(
                    "kind", "a dedicated site holds the whole site: it cannot grow or shrink"
                )
            current = c.gpus or 0
            if kind is AmendmentKind.GROW and body.gpus <= current:
                raise resolve.bad("gpus", f"must be more than the current {current} to grow")
            if kind is AmendmentKind.SHRINK and body.gpus >= current:
                raise resolve.bad("gpus", f"must be fewer than the current {current} to shrink")
            _refit(
                session, c, eff, end, gpus=body.gpus, site_ids=[c.site_id] if c.site_id else None
            )
            c.gpus = body.gpus
        else:
            if c.type is ContractType.DEDICATED_SITE:
                raise resolve.bad("kind", "a dedicated-site contract is its site: book a new one")
            allowed = resolve.sites(session, body.site, body.sites)
            if not allowed:
                raise resolve.bad("site", "name the site to move to")
            _refit(
                session,
                c,
                eff,
                end,
                gpus=c.gpus or 0,
                site_ids=[s.id for s in allowed],
                move_floors_to=allowed[0].id,
            )
            c.sites = [s.name for s in allowed]
    c.revision += 1
    snap = record_revision(session, actor, c, kind.value, body.reason)
    audit.record(
        session,
        actor,
        f"contract.{kind.value}",
        "contract",
        name,
        tenant_id=c.tenant_id,
        after=snap,
    )
    return c


def _extend(session: Session, actor: Principal, c: Contract, end: Hour, new_end: Hour) -> None:
    if c.type is ContractType.DEDICATED_SITE:
        result = relocation.book_dedicated(session, actor=actor, contract=c, start=end, end=new_end)
        state.bump_ledgers(session, result.sites)
        return
    if not c.type.holds_capacity:
        return
    claims = current_claims(session, c.id)
    last = tuple({k.pool for k in claims if k.end == end})
    acc = session.get(Accelerator, c.accelerator_id)
    assert acc is not None
    req = Request(
        acc.id,
        acc.name,
        c.gpus,
        None,
        [c.site_id] if c.site_id else None,
        end,
        new_end,
        c.same_fabric,
        Unit(c.unit),
        c.type is ContractType.INTERNAL,
    )
    fit = place(session, req, contract_id=c.id, keep=claims, prefer=last)
    added = fit.claims(c.id, internal=req.internal)
    floors = current_floors(session, c.id)
    if floors:  # floors that ran to the old end run to the new one
        stretched = [
            Floor(
                f.contract_id,
                f.site_id,
                f.accelerator_id,
                f.start,
                new_end if f.end == end else f.end,
                f.gpus,
                f.share,
            )
            for f in floors
        ]
        # The stretch is a new floor over [end, new_end): customers may already hold it.
        check_floors(
            session,
            [
                Floor(f.contract_id, f.site_id, f.accelerator_id, end, new_end, f.gpus, f.share)
                for f in floors
                if f.end == end
            ],
        )
        touched = replace_commitments(session, c.id, [*claims, *added], stretched)
    else:
        touched = write_claims(session, added)
    state.bump_ledgers(session, touched)


def _refit(
    session: Session,
    c: Contract,
    eff: Hour,
    end: Hour,
    *,
    gpus: int,
    site_ids: list[int] | None,
    move_floors_to: int | None = None,
) -> None:
    """Keep the contract as it is before `eff`, and fit it anew from `eff` to its end."""
    if not c.type.holds_capacity:
        return
    claims = current_claims(session, c.id)
    before, after = _cut(claims, eff)
    acc = session.get(Accelerator, c.accelerator_id)
    assert acc is not None
    internal = c.type is ContractType.INTERNAL
    req = Request(
        acc.id, acc.name, gpus, None, site_ids, eff, end, c.same_fabric, Unit(c.unit), internal
    )
    # Where it is and where it may go, locked together in id order (a move one way and a
    # move the other way must not each hold one site and wait for the other).
    state.lock_sites(session, sorted({k.pool[0] for k in claims} | set(site_ids or [])))
    fit = place(session, req, contract_id=c.id, keep=before, prefer=tuple({k.pool for k in after}))
    floors = None
    if move_floors_to is not None and internal:
        floors = []
        moved: list[Floor] = []
        for f in current_floors(session, c.id):
            if f.end <= eff or f.site_id == fit.site_id:
                floors.append(f)
                continue
            if f.start < eff:
                floors.append(
                    Floor(f.contract_id, f.site_id, f.accelerator_id, f.start, eff, f.gpus, f.share)
                )
            moved.append(
                Floor(
                    f.contract_id,
                    fit.site_id,
                    f.accelerator_id,
                    max(f.start, eff),
                    f.end,
                    f.gpus,
                    f.share,
                )
            )
        # A floor that moves is a new floor at its new site: customers may already hold it.
        if moved:
            check_floors(session, moved)
        floors += moved
    touched = replace_commitments(
        session, c.id, [*before, *fit.claims(c.id, internal=internal)], floors
    )
    c.site_id = fit.site_id
    state.bump_ledgers(session, touched)


def cancel(session: Session, *, actor: Principal, name: str, reason: str | None) -> Contract:
    """Cancel a contract: its capacity is released from the next hour on; history is kept."""
    actor.demand(Permission.CONTRACTS_WRITE)
    c = locked_contract(session, actor, name)
    now_state = effective_state(c)
    if now_state in (ContractState.ENDED, ContractState.CANCELLED):
        raise Conflict(f"contract '{name}' is {now_state.value} and cannot be cancelled")
    at = _next_hour()
    claims = current_claims(session, c.id)
    if claims:
        state.lock_sites(session, sorted({k.pool[0] for k in claims}))
    kept, _ = _cut(claims, at)
    floors = [
        Floor(f.contract_id, f.site_id, f.accelerator_id, f.start, min(f.end, at), f.gpus, f.share)
        for f in current_floors(session, c.id)
        if f.start < at
    ]
    touched = replace_commitments(session, c.id, kept, floors)
    state.bump_ledgers(session, touched)
    c.state = ContractState.CANCELLED
    c.cancelled_at = utcnow()
    c.revision += 1
    snap = record_revision(session, actor, c, "cancel", reason)
    audit.record(
        session, actor, "contract.cancel", "contract", name, tenant_id=c.tenant_id, after=snap
    )
    return c
