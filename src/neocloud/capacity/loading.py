"""Reading a site's calendar from the database: its supply (from the fleet: nodes in
service, scheduled deliveries, the site's lifecycle dates) and its commitments (claims and
floors), whole or as the changes since a known claim id. `state.CalendarCache` keeps what
these read."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.capacity.calendar import Claim, Floor, Pool, PoolKey, SiteInfo
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
READY = frozenset({NodeState.AVAILABLE, NodeState.ALLOCATED})
"""Nodes placement may hand out; the site's `spare_pct` of them are kept as hot spares."""
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
    removals: int = 0


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
    sa.func.coalesce(CapacityLedger.removals, 0),
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
    for sid, name, pue, mw, state, live_on, retired_on, sgen, lgen, removals in rows:
        start, end = live_window(state, live_on, retired_on)
        info = SiteInfo(sid, name, Decimal(pue), Decimal(mw), start, end, int(lgen), int(sgen))
        out[sid] = SiteRow(info, int(sgen), int(lgen), int(removals))
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
    ready: dict[PoolKey, int] = defaultdict(int)
    for acc, fabric, state, per_node, count, gpus, power in rows:
        key = (sid, int(acc), str(fabric))
        (live if state in IN_SERVICE else down)[key] += int(gpus)
        if state in READY:
            ready[key] += int(count)
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
    spare_pct = session.scalar(sa.select(Site.spare_pct).where(Site.id == sid)) or Decimal(0)
    for key in gpus_all:
        per_node = node_gpus[key].most_common(1)[0][0]
        block = blocks[key].most_common(1)[0][0] if blocks[key] else per_node
        shapes[key] = (per_node, block, _watts(kw[key], gpus_all[key]))
        # Hot spares are not for sale (placement keeps them for healing).
        spares = math.ceil(Decimal(spare_pct) / 100 * ready[key])
        live[key] = max(0, live[key] - spares * per_node)
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
    """A site's commitments against a cached book: the claims newer than the book's last
    one, and the site's floors."""

    claims: list[Claim]
    floors: list[Floor]
    last: int


CHANGES = sa.text(
    """
    SELECT m.site_id,
           (SELECT json_agg(json_build_array(f.contract_id, f.accelerator_id, f.start_h,
                                             f.end_h, f.gpus, f.share::text))
              FROM capacity_floors f WHERE f.site_id = m.site_id),
           c.id, c.contract_id, c.accelerator_id, c.fabric, c.start_h, c.end_h, c.gpus,
           c.internal, c.exclusive
      FROM unnest(CAST(:sites AS integer[]), CAST(:lasts AS integer[])) AS m (site_id, last_id)
      LEFT JOIN capacity_claims c ON c.site_id = m.site_id AND c.id > m.last_id
    """
)
"""Per site: its floors, and its claims above a given id (PostgreSQL; plain SQL, as it runs
on every booking and SQLAlchemy's statement building would cost more)."""


def load_changes(session: Session, since: dict[int, int]) -> dict[int, Changes]:
    """Per site, the claims with an id above `since[site]` and the site's floors, in one
    statement. Only additions: the caller knows from `capacity_ledgers.removals` that
    nothing was deleted since."""
    ids = sorted(since)
    stmt = CHANGES.bindparams(sites=ids, lasts=[since[sid] for sid in ids])
    out: dict[int, Changes] = {}
    for row in session.execute(stmt):
        sid, site_floors, claim_id = row[:3]
        ch = out.get(sid)
        if ch is None:
            ch = out[sid] = Changes([], [], since[sid])
            for cid, acc, a, b, g, share in site_floors or []:
                share = Decimal(share) if share is not None else None
                ch.floors.append(Floor(cid, sid, acc, a, b, g, share))
        if claim_id is not None:
            cid, acc, fabric, a, b, g, internal, exclusive = row[3:]
            ch.claims.append(Claim(cid, (sid, acc, fabric), a, b, g, internal, exclusive))
            ch.last = max(ch.last, claim_id)
    return out


def with_orphans(pools: dict[PoolKey, Pool], claims: list[Claim]) -> dict[PoolKey, Pool]:
    """Pools that only claims still name (their fabric was retired): zero supply, so the
    claims on them show up as conflicts instead of vanishing."""
    missing = {c.pool for c in claims} - set(pools)
    if not missing:
        return pools
    out = dict(pools)
    for key in missing:
        out[key] = Pool(key[0], key[1], str(key[1]), key[2], 1, 1, 0, Steps())
    return out
