"""Benchmark the capacity calendar: quotes and bookings on a million GPUs and 10,000 contracts.

The fleet is `bench/fleet_apply.py`'s: 5 sites of 25,000 8-GPU nodes (1,000,000 GPUs, 10
fabrics of 20,000 GPUs per site, so 50 pools); sites 1, 2 and 4 hold H100, site 3 H200 and
site 5 B200. It is applied with `apply_fleet_file` to a fresh PostgreSQL database, then
10,000 active contracts are bulk-inserted (contract rows, `capacity_claims` and
`capacity_floors` planned against the calendar, ledgers bumped): 9,995 reserved contracts of
8 to 512 GPUs in whole nodes, and one internal contract per site with a floor of 5% of the
site's GPUs. Every contract started within the last year and ends within 3 years; terms
start and end on whole days, as contracts do.

What it measures:

- quotes: `create_quote` called in this process (each in its own transaction, commit
  included), warm cache, over random requests: accelerators (H100, H200, B200 and some
  GB200 that no site has), sizes from 8 to 16,384 GPUs, units (GPU, node, 200-GPU block),
  same-fabric or not, a site or any, start windows up to a year out and 0 to 90 days wide,
  terms of 1 to 36 months. Latency percentiles, and those of the availability part alone
  (reading the site books and planning; the rest is resolving names and storing the quote).
- baseline: the first of the same requests, each after dropping the cached site books, so
  that the quote loads every claim of every contract from the database and recomputes the
  calendar (the fleet's supply stays cached: the baseline recomputes what contracts take,
  not what the fleet holds). Speed-ups are baseline / cached on the same requests.
- HTTP quotes: a few `POST /v1/quotes` through the server, for scale.
- bookings: `neocloud serve --workers 2` on a copy of the database; 32 client threads post
  random reserved contracts (`POST /v1/contracts`: 8 to 512 GPUs at a named site or any,
  starting up to a year out, and one in ten a block of 5-20% of the H200 site starting
  within a month, so that the site runs out and bookings compete for it) for a fixed time.
  Bookings/s counts the 201s; every other answer must be a 409. The client threads use the
  standard library's http.client (`--client httpx` for httpx, which costs ~4 ms of CPU per
  request here, taken from the two cores the server and the database share).
- oversell check: after the bookings, independently of `neocloud.capacity`, the committed
  GPUs of every pool are recomputed from the `capacity_claims` rows at every breakpoint and
  compared with the pool's supply from the `nodes` rows (and the sites' power and floors).

Targets: quote p99 under 20 ms and at least 50x faster than the baseline (p50, end to end;
the availability part is reported beside it); at least 300 bookings/s; zero oversold pools.

Run it (progress on stderr, one JSON object on stdout; about 2 minutes on 2 cores):

    .venv/bin/python bench/capacity.py
    .venv/bin/python bench/capacity.py --quick      # a tenth of the fleet, under a minute

PostgreSQL is the server at postgresql://postgres@127.0.0.1:5432 (`--pg-url` to change);
the benchmark creates its own databases there and drops them when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fleet_apply import GPUS_PER_NODE, NODES, SITES, fleet_text

PG_URL = "postgresql://postgres@127.0.0.1:5432"
SITE_ACCELERATORS = ("H100", "H100", "H200", "H100", "B200")
CONTRACTS = 10_000
HORIZON_DAYS = 3 * 365
PAST_DAYS = 365
SIZES = (8, 16, 32, 64, 128, 256, 512)
SIZE_WEIGHTS = (10, 20, 25, 25, 12, 6, 2)
FILL = 0.9
"""The greedy generator keeps every pool at most this full, so that new bookings still fit."""
FLOOR_SHARE = 0.05
INTERNAL_SHARE = 0.02
TENANTS = 40
QUOTES = 300
BASELINE_QUOTES = 30
HTTP_QUOTES = 20
CLIENTS = 32
WORKERS = 2
BOOK_SECONDS = 30.0
BIG_SHARE = 0.1

QUOTE_P99_MS_TARGET = 20.0
SPEEDUP_TARGET = 50.0
BOOKINGS_PER_S_TARGET = 300.0

NEOCLOUD = str(Path(sys.executable).with_name("neocloud"))


def log(message: str) -> None:
    print(f"[capacity] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank), in the values' unit."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


# --- databases --------------------------------------------------------------------------


def sa_url(server_url: str, db: str) -> str:
    return f"{server_url.rstrip('/')}/{db}".replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def postgres_server(server_url: str) -> Iterator[tuple[Any, list[str]]]:
    """An admin connection; databases named in the yielded list are dropped on the way out."""
    import psycopg

    admin = psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True)
    created: list[str] = []
    try:
        yield admin, created
    finally:
        for db in created:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except psycopg.Error as exc:
                log(f"could not drop database {db}: {exc}")
        admin.close()


# --- setup: fleet, tenants, contracts -------------------------------------------------------


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


# --- requests --------------------------------------------------------------------------------


def quote_body(world: World, rng: random.Random) -> dict[str, Any]:
    """A random quote request, as JSON."""
    acc = rng.choices(("H100", "H200", "B200", "GB200"), (60, 18, 17, 5))[0]
    unit = rng.choices(("gpu", "node", "block"), (3, 5, 2))[0]
    if unit == "block":
        gpus = 200 * rng.choice((1, 2, 5, 10, 40))
    else:
        gpus = rng.choices((8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 16384), (3,) * 9 + (1,))[0]
    start = world.day0 + timedelta(days=rng.randint(1, 365))
    body: dict[str, Any] = {
        "tenant": rng.choice(world.tenants),
        "type": "reserved",
        "accelerator": acc,
        "gpus": gpus,
        "unit": unit,
        "same_fabric": rng.random() < 0.3,
        "start_after": start.isoformat(),
        "start_before": (start + timedelta(days=rng.choice((0, 7, 30, 90)))).isoformat(),
        "months": rng.choice((1, 3, 6, 12, 24, 36)),
    }
    sites = world.sites_of(acc)
    if sites and rng.random() < 0.3:
        body["site"] = rng.choice(sites)
    return body


def booking_body(world: World, rng: random.Random) -> dict[str, Any]:
    """A random reserved contract to book, as JSON.

    One in ten is a large block (5 to 20% of a site's GPUs, over several fabrics) at the
    H200 site, starting within a month, for a year or two: those soon exhaust the site, so
    that concurrent bookings compete for the last GPUs and some must be refused.
    """
    if rng.random() < BIG_SHARE:
        site = world.sites_of("H200")[0]
        supply = sum(p.gpus for p in world.pools if p.site == site)
        gpus = int(supply * rng.choice((0.05, 0.1, 0.2))) // GPUS_PER_NODE * GPUS_PER_NODE
        start_day = rng.randint(1, 30)
        end_day = start_day + rng.randint(365, 730)
        acc = "H200"
    else:
        acc = rng.choices(("H100", "H200", "B200"), (60, 20, 20))[0]
        site = rng.choice(world.sites_of(acc)) if rng.random() < 0.6 else ""
        gpus = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        start_day = rng.randint(1, 365)
        end_day = min(start_day + rng.randint(30, 730), HORIZON_DAYS)
    body: dict[str, Any] = {
        "tenant": rng.choice(world.tenants),
        "type": "reserved",
        "accelerator": acc,
        "gpus": gpus,
        "unit": "node",
        "start": (world.day0 + timedelta(days=start_day)).isoformat(),
        "end": (world.day0 + timedelta(days=end_day)).isoformat(),
    }
    if site:
        body["site"] = site
    return body


# --- quotes in this process ------------------------------------------------------------------


def quote_outcome(out: Any) -> str:
    return "options" if out.options else "unavailable"


def bench_quotes(url: str, bodies: list[dict[str, Any]], baseline_n: int) -> dict[str, Any]:
    """Time create_quote over the bodies (warm cache), then the baseline over the first ones."""
    from neocloud.auth.principal import SYSTEM
    from neocloud.capacity import state
    from neocloud.contracts import quotes
    from neocloud.contracts.schemas import QuoteCreate
    from neocloud.db.engine import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    requests = [QuoteCreate.model_validate(b) for b in bodies]
    # The availability part of a quote: reading the site books and planning on them (the
    # rest, resolving names and storing the quote with its audit event, is the same work in
    # the baseline).
    spent = [0.0]

    def timed(fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        return run

    state.CACHE.books = timed(state.CACHE.books)  # type: ignore[method-assign]
    for name in ("_committed", "_uncommitted", "_dedicated"):
        setattr(quotes, name, timed(getattr(quotes, name)))

    def one(body: QuoteCreate) -> tuple[float, str]:
        spent[0] = 0.0
        t = time.perf_counter()
        with transaction(factory) as session:
            out = quotes.create_quote(session, actor=SYSTEM, body=body)
        return (time.perf_counter() - t) * 1000, quote_outcome(out)

    t0 = time.perf_counter()
    one(requests[0])
    cold_ms = (time.perf_counter() - t0) * 1000
    for body in requests[1:10]:
        one(body)
    ms: list[float] = []
    part: list[float] = []
    outcomes: Counter[str] = Counter()
    for body in requests:
        t, outcome = one(body)
        ms.append(t)
        part.append(spent[0] * 1000)
        outcomes[outcome] += 1
    log(f"quotes: p50 {percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms")

    base_ms: list[float] = []
    base_part: list[float] = []
    for body in requests[:baseline_n]:
        state.CACHE.drop_commitments()
        t, _ = one(body)
        base_ms.append(t)
        base_part.append(spent[0] * 1000)
    log(f"baseline: p50 {percentile(base_ms, 50):.1f} ms")
    engine.dispose()
    n = len(base_ms)
    return {
        "quotes": {
            "requests": len(ms),
            "first_cold_ms": round(cold_ms, 1),
            **latency(ms),
            "availability_part": latency(part),
            "outcomes": dict(outcomes),
        },
        "baseline": {
            "requests": n,
            "what": "the same quotes, each after dropping the cached site books: every claim "
            "of every contract loaded from the database and the calendar recomputed "
            "(the fleet's supply stays cached)",
            **latency(base_ms),
            "availability_part": latency(base_part),
        },
        "speedup": {
            "what": "baseline / cached, on the same requests (the first "
            f"{n}); 'availability' compares only reading the books and planning",
            "end_to_end_p50": round(percentile(base_ms, 50) / percentile(ms[:n], 50), 1),
            "end_to_end_mean": round(statistics.fmean(base_ms) / statistics.fmean(ms[:n]), 1),
            "availability_p50": round(percentile(base_part, 50) / percentile(part[:n], 50), 1),
            "availability_mean": round(statistics.fmean(base_part) / statistics.fmean(part[:n]), 1),
        },
    }


# --- the server and its clients ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    """`neocloud serve --workers N` on the database until the block ends; yields its base URL."""
    import httpx

    port = free_port()
    log_file = Path(tempfile.gettempdir()) / f"neocloud-bench-{port}.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [NEOCLOUD, "serve", "--db", url, "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NEOCLOUD_BOOTSTRAP_TOKEN": ""},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"neocloud serve exited:\n{log_file.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"neocloud serve not ready:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not os.environ.get("NEOCLOUD_BENCH_KEEP_LOG"):  # set it to read the server's log
            log_file.unlink(missing_ok=True)


def http_quotes(base: str, token: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """A few quotes through HTTP, two at a time so that both workers warm up."""
    import httpx

    ms: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(part: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for body in part:
                t = time.perf_counter()
                r = client.post("/v1/quotes", json=body)
                with lock:
                    ms.append((time.perf_counter() - t) * 1000)
                    statuses[r.status_code] += 1

    # The first quotes of each worker load the calendar: warm both, then measure.
    threads = [threading.Thread(target=run, args=(bodies[:4],)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ms.clear()
    statuses.clear()
    run(bodies)
    return {"requests": len(ms), "statuses": dict(statuses), **latency(ms)}


class Poster:
    """POSTs JSON on one keep-alive connection: httpx, or the standard library's
    http.client (a tenth of httpx's CPU per request, which matters when the clients share
    two cores with the server and the database)."""

    def __init__(self, base: str, token: str, kind: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.kind = kind
        if kind == "httpx":
            import httpx

            self.httpx = httpx.Client(base_url=base, headers=self.headers, timeout=120)
        else:
            import http.client
            from urllib.parse import urlsplit

            url = urlsplit(base)
            self.conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        if self.kind == "httpx":
            r = self.httpx.post(path, json=body)
            return r.status_code, r.text
        self.conn.request("POST", path, json.dumps(body), self.headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read().decode()

    def close(self) -> None:
        if self.kind == "httpx":
            self.httpx.close()
        else:
            self.conn.close()


def book_load(
    base: str, token: str, world: World, clients: int, seconds: float, seed: int, kind: str
) -> dict[str, Any]:
    """`clients` threads posting random reserved contracts until the time is up."""
    results: list[tuple[int, float]] = []
    problems: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        mine: list[tuple[int, float]] = []
        poster = Poster(base, token, kind)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            body = booking_body(world, rng)
            t = time.perf_counter()
            status, text = poster.post("/v1/contracts", body)
            mine.append((status, time.perf_counter() - t))
            if status not in (201, 409):
                with lock:
                    problems[f"{status}: {text[:200]}"] += 1
        poster.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    statuses = Counter(s for s, _ in results)
    ms = [t * 1000 for _, t in results]
    created = statuses.get(201, 0)
    return {
        "clients": clients,
        "client": "httpx" if kind == "httpx" else "http.client (standard library)",
        "seconds": round(elapsed, 2),
        "attempts": len(results),
        "created_201": created,
        "conflict_409": statuses.get(409, 0),
        "other": sum(n for s, n in statuses.items() if s not in (201, 409)),
        "every_failure_a_409": set(statuses) <= {201, 409},
        "other_samples": dict(problems.most_common(3)),
        "bookings_per_s": round(created / elapsed, 1),
        "attempts_per_s": round(len(results) / elapsed, 1),
        "latency": latency(ms),
    }


# --- the independent oversell check ----------------------------------------------------------


def verify(url: str) -> dict[str, Any]:
    """Recompute, from the rows alone, committed vs supply per pool at every breakpoint.

    Supply of a pool is the GPUs of its in-service nodes while its site is live (the bench
    fleet has no deliveries or retirements); committed at hour t is the sum of the claims
    with start <= t < end. The site's power (committed watts vs power_mw / PUE) and the
    internal floors (customers vs supply - floor) are checked the same way.
    """
    import math

    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
    with conn:
        supply: dict[tuple[int, int, str], int] = {}
        kw: dict[tuple[int, int, str], Decimal] = {}
        for sid, acc, fabric, gpus, power in conn.execute(
            "SELECT n.site_id, n.accelerator_id, f.name, sum(n.gpus), sum(n.power_kw) "
            "FROM nodes n JOIN fabrics f ON f.id = n.fabric_id "
            "WHERE n.state IN ('burn-in', 'available', 'allocated') "
            "GROUP BY n.site_id, n.accelerator_id, f.name"
        ):
            supply[(sid, acc, fabric)] = int(gpus)
            kw[(sid, acc, fabric)] = Decimal(power)
        sites = {
            sid: (live_on, retired_on, Decimal(mw), Decimal(pue))
            for sid, live_on, retired_on, mw, pue in conn.execute(
                "SELECT id, live_on, retired_on, power_mw, pue FROM sites"
            )
        }
        claims = conn.execute(
            "SELECT site_id, accelerator_id, fabric, start_h, end_h, gpus, internal "
            "FROM capacity_claims"
        ).fetchall()
        floors = conn.execute(
            "SELECT site_id, accelerator_id, start_h, end_h, gpus FROM capacity_floors"
        ).fetchall()
        contracts = conn.execute("SELECT count(*) FROM contracts").fetchone()
    conn.close()

    def hour(d: Any) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) // 3600

    events: dict[tuple[int, int, str], list[tuple[int, int]]] = defaultdict(list)
    watts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    customers: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    outside_live = 0
    for sid, acc, fabric, a, b, gpus, internal in claims:
        key = (sid, acc, fabric)
        events[key] += [(a, gpus), (b, -gpus)]
        per_gpu = math.ceil(kw[key] * 1000 / supply[key]) if key in supply else 0
        watts[sid] += [(a, gpus * per_gpu), (b, -gpus * per_gpu)]
        if not internal:
            customers[(sid, acc)] += [(a, gpus), (b, -gpus)]
        live_on, retired_on, _, _ = sites[sid]
        if a < hour(live_on) or (retired_on and b > hour(retired_on)):
            outside_live += 1

    def peaks(deltas: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """(hour, level) at every breakpoint."""
        merged: dict[int, int] = defaultdict(int)
        for h, d in deltas:
            merged[h] += d
        level = 0
        for h in sorted(merged):
            level += merged[h]
            yield h, level

    oversold: list[dict[str, Any]] = []
    breakpoints = 0
    for key, deltas in events.items():
        for h, level in peaks(deltas):
            breakpoints += 1
            if level > supply.get(key, 0):
                oversold.append({"pool": list(key), "hour": h, "committed": level})
                break
    power_over = 0
    for sid, deltas in watts.items():
        _, _, mw, pue = sites[sid]
        it_watts = int(mw * 1_000_000 / pue)
        if any(level > it_watts for _, level in peaks(deltas)):
            power_over += 1
    floor_breaches = 0
    acc_supply: dict[tuple[int, int], int] = defaultdict(int)
    for (sid, acc, _), g in supply.items():
        acc_supply[(sid, acc)] += g
    for sid, acc, a, b, fg in floors:
        for h, level in peaks(customers[(sid, acc)]):
            if a <= h < b and level > acc_supply[(sid, acc)] - fg:
                floor_breaches += 1
                break
    return {
        "pools_checked": len(supply),
        "claims_checked": len(claims),
        "breakpoints_checked": breakpoints,
        "oversold_pools": len({tuple(o["pool"]) for o in oversold}),
        "oversold_samples": oversold[:3],
        "claims_outside_site_life": outside_live,
        "sites_over_power": power_over,
        "floor_breaches": floor_breaches,
        "contracts_in_db": int(contracts[0]) if contracts else 0,
    }


# --- entry point ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the fleet, short runs")
    parser.add_argument("--nodes", type=int, help=f"nodes in all (default {NODES:,})")
    parser.add_argument("--contracts", type=int, help=f"active contracts (default {CONTRACTS:,})")
    parser.add_argument("--quotes", type=int, help=f"timed quotes (default {QUOTES})")
    parser.add_argument("--baseline", type=int, help=f"baseline quotes (default {BASELINE_QUOTES})")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="booking client threads")
    parser.add_argument("--workers", type=int, default=WORKERS, help="API server processes")
    parser.add_argument(
        "--client",
        choices=("stdlib", "httpx"),
        default="stdlib",
        help="HTTP client of the booking threads (default: %(default)s, the lighter one)",
    )
    parser.add_argument("--seconds", type=float, help=f"booking phase (default {BOOK_SECONDS} s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (default: %(default)s)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    args.nodes = args.nodes or NODES // scale
    args.contracts = args.contracts or CONTRACTS // scale
    args.quotes = args.quotes or QUOTES // (3 if args.quick else 1)
    args.baseline = args.baseline or BASELINE_QUOTES // (3 if args.quick else 1)
    args.seconds = args.seconds or BOOK_SECONDS / (3 if args.quick else 1)
    if args.nodes < SITES * 2500:
        parser.error(f"--nodes must be at least {SITES * 2500} (one fabric per site)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    # Turn SIGTERM into SystemExit, so that the databases are dropped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    tag = uuid.uuid4().hex[:8]
    quotes_db, book_db = f"bench_capacity_{tag}_quotes", f"bench_capacity_{tag}_book"
    with postgres_server(args.pg_url) as (admin, created):
        admin.execute(f'CREATE DATABASE "{quotes_db}"')
        created.append(quotes_db)
        log(f"setup: {args.nodes:,} nodes, {args.contracts:,} contracts")
        world, setup_info = setup(sa_url(args.pg_url, quotes_db), args.nodes, args.contracts, 1)
        admin.execute(f'CREATE DATABASE "{book_db}" TEMPLATE "{quotes_db}"')
        created.append(book_db)

        rng = random.Random(args.seed)
        bodies = [quote_body(world, rng) for _ in range(args.quotes)]
        log(f"quotes: {args.quotes} in this process, then {args.baseline} baseline")
        quotes = bench_quotes(sa_url(args.pg_url, quotes_db), bodies, args.baseline)

        log(f"bookings: {args.clients} clients, {args.workers} workers, {args.seconds:.0f} s")
        with server(sa_url(args.pg_url, book_db), args.workers) as base:
            http = http_quotes(base, world.token, bodies[:HTTP_QUOTES])
            log(f"http quotes: p50 {http['p50_ms']} ms")
            booking = book_load(
                base, world.token, world, args.clients, args.seconds, args.seed, args.client
            )
        log(
            f"bookings: {booking['created_201']} created, {booking['conflict_409']} refused, "
            f"{booking['bookings_per_s']}/s"
        )
        log("verifying: committed vs supply at every breakpoint, from the rows")
        checked = verify(sa_url(args.pg_url, book_db))
    checked["contracts_match_201s"] = (
        checked["contracts_in_db"] == setup_info["contracts"] + booking["created_201"]
    )
    q = quotes["quotes"]
    report = {
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "database": "postgresql",
        "fleet": {
            "sites": SITES,
            "nodes": args.nodes,
            "gpus": args.nodes * GPUS_PER_NODE,
            "pools": len(world.pools),
            "accelerators": dict(Counter(p.accelerator for p in world.pools)),
        },
        "setup": setup_info,
        **quotes,
        "http_quotes": http,
        "booking": {"workers": args.workers, **booking},
        "verify": checked,
        "oversold_pools": checked["oversold_pools"],
        "targets": {
            "quote_p99_ms_max": QUOTE_P99_MS_TARGET,
            "speedup_vs_baseline_min": SPEEDUP_TARGET,
            "bookings_per_s_min": BOOKINGS_PER_S_TARGET,
            "oversold_pools": 0,
        },
        "targets_met": {
            "quote_p99_under_20ms": q["p99_ms"] < QUOTE_P99_MS_TARGET,
            "quotes_50x_faster_than_baseline": quotes["speedup"]["end_to_end_p50"]
            >= SPEEDUP_TARGET,
            "availability_50x_faster_than_baseline": quotes["speedup"]["availability_p50"]
            >= SPEEDUP_TARGET,
            "at_least_300_bookings_per_s": booking["bookings_per_s"] >= BOOKINGS_PER_S_TARGET,
            "zero_oversell": checked["oversold_pools"] == 0
            and checked["sites_over_power"] == 0
            and checked["floor_breaches"] == 0
            and checked["claims_outside_site_life"] == 0,
            "every_failure_a_409": booking["every_failure_a_409"],
        },
    }
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
