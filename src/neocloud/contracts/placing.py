"""Finding and taking capacity for a contract, under the sites' booking locks.

The search runs first on the cached calendar, without locks, to rank the sites; then each
candidate site is locked, its book re-read (the lock makes this read current) and the fit
checked again before anything is written. Correctness therefore lives in the database's
row locks, so it holds across any number of API processes.

A new booking on its first attempt (`state.optimistic`) skips the lock here: it is written
on the best site's cached book, and the same check is made under the lock at commit
(`state.expect`); if it no longer fits, the booking runs again the locking way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity import state
from neocloud.capacity.calendar import Claim, Floor, PoolKey, SiteBook
from neocloud.capacity.models import CapacityClaim, CapacityFloor
from neocloud.capacity.planner import (
    Fit,
    Need,
    Shortfall,
    Unit,
    fit_at,
    fit_holds,
    shortfall,
    unit_gpus,
)
from neocloud.capacity.timeline import Hour, at_hour
from neocloud.core.errors import Conflict


@dataclass(frozen=True)
class Request:
    """A capacity-holding request, resolved: what, how much, where allowed, when."""

    accelerator_id: int
    accelerator: str
    gpus: int | None
    mw: Decimal | None
    site_ids: list[int] | None
    start: Hour
    end: Hour
    same_fabric: bool
    unit: Unit
    internal: bool

    def need(self, book: SiteBook) -> Need | None:
        gpus = self.gpus if self.gpus is not None else gpus_for_mw(book, self)
        if not gpus:
            return None
        return Need(
            self.accelerator_id,
            gpus,
            self.end - self.start,
            self.start,
            self.start,
            self.same_fabric,
            self.unit,
            self.internal,
        )


def gpus_for_mw(book: SiteBook, req: Request) -> int:
    """How many GPUs of the accelerator `req.mw` of facility power runs at this site."""
    keys = book.accelerators.get(req.accelerator_id, [])
    if not keys or req.mw is None:
        return 0
    watts = max(book.pools[k].watts_per_gpu for k in keys) or 1
    unit = max(unit_gpus(book, k, req.unit) for k in keys)
    gpus = int(req.mw * 1_000_000 / book.site.pue) // watts
    return gpus - gpus % unit


def candidate_sites(session: Session, req: Request) -> dict[int, SiteBook]:
    return candidates(state.CACHE.books(session, req.site_ids), req)


def candidates(books: dict[int, SiteBook], req: Request) -> dict[int, SiteBook]:
    """The books of the sites `req` allows that have its accelerator."""
    allowed = set(req.site_ids) if req.site_ids is not None else None
    return {
        sid: b
        for sid, b in books.items()
        if (allowed is None or sid in allowed) and req.accelerator_id in b.accelerators
    }


def nowhere(req: Request) -> Conflict:
    where = "at the requested site(s)" if req.site_ids else "anywhere"
    return Conflict(f"no {req.accelerator} capacity {where}")


def place(
    session: Session,
    req: Request,
    *,
    contract_id: int = 0,
    keep: Iterable[Claim] = (),
    prefer: tuple[PoolKey, ...] = (),
    new: bool = False,
) -> Fit:
    """Find, lock and re-check capacity for `req`; raise 409 with what is missing.

    `contract_id` and `keep` serve amendments: the contract's own claims are set aside and
    `keep` (the part of it that does not change) is put back before fitting the rest.
    `new`: the contract `contract_id` holds nothing yet (it may be booked optimistically).
    """
    keep = list(keep)
    owner = 0 if new else contract_id  # a new contract has nothing to set aside
    books = candidate_sites(session, req)
    if not books:
        raise nowhere(req)
    optimistic = new and not keep and state.optimistic(session)
    ranking = rank(books, req, owner, keep, prefer, first_whole=optimistic)
    order, fits = ranking.order, ranking.fits
    if order and optimistic:
        best_need, best = fits[order[0]]
        state.expect(
            session,
            state.Expectation(
                site_id=order[0],
                generations=books[order[0]].site.generations,
                contracts=frozenset({contract_id}),
                still_fits=lambda now: fit_holds(now, best_need, best),
            ),
        )
        return best
    shortfalls = ranking.shortfalls(req)
    if len(order) > 1:
        # The best site alone first, so that bookings elsewhere go on in parallel. If it no
        # longer fits, its lock goes (savepoint) before the others are taken, all at once and
        # in id order: waiting for a second site while holding the first, in ranking order,
        # deadlocks against a booking that ranked the two the other way round.
        savepoint = session.begin_nested()
        fit = _locked_fit(session, req, order[0], owner, keep, prefer, shortfalls)
        if fit is not None:
            savepoint.commit()
            return fit
        savepoint.rollback()
        order = order[1:]
    state.lock_sites(session, order)
    for sid in order:
        fit = _locked_fit(session, req, sid, owner, keep, prefer, shortfalls)
        if fit is not None:
            return fit
    raise no_capacity(req, shortfalls, {sid: b.site.name for sid, b in books.items()})


@dataclass
class Ranking:
    """The sites where a request fits, best first, and those where it does not."""

    order: list[int]
    fits: dict[int, tuple[Need, Fit]]
    misses: list[tuple[SiteBook, Need]]
    """In the order the books came in."""

    def shortfalls(self, req: Request) -> list[Shortfall]:
        return [shortfall(view, need, req.start) for view, need in self.misses]


def rank(
    books: dict[int, SiteBook],
    req: Request,
    owner: int = 0,
    keep: list[Claim] | None = None,
    prefer: tuple[PoolKey, ...] = (),
    *,
    first_whole: bool = False,
) -> Ranking:
    """Fit `req` on each site's book: the sites where the contract already is (`prefer`)
    first, then the fewest pools, then by name. `first_whole`: stop at the first site (by
    name) where it fits in one pool, as none after it can rank higher (without `prefer`).
    `owner`, `keep`: an amended contract's claims are set aside and `keep` put back."""
    ranked: list[tuple[tuple[int, int, str], int]] = []
    misses: list[tuple[SiteBook, Need]] = []
    fits: dict[int, tuple[Need, Fit]] = {}
    for sid, book in sorted(books.items(), key=lambda item: item[1].site.name):
        view = _without(book, owner, keep or [])
        need = req.need(view)
        if need is None:
            continue
        fit = fit_at(view, need, req.start, prefer)
        if fit is None:
            misses.append((view, need))
            continue
        home = any(k[0] == sid for k in prefer)
        ranked.append(((0 if home else 1, len(fit.parts), book.site.name), sid))
        fits[sid] = (need, fit)
        if first_whole and not prefer and len(fit.parts) == 1:
            break
    position = {sid: i for i, sid in enumerate(books)}  # the order the sites came in
    misses.sort(key=lambda miss: position[miss[0].site.id])
    return Ranking([sid for _, sid in sorted(ranked)], fits, misses)


def _locked_fit(
    session: Session,
    req: Request,
    sid: int,
    contract_id: int,
    keep: list[Claim],
    prefer: tuple[PoolKey, ...],
    shortfalls: list[Shortfall],
) -> Fit | None:
    """Lock a site, re-read its book (current under the lock) and fit `req` on it again."""
    state.lock_sites(session, [sid])
    book = state.CACHE.books(session, [sid])[sid]
    view = _without(book, contract_id, keep)
    need = req.need(view)
    fit = fit_at(view, need, req.start, prefer) if need else None
    if fit is None and need is not None:
        shortfalls.append(shortfall(view, need, req.start))
    return fit


def _without(book: SiteBook, contract_id: int, keep: list[Claim]) -> SiteBook:
    if not contract_id:
        return book
    mine = [c for c in keep if c.pool[0] == book.site.id]
    if not mine and all(c.contract_id != contract_id for c in book.claims):
        return book
    return book.with_changes(drop_contract=contract_id, add_claims=mine)


def no_capacity(req: Request, shortfalls: list[Shortfall], names: dict[int, str]) -> Conflict:
    what = f"{req.gpus} {req.accelerator} GPUs" if req.gpus else f"{req.mw} MW of {req.accelerator}"
    when = f"{at_hour(req.start):%Y-%m-%d %H:%M} to {at_hour(req.end):%Y-%m-%d %H:%M} UTC"
    best: dict[int, Shortfall] = {}
    for s in shortfalls:
        if s.site_id not in best or s.possible > best[s.site_id].possible:
            best[s.site_id] = s
    parts = [
        f"{names.get(s.site_id, s.site_id)}: {s.possible} possible, {s.missing} missing ({s.reason})"
        for s in sorted(best.values(), key=lambda s: -s.possible)
    ]
    detail = f"not enough capacity for {what} from {when}"
    if parts:
        detail += ": " + "; ".join(parts)
    return Conflict(
        detail,
        errors=[
            {
                "loc": ["site", names.get(s.site_id, str(s.site_id))],
                "msg": s.reason,
                "possible": s.possible,
                "missing": s.missing,
            }
            for s in best.values()
        ],
    )


def write_claims(session: Session, claims: Iterable[Claim]) -> list[int]:
    claims = list(claims)
    rows = claim_rows(claims)
    if rows:
        state.mark_written(session)
        session.execute(sa.insert(CapacityClaim), rows)
    return sorted({c.pool[0] for c in claims})


def claim_rows(claims: Iterable[Claim]) -> list[dict[str, Any]]:
    """`capacity_claims` rows for these claims."""
    return [
        {
            "contract_id": c.contract_id,
            "site_id": c.pool[0],
            "accelerator_id": c.pool[1],
            "fabric": c.pool[2],
            "start_h": c.start,
            "end_h": c.end,
            "gpus": c.gpus,
            "internal": c.internal,
            "exclusive": c.exclusive,
        }
        for c in claims
    ]


def write_floors(session: Session, floors: Iterable[Floor]) -> list[int]:
    floors = list(floors)
    rows = [
        {
            "contract_id": f.contract_id,
            "site_id": f.site_id,
            "accelerator_id": f.accelerator_id,
            "start_h": f.start,
            "end_h": f.end,
            "gpus": f.gpus,
            "share": f.share,
        }
        for f in floors
    ]
    if rows:
        state.mark_written(session)
        session.execute(sa.insert(CapacityFloor), rows)
    return sorted({f.site_id for f in floors})


def current_claims(session: Session, contract_id: int) -> list[Claim]:
    k = CapacityClaim
    return [
        Claim(contract_id, (s, a, f), st, en, g, bool(i), bool(x))
        for s, a, f, st, en, g, i, x in session.execute(
            sa.select(
                k.site_id,
                k.accelerator_id,
                k.fabric,
                k.start_h,
                k.end_h,
                k.gpus,
                k.internal,
                k.exclusive,
            ).where(k.contract_id == contract_id)
        )
    ]


def current_floors(session: Session, contract_id: int) -> list[Floor]:
    f = CapacityFloor
    return [
        Floor(contract_id, s, a, st, en, g, Decimal(sh) if sh is not None else None)
        for s, a, st, en, g, sh in session.execute(
            sa.select(f.site_id, f.accelerator_id, f.start_h, f.end_h, f.gpus, f.share).where(
                f.contract_id == contract_id
            )
        )
    ]


def replace_commitments(
    session: Session, contract_id: int, claims: list[Claim], floors: list[Floor] | None = None
) -> list[int]:
    """Swap a contract's claims (and floors) for new ones; returns every site touched."""
    before = {c.pool[0] for c in current_claims(session, contract_id)}
    state.mark_written(session)
    session.execute(sa.delete(CapacityClaim).where(CapacityClaim.contract_id == contract_id))
    state.count_removals(session, sorted(before))
    touched = before | set(write_claims(session, claims))
    if floors is not None:
        touched |= {f.site_id for f in current_floors(session, contract_id)}
        session.execute(sa.delete(CapacityFloor).where(CapacityFloor.contract_id == contract_id))
        touched |= set(write_floors(session, floors))
    return sorted(touched)
