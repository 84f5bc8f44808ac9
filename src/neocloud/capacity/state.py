"""Loads the calendar's `SiteBook`s from the database, and caches them by generation.

Supply comes from the fleet (nodes in service, scheduled deliveries, the site's lifecycle
dates); commitments from `capacity_claims` and `capacity_floors`. Each site carries two
counters: `sites.supply_generation` (bumped by fleet writers) and
`capacity_ledgers.generation` (bumped by every booking, amendment and cancellation). A
cached book is reused while both match, so a quote costs one small query plus arithmetic,
and several API processes stay correct because each one checks the database's counters.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Claim, Floor, Pool, PoolKey, SiteBook, SiteInfo
from neocloud.capacity.models import CapacityClaim, CapacityFloor, CapacityLedger
from neocloud.capacity.timeline import FOREVER, Hour, Steps, hour_of_date
from neocloud.db.engine import RETRIES_LEFT, RetryTransaction
from neocloud.fleet.models import (
    Accelerator,
    Block,
    Delivery,
    DeliveryState,
    Fabric,
    Node,
    NodeState,
    Site,
    SiteState,
)

IN_SERVICE = frozenset({NodeState.BURN_IN, NodeState.AVAILABLE, NodeState.ALLOCATED})
"""Node states that count as supply. Draining, failed and repair nodes are out of service
until they come back; retired nodes are gone."""
NVL72_GPUS = 72


def live_window(state: SiteState, live_on: Any, retired_on: Any) -> tuple[Hour, Hour]:
    """The hours during which a site can supply anything: from going live to retirement."""
    if state is SiteState.RETIRED:
        return FOREVER, FOREVER
    if state in (SiteState.PLANNED, SiteState.BUILDING):
        start = hour_of_date(live_on) if live_on else FOREVER
    else:
        start = hour_of_date(live_on) if live_on else 0
    end = hour_of_date(retired_on) if retired_on else FOREVER
    return start, max(start, end)


@dataclass(frozen=True)
class SiteRow:
    info: SiteInfo
    supply_generation: int
    ledger_generation: int


SITE_ROWS = sa.select(
    Site.id,
    Site.name,
    Site.pue,
    Site.power_mw,
    Site.state,
    Site.live_on,
    Site.retired_on,
    Site.supply_generation,
    sa.func.coalesce(CapacityLedger.generation, 0),
).outerjoin(CapacityLedger, CapacityLedger.site_id == Site.id)
SOME_SITE_ROWS = SITE_ROWS.where(Site.id.in_(sa.bindparam("ids", expanding=True)))
"""Built once: every quote and booking reads them."""


def site_rows(session: Session, site_ids: list[int] | None = None) -> dict[int, SiteRow]:
    rows = (
        session.execute(SITE_ROWS)
        if site_ids is None
        else session.execute(SOME_SITE_ROWS, {"ids": site_ids})
    )
    out: dict[int, SiteRow] = {}
    for sid, name, pue, mw, state, live_on, retired_on, sgen, lgen in rows:
        start, end = live_window(state, live_on, retired_on)
        info = SiteInfo(sid, name, Decimal(pue), Decimal(mw), start, end, int(lgen), int(sgen))
        out[sid] = SiteRow(info, int(sgen), int(lgen))
    return out


def _watts(kw: Decimal, gpus: int) -> int:
    return int((Decimal(kw) * 1000 / gpus).to_integral_value(ROUND_CEILING)) if gpus else 0


def load_pools(session: Session, info: SiteInfo) -> dict[PoolKey, Pool]:
    """The site's pools with their supply over time."""
    sid = info.id
    acc_names = dict(session.execute(sa.select(Accelerator.id, Accelerator.name)).all())
    live: dict[PoolKey, int] = defaultdict(int)
    down: dict[PoolKey, int] = defaultdict(int)
    kw: dict[PoolKey, Decimal] = defaultdict(Decimal)
    gpus_all: dict[PoolKey, int] = defaultdict(int)
    node_gpus: dict[PoolKey, Counter[int]] = defaultdict(Counter)
    rows = session.execute(
        sa.select(
            Node.accelerator_id,
            Fabric.name,
            Node.state,
            Node.gpus,
            sa.func.count(),
            sa.func.sum(Node.gpus),
            sa.func.sum(Node.power_kw),
        )
        .join(Fabric, Node.fabric_id == Fabric.id)
        .where(Node.site_id == sid, Node.state != NodeState.RETIRED)
        .group_by(Node.accelerator_id, Fabric.name, Node.state, Node.gpus)
    )
    for acc, fabric, state, per_node, count, gpus, power in rows:
        key = (sid, int(acc), str(fabric))
        (live if state in IN_SERVICE else down)[key] += int(gpus)
        kw[key] += Decimal(power)
        gpus_all[key] += int(gpus)
        node_gpus[key][int(per_node)] += int(count)
    blocks: dict[PoolKey, Counter[int]] = defaultdict(Counter)
    block_sums = (
        sa.select(
            Node.accelerator_id, Fabric.name.label("fabric"), sa.func.sum(Node.gpus).label("g")
        )
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Block, Node.block_id == Block.id)
        .where(Node.site_id == sid, Node.state != NodeState.RETIRED)
        .group_by(Node.accelerator_id, Fabric.name, Node.block_id)
        .subquery()
    )
    for acc, fabric, size, n in session.execute(
        sa.select(
            block_sums.c.accelerator_id, block_sums.c.fabric, block_sums.c.g, sa.func.count()
        ).group_by(block_sums.c.accelerator_id, block_sums.c.fabric, block_sums.c.g)
    ):
        blocks[(sid, int(acc), str(fabric))][int(size)] += int(n)

    deltas: dict[PoolKey, list[tuple[Hour, int]]] = defaultdict(list)
    start, end = info.live_from, info.live_until
    shapes: dict[PoolKey, tuple[int, int, int]] = {}
    for key in gpus_all:
        per_node = node_gpus[key].most_common(1)[0][0]
        block = blocks[key].most_common(1)[0][0] if blocks[key] else per_node
        shapes[key] = (per_node, block, _watts(kw[key], gpus_all[key]))
        if live[key] and start < end:
            deltas[key] += [(start, live[key]), (end, -live[key])]
    typical_block = {k[1]: s[1] for k, s in shapes.items()}
    for acc, dfabric, n, per_node, kw_node, expected in session.execute(
        sa.select(
            Delivery.accelerator_id,
            Delivery.fabric,
            Delivery.nodes,
            Delivery.gpus_per_node,
            Delivery.power_kw_per_node,
            Delivery.expected_on,
        ).where(Delivery.site_id == sid, Delivery.state == DeliveryState.SCHEDULED)
    ):
        key = (sid, int(acc), dfabric or "unassigned")
        if key not in shapes:
            name = acc_names.get(acc, "")
            block = typical_block.get(int(acc)) or (
                NVL72_GPUS if name.upper().startswith("GB") else int(per_node)
            )
            shapes[key] = (int(per_node), block, _watts(Decimal(kw_node), int(per_node)))
        arrive = max(hour_of_date(expected), start)
        if arrive < end:
            g = int(n) * int(per_node)
            deltas[key] += [(arrive, g), (end, -g)]
    return {
        key: Pool(
            sid,
            key[1],
            acc_names.get(key[1], str(key[1])),
            key[2],
            per_node,
            block,
            watts,
            Steps.from_deltas(deltas.get(key, [])),
            down.get(key, 0),
        )
        for key, (per_node, block, watts) in shapes.items()
    }


def load_commitments(
    session: Session, site_ids: list[int]
) -> tuple[dict[int, list[Claim]], dict[int, list[Floor]], dict[int, int]]:
    """Every claim and floor of these sites, and each site's largest claim id."""
    claims: dict[int, list[Claim]] = defaultdict(list)
    floors: dict[int, list[Floor]] = defaultdict(list)
    last: dict[int, int] = defaultdict(int)
    if not site_ids:
        return claims, floors, last
    c = CapacityClaim
    for claim_id, cid, sid, acc, fabric, a, b, g, internal, exclusive in session.execute(
        sa.select(
            c.id,
            c.contract_id,
            c.site_id,
            c.accelerator_id,
            c.fabric,
            c.start_h,
            c.end_h,
            c.gpus,
            c.internal,
            c.exclusive,
        ).where(c.site_id.in_(site_ids))
    ):
        claims[sid].append(Claim(cid, (sid, acc, fabric), a, b, g, bool(internal), bool(exclusive)))
        last[sid] = max(last[sid], claim_id)
    for sid, floor in _floors(session, site_ids):
        floors[sid].append(floor)
    return claims, floors, last


def _floors(session: Session, site_ids: list[int]) -> list[tuple[int, Floor]]:
    f = CapacityFloor
    return [
        (sid, Floor(cid, sid, acc, a, b, fg, Decimal(share) if share is not None else None))
        for cid, sid, acc, a, b, fg, share in session.execute(
            sa.select(
                f.contract_id, f.site_id, f.accelerator_id, f.start_h, f.end_h, f.gpus, f.share
            ).where(f.site_id.in_(site_ids))
        )
    ]


@dataclass
class Changes:
    """What a site's commitments look like now, against a cached book: the claims newer than
    the book's last one, how many claims the site has in all, and its floors."""

    claims: list[Claim]
    count: int
    floors: list[Floor]
    last: int


CHANGES = sa.text(
    """
    SELECT m.site_id,
           (SELECT count(*) FROM capacity_claims a WHERE a.site_id = m.site_id),
           (SELECT json_agg(json_build_array(f.contract_id, f.accelerator_id, f.start_h,
                                             f.end_h, f.gpus, f.share::text))
              FROM capacity_floors f WHERE f.site_id = m.site_id),
           c.id, c.contract_id, c.accelerator_id, c.fabric, c.start_h, c.end_h, c.gpus,
           c.internal, c.exclusive
      FROM unnest(CAST(:sites AS integer[]), CAST(:lasts AS integer[])) AS m (site_id, last_id)
      LEFT JOIN capacity_claims c ON c.site_id = m.site_id AND c.id > m.last_id
    """
)
"""Per site: its claim count, its floors, and its claims above a given id (PostgreSQL; plain
SQL, as it runs on every booking and SQLAlchemy's statement building would cost more)."""


def load_changes(session: Session, since: dict[int, int]) -> dict[int, Changes]:
    """Per site, the claims with an id above `since[site]`, the site's claim count and its
    floors: one PostgreSQL statement, so one snapshot (the count and the rows agree)."""
    ids = sorted(since)
    stmt = CHANGES.bindparams(sites=ids, lasts=[since[sid] for sid in ids])
    out: dict[int, Changes] = {}
    for row in session.execute(stmt):
        sid, count_now, site_floors, claim_id = row[:4]
        ch = out.get(sid)
        if ch is None:
            ch = out[sid] = Changes([], int(count_now), [], since[sid])
            for cid, acc, a, b, g, share in site_floors or []:
                share = Decimal(share) if share is not None else None
                ch.floors.append(Floor(cid, sid, acc, a, b, g, share))
        if claim_id is not None:
            cid, acc, fabric, a, b, g, internal, exclusive = row[4:]
            ch.claims.append(Claim(cid, (sid, acc, fabric), a, b, g, internal, exclusive))
            ch.last = max(ch.last, claim_id)
    return out


def _with_orphans(pools: dict[PoolKey, Pool], claims: list[Claim]) -> dict[PoolKey, Pool]:
    """Pools that only claims still name (their fabric was retired): zero supply, so the
    claims on them show up as conflicts instead of vanishing."""
    missing = {c.pool for c in claims} - set(pools)
    if not missing:
        return pools
    out = dict(pools)
    for key in missing:
        out[key] = Pool(key[0], key[1], str(key[1]), key[2], 1, 1, 0, Steps())
    return out


@dataclass(frozen=True)
class Cached:
    supply_generation: int
    ledger_generation: int
    book: SiteBook
    last_claim: int
    """The largest claim id in the book."""

    @property
    def generations(self) -> tuple[int, int]:
        return self.supply_generation, self.ledger_generation


class CalendarCache:
    """Per-process cache of site books, keyed by database URL and validated by generation.

    When only a site's ledger generation moved (bookings, amendments, cancellations), the
    book is brought up to date from what changed rather than reloaded, on PostgreSQL: claim
    ids come from a sequence and every writer of a site's claims holds the site's lock, so
    the claims a cached book has not seen are exactly those with a larger id, and the
    site's claim count tells whether any were deleted (then the site is reloaded whole).
    SQLite may reuse the id of a deleted row, so there every change reloads the site.
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
                        row.supply_generation, row.ledger_generation, book, last
                    )

        incremental = session.get_bind().dialect.name == "postgresql"
        stale: list[int] = []
        behind: dict[int, Cached] = {}
        for sid, row in rows.items():
            hit = self._books.get((url, sid))
            if hit is None or hit.supply_generation != row.supply_generation or not incremental:
                stale.append(sid)
            else:
                behind[sid] = hit
        if behind:
            changes = load_changes(session, {sid: hit.last_claim for sid, hit in behind.items()})
            for sid, hit in behind.items():
                ch = changes[sid]
                added = [c for c in ch.claims if c.contract_id not in without]
                count = ch.count - (len(ch.claims) - len(added))
                fresh = hit.book.refreshed(rows[sid].info, added, ch.floors)
                if count != len(hit.book.claims) + len(added) or fresh is None:
                    stale.append(sid)  # something was deleted, or a claim names a new pool
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
                row.info, _with_orphans(pools, site_claims), site_claims, floors.get(sid, [])
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
    sites = sorted({e.site_id for e in expected})
    ours = frozenset().union(*(e.contracts for e in expected))
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
    # The claims were written before the lock, so their ids may be older than claims others
    # committed since; a cache refreshed in between has read past them, and would never see
    # them ("unseen claims have larger ids", with a deletion hiding the count). New ids,
    # drawn under the lock, keep a site's claim ids in commit order.
    claim_ids = sa.func.nextval(sa.func.pg_get_serial_sequence("capacity_claims", "id"))
    session.execute(
        sa.update(CapacityClaim)
        .where(CapacityClaim.contract_id.in_(ours))
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
