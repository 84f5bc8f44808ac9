"""Group commit for new bookings: the bookings that arrive together share one transaction.

Every booking of a site must hold the site's lock while it checks the calendar and writes,
so a site takes bookings one after another; what a booking costs while it holds the lock
(its statements' round trips and its commit) bounds how many a site takes per second. Like
a database's group commit, an API process therefore books the new contracts that arrive
while another batch is being written as one batch: requests wait on the event loop, and one
batch at a time, in a worker thread, takes every booking waiting (up to `MAX_BATCH`), fits
them one after another on the sites' books (each accepted booking updates the book the next
one sees), writes all the accepted ones with one statement per table, and confirms the fits
under the sites' locks at commit (or, on a last attempt, locks first, in id order, as every
booking does). Each request then gets its own answer: its
contract, or the 4xx that the same booking alone would have got (the fits are checked in
arrival order, so exactly those that fit succeed).

The checks are the ones a booking alone makes (`booking.draft_contract`, `placing.rank`,
the same locks), so the invariants hold across any number of API processes. If the batch's
transaction fails as a whole (a name taken by a concurrent booking elsewhere, a database
error), every booking in it runs again alone, as if there had been no batch.

Batched: new `reserved`, `internal` (without floors), `on-demand` and `spot` contracts booked
directly. Quotes, floors, dedicated sites (relocation) and drafts take the single path.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.capacity import state
from neocloud.capacity.calendar import Claim, SiteBook
from neocloud.capacity.planner import Fit, Need, fit_holds
from neocloud.capacity.timeline import at_hour
from neocloud.contracts import booking, resolve
from neocloud.contracts.booking import Draft
from neocloud.contracts.models import Contract, ContractRevision, ContractState, ContractType
from neocloud.contracts.placing import (
    Request,
    candidates,
    claim_rows,
    no_capacity,
    nowhere,
    rank,
    write_claims,
)
from neocloud.contracts.schemas import ClaimOut, ContractCreate, ContractOut
from neocloud.contracts.views import contract_out, shape, snapshot_of
from neocloud.core.errors import Conflict, NeocloudError
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.fleet.models import Site

MAX_BATCH = 64
BATCHED = frozenset(
    {ContractType.RESERVED, ContractType.INTERNAL, ContractType.ON_DEMAND, ContractType.SPOT}
)


def batchable(body: ContractCreate) -> bool:
    """Whether a booking request may join a batch (see the module's docstring)."""
    return body.book and body.quote is None and body.type in BATCHED and not body.floors


@dataclass(eq=False)
class Pending:
    """One request waiting in (or being booked by) a batch."""

    actor: Principal
    body: ContractCreate
    done: bool = False
    out: ContractOut | None = None
    error: BaseException | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Accepted:
    """A request that passed its checks: its draft and, once fitted, its claims."""

    draft: Draft
    price_given: bool
    claims: list[Claim] = field(default_factory=list)
    fitted: tuple[Need, Fit] | None = None
    """What the claims were fitted for, and how (checked again at commit if optimistic)."""


class BookingQueues:
    """An API process's booking queues: one per event loop and session factory (database)."""

    def __init__(self) -> None:
        self._queues: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            weakref.WeakKeyDictionary[sessionmaker[Session], BookingQueue],
        ] = weakref.WeakKeyDictionary()

    def of(self, factory: sessionmaker[Session]) -> BookingQueue:
        """The queue of `factory` on the running event loop."""
        loop = asyncio.get_running_loop()
        per_loop = self._queues.setdefault(loop, weakref.WeakKeyDictionary())
        queue = per_loop.get(factory)
        if queue is None:
            queue = per_loop[factory] = BookingQueue(factory)
        return queue


class BookingQueue:
    """Books the requests of one API process in batches (one queue per database).

    Requests wait on the event loop, not in threads: one batch at a time runs in a worker
    thread, and when it ends the next one takes whatever arrived meanwhile. Used from one
    event loop (`BookingQueues.of`)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._waiting: list[Pending] = []
        self._driver: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches run so far (for tests and metrics)."""

    async def book(self, actor: Principal, body: ContractCreate) -> ContractOut:
        """Book `body` for `actor` in the next batch; its contract, or its error raised."""
        mine = Pending(actor, body)
        self._waiting.append(mine)
        if self._driver is None:
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        await mine.finished.wait()
        if mine.error is not None:
            raise mine.error
        assert mine.out is not None
        return mine.out

    async def _drive(self) -> None:
        """Run batches while requests are waiting."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                try:
                    await anyio.to_thread.run_sync(self._run, batch)
                finally:
                    self.batches += 1
                    for p in batch:
                        if not p.done:  # the batch was interrupted before it answered
                            p.error = RuntimeError("the booking was interrupted")
                            p.done = True
                        p.finished.set()
        finally:
            self._driver = None

    def _run(self, batch: list[Pending]) -> None:
        """Answer every request of `batch` (each one is done when this returns)."""
        try:
            with self.factory() as session:
                answers = retrying(session, lambda: book_batch(session, batch))
            for p, answer in zip(batch, answers, strict=True):
                if isinstance(answer, ContractOut):
                    p.out = answer
                else:
                    p.error = answer
                p.done = True
        except Exception:  # the batch as a whole failed: each booking alone
            for p in batch:
                if not p.done:
                    self._alone(p)

    def _alone(self, p: Pending) -> None:
        try:
            with self.factory() as session:

                def work() -> ContractOut:
                    row = booking.create_contract(session, actor=p.actor, body=p.body)
                    return contract_out(session, row)

                p.out = retrying(session, work)
        except BaseException as exc:  # re-raised in the request's own thread
            p.error = exc
        p.done = True


def book_batch(session: Session, batch: list[Pending]) -> list[ContractOut | NeocloudError]:
    """Book every request of `batch` that fits, in order, in the caller's one transaction;
    each answer is the contract booked or the error that request gets."""
    bodies = [p.body for p in batch]
    lookup = resolve.Names()
    lookup.prefetch(
        session,
        {b.tenant for b in bodies if b.tenant},
        {b.accelerator for b in bodies if b.accelerator},
        {n for b in bodies for n in [b.site, *(b.sites or [])] if n},
    )
    given = {b.name for b in bodies if b.name}
    names = (
        set(session.scalars(sa.select(Contract.name).where(Contract.name.in_(given))))
        if given
        else set()
    )
    answers: list[NeocloudError | _Accepted] = []
    for p in batch:
        try:
            d = booking.draft_contract(
                session, p.actor, p.body, taken=lambda n: n in names, lookup=lookup
            )
        except NeocloudError as exc:
            answers.append(exc)
            continue
        names.add(d.contract.name)
        answers.append(_Accepted(d, p.body.price is not None))
    site_names = {
        s.id: s.name for a in answers if isinstance(a, _Accepted) for s in a.draft.sites or []
    }
    holding = [
        i
        for i, a in enumerate(answers)
        if isinstance(a, _Accepted) and a.draft.contract.type.holds_capacity
    ]
    optimistic = bool(holding) and state.optimistic(session)
    originals: dict[int, SiteBook] = {}
    if holding:
        originals = _fit_all(session, answers, holding, lock=not optimistic)
        site_names |= {sid: b.site.name for sid, b in originals.items()}
    accepted = [a for a in answers if isinstance(a, _Accepted)]
    if not accepted:
        return [a for a in answers if not isinstance(a, _Accepted)]
    now = utcnow()
    for a in accepted:
        c = a.draft.contract
        c.state, c.booked_at = ContractState.BOOKED, now
        if not a.price_given:
            c.price = booking.default_price(session, c, a.draft.accelerator)
    _insert_contracts(session, [a.draft.contract for a in accepted])
    claims = [
        Claim(a.draft.contract.id, k.pool, k.start, k.end, k.gpus, k.internal, k.exclusive)
        for a in accepted
        for k in a.claims
    ]
    if optimistic:  # the claims are written at commit, once their fits are confirmed
        _expect(session, accepted, originals)
    elif claims:
        state.bump_ledgers(session, write_claims(session, claims))
    revisions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    out = [
        _record(p.actor, a, site_names, revisions, events) if isinstance(a, _Accepted) else a
        for p, a in zip(batch, answers, strict=True)
    ]
    session.execute(sa.insert(ContractRevision), revisions)
    audit.record_many(session, events)
    return out


def _insert_contracts(session: Session, contracts: list[Contract]) -> None:
    """Insert the batch's contracts. On PostgreSQL their ids are drawn first, in one query,
    and the rows go in as one prepared INSERT run for each (a multi-row INSERT differs with
    every batch size and is parsed anew each time; the ORM's unit of work costs more than
    the statement). The objects stay outside the session: the batch answers from them."""
    if session.get_bind().dialect.name != "postgresql":
        session.add_all(contracts)
        session.flush()
        return
    seq = sa.func.pg_get_serial_sequence("contracts", "id")
    draw = sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, len(contracts)))
    now = utcnow()
    for c, cid in zip(contracts, session.scalars(draw), strict=True):
        c.id, c.created_at, c.updated_at = int(cid), now, now
    rows = [{key: getattr(c, key) for key in CONTRACT_COLUMNS} for c in contracts]
    session.execute(sa.insert(Contract.__table__), rows)  # type: ignore[arg-type]


CONTRACT_COLUMNS = [attr.key for attr in sa.inspect(Contract).column_attrs]
"""Every column of a contract (attribute names are the column names)."""


def _fit_all(
    session: Session, answers: list[NeocloudError | _Accepted], holding: list[int], *, lock: bool
) -> dict[int, SiteBook]:
    """Fit the capacity-holding drafts (`answers[i]` for i in `holding`) one after another,
    each on the books as the ones before it left them; those that do not fit become their
    409. `lock`: under the sites' locks (else on the cached books, to be confirmed at
    commit). Returns the books the fits started from."""
    requests: dict[int, Request] = {}
    for i in holding:
        d = answers[i].draft  # type: ignore[union-attr]
        assert d.accelerator is not None
        site_ids = [s.id for s in d.sites] if d.sites else None
        requests[i] = booking.capacity_request(d.contract, d.accelerator, site_ids)
    wanted: set[int] = set()
    for req in requests.values():
        if req.site_ids is None:
            wanted = set(session.scalars(sa.select(Site.id)))
            break
        wanted.update(req.site_ids)
    if lock:
        state.lock_sites(session, sorted(wanted))
    originals: dict[int, SiteBook] = state.CACHE.books(session, sorted(wanted))
    books = dict(originals)
    for i in holding:
        a = answers[i]
        assert isinstance(a, _Accepted)
        req = requests[i]
        found = candidates(books, req)
        try:
            if not found:
                raise nowhere(req)
            ranking = rank(found, req, first_whole=True)
            if not ranking.order:
                raise no_capacity(
                    req, ranking.shortfalls(req), {sid: b.site.name for sid, b in found.items()}
                )
        except Conflict as exc:
            answers[i] = exc
            continue
        sid = ranking.order[0]
        a.fitted = ranking.fits[sid]
        fit = a.fitted[1]
        # The contract's id is not known before the insert: a stand-in, unique in the batch.
        a.claims = fit.claims(-(i + 1), internal=req.internal)
        a.draft.contract.site_id, a.draft.contract.gpus = fit.site_id, fit.gpus
        book = books[sid]
        books[sid] = _plus(book, a.claims)
    return originals


def _plus(book: SiteBook, claims: list[Claim]) -> SiteBook:
    return book.refreshed(book.site, claims, book.floors) or book.with_changes(add_claims=claims)


def _expect(session: Session, accepted: list[_Accepted], originals: dict[int, SiteBook]) -> None:
    """Have the batch's fits confirmed at commit, under the sites' locks: on each site, the
    bookings in the order they were fitted, each on the book the ones before it leave."""
    by_site: dict[int, list[_Accepted]] = {}
    for a in accepted:
        if a.fitted is not None:
            by_site.setdefault(a.fitted[1].site_id, []).append(a)
    for sid, mine in by_site.items():

        def still_fits(book: SiteBook, mine: list[_Accepted] = mine) -> bool:
            for a in mine:
                assert a.fitted is not None
                if not fit_holds(book, *a.fitted):
                    return False
                book = _plus(book, a.claims)
            return True

        state.expect(
            session,
            state.Expectation(
                site_id=sid,
                generations=originals[sid].site.generations,
                contracts=frozenset(a.draft.contract.id for a in mine),
                still_fits=still_fits,
                claims=tuple(
                    claim_rows(
                        replace(k, contract_id=a.draft.contract.id) for a in mine for k in a.claims
                    )
                ),
            ),
        )


def _record(
    actor: Principal,
    a: _Accepted,
    site_names: dict[int, str],
    revisions: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> ContractOut:
    """The booked contract's answer, from what is at hand (the same shape `contract_out`
    reads back from the database); its history entry and audit event go to `revisions` and
    `events`, to be inserted with the batch's others."""
    c, d = a.draft.contract, a.draft
    acc = d.accelerator.name if d.accelerator else None
    claims = [
        ClaimOut(
            site=site_names[k.pool[0]],
            accelerator=acc or "",
            fabric=k.pool[2],
            gpus=k.gpus,
            start=at_hour(k.start),
            end=at_hour(k.end),
            exclusive=k.exclusive,
        )
        for k in sorted(a.claims, key=lambda k: (k.start, k.pool[0], k.pool[2]))
    ]
    site = site_names[c.site_id] if c.site_id else None
    out = shape(c, tenant=d.tenant.name, accelerator=acc, site=site, claims=claims, floors=[])
    snap = snapshot_of(c, out)
    revisions.append(
        {
            "contract_id": c.id,
            "revision": c.revision,
            "action": "book",
            "reason": None,
            "actor": actor.name,
            "at": utcnow(),
            "snapshot": snap,
        }
    )
    events.append(
        audit.event(actor, "contract.create", "contract", c.name, tenant_id=d.tenant.id, after=snap)
    )
    return out
