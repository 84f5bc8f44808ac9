"""An independent checker of the capacity invariants, for the property-based tests.

It reads the tables as they are (nodes and their states, deliveries, sites with power, PUE and
lifecycle dates, capacity claims and floors, contracts) and evaluates every invariant hour by
hour at each breakpoint, the obvious way, with none of the calendar's step-function code
(`neocloud.capacity.calendar` / `state` / `timeline`): a bug there cannot hide here.

The invariants, at every hour:

- oversold: per pool (site x accelerator x fabric), GPUs committed <= GPUs supplied;
- power: per site, committed GPUs x their pool's watts per GPU <= facility MW / PUE;
- floor: per site and accelerator, while an internal floor is in force, customers hold none of
  it: customer commitments <= max(0, supply - floor) (a share floor is ceil(share x supply));
  the amount is what customers hold inside the floor;
- exclusive: a site held by a dedicated-site contract holds no other claim (and no second
  dedicated-site contract).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import neocloud.capacity.models
import neocloud.contracts.models
import neocloud.fleet.models
import neocloud.tenants.models  # noqa: F401  (registers the tables)
from neocloud.db.base import Base

NEVER = 10**8
"""An hour after every horizon (the calendar's "for ever" is the same distant year)."""
SUPPLYING_NODE_STATES = frozenset({"burn-in", "available", "allocated"})
"""Node states whose GPUs can be sold; draining, failed and repair nodes are out of service,
retired nodes are gone."""

PoolKey = tuple[int, int, str]


@dataclass(frozen=True)
class Batch:
    """GPUs present in a pool over [start, end)."""

    start: int
    end: int
    gpus: int


@dataclass
class PoolFacts:
    watts_per_gpu: int
    batches: list[Batch] = field(default_factory=list)

    def supply(self, hour: int) -> int:
        return sum(b.gpus for b in self.batches if b.start <= hour < b.end)


@dataclass(frozen=True)
class SiteFacts:
    name: str
    power_mw: Decimal
    pue: Decimal

    @property
    def it_watts(self) -> int:
        return math.floor(Fraction(self.power_mw) * 1_000_000 / Fraction(self.pue))


@dataclass(frozen=True)
class ClaimRow:
    contract_id: int
    pool: PoolKey
    start: int
    end: int
    gpus: int
    internal: bool
    exclusive: bool

    def active(self, hour: int) -> bool:
        return self.start <= hour < self.end


@dataclass(frozen=True)
class FloorRow:
    contract_id: int
    site_id: int
    accelerator_id: int
    start: int
    end: int
    gpus: int | None
    share: Decimal | None

    def active(self, hour: int) -> bool:
        return self.start <= hour < self.end

    def level(self, supply: int) -> int:
        if self.gpus is not None:
            return self.gpus
        assert self.share is not None
        return math.ceil(Fraction(self.share) * supply)


@dataclass
class Facts:
    """Everything the invariants depend on, read straight from the tables."""

    sites: dict[int, SiteFacts]
    pools: dict[PoolKey, PoolFacts]
    claims: list[ClaimRow]
    floors: list[FloorRow]
    accelerators: dict[int, str] = field(default_factory=dict)
    contracts: dict[int, str] = field(default_factory=dict)

    def breakpoints(self, start: int, end: int = NEVER) -> list[int]:
        """Every hour in [start, end) at which anything changes, and `start` itself."""
        hours = {start}
        for c in self.claims:
            hours |= {c.start, c.end}
        for f in self.floors:
            hours |= {f.start, f.end}
        for p in self.pools.values():
            for b in p.batches:
                hours |= {b.start, b.end}
        return sorted(h for h in hours if start <= h < end)


@dataclass(frozen=True)
class Broken:
    """One invariant broken at one hour. `amount`: GPUs (oversold, floor), watts (power),
    holders too many (exclusive)."""

    kind: str
    site: str
    accelerator: str | None
    fabric: str | None
    hour: int
    amount: int

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.kind, self.site, self.accelerator, self.fabric)


def hour_of(value: datetime | date | str) -> int:
    """Whole hours since the Unix epoch (dates at 00:00 UTC)."""
    if isinstance(value, str):
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) // 3600


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _live(state: str, live_on: Any, retired_on: Any) -> tuple[int, int]:
    """The hours a site supplies anything: a retired site never; a planned or building site
    from its live date (never without one); a live or draining site from its live date (or
    always), until its retirement date."""
    if state == "retired":
        return NEVER, NEVER
    if state in ("planned", "building"):
        start = hour_of(live_on) if live_on else NEVER
    else:
        start = hour_of(live_on) if live_on else 0
    end = hour_of(retired_on) if retired_on else NEVER
    return start, max(start, end)


def load(conn: Connection) -> Facts:
    """Read the facts from the database the API writes to."""
    t = Base.metadata.tables
    sites_t, nodes_t, fabrics_t = t["sites"], t["nodes"], t["fabrics"]
    deliveries_t, claims_t, floors_t = t["deliveries"], t["capacity_claims"], t["capacity_floors"]
    sites: dict[int, SiteFacts] = {}
    live: dict[int, tuple[int, int]] = {}
    for row in conn.execute(sa.select(sites_t)).mappings():
        sites[row["id"]] = SiteFacts(row["name"], Decimal(row["power_mw"]), Decimal(row["pue"]))
        live[row["id"]] = _live(_text(row["state"]), row["live_on"], row["retired_on"])

    pools: dict[PoolKey, PoolFacts] = {}
    in_service: dict[PoolKey, int] = defaultdict(int)
    power: dict[PoolKey, tuple[Decimal, int]] = {}
    nodes = sa.select(
        nodes_t.c.site_id,
        nodes_t.c.accelerator_id,
        fabrics_t.c.name,
        nodes_t.c.gpus,
        nodes_t.c.power_kw,
        nodes_t.c.state,
    ).join(fabrics_t, fabrics_t.c.id == nodes_t.c.fabric_id)
    for site_id, acc, fabric, gpus, kw, node_state in conn.execute(nodes):
        state = _text(node_state)
        if state == "retired":
            continue
        key = (site_id, acc, fabric)
        kw_sum, gpu_sum = power.get(key, (Decimal(0), 0))
        power[key] = (kw_sum + Decimal(kw), gpu_sum + gpus)
        if state in SUPPLYING_NODE_STATES:
            in_service[key] += gpus
    for key, (kw_sum, gpu_sum) in power.items():
        pools[key] = PoolFacts(math.ceil(Fraction(kw_sum) * 1000 / gpu_sum))
        start, end = live[key[0]]
        if in_service[key] and start < end:
            pools[key].batches.append(Batch(start, end, in_service[key]))
    scheduled = sa.select(deliveries_t).where(deliveries_t.c.state == "scheduled")
    for d in conn.execute(scheduled).mappings():
        key = (d["site_id"], d["accelerator_id"], d["fabric"] or "unassigned")
        if key not in pools:
            per_gpu = Fraction(Decimal(d["power_kw_per_node"])) * 1000 / d["gpus_per_node"]
            pools[key] = PoolFacts(math.ceil(per_gpu))
        start, end = live[key[0]]
        arrive = max(hour_of(d["expected_on"]), start)
        if arrive < end:
            pools[key].batches.append(Batch(arrive, end, d["nodes"] * d["gpus_per_node"]))

    claims = [
        ClaimRow(
            r["contract_id"],
            (r["site_id"], r["accelerator_id"], r["fabric"]),
            r["start_h"],
            r["end_h"],
            r["gpus"],
            bool(r["internal"]),
            bool(r["exclusive"]),
        )
        for r in conn.execute(sa.select(claims_t)).mappings()
    ]
    for c in claims:  # a claim on a pool that has nothing left: supply 0, draws nothing
        pools.setdefault(c.pool, PoolFacts(0))
    floors = [
        FloorRow(
            r["contract_id"],
            r["site_id"],
            r["accelerator_id"],
            r["start_h"],
            r["end_h"],
            r["gpus"],
            Decimal(r["share"]) if r["share"] is not None else None,
        )
        for r in conn.execute(sa.select(floors_t)).mappings()
    ]
    accelerators = dict(
        conn.execute(sa.select(t["accelerators"].c.id, t["accelerators"].c.name)).all()
    )
    contracts = dict(conn.execute(sa.select(t["contracts"].c.id, t["contracts"].c.name)).all())
    return Facts(sites, pools, claims, floors, accelerators, contracts)


def broken(facts: Facts, hours: Iterable[int]) -> list[Broken]:
    """Every invariant broken at each of `hours`."""
    out: list[Broken] = []
    acc_name = facts.accelerators.get
    for h in hours:
        active = [c for c in facts.claims if c.active(h)]
        committed: dict[PoolKey, int] = defaultdict(int)
        for c in active:
            committed[c.pool] += c.gpus
        for key, gpus in committed.items():
            supply = facts.pools[key].supply(h) if key in facts.pools else 0
            if gpus > supply:
                where = facts.sites[key[0]].name
                out.append(Broken("oversold", where, acc_name(key[1]), key[2], h, gpus - supply))
        for sid, site in facts.sites.items():
            mine = [c for c in active if c.pool[0] == sid]
            watts = sum(
                c.gpus * (facts.pools[c.pool].watts_per_gpu if c.pool in facts.pools else 0)
                for c in mine
            )
            if watts > site.it_watts:
                out.append(Broken("power", site.name, None, None, h, watts - site.it_watts))
            for acc in sorted({f.accelerator_id for f in facts.floors if f.site_id == sid}):
                supply = sum(
                    p.supply(h) for k, p in facts.pools.items() if k[0] == sid and k[1] == acc
                )
                floor = max(
                    (
                        f.level(supply)
                        for f in facts.floors
                        if f.site_id == sid and f.accelerator_id == acc and f.active(h)
                    ),
                    default=0,
                )
                customers = sum(c.gpus for c in mine if c.pool[1] == acc and not c.internal)
                held = min(customers, customers - (supply - floor))  # customers in the floor
                if floor > 0 and held > 0:
                    out.append(Broken("floor", site.name, acc_name(acc), None, h, held))
            dedicated = {c.contract_id for c in mine if c.exclusive}
            others = {c.contract_id for c in mine if not c.exclusive}
            if dedicated and len(dedicated) + len(others) > 1:
                too_many = len(dedicated) + len(others) - 1
                out.append(Broken("exclusive", site.name, None, None, h, too_many))
    return out


def broken_from(facts: Facts, start: int) -> list[Broken]:
    """Every invariant broken at any hour from `start` on (checked at each breakpoint)."""
    return broken(facts, facts.breakpoints(start))


def no_worse(before: Facts, after: Facts, start: int) -> list[str]:
    """What `after` breaks that `before` did not, or breaks by more, at any hour from `start`.

    A booking, amendment or cancellation may leave a conflict that supply changes caused, but
    must never add one or deepen it.
    """
    hours = sorted(set(before.breakpoints(start)) | set(after.breakpoints(start)))
    was = {(b.key, b.hour): b.amount for b in broken(before, hours)}
    problems: list[str] = []
    for b in broken(after, hours):
        old = was.get((b.key, b.hour))
        if old is None or b.amount > old:
            problems.append(f"{b} (before: {old})")
    return problems
