"""Benchmark `fleet apply` at a million GPUs, against a plain bulk insert of the same rows.

What it measures, for each database (SQLite and PostgreSQL):

- baseline: on a freshly migrated database, insert the sites, fabrics, blocks and nodes of
  the fleet with plain SQLAlchemy Core executemany inserts, in one transaction (no parsing,
  no diff, no checks);
- apply: on another freshly migrated database, `apply_fleet_file` the generated fleet file
  (parse, expand, snapshot, plan with every check, write), in one transaction;
- reapply: apply the same file again to that database; it must change nothing.

The fleet is 5 sites of 25,000 nodes with 8 GPUs each: 125,000 nodes, 1,000,000 GPUs.
Each phase runs in its own Python process, so its peak memory (peak RSS of that process,
in MiB) is its own. Migrations run in the parent process and are not timed.

Targets: apply within 3x the baseline, the unchanged reapply under 10 s, and every phase
under 1 GiB of peak memory.

Run it (progress on stderr, one JSON object on stdout):

    .venv/bin/python bench/fleet_apply.py
    .venv/bin/python bench/fleet_apply.py --nodes 5000 --db sqlite

PostgreSQL is the server at postgresql://postgres@127.0.0.1:5432 (`--pg-url` to change);
the benchmark creates its own databases there and drops them when it ends.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

SITES = 5
NODES = 125_000
GPUS_PER_NODE = 8
NODE_KW = Decimal("10.2")
PUE = Decimal("1.2")
ACCELERATOR = "H100"
NODES_PER_BLOCK = 25
BLOCKS_PER_FABRIC = 100
CHUNK = 5000
PG_URL = "postgresql://postgres@127.0.0.1:5432"
DATABASES = ("sqlite", "postgresql")

APPLY_VS_BASELINE_TARGET = 3.0
REAPPLY_SECONDS_TARGET = 10.0
PEAK_MEMORY_MB_TARGET = 1024.0


def log(message: str) -> None:
    print(f"[fleet_apply] {message}", file=sys.stderr, flush=True)


# --- the fleet -------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockGroup:
    """`count` blocks named su{i:03d} from `start`, each with `nodes` nodes."""

    start: int
    count: int
    nodes: int


@dataclass(frozen=True)
class FabricGroup:
    """`count` fabrics named ib-f{i:02d} from `start`, each holding `blocks`."""

    start: int
    count: int
    blocks: tuple[BlockGroup, ...]


@dataclass(frozen=True)
class SiteLayout:
    name: str
    nodes: int
    fabrics: tuple[FabricGroup, ...]

    @property
    def power_mw(self) -> int:
        """Facility power with some headroom, so that the power check passes."""
        return math.ceil(self.nodes * NODE_KW * PUE / 1000) + 1


def site_nodes(total: int) -> list[int]:
    """Spread `total` nodes over the sites as evenly as possible."""
    return [total // SITES + (1 if i < total % SITES else 0) for i in range(SITES)]


def site_layout(index: int, nodes: int) -> SiteLayout:
    """Full fabrics of 100 blocks of 25 nodes, then one fabric holding what is left."""
    per_fabric = BLOCKS_PER_FABRIC * NODES_PER_BLOCK
    full_fabrics, rest = divmod(nodes, per_fabric)
    full_blocks, tail = divmod(rest, NODES_PER_BLOCK)
    fabrics: list[FabricGroup] = []
    if full_fabrics:
        fabrics.append(
            FabricGroup(1, full_fabrics, (BlockGroup(1, BLOCKS_PER_FABRIC, NODES_PER_BLOCK),))
        )
    if rest:
        blocks = []
        if full_blocks:
            blocks.append(BlockGroup(1, full_blocks, NODES_PER_BLOCK))
        if tail:
            blocks.append(BlockGroup(full_blocks + 1, 1, tail))
        fabrics.append(FabricGroup(full_fabrics + 1, 1, tuple(blocks)))
    return SiteLayout(f"bench-{index + 1}", nodes, tuple(fabrics))


def fleet_layout(nodes: int) -> list[SiteLayout]:
    return [site_layout(i, n) for i, n in enumerate(site_nodes(nodes))]


def fleet_text(nodes: int, accelerators: Sequence[str] = (ACCELERATOR,)) -> str:
    """The fleet file: counts and name patterns, as an operator would write it. Site i holds
    `accelerators[i % len(accelerators)]` (all H100 unless another benchmark asks)."""
    out = ["apiVersion: neocloud/v1", "sites:"]
    for index, site in enumerate(fleet_layout(nodes)):
        accelerator = accelerators[index % len(accelerators)]
        out += [
            f"  - name: {site.name}",
            f"    display_name: Bench {site.name}",
            "    location: Benchmark City",
            f"    power_mw: {site.power_mw}",
            f"    pue: {PUE}",
            "    state: live",
            "    dates: {planned: 2025-01-01, building: 2025-02-01, live: 2025-06-01}",
            "    fabrics:",
        ]
        for fabric in site.fabrics:
            out += [
                "      - name: ib-f{i:02d}",
                f"        start: {fabric.start}",
                f"        count: {fabric.count}",
                "        blocks:",
            ]
            for block in fabric.blocks:
                out += [
                    "          - name: su{i:03d}",
                    f"            start: {block.start}",
                    f"            count: {block.count}",
                    '            nodes: {name: "{site}-{fabric}-{block}-n{i:02d}", '
                    f"count: {block.nodes}, accelerator: {accelerator}, "
                    f"gpus: {GPUS_PER_NODE}, power_kw: {NODE_KW}}}",
                ]
    return "\n".join(out) + "\n"


def fleet_blocks(site: SiteLayout) -> Iterator[tuple[str, str, int]]:
    """(fabric, block, node count) of every block of a site, in file order."""
    for fabric_group in site.fabrics:
        for f in range(fabric_group.start, fabric_group.start + fabric_group.count):
            for block_group in fabric_group.blocks:
                for b in range(block_group.start, block_group.start + block_group.count):
                    yield f"ib-f{f:02d}", f"su{b:03d}", block_group.nodes


# --- measured phases (each in its own process) ------------------------------------------


def peak_memory_mb() -> float:
    """Peak RSS of this process in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def count_nodes(url: str) -> int:
    import sqlalchemy as sa

    from neocloud.db.engine import make_engine
    from neocloud.fleet.models import Node

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(Node)) or 0)
    finally:
        engine.dispose()


def baseline_node_rows(
    layout: list[SiteLayout],
    site_ids: dict[str, int],
    fabric_ids: dict[tuple[str, str], int],
    block_ids: dict[tuple[int, str], int],
    fixed: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """The node rows, named as the fleet file's pattern names them."""
    for site in layout:
        for fabric, block, count in fleet_blocks(site):
            fabric_id = fabric_ids[(site.name, fabric)]
            ids = {"site_id": site_ids[site.name], "fabric_id": fabric_id}
            ids["block_id"] = block_ids[(fabric_id, block)]
            for i in range(1, count + 1):
                yield {"name": f"{site.name}-{fabric}-{block}-n{i:02d}", **ids, **fixed}


def phase_baseline(url: str, nodes: int) -> dict[str, Any]:
    """Insert the fleet's rows with Core executemany, nothing else: the floor for any apply."""
    import sqlalchemy as sa

    from neocloud.core.timeutil import utcnow
    from neocloud.db.engine import make_engine
    from neocloud.fleet.models import Accelerator, Block, Fabric, Node, NodeState, Site, SiteState

    layout = fleet_layout(nodes)
    engine = make_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        now = utcnow()
        stamps = {"created_at": now, "updated_at": now}
        site_rows = [
            {
                "name": s.name,
                "display_name": f"Bench {s.name}",
                "location": "Benchmark City",
                "power_mw": Decimal(s.power_mw),
                "pue": PUE,
                "state": SiteState.LIVE,
                **stamps,
            }
            for s in layout
        ]
        conn.execute(sa.insert(Site), site_rows)
        site_ids = dict(conn.execute(sa.select(Site.name, Site.id)).all())

        fabrics = sorted({(s.name, f) for s in layout for f, _, _ in fleet_blocks(s)})
        conn.execute(
            sa.insert(Fabric), [{"site_id": site_ids[s], "name": f, **stamps} for s, f in fabrics]
        )
        fabric_query = sa.select(Site.name, Fabric.name, Fabric.id).join(Site)
        fabric_ids = {(s, f): i for s, f, i in conn.execute(fabric_query)}

        block_rows = [
            {"fabric_id": fabric_ids[(s.name, f)], "name": b, **stamps}
            for s in layout
            for f, b, _ in fleet_blocks(s)
        ]
        conn.execute(sa.insert(Block), block_rows)
        block_query = sa.select(Block.fabric_id, Block.name, Block.id)
        block_ids = {(f, b): i for f, b, i in conn.execute(block_query)}

        accelerator_id = conn.scalar(
            sa.select(Accelerator.id).where(Accelerator.name == ACCELERATOR)
        )
        fixed = {
            "accelerator_id": accelerator_id,
            "gpus": GPUS_PER_NODE,
            "power_kw": NODE_KW,
            "state": NodeState.AVAILABLE,
            **stamps,
        }
        rows = baseline_node_rows(layout, site_ids, fabric_ids, block_ids, fixed)
        while chunk := list(itertools.islice(rows, CHUNK)):
            conn.execute(sa.insert(Node), chunk)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds, "peak_memory_mb": peak_memory_mb(), "nodes_in_db": count_nodes(url)}


def phase_apply(url: str, nodes: int) -> dict[str, Any]:
    """`apply_fleet_file` in one transaction, as `neocloud fleet apply` does."""
    from neocloud.auth.principal import SYSTEM
    from neocloud.db.engine import make_engine, make_sessionmaker, transaction
    from neocloud.fleet.apply import apply_fleet_file

    text = fleet_text(nodes)
    engine = make_engine(url)
    start = time.perf_counter()
    with transaction(make_sessionmaker(engine)) as session:
        result = apply_fleet_file(session, actor=SYSTEM, text=text)
        summary = result.summary()
    seconds = time.perf_counter() - start
    engine.dispose()
    return {
        "seconds": seconds,
        "peak_memory_mb": peak_memory_mb(),
        "changed": summary["changed"],
        "counts": summary["counts"],
        "nodes_in_db": count_nodes(url),
    }


PHASES = {"baseline": phase_baseline, "apply": phase_apply}


def run_phase(phase: str, url: str, nodes: int) -> dict[str, Any]:
    """Run one phase in a fresh Python process and return what it measured."""
    cmd = [sys.executable, __file__, "--phase", phase, "--url", url, "--nodes", str(nodes)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- databases --------------------------------------------------------------------------


@contextmanager
def sqlite_databases(names: list[str]) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="neocloud-bench-") as tmp:
        yield {name: f"sqlite:///{Path(tmp) / name}.db" for name in names}


@contextmanager
def postgres_databases(server_url: str, names: list[str]) -> Iterator[dict[str, str]]:
    """Create uniquely named databases on the server; drop them on the way out."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    urls = {name: f"{server_url.rstrip('/')}/bench_fleet_{tag}_{name}" for name in names}
    created: list[str] = []
    admin = psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True)
    try:
        for name in names:
            db = f"bench_fleet_{tag}_{name}"
            admin.execute(f'CREATE DATABASE "{db}"')
            created.append(db)
        yield urls
    finally:
        for db in created:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except psycopg.Error as exc:
                log(f"could not drop database {db}: {exc}")
        admin.close()


def databases(
    kind: str, server_url: str, names: list[str]
) -> AbstractContextManager[dict[str, str]]:
    if kind == "sqlite":
        return sqlite_databases(names)
    return postgres_databases(server_url, names)


def migrate(url: str) -> None:
    from neocloud.db.migrate import upgrade

    upgrade(url)


def bench_database(kind: str, nodes: int, server_url: str) -> dict[str, Any]:
    with databases(kind, server_url, ["baseline", "apply"]) as urls:
        for url in urls.values():
            migrate(url)
        log(f"{kind}: baseline (bulk insert of {nodes:,} nodes)")
        baseline = run_phase("baseline", urls["baseline"], nodes)
        log(f"{kind}: baseline {baseline['seconds']:.2f} s")
        log(f"{kind}: apply")
        apply = run_phase("apply", urls["apply"], nodes)
        log(f"{kind}: apply {apply['seconds']:.2f} s")
        log(f"{kind}: reapply (unchanged)")
        reapply = run_phase("apply", urls["apply"], nodes)
        log(f"{kind}: reapply {reapply['seconds']:.2f} s, changed={reapply['changed']}")
    for name, result in (("baseline", baseline), ("apply", apply), ("reapply", reapply)):
        if result["nodes_in_db"] != nodes:
            raise RuntimeError(f"{kind} {name}: {result['nodes_in_db']} nodes stored, not {nodes}")
    if not apply["changed"] or apply["counts"]["nodes_created"] != nodes:
        raise RuntimeError(f"{kind} apply: unexpected result {apply['counts']}")
    if reapply["changed"]:
        raise RuntimeError(f"{kind} reapply changed something: {reapply['counts']}")
    ratio = apply["seconds"] / baseline["seconds"]
    memory = {
        "baseline": baseline["peak_memory_mb"],
        "apply": apply["peak_memory_mb"],
        "reapply": reapply["peak_memory_mb"],
    }
    return {
        "baseline_seconds": round(baseline["seconds"], 3),
        "baseline_nodes_per_s": round(nodes / baseline["seconds"]),
        "apply_seconds": round(apply["seconds"], 3),
        "apply_nodes_per_s": round(nodes / apply["seconds"]),
        "apply_vs_baseline": round(ratio, 2),
        "reapply_seconds": round(reapply["seconds"], 3),
        "reapply_nodes_per_s": round(nodes / reapply["seconds"]),
        "reapply_changed": reapply["changed"],
        "peak_memory_mb": memory,
        "targets_met": {
            "apply_within_3x_baseline": ratio <= APPLY_VS_BASELINE_TARGET,
            "reapply_under_10s": reapply["seconds"] < REAPPLY_SECONDS_TARGET,
            "peak_memory_under_1gb": max(memory.values()) < PEAK_MEMORY_MB_TARGET,
        },
    }


# --- entry point ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--nodes", type=int, default=NODES, help=f"nodes in all (default {NODES:,})"
    )
    parser.add_argument(
        "--db",
        default=",".join(DATABASES),
        help="databases to run, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (default: %(default)s)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    unknown = sorted(set(args.dbs) - set(DATABASES))
    if unknown or not args.dbs:
        parser.error(f"--db takes {', '.join(DATABASES)} (got {args.db!r})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.url, args.nodes)))
        return 0
    # Turn SIGTERM into SystemExit, so that the databases are dropped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    results = {kind: bench_database(kind, args.nodes, args.pg_url) for kind in args.dbs}
    report = {
        "sites": SITES,
        "nodes": args.nodes,
        "gpus": args.nodes * GPUS_PER_NODE,
        "targets": {
            "apply_vs_baseline_max": APPLY_VS_BASELINE_TARGET,
            "reapply_seconds_max": REAPPLY_SECONDS_TARGET,
            "peak_memory_mb_max": PEAK_MEMORY_MB_TARGET,
        },
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
