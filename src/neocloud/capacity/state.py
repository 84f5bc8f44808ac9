"""Caches the calendar's `SiteBook`s by generation, and takes the sites' booking locks.

Each site carries two counters: `sites.supply_generation` (bumped by fleet writers) and
`capacity_ledgers.generation` (bumped by every booking, amendment and cancellation). A
cached book is reused while both match, so a quote costs one small query plus arithmetic,
and several API processes stay correct because each one checks the database's counters.
Reading books from the database is `loading`'s.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Pool, PoolKey, SiteBook
from neocloud.capacity.loading import (
    SiteRow,
    load_changes,
    load_commitments,
    load_pools,
    site_rows,
    with_orphans,
)
from neocloud.capacity.models import CapacityClaim, CapacityLedger
from neocloud.db.engine import RETRIES_LEFT, RetryTransaction
from neocloud.fleet.models import Site


@dataclass(frozen=True)
class Cached:
    supply_generation: int
    ledger_generation: int
    book: SiteBook
    last_claim: int
    """The largest claim id in the book."""
    removals: int = 0
    """The site's `capacity_ledgers.removals` when the book was read."""

    @property
    def generations(self) -> tuple[int, int]:
        return self.supply_generation, self.ledger_generation


class CalendarCache:
    """Per-process cache of site books, keyed by database URL and validated by generation.

    When only a site's ledger generation moved by additions (new bookings), the book is
    brought up to date from what changed rather than reloaded, on PostgreSQL: claim ids come
    from a sequence and every writer of a site's claims holds the site's lock, so the claims
    a cached book has not seen are exactly those with a larger id. Whoever deletes claims
    (an amendment, a cancellation) counts it in the site's `capacity_ledgers.removals`; a
    site whose count moved is reloaded whole. SQLite may reuse the id of a deleted row, so
    there every change reloads the site.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, int], tuple[int, dict[PoolKey, Pool]]] = {}
        self._books: dict[tuple[str, int], Cached] = {}
        self._refreshing: dict[tuple[str, int], threading.Lock] = {}

    def clear(self) -> None:
        with self._lock:
            self._pools.clear()
            self._books.clear()

    def drop_commitments(self) -> None:
        """Forget the books but keep the supply (the capacity benchmark's baseline)."""
        with self._lock:
            self._books.clear()

    def books(
        self,
        session: Session,
        site_ids: list[int] | None = None,
        *,
        without: frozenset[int] = frozenset(),
    ) -> dict[int, SiteBook]:
        """The books of these sites (all when None), current as of this transaction.

        A transaction that wrote claims reads what changed since the cached books (its own
        uncommitted rows included), and keeps none of it (it may yet roll back). `without`:
        contracts whose claims, all written in this transaction, are left out.
        """
        url = str(session.get_bind().engine.url)
        written = _wrote(session)
        rows = site_rows(session, site_ids)
        out: dict[int, SiteBook] = {}
        for sid, row in rows.items():
            hit = self._books.get((url, sid))
            if (
                not written
                and hit
                and hit.generations == (row.supply_generation, row.ledger_generation)
            ):
                out[sid] = hit.book
        todo = {sid: row for sid, row in rows.items() if sid not in out}
        if not todo:
            return out
        if written:
            out.update(self._read(session, url, todo, without, keep=False))
            return out
        # One thread brings a site up to date; the others wait for it and use its book.
        with contextlib.ExitStack() as held:
            for sid in sorted(todo):
                held.enter_context(self._site_lock(url, sid))
            for sid, row in list(todo.items()):
                hit = self._books.get((url, sid))
                if (
                    hit
                    and hit.supply_generation == row.supply_generation
                    and hit.ledger_generation >= row.ledger_generation
                ):
                    out[sid] = hit.book
                    del todo[sid]
            out.update(self._read(session, url, todo, without, keep=True))
        return out

    def exact(
        self, session: Session, site_id: int, generations: tuple[int, int]
    ) -> SiteBook | None:
        """The cached book of a site if it is at exactly these (supply, ledger) generations."""
        hit = self._books.get((str(session.get_bind().engine.url), site_id))
        return hit.book if hit and hit.generations == generations else None

    def _site_lock(self, url: str, sid: int) -> threading.Lock:
        with self._lock:
            return self._refreshing.setdefault((url, sid), threading.Lock())

    def _read(
        self,
        session: Session,
        url: str,
        rows: dict[int, SiteRow],
        without: frozenset[int],
        *,
        keep: bool,
    ) -> dict[int, SiteBook]:
        """Bring these sites' books up to date from the database (see `books`)."""
        out: dict[int, SiteBook] = {}

        def done(row: SiteRow, book: SiteBook, last: int) -> None:
            out[row.info.id] = book
            if keep:
                with self._lock:
                    self._books[(url, row.info.id)] = Cached(
                        row.supply_generation, row.ledger_generation, book, last, row.removals
                    )

        incremental = session.get_bind().dialect.name == "postgresql"
        stale: list[int] = []
        behind: dict[int, Cached] = {}
        for sid, row in rows.items():
            hit = self._books.get((url, sid))
            if (
                hit is None
                or hit.supply_generation != row.supply_generation
                or hit.removals != row.removals
                or not incremental
            ):
                stale.append(sid)
            else:
                behind[sid] = hit
        if behind:
            changes = load_changes(session, {sid: hit.last_claim for sid, hit in behind.items()})
            for sid, hit in behind.items():
                ch = changes[sid]
                added = [c for c in ch.claims if c.contract_id not in without]
                fresh = hit.book.refreshed(rows[sid].info, added, ch.floors)
                if fresh is None:
                    stale.append(sid)  # a claim names a pool the book does not know
                else:
                    done(rows[sid], fresh, ch.last)
        if not stale:
            return out
        claims, floors, last = load_commitments(session, stale)
        for sid in stale:
            row = rows[sid]
            cached = self._pools.get((url, sid))
            if cached and cached[0] == row.supply_generation:
                pools = cached[1]
            else:
                pools = load_pools(session, row.info)
                with self._lock:
                    self._pools[(url, sid)] = (row.supply_generation, pools)
            site_claims = [c for c in claims.get(sid, []) if c.contract_id not in without]
            book = SiteBook(
                row.info, with_orphans(pools, site_claims), site_claims, floors.get(sid, [])
            )
            done(row, book, last.get(sid, 0))
        return out


CACHE = CalendarCache()


def lock_sites(session: Session, site_ids: list[int]) -> dict[int, int]:
    """Take the booking lock of these sites (in id order, so two bookings cannot deadlock);
    returns their ledger generations as they are under the lock.

    PostgreSQL: a row lock on each site's ledger row, held to the end of the transaction;
    bookings on other sites go on in parallel. SQLite: every write transaction already
    holds the database's single writer lock (BEGIN IMMEDIATE).
    """
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    lock = (
        sa.select(CapacityLedger.site_id, CapacityLedger.generation)
        .where(CapacityLedger.site_id.in_(ids))
        .order_by(CapacityLedger.site_id)
        .with_for_update()
    )
    held = {sid: int(g) for sid, g in session.execute(lock)}
    if len(held) < len(ids):  # a site's first booking: make its ledger row, then lock it
        dialect = session.get_bind().dialect.name
        rows = [{"site_id": i, "generation": 0} for i in ids]
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CapacityLedger)
        session.execute(insert.values(rows).on_conflict_do_nothing(index_elements=["site_id"]))
        held = {sid: int(g) for sid, g in session.execute(lock)}
    return held


def count_removals(session: Session, site_ids: list[int]) -> None:
    """Record that claims of these sites were deleted (their ledgers are bumped too, by the
    caller's `bump_ledgers`): caches reload them whole instead of adding what is new."""
    if site_ids:
        session.execute(
            sa.update(CapacityLedger)
            .where(CapacityLedger.site_id.in_(site_ids))
            .values(removals=CapacityLedger.removals + 1)
            .execution_options(synchronize_session=False)
        )


def bump_ledgers(session: Session, site_ids: list[int]) -> None:
    """Record that these sites' commitments changed (caches elsewhere reload them).

    Sites with a booking still to be confirmed (`expect`) are bumped when it is, at commit.
    """
    ids = sorted(set(site_ids) - {e.site_id for e in _expected(session)})
    if ids:
        session.execute(
            sa.update(CapacityLedger)
            .where(CapacityLedger.site_id.in_(ids))
            .values(generation=CapacityLedger.generation + 1)
            .execution_options(synchronize_session=False)
        )


# --- optimistic bookings ------------------------------------------------------------------
#
# The site lock serialises the bookings of a site, so the less a booking does while holding
# it, the more bookings a site takes per second. While `retrying` has attempts left, a
# booking fits on the cached book without the lock, writes everything, and only at commit
# takes the lock and checks that the site's ledger has not moved since the book it used
# (or, if it has, that its claims still fit the book as it now is). If they no longer fit,
# `RetryTransaction` runs the booking again on the books as they now are; the last attempt
# locks first, as any other booking does.

EXPECTED = "neocloud.capacity.expected"
WRITTEN = "neocloud.capacity.written"


@dataclass(frozen=True)
class Expectation:
    """A booking written without its site's lock, to be confirmed at commit."""

    site_id: int
    generations: tuple[int, int]
    """The (supply, ledger) generations of the book the fit was made on."""
    contracts: frozenset[int]
    """The contracts whose claims were written on that fit (several for a batch)."""
    still_fits: Callable[[SiteBook], bool]
    """Whether the bookings' claims fit a book of the site that leaves them out."""
    claims: tuple[dict[str, Any], ...] = ()
    """`capacity_claims` rows to insert once confirmed, under the lock (so that their ids
    follow commit order); empty when the caller wrote its claims already."""


def optimistic(session: Session) -> bool:
    """Whether a booking may be written now and confirmed at commit (see above): while
    `retrying` has attempts left, on PostgreSQL, as the transaction's first write of claims."""
    return (
        session.info.get(RETRIES_LEFT, 0) > 0
        and session.get_bind().dialect.name == "postgresql"
        and not _wrote(session)
        and not _expected(session)
    )


def expect(session: Session, expectation: Expectation) -> None:
    """Have `expectation` confirmed when this transaction commits."""
    if _expected(session):
        session.info[EXPECTED][1].append(expectation)
    else:
        session.info[EXPECTED] = (session.get_transaction(), [expectation])


def _expected(session: Session) -> list[Expectation]:
    """The expectations of the transaction now open (those of an earlier one are void)."""
    held: tuple[Any, list[Expectation]] | None = session.info.get(EXPECTED)
    return held[1] if held and held[0] is session.get_transaction() else []


def _wrote(session: Session) -> bool:
    root = session.get_transaction()
    return root is not None and session.info.get(WRITTEN) is root


def mark_written(session: Session) -> None:
    """Note that this transaction wrote claims or floors: books read in it from now on show
    uncommitted rows, so they are not kept in the cache."""
    session.info[WRITTEN] = session.get_transaction()


@sa.event.listens_for(Session, "before_commit")
def _confirm(session: Session) -> None:
    """Confirm the transaction's optimistic bookings under their sites' locks."""
    expected = _expected(session)
    if not expected or session.in_nested_transaction():
        return
    session.info.pop(EXPECTED, None)
    # Write what is still pending first, so that the sites' locks are held only for the
    # check and the commit itself.
    session.flush()
    sites = sorted({e.site_id for e in expected})
    ours = frozenset().union(*(e.contracts for e in expected))
    # From here the transaction has bumped the sites' ledgers: a book read now is at the new
    # generation but without this transaction's claims, so none may be cached.
    mark_written(session)
    # Lock and bump at once: the generations before the bump tell whether anything was
    # booked (or the fleet changed) on the site since the book the fit was made on.
    bumped = _bump(session, sites)
    if len(bumped) < len(sites):  # a site's first booking: make its ledger row
        missing = [sid for sid in sites if sid not in bumped]
        lock_sites(session, missing)
        bumped.update(_bump(session, missing))
    before = {sid: (supply, g - 1) for sid, (g, supply) in bumped.items()}
    moved = sorted({e.site_id for e in expected if before[e.site_id] != e.generations})
    # A book this process already holds at exactly those generations is the site as it is
    # (nothing can commit there while we hold the lock): check against it, reading nothing.
    books = {sid: b for sid in moved if (b := CACHE.exact(session, sid, before[sid]))}
    rest = [sid for sid in moved if sid not in books]
    books.update(CACHE.books(session, rest, without=ours) if rest else {})
    for e in expected:
        if e.site_id in books and not e.still_fits(books[e.site_id]):
            raise RetryTransaction(f"site {e.site_id} changed under an optimistic booking")
    deferred = [row for e in expected for row in e.claims]
    if deferred:
        session.execute(sa.insert(CapacityClaim), deferred)
    # Claims written before the lock may have ids older than claims others committed since;
    # a cache refreshed in between has read past them and would never see them ("unseen
    # claims have larger ids"). New ids, drawn under the lock, keep a site's claim ids in
    # commit order.
    early = frozenset().union(*(e.contracts for e in expected if not e.claims))
    if early:
        claim_ids = sa.func.nextval(sa.func.pg_get_serial_sequence("capacity_claims", "id"))
        session.execute(
            sa.update(CapacityClaim)
            .where(CapacityClaim.contract_id.in_(early))
            .values(id=claim_ids)
            .execution_options(synchronize_session=False)
        )


BUMP = (
    sa.update(CapacityLedger)
    .where(
        # Lock the rows in site id order, as `lock_sites` does (an UPDATE alone locks them
        # in whatever order it finds them, which can deadlock against a booking that locks
        # several sites).
        CapacityLedger.site_id.in_(
            sa.select(CapacityLedger.site_id)
            .where(CapacityLedger.site_id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(CapacityLedger.site_id)
            .with_for_update()
        )
    )
    .values(generation=CapacityLedger.generation + 1)
    .returning(
        CapacityLedger.site_id,
        CapacityLedger.generation,
        sa.select(Site.supply_generation)
        .where(Site.id == CapacityLedger.site_id)
        .scalar_subquery(),
    )
    .execution_options(synchronize_session=False)
)


def _bump(session: Session, site_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Add one to these sites' ledger generations; returns the new ones, each with the
    site's supply generation."""
    return {sid: (int(g), int(s)) for sid, g, s in session.execute(BUMP, {"ids": site_ids})}
