"""Selling a site whole: a dedicated-site contract, and moving the operator's own work away.

A dedicated site holds nothing else. Customer commitments on it during the term block the
sale (they were sold first); the operator's internal commitments can move: each is placed
at another site for the overlapping period (same accelerator, its topology, capacity and
power respected). Internal floors pin capacity to their site, so a floor on the site blocks
the sale until the floor itself is moved. The plan is pure (`plan_dedicated`); quotes show
it, and a booking either writes all of it in one transaction or refuses with what is missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.billing.price_service import list_book
from neocloud.capacity import state
from neocloud.capacity.calendar import Claim, SiteBook
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.planner import Need, Unit, fit_at, shortfall
from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour, at_hour, hour_of
from neocloud.contracts import pricing
from neocloud.contracts.models import Contract, ContractType
from neocloud.contracts.placing import replace_commitments, write_claims
from neocloud.contracts.views import record_revision
from neocloud.core.errors import Conflict
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant


@dataclass(frozen=True)
class Holder:
    """What the plan needs to know of a contract that holds capacity on the site."""

    name: str
    tenant: str
    internal: bool
    same_fabric: bool
    unit: Unit


@dataclass(frozen=True)
class Move:
    contract_id: int
    accelerator_id: int
    gpus: int
    start: Hour
    end: Hour
    from_site: int
    to_site: int
    claims: tuple[Claim, ...]


@dataclass
class DedicatedPlan:
    site_id: int
    start: Hour
    end: Hour
    claims: list[Claim] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    @property
    def gpus(self) -> int:
        return sum(c.gpus for c in self.claims)


def plan_dedicated(
    books: dict[int, SiteBook],
    site_id: int,
    start: Hour,
    end: Hour,
    holders: dict[int, Holder],
    contract_id: int = 0,
) -> DedicatedPlan:
    """Whether the site can be held whole over [start, end), and which internal work moves."""
    plan = DedicatedPlan(site_id, start, end)
    book = books[site_id]
    overlapping = [
        c for c in book.claims if c.overlaps(start, end) and c.contract_id != contract_id
    ]
    for cid in sorted({c.contract_id for c in overlapping if not c.internal}):
        h = holders[cid]
        held = sum(c.gpus for c in overlapping if c.contract_id == cid)
        plan.blockers.append(f"contract '{h.name}' of {h.tenant} holds {held} GPUs on the site")
    for f in book.floors:
        if f.start < end and start < f.end:
            plan.blockers.append(
                f"the internal floor of contract '{holders[f.contract_id].name}' pins capacity to "
                f"the site from {at_hour(max(f.start, start)):%Y-%m-%d}; move it first"
            )
    if plan.blockers:
        return plan
    groups: dict[tuple[int, int, Hour, Hour], int] = defaultdict(int)
    for c in overlapping:
        groups[(c.contract_id, c.pool[1], max(c.start, start), min(c.end, end))] += c.gpus
    dest = {sid: b for sid, b in books.items() if sid != site_id}
    for (cid, acc, a, b), gpus in sorted(groups.items()):
        h = holders[cid]
        need = Need(acc, gpus, b - a, a, a, h.same_fabric, h.unit, internal=True)
        found = None
        for sid in sorted(dest, key=lambda s: (-_free(dest[s], need), dest[s].site.name)):
            fit = fit_at(dest[sid], need, a)
            if fit is not None:
                found = fit
                break
        if found is None:
            gaps = [shortfall(d, need, a) for d in dest.values() if acc in d.accelerators]
            best = max(gaps, key=lambda s: s.possible, default=None)
            why = (
                f"; best: {dest[best.site_id].site.name} could take {best.possible} ({best.reason})"
                if best
                else ""
            )
            plan.blockers.append(
                f"internal contract '{h.name}' holds {gpus} GPUs on the site from "
                f"{at_hour(a):%Y-%m-%d} to {at_hour(b):%Y-%m-%d} and no other site can take them{why}"
            )
            continue
        moved = tuple(found.claims(cid, internal=True))
        dest[found.site_id] = dest[found.site_id].with_changes(add_claims=moved)
        plan.moves.append(Move(cid, acc, gpus, a, b, site_id, found.site_id, moved))
    if plan.blockers:
        return plan
    for key, pool in book.pools.items():
        gpus = pool.supply.min_over(start, end)
        if gpus > 0:
            plan.claims.append(Claim(contract_id, key, start, end, gpus, False, True))
    if not plan.claims:
        plan.blockers.append("the site has no GPUs in service over the whole term")
        return plan
    kept = [c for c in book.claims if c not in overlapping]
    after = SiteBook(book.site, book.pools, [*kept, *plan.claims], book.floors)
    for v in after.violations(start, end):
        if v.kind == "power":
            plan.blockers.append(
                f"the site's GPUs would draw {v.amount / 1e6:.1f} MW of IT load more than its "
                f"power allows from {at_hour(v.start):%Y-%m-%d}"
            )
    return plan


def _free(book: SiteBook, need: Need) -> int:
    return sum(
        book.available(k, True).min_over(need.earliest, need.earliest + need.duration)
        for k in book.accelerators.get(need.accelerator_id, [])
    )


def holders(session: Session, books: dict[int, SiteBook]) -> dict[int, Holder]:
    ids = {c.contract_id for b in books.values() for c in b.claims}
    ids |= {f.contract_id for b in books.values() for f in b.floors}
    out: dict[int, Holder] = {}
    if ids:
        for cid, name, tenant, kind, same, unit in session.execute(
            sa.select(
                Contract.id,
                Contract.name,
                Tenant.name,
                Contract.type,
                Contract.same_fabric,
                Contract.unit,
            )
            .join(Tenant, Contract.tenant_id == Tenant.id)
            .where(Contract.id.in_(ids))
        ):
            out[cid] = Holder(name, tenant, kind is ContractType.INTERNAL, same, Unit(unit))
    return out


@dataclass
class DedicatedResult:
    gpus: int
    mw: Decimal
    sites: list[int]
    moves: list[Move]


def book_dedicated(
    session: Session,
    *,
    actor: Principal,
    contract: Contract,
    start: Hour,
    end: Hour,
    relocate: bool = True,
) -> DedicatedResult:
    """Hold the contract's site whole over [start, end), moving internal work if needed."""
    all_sites = list(session.scalars(sa.select(Site.id)))
    state.lock_sites(session, all_sites)  # relocation may touch any site
    books = state.CACHE.books(session)
    site = books[contract.site_id or 0]
    who = holders(session, books)
    plan = plan_dedicated(books, site.site.id, start, end, who, contract.id)
    if plan.blockers:
        raise Conflict(
            f"{site.site.name} cannot be sold whole from {at_hour(start):%Y-%m-%d} to "
            f"{at_hour(end):%Y-%m-%d}: " + "; ".join(plan.blockers),
            errors=[{"loc": ["body", "site"], "msg": b} for b in plan.blockers],
        )
    if plan.moves and not relocate:
        moved = ", ".join(f"{m.gpus} GPUs of '{who[m.contract_id].name}'" for m in plan.moves)
        raise Conflict(
            f"{site.site.name} holds internal commitments ({moved}); book with "
            "relocate_internal=true to move them to other sites in the same transaction",
            errors=[{"loc": ["body", "relocate_internal"], "msg": "relocation needed"}],
        )
    touched = set(write_claims(session, plan.claims))
    for cid in sorted({m.contract_id for m in plan.moves}):
        touched |= _apply_moves(
            session,
            actor,
            cid,
            [m for m in plan.moves if m.contract_id == cid],
            books,
            contract.name,
        )
    site_row = session.get(Site, site.site.id)
    assert site_row is not None
    return DedicatedResult(plan.gpus, Decimal(site_row.power_mw), sorted(touched), plan.moves)


def _apply_moves(
    session: Session,
    actor: Principal,
    cid: int,
    moves: list[Move],
    books: dict[int, SiteBook],
    buyer: str,
) -> set[int]:
    """Rewrite an internal contract's claims: the moved periods leave the sold site."""
    moved_from = moves[0].from_site
    claims = [c for c in books[moved_from].claims if c.contract_id == cid]
    others = [
        c
        for b in books.values()
        if b.site.id != moved_from
        for c in b.claims
        if c.contract_id == cid
    ]
    kept: list[Claim] = []
    for c in claims:
        cuts = sorted((m.start, m.end) for m in moves if m.accelerator_id == c.pool[1])
        cursor = c.start
        for a, b in cuts:
            if a > cursor and cursor < c.end:
                kept.append(
                    Claim(cid, c.pool, cursor, min(a, c.end), c.gpus, c.internal, c.exclusive)
                )
            cursor = max(cursor, b)
        if cursor < c.end:
            kept.append(Claim(cid, c.pool, cursor, c.end, c.gpus, c.internal, c.exclusive))
    new = [*others, *kept, *(x for m in moves for x in m.claims)]
    touched = set(replace_commitments(session, cid, new))
    internal = session.get(Contract, cid)
    assert internal is not None
    internal.site_id = moves[-1].to_site
    internal.revision += 1
    to = books[moves[-1].to_site].site.name
    if internal.sites:  # the sites it may use: the sold one gives way to where it went
        gone = books[moved_from].site.name
        internal.sites = list(dict.fromkeys(to if s == gone else s for s in internal.sites))
    reason = f"moved to {to} so that dedicated-site contract '{buyer}' can hold the site"
    snap = record_revision(session, actor, internal, "relocate", reason)
    audit.record(
        session,
        actor,
        "contract.relocate",
        "contract",
        internal.name,
        tenant_id=internal.tenant_id,
        after=snap,
    )
    return touched


def site_value_per_month(session: Session, contract: Contract, hours: int) -> Decimal:
    """What the site's GPUs would fetch per month as reserved capacity for the same term."""
    total = Decimal(0)
    book = list_book(session)
    for name, tflops, gpus in session.execute(
        sa.select(Accelerator.name, Accelerator.bf16_tflops, sa.func.max(CapacityClaim.gpus))
        .join(CapacityClaim, CapacityClaim.accelerator_id == Accelerator.id)
        .where(CapacityClaim.contract_id == contract.id)
        .group_by(Accelerator.name, Accelerator.bf16_tflops, CapacityClaim.fabric)
    ):
        rate = pricing.gpu_hour_rate(
            ContractType.RESERVED, name, tflops, hours, book, hour_of(contract.start_at)
        )
        total += rate * int(gpus) * HOURS_PER_MONTH
    return total
