"""Benchmark the allocator on a 25,000-node (200,000-GPU) site, against first fit.

The site is `bench/fleet_apply.py`'s: 10 fabrics (pools) of 100 blocks of 25 nodes with
8 GPUs each. On it, with the placement core (`neocloud.placement.allocator`, the code the
API's reconcile runs):

- **whole site**: one dedicated contract wanting every GPU of every pool, placed by
  `reconcile` (time; every node must end up allocated);
- **reservations**: 10,000 contracts of mixed shapes placed one by one with `place` (70%
  whole nodes, mostly 1 to 3, some 8; 28% GPU counts of 1 to 16 that round up to nodes; 2%
  whole blocks of 200 GPUs), spread over the pools, filling the site to about 90%:
  placements/s, time per placement (p50/p99), blocks spanned per contract, and the GPUs left
  outside whole blocks (what a block contract could not use);
- **healing**: 1,000 failures of allocated nodes, each healed at once (`place` on the
  owner's want; 2% hot spares per pool): time per heal, how many were healed fully;
- **baseline**: the same reservations placed by first fit (the first free nodes of the
  pool in order, blocks ignored), in the same run: placements/s and the same measures;
- **through the database**: the same site applied as a fleet file to a fresh PostgreSQL
  database, a dedicated-site contract booked on it, and `POST /v1/placement/reconcile`'s
  service run for the site: the whole site placed (25,000 allocation rows and node states
  written, in one transaction), then a reconcile with nothing to do (`--no-db` skips this).

Targets: at least 5,000 placements/s, a whole-site placement under 2 s, peak memory under
1 GB.

Run it (progress on stderr, one JSON object on stdout; about half a minute; PostgreSQL on
127.0.0.1:5432 for the database part, `--pg-url` to change):

    .venv/bin/python bench/placement.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from neocloud.capacity.planner import Unit
from neocloud.placement.allocator import (
    Want,
    first_fit,
    fragmentation,
    nodes_for,
    place,
    reconcile,
)
from neocloud.placement.inventory import Inventory, NodeRow

FABRICS = 10
BLOCKS_PER_FABRIC = 100
NODES_PER_BLOCK = 25
GPUS_PER_NODE = 8
RESERVATIONS = 10_000
FAILURES = 1_000
SPARE_PCT = 2.0
PLACEMENTS_PER_S_TARGET = 5_000
WHOLE_SITE_SECONDS_TARGET = 2.0
PEAK_MEMORY_MB_TARGET = 1024.0


def log(message: str) -> None:
    print(f"[placement] {message}", file=sys.stderr, flush=True)


def site() -> list[NodeRow]:
    rows: list[NodeRow] = []
    for f in range(FABRICS):
        pool = (1, 1, f"ib-f{f:02d}")
        for b in range(BLOCKS_PER_FABRIC):
            for _ in range(NODES_PER_BLOCK):
                rows.append(NodeRow(len(rows) + 1, pool, f"su{b:03d}", GPUS_PER_NODE))
    return rows


def reservations(rng: random.Random) -> list[Want]:
    """Mixed shapes that fill the site to about 90%: 2% whole blocks, 28% GPU counts
    (1 to 16 GPUs, rounded up to whole nodes), 70% whole nodes (1 to 3, some 8)."""
    pools = [(1, 1, f"ib-f{f:02d}") for f in range(FABRICS)]
    out: list[Want] = []
    for cid in range(1, RESERVATIONS + 1):
        pool = rng.choice(pools)
        kind = rng.random()
        if kind < 0.02:
            want = Want(cid, pool, NODES_PER_BLOCK * GPUS_PER_NODE, Unit.BLOCK)
        elif kind < 0.3:
            want = Want(cid, pool, rng.randint(1, 16), Unit.GPU)
        else:
            nodes = rng.choice((1, 1, 1, 1, 2, 2, 2, 3)) if rng.random() < 0.97 else 8
            want = Want(cid, pool, nodes * GPUS_PER_NODE, Unit.NODE)
        out.append(want)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spans(inv: Inventory) -> float:
    held = inv.owner > 0
    pairs = np.unique(np.stack((inv.owner[held], inv.block[held])), axis=1)
    contracts = np.unique(inv.owner[held]).size
    return round(pairs.shape[1] / contracts, 3) if contracts else 0.0


def outside_whole_blocks(inv: Inventory) -> int:
    return sum(fragmentation(inv, p).outside_whole_blocks for p in range(len(inv.pools)))


def bench_whole_site(rows: list[NodeRow]) -> dict[str, Any]:
    inv = Inventory.build(rows)
    wants = [
        Want(1, pool, BLOCKS_PER_FABRIC * NODES_PER_BLOCK * GPUS_PER_NODE, Unit.NODE)
        for pool in inv.pools
    ]
    t = time.perf_counter()
    plan = reconcile(inv, wants)
    seconds = time.perf_counter() - t
    return {
        "seconds": round(seconds, 3),
        "nodes_allocated": int((inv.owner == 1).sum()),
        "every_node_allocated": bool((inv.owner == 1).all()),
        "short_gpus": sum(h.shortfall for h in plan.holdings),
    }


def bench_reservations(rows: list[NodeRow], wants: list[Want], smart: bool) -> dict[str, Any]:
    inv = Inventory.build(rows)
    times: list[float] = []
    placed = short = 0
    t0 = time.perf_counter()
    for w in wants:
        t = time.perf_counter()
        if smart:
            holding = place(inv, w).holdings[0]
            ok = holding.shortfall == 0
        else:
            p = inv.pool_index(w.pool)
            assert p is not None
            count = nodes_for(inv, p, w.gpus)
            nodes = first_fit(inv, p, count)
            ok = len(nodes) == count
            if ok:
                inv.take(nodes, w.contract_id)
        times.append(time.perf_counter() - t)
        placed += ok
        short += not ok
    seconds = time.perf_counter() - t0
    return {
        "policy": "topology-aware (neocloud)" if smart else "first fit",
        "contracts": len(wants),
        "placed": placed,
        "not_placed": short,
        "seconds": round(seconds, 3),
        "placements_per_s": round(len(wants) / seconds, 1),
        "per_placement_ms": {
            "p50": round(percentile(times, 50) * 1000, 4),
            "p99": round(percentile(times, 99) * 1000, 4),
            "mean": round(statistics.fmean(times) * 1000, 4),
        },
        "blocks_per_contract": spans(inv),
        "free_gpus_outside_whole_blocks": outside_whole_blocks(inv),
        "whole_free_blocks": int(
            sum(inv.whole_free(inv.blocks_of(p)).sum() for p in range(len(inv.pools)))
        ),
        "_inventory": inv,
    }


def bench_healing(inv: Inventory, wants: list[Want], rng: random.Random) -> dict[str, Any]:
    by_contract = {w.contract_id: w for w in wants}
    reconcile(inv, list(by_contract.values()), SPARE_PCT)  # the spare pools
    allocated = np.flatnonzero(inv.owner > 0).tolist()
    victims = rng.sample(allocated, FAILURES)
    times: list[float] = []
    healed = degraded = 0
    for node in victims:
        owner = int(inv.owner[node])
        if owner <= 0:
            continue
        t = time.perf_counter()
        inv.set_health(node, False)
        holding = place(inv, by_contract[owner]).holdings[0]
        times.append(time.perf_counter() - t)
        healed += holding.shortfall == 0
        degraded += holding.shortfall > 0
    return {
        "failures": len(times),
        "healed_fully": healed,
        "left_degraded": degraded,
        "spare_pct": SPARE_PCT,
        "per_heal_ms": {
            "p50": round(percentile(times, 50) * 1000, 4),
            "p99": round(percentile(times, 99) * 1000, 4),
            "mean": round(statistics.fmean(times) * 1000, 4),
        },
        "heals_per_s": round(len(times) / sum(times), 1),
    }


SITE_FILE = f"""\
apiVersion: neocloud/v1
sites:
  - name: bench-1
    location: Bench Town
    power_mw: 300
    pue: 1.2
    state: live
    dates: {{live: 2024-01-01}}
    fabrics:
      - name: ib-f{{i:02d}}
        count: {FABRICS}
        start: 0
        blocks:
          name: su{{i:03d}}
          count: {BLOCKS_PER_FABRIC}
          start: 0
          nodes: {{name: "b1-{{fabric}}-{{block}}-n{{i:02d}}", count: {NODES_PER_BLOCK}, accelerator: H100, gpus: {GPUS_PER_NODE}, power_kw: 8.8}}
"""


def bench_database(pg_url: str) -> dict[str, Any]:
    """The whole site placed through the reconcile service on PostgreSQL."""
    import uuid
    from datetime import UTC, datetime, timedelta

    import psycopg

    from neocloud.auth.principal import SYSTEM
    from neocloud.contracts import booking
    from neocloud.contracts.schemas import ContractCreate
    from neocloud.db import migrate
    from neocloud.db.engine import make_engine, make_sessionmaker, transaction
    from neocloud.fleet.apply import apply_fleet_file
    from neocloud.placement import service
    from neocloud.tenants import service as tenants
    from neocloud.tenants.models import TenantKind

    name = f"bench_placement_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        try:
            url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
            migrate.upgrade(url)
            engine = make_engine(url)
            factory = make_sessionmaker(engine)
            with transaction(factory) as s:
                apply_fleet_file(s, actor=SYSTEM, text=SITE_FILE)
                tenants.create_tenant(
                    s, actor=SYSTEM, name="lab", display_name="Lab", kind=TenantKind.CUSTOMER
                )
            start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            with transaction(factory) as s:
                booking.create_contract(
                    s,
                    actor=SYSTEM,
                    body=ContractCreate.model_validate(
                        {
                            "name": "whole-site",
                            "tenant": "lab",
                            "type": "dedicated-site",
                            "site": "bench-1",
                            "start": start.isoformat(),
                            "end": (start + timedelta(days=365)).isoformat(),
                        }
                    ),
                )
            out: dict[str, Any] = {"database": "postgresql"}
            for label in ("whole_site_seconds", "nothing_to_do_seconds"):
                t = time.perf_counter()
                with transaction(factory) as s:
                    result = service.reconcile(s, actor=SYSTEM, site="bench-1")
                out[label] = round(time.perf_counter() - t, 3)
                out[label.replace("seconds", "changes")] = len(result.sites[0].changes)
            engine.dispose()
            return out
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-db", action="store_true", help="skip the database part")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = site()
    log(f"site: {len(rows):,} nodes, {len(rows) * GPUS_PER_NODE:,} GPUs")
    whole = bench_whole_site(rows)
    log(f"whole site: {whole['seconds']} s")
    wants = reservations(rng)
    smart = bench_reservations(rows, wants, smart=True)
    log(f"reservations: {smart['placements_per_s']}/s")
    naive = bench_reservations(rows, wants, smart=False)
    log(f"first fit: {naive['placements_per_s']}/s")
    heal = bench_healing(smart.pop("_inventory"), wants, rng)
    naive.pop("_inventory")
    log(f"healing: {heal['heals_per_s']}/s")
    db = None if args.no_db else bench_database(args.pg_url)
    if db:
        log(f"through the database: whole site {db['whole_site_seconds']} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "cpu_count": os.cpu_count(),
        "site": {
            "nodes": len(rows),
            "gpus": len(rows) * GPUS_PER_NODE,
            "fabrics": FABRICS,
            "blocks": FABRICS * BLOCKS_PER_FABRIC,
            "nodes_per_block": NODES_PER_BLOCK,
        },
        "whole_site_dedicated": whole,
        "reservations": smart,
        "baseline_first_fit": naive,
        "healing": heal,
        "through_the_database": db,
        "peak_memory_mb": round(peak_mb, 1),
        "targets": {
            "placements_per_s_min": PLACEMENTS_PER_S_TARGET,
            "whole_site_seconds_max": WHOLE_SITE_SECONDS_TARGET,
            "peak_memory_mb_max": PEAK_MEMORY_MB_TARGET,
        },
        "targets_met": {
            "placements_per_s": smart["placements_per_s"] >= PLACEMENTS_PER_S_TARGET,
            "whole_site_under_2s": whole["seconds"] < WHOLE_SITE_SECONDS_TARGET
            and whole["every_node_allocated"]
            and (db is None or db["whole_site_seconds"] < WHOLE_SITE_SECONDS_TARGET),
            "peak_memory_under_1gb": peak_mb < PEAK_MEMORY_MB_TARGET,
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
