"""The capacity benchmark's world: the fleet applied, tenants and a token, and 10,000
contracts planned against the calendar and bulk-inserted (see `capacity.py`)."""

from __future__ import annotations

import random
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fleet_apply import GPUS_PER_NODE, fleet_text

SITE_ACCELERATORS = ("H100", "H100", "H200", "H100", "B200")
HORIZON_DAYS = 3 * 365
PAST_DAYS = 365
SIZES = (8, 16, 32, 64, 128, 256, 512)
SIZE_WEIGHTS = (10, 20, 25, 25, 12, 6, 2)
FILL = 0.9
"""The greedy generator keeps every pool at most this full, so that new bookings still fit."""
FLOOR_SHARE = 0.05
INTERNAL_SHARE = 0.02
TENANTS = 40


def log(message: str) -> None:
    print(f"[capacity] {message}", file=sys.stderr, flush=True)


@dataclass
class Pool:
    site_id: int
    site: str
    accelerator_id: int
    accelerator: str
    fabric: str
    gpus: int


@dataclass
class World:
    """What the setup made, for generating requests."""

    day0: datetime
    pools: list[Pool]
    tenants: list[str]
    internal_tenant: str
    token: str

    def sites_of(self, accelerator: str) -> list[str]:
        return sorted({p.site for p in self.pools if p.accelerator == accelerator})


def load_pools(session: Any) -> list[Pool]:
    import sqlalchemy as sa

    from neocloud.fleet.models import Accelerator, Fabric, Node, Site

    rows = session.execute(
        sa.select(
            Site.id,
            Site.name,
            Accelerator.id,
            Accelerator.name,
            Fabric.name,
            sa.func.sum(Node.gpus),
        )
        .join(Site, Node.site_id == Site.id)
        .join(Fabric, Node.fabric_id == Fabric.id)
        .join(Accelerator, Node.accelerator_id == Accelerator.id)
        .group_by(Site.id, Site.name, Accelerator.id, Accelerator.name, Fabric.name)
        .order_by(Site.id, Fabric.name)
    )
    return [Pool(s, sn, a, an, f, int(g)) for s, sn, a, an, f, g in rows]


@dataclass
class PlannedContract:
    name: str
    tenant: str
    pool: Pool
    start_day: int
    end_day: int
    gpus: int
    internal: bool = False
    floor_gpus: int | None = None


def plan_contracts(
    pools: list[Pool], tenants: list[str], internal: str, count: int, rng: random.Random
) -> list[PlannedContract]:
    """Random active contracts that fit the calendar: a greedy pass over day-level arrays.

    Days count from today (day 0) back PAST_DAYS and forward HORIZON_DAYS. Each site gets one
    internal contract holding INTERNAL_SHARE of its GPUs in its first pool, with a floor of
    FLOOR_SHARE; customers may take at most the site's supply minus the floor, and no pool
    is filled beyond FILL.
    """
    span = PAST_DAYS + HORIZON_DAYS
    pool_used = {id(p): [0] * span for p in pools}
    site_supply: dict[int, int] = defaultdict(int)
    for p in pools:
        site_supply[p.site_id] += p.gpus
    customer_used = {sid: [0] * span for sid in site_supply}
    out: list[PlannedContract] = []
    first_pool: dict[int, Pool] = {}
    for p in pools:
        first_pool.setdefault(p.site_id, p)
    for sid, p in first_pool.items():
        gpus = int(site_supply[sid] * INTERNAL_SHARE) // GPUS_PER_NODE * GPUS_PER_NODE
        floor = int(site_supply[sid] * FLOOR_SHARE) // GPUS_PER_NODE * GPUS_PER_NODE
        out.append(
            PlannedContract(f"bench-internal-{p.site}", internal, p, 0, span, gpus, True, floor)
        )
        for d in range(span):
            pool_used[id(p)][d] += gpus
    floor_of = {c.pool.site_id: c.floor_gpus or 0 for c in out}
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"could only place {len(out)} contracts; the fleet is too small")
        p = rng.choice(pools)
        gpus = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        a = PAST_DAYS - rng.randint(0, PAST_DAYS - 1)
        b = PAST_DAYS + rng.randint(1, HORIZON_DAYS - 1)
        used, cust = pool_used[id(p)], customer_used[p.site_id]
        cap = int(p.gpus * FILL)
        site_cap = site_supply[p.site_id] - floor_of[p.site_id]
        if max(used[a:b]) + gpus > cap or max(cust[a:b]) + gpus > site_cap:
            continue
        for d in range(a, b):
            used[d] += gpus
            cust[d] += gpus
        name = f"bench-{len(out):05d}"
        out.append(PlannedContract(name, rng.choice(tenants), p, a, b, gpus))
    return out


def setup(url: str, nodes: int, contracts: int, seed: int) -> tuple[World, dict[str, Any]]:
    """Apply the fleet, create tenants and a token, bulk-insert the contracts."""
    import sqlalchemy as sa

    from neocloud.auth import service as auth_service
    from neocloud.auth.principal import SYSTEM
    from neocloud.auth.roles import Role
    from neocloud.capacity.models import CapacityClaim, CapacityFloor, CapacityLedger
    from neocloud.capacity.timeline import at_hour, hour_of
    from neocloud.contracts.models import Contract, ContractState, ContractType, PriceModel
    from neocloud.core.timeutil import utcnow
    from neocloud.db.engine import make_engine, make_sessionmaker, transaction
    from neocloud.db.migrate import upgrade
    from neocloud.fleet.apply import apply_fleet_file
    from neocloud.tenants import service as tenant_service
    from neocloud.tenants.models import Tenant, TenantKind

    rng = random.Random(seed)
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    t0 = time.perf_counter()
    with transaction(factory) as session:
        apply_fleet_file(session, actor=SYSTEM, text=fleet_text(nodes, SITE_ACCELERATORS))
    fleet_seconds = time.perf_counter() - t0
    log(f"fleet applied in {fleet_seconds:.1f} s")

    t0 = time.perf_counter()
    customers = [f"customer-{i:02d}" for i in range(1, TENANTS + 1)]
    token = f"nc_bench_{secrets.token_hex(16)}"
    with transaction(factory) as session:
        for name in customers:
            tenant_service.create_tenant(session, actor=SYSTEM, name=name, display_name=name)
        tenant_service.create_tenant(
            session, actor=SYSTEM, name="ops", display_name="Ops", kind=TenantKind.INTERNAL
        )
        auth_service.create_token(
            session, actor=SYSTEM, name="bench-admin", role=Role.ADMIN, raw_token=token
        )
        pools = load_pools(session)
        tenant_ids = dict(session.execute(sa.select(Tenant.name, Tenant.id)).all())

    now = utcnow()
    day0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
    h0 = hour_of(day0) - PAST_DAYS * 24
    plan = plan_contracts(pools, customers, "ops", contracts, rng)
    stamp = {"created_at": now, "updated_at": now}
    with transaction(factory) as session:
        rows = [
            {
                "name": c.name,
                "tenant_id": tenant_ids[c.tenant],
                "type": ContractType.INTERNAL if c.internal else ContractType.RESERVED,
                "state": ContractState.BOOKED,
                "accelerator_id": c.pool.accelerator_id,
                "gpus": c.gpus,
                "site_id": c.pool.site_id,
                "same_fabric": False,
                "unit": "node",
                "start_at": at_hour(h0 + 24 * c.start_day),
                "end_at": at_hour(h0 + 24 * c.end_day),
                "price_model": PriceModel.PER_GPU_HOUR,
                "price": Decimal("2.50"),
                "currency": "USD",
                "take_or_pay": not c.internal,
                "prepayment_pct": Decimal(0),
                "sla_tier": "none",
                "lendable": False,
                "floors": [{"gpus": c.floor_gpus}] if c.floor_gpus else None,
                "revision": 1,
                "booked_at": now,
                **stamp,
            }
            for c in plan
        ]
        session.execute(sa.insert(Contract), rows)
        ids = dict(session.execute(sa.select(Contract.name, Contract.id)).all())
        session.execute(
            sa.insert(CapacityClaim),
            [
                {
                    "contract_id": ids[c.name],
                    "site_id": c.pool.site_id,
                    "accelerator_id": c.pool.accelerator_id,
                    "fabric": c.pool.fabric,
                    "start_h": h0 + 24 * c.start_day,
                    "end_h": h0 + 24 * c.end_day,
                    "gpus": c.gpus,
                    "internal": c.internal,
                    "exclusive": False,
                }
                for c in plan
            ],
        )
        session.execute(
            sa.insert(CapacityFloor),
            [
                {
                    "contract_id": ids[c.name],
                    "site_id": c.pool.site_id,
                    "accelerator_id": c.pool.accelerator_id,
                    "start_h": h0 + 24 * c.start_day,
                    "end_h": h0 + 24 * c.end_day,
                    "gpus": c.floor_gpus,
                    "share": None,
                }
                for c in plan
                if c.floor_gpus
            ],
        )
        # What every booking does: bump the ledgers of the sites it touched.
        session.execute(
            sa.insert(CapacityLedger),
            [{"site_id": sid, "generation": 1} for sid in sorted({p.site_id for p in pools})],
        )
    contracts_seconds = time.perf_counter() - t0
    engine.dispose()
    log(f"{len(plan):,} contracts inserted in {contracts_seconds:.1f} s")
    world = World(day0, pools, customers, "ops", token)
    info = {
        "method": "bulk insert of contract rows, capacity_claims and capacity_floors "
        "planned against the calendar, then the ledgers bumped (no history rows)",
        "contracts": len(plan),
        "reserved": sum(not c.internal for c in plan),
        "internal_with_floor": sum(c.internal for c in plan),
        "all_active_now": all(c.start_day <= PAST_DAYS < c.end_day for c in plan),
        "horizon_years": HORIZON_DAYS // 365,
        "committed_gpus_now": sum(c.gpus for c in plan),
        "fleet_apply_seconds": round(fleet_seconds, 2),
        "contracts_seconds": round(contracts_seconds, 2),
    }
    return world, info
