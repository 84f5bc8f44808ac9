"""Loads the calendar's `SiteBook`s from the database, and caches them by generation.

Supply comes from the fleet (nodes in service, scheduled deliveries, the site's lifecycle
dates); commitments from `capacity_claims` and `capacity_floors`. Each site carries two
counters: `sites.supply_generation` (bumped by fleet writers) and
`capacity_ledgers.generation` (bumped by every booking, amendment and cancellation). A
cached book is reused while both match, so a quote costs one small query plus arithmetic,
and several API processes stay correct because each one checks the database's counters.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Claim, Floor, Pool, PoolKey, SiteBook, SiteInfo
from neocloud.capacity.models import CapacityClaim, CapacityFloor, CapacityLedger
from neocloud.capacity.timeline import FOREVER, Hour, Steps, hour_of_date
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


def site_rows(session: Session, site_ids: list[int] | None = None) -> dict[int, SiteRow]:
    stmt = sa.select(
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
    if site_ids is not None:
        stmt = stmt.where(Site.id.in_(site_ids))
    out: dict[int, SiteRow] = {}
    for sid, name, pue, mw, state, live_on, retired_on, sgen, lgen in session.execute(stmt):
        start, end = live_window(state, live_on, retired_on)
        info = SiteInfo(sid, name, Decimal(pue), Decimal(mw), start, end, int(lgen))
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
) -> tuple[dict[int, list[Claim]], dict[int, list[Floor]]]:
    claims: dict[int, list[Claim]] = defaultdict(list)
    floors: dict[int, list[Floor]] = defaultdict(list)
    if not site_ids:
        return claims, floors
    c = CapacityClaim
    for cid, sid, acc, fabric, a, b, g, internal, exclusive in session.execute(
        sa.select(
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
    f = CapacityFloor
    for cid, sid, acc, a, b, fg, share in session.execute(
        sa.select(
            f.contract_id, f.site_id, f.accelerator_id, f.start_h, f.end_h, f.gpus, f.share
        ).where(f.site_id.in_(site_ids))
    ):
        floors[sid].append(
            Floor(cid, sid, acc, a, b, fg, Decimal(share) if share is not None else None)
        )
    return claims, floors


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


class CalendarCache:
    """Per-process cache of site books, keyed by database URL and validated by generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, int], tuple[int, dict[PoolKey, Pool]]] = {}
        self._books: dict[tuple[str, int], tuple[int, int, SiteBook]] = {}

    def clear(self) -> None:
        with self._lock:
            self._pools.clear()
            self._books.clear()

    def books(self, session: Session, site_ids: list[int] | None = None) -> dict[int, SiteBook]:
        url = str(session.get_bind().engine.url)
        rows = site_rows(session, site_ids)
        out: dict[int, SiteBook] = {}
        stale: list[int] = []
        for sid, row in rows.items():
            hit = self._books.get((url, sid))
            if hit and hit[0] == row.supply_generation and hit[1] == row.ledger_generation:
                out[sid] = hit[2]
            else:
                stale.append(sid)
        if not stale:
            return out
        claims, floors = load_commitments(session, stale)
        for sid in stale:
            row = rows[sid]
            cached = self._pools.get((url, sid))
            if cached and cached[0] == row.supply_generation:
                pools = cached[1]
            else:
                pools = load_pools(session, row.info)
                with self._lock:
                    self._pools[(url, sid)] = (row.supply_generation, pools)
            site_claims = claims.get(sid, [])
            book = SiteBook(
                row.info, _with_orphans(pools, site_claims), site_claims, floors.get(sid, [])
            )
            with self._lock:
                self._books[(url, sid)] = (row.supply_generation, row.ledger_generation, book)
            out[sid] = book
        return out


CACHE = CalendarCache()


def lock_sites(session: Session, site_ids: list[int]) -> None:
    """Take the booking lock of these sites (in id order, so two bookings cannot deadlock).

    PostgreSQL: a row lock on each site's ledger row, held to the end of the transaction;
    bookings on other sites go on in parallel. SQLite: every write transaction already
    holds the database's single writer lock (BEGIN IMMEDIATE).
    """
    ids = sorted(set(site_ids))
    if not ids:
        return
    dialect = session.get_bind().dialect.name
    rows = [{"site_id": i, "generation": 0} for i in ids]
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CapacityLedger)
    session.execute(insert.values(rows).on_conflict_do_nothing(index_elements=["site_id"]))
    session.execute(
        sa.select(CapacityLedger.site_id)
        .where(CapacityLedger.site_id.in_(ids))
        .order_by(CapacityLedger.site_id)
        .with_for_update()
    )


def bump_ledgers(session: Session, site_ids: list[int]) -> None:
    """Record that these sites' commitments changed (caches elsewhere reload them)."""
    ids = sorted(set(site_ids))
    if ids:
        session.execute(
            sa.update(CapacityLedger)
            .where(CapacityLedger.site_id.in_(ids))
            .values(generation=CapacityLedger.generation + 1)
            .execution_options(synchronize_session=False)
        )
