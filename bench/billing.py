"""Benchmark billing: a month of usage for 200,000 GPUs rated and invoiced for every tenant
on PostgreSQL, against a baseline of one SQL statement that computes the same totals.

The world (set up directly in the database, not timed): 25,000 nodes of 8 H100 in 5 sites
(200,000 GPUs); 400 customer tenants and the operator's own; reserved take-or-pay contracts
filling most of four sites, an internal contract on each, one site sold whole (per
MW-month), and on-demand and spot contracts running on the free nodes; 1,000,000 usage
intervals in November 2026 (40 per node), COPYed into the ledger and rolled up by
one INSERT ... SELECT that cuts each interval at the hours, as ingest
would have added them.

Timed:

- **rate and invoice**: `invoicing.run` for 2026-11 and every tenant — load (usage summed
  per contract from the hourly rollups in SQL, claims, availability, carries, price books),
  `rating.rate` per contract, every draft invoice and line written, committed;
- **baseline**: one SQL statement (GROUP BY per contract, then per tenant) that computes the
  same per-tenant totals straight from the raw intervals and the claims, each line rounded
  half to even as billing does.

Prints one JSON object: both times, their ratio, and whether every tenant's total matches to
the cent (it must). Targets: under 30 s, and within 5x the baseline.

    .venv/bin/python bench/billing.py [--nodes 25000] [--intervals-per-node 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(__file__))
from fleet_apply import fleet_text

PERIOD = "2026-11"
PS = datetime(2026, 11, 1, tzinfo=UTC)
PE = datetime(2026, 12, 1, tzinfo=UTC)
TERM = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 10, 1, tzinfo=UTC))
TENANTS = 400
SIZES = (8, 16, 32, 64, 128, 256, 512)
RESERVED_SHARE, INTERNAL_SHARE = 0.80, 0.10
USAGE_CONTRACTS = 600
TARGET_S, TARGET_RATIO = 30.0, 5.0

HALF_EVEN = """
CREATE OR REPLACE FUNCTION he(x numeric) RETURNS numeric IMMUTABLE LANGUAGE sql AS $$
  SELECT CASE WHEN abs(x * 100 - trunc(x * 100)) = 0.5
              THEN (trunc(x * 100) + CASE WHEN mod(trunc(x * 100), 2) = 0 THEN 0 ELSE sign(x) END) / 100
              ELSE round(x, 2) END
$$"""
"""Round to the cent, half to even (PostgreSQL's round() takes ties away from zero)."""

ROLLUP = """
INSERT INTO usage_rollups (hour, contract_id, site_id, accelerator_id, measured_gpu_seconds,
    billable_gpu_seconds, outside_term_gpu_seconds, node_down_gpu_seconds,
    maintenance_gpu_seconds, operator_fault_gpu_seconds, allocated_gpu_seconds, energy_wh)
SELECT h, i.contract_id, n.site_id, n.accelerator_id, SUM(x.s), SUM(x.s), 0, 0, 0, 0, 0, 0
FROM usage_intervals i
JOIN nodes n ON n.id = i.node_id
CROSS JOIN LATERAL generate_series(
    floor(extract(epoch FROM i.start_at) / 3600)::int,
    ceil(extract(epoch FROM i.end_at) / 3600)::int - 1) AS h
CROSS JOIN LATERAL (SELECT i.gpus * (LEAST(extract(epoch FROM i.end_at), (h + 1) * 3600.0)
    - GREATEST(extract(epoch FROM i.start_at), h * 3600.0))::bigint AS s) AS x
GROUP BY h, i.contract_id, n.site_id, n.accelerator_id
"""
"""The hourly rollups of the intervals, as ingest keeps them (every interval here is billable:
the bench's usage all runs on the nodes its contracts hold, inside their terms)."""

BASELINE = """
WITH used AS (
    SELECT contract_id, SUM(billable_gpu_seconds) AS s FROM usage_intervals
    WHERE start_at >= :ps AND start_at < :pe GROUP BY contract_id
), held AS (
    SELECT contract_id,
           SUM(gpus * GREATEST(0, LEAST(end_h, :pe_h) - start_h)) AS to_end,
           SUM(gpus * GREATEST(0, LEAST(end_h, :ps_h) - start_h)) AS to_start
    FROM capacity_claims GROUP BY contract_id
), lines AS (
    SELECT c.tenant_id,
      CASE
        WHEN c.price_model = 'per-mw-month' THEN
          he(c.price * c.mw * (EXTRACT(EPOCH FROM LEAST(c.end_at, :pe) - c.start_at) / 3600) / 730)
          - he(c.price * c.mw * (EXTRACT(EPOCH FROM GREATEST(LEAST(c.end_at, :ps), c.start_at) - c.start_at) / 3600) / 730)
        WHEN c.type IN ('reserved', 'internal', 'dedicated-site') THEN
          he(c.price * COALESCE(h.to_end, 0)) - he(c.price * COALESCE(h.to_start, 0))
        ELSE he(COALESCE(u.s, 0) * c.price / 3600)
      END AS amount
    FROM contracts c
    LEFT JOIN used u ON u.contract_id = c.id
    LEFT JOIN held h ON h.contract_id = c.id
    WHERE c.start_at < :pe AND c.end_at > :ps AND c.state IN ('booked', 'cancelled')
)
SELECT tenant_id, SUM(amount) FROM lines GROUP BY tenant_id HAVING SUM(amount) <> 0
"""


def log(message: str) -> None:
    print(f"[billing] {message}", file=sys.stderr, flush=True)


def counts(engine: sa.Engine) -> dict[str, Any]:
    """What a kept database holds; its invoices are dropped so the run starts clean."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM invoice_lines"))
        conn.execute(sa.text("DELETE FROM invoices"))
        one = lambda q: int(conn.execute(sa.text(q)).scalar_one())  # noqa: E731
        return {
            "contracts": one("SELECT count(*) FROM contracts"),
            "claims": one("SELECT count(*) FROM capacity_claims"),
            "usage_intervals": one("SELECT count(*) FROM usage_intervals"),
            "rollup_rows": one("SELECT count(*) FROM usage_rollups"),
            "tenants": one("SELECT count(*) FROM tenants"),
        }


@contextmanager
def database(pg_url: str, given: str | None = None, keep: bool = False) -> Iterator[str]:
    if given:
        yield given
        return
    name = f"nc_bench_billing_{uuid.uuid4().hex[:8]}"
    admin = f"{pg_url.rstrip('/')}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type,unused-ignore]
    url = f"postgresql+psycopg://{pg_url.split('://', 1)[1].rstrip('/')}/{name}"
    try:
        yield url
    finally:
        if keep:
            log(f"kept: --db {url}")
            return  # noqa: B012
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type,unused-ignore]


def hour(at: datetime) -> int:
    return int(at.timestamp()) // 3600


def setup(engine: sa.Engine, nodes: int, per_node: int, rng: random.Random) -> dict[str, Any]:
    from neocloud.auth.principal import SYSTEM
    from neocloud.db.engine import make_sessionmaker, transaction
    from neocloud.fleet.apply import apply_fleet_file

    factory = make_sessionmaker(engine)
    t0 = time.perf_counter()
    with transaction(factory) as s:
        apply_fleet_file(s, actor=SYSTEM, text=fleet_text(nodes))
    log(f"fleet applied in {time.perf_counter() - t0:.1f} s")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        acc = conn.execute(sa.text("SELECT id FROM accelerators WHERE name = 'H100'")).scalar_one()
        sites = conn.execute(sa.text("SELECT id, power_mw FROM sites ORDER BY id")).all()
        node_rows = conn.execute(
            sa.text(
                "SELECT n.id, n.site_id, f.name FROM nodes n JOIN fabrics f ON f.id = n.fabric_id"
                " ORDER BY n.site_id, n.id"
            )
        ).all()
        tenant_rows = [
            {
                "name": f"cust-{i:03d}",
                "display_name": f"Customer {i}",
                "kind": "customer",
                "currency": "USD",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(TENANTS)
        ] + [
            {
                "name": "ops",
                "display_name": "Operator",
                "kind": "internal",
                "currency": "USD",
                "created_at": now,
                "updated_at": now,
            }
        ]
        conn.execute(
            sa.text(
                "INSERT INTO tenants (name, display_name, kind, currency, created_at, updated_at) "
                "VALUES (:name, :display_name, :kind, :currency, :created_at, :updated_at)"
            ),
            tenant_rows,
        )
        tenant_ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM tenants ORDER BY id"))]
        customers, ops = tenant_ids[:-1], tenant_ids[-1]
        by_site: dict[int, list[tuple[int, str]]] = {}
        for nid, sid, fabric in node_rows:
            by_site.setdefault(sid, []).append((nid, fabric))
        contracts: list[dict[str, Any]] = []
        claims: list[dict[str, Any]] = []
        owner: dict[int, int] = {}  # node -> contract index
        free: list[int] = []

        def contract(**kw: Any) -> int:
            base = {
                "state": "booked",
                "accelerator_id": acc,
                "gpus": None,
                "mw": None,
                "site_id": None,
                "sites": None,
                "same_fabric": False,
                "unit": "gpu",
                "start_at": TERM[0],
                "end_at": TERM[1],
                "price_model": "per-gpu-hour",
                "currency": "USD",
                "commitment": None,
                "take_or_pay": False,
                "prepayment_pct": 0,
                "sla_tier": "none",
                "lendable": False,
                "notice_minutes": None,
                "floors": None,
                "quote_id": None,
                "revision": 1,
                "booked_at": now,
                "cancelled_at": None,
                "notes": None,
                "created_at": now,
                "updated_at": now,
            }
            contracts.append({**base, **kw, "name": f"c{len(contracts):05d}"})
            return len(contracts) - 1

        def hold(index: int, site: int, taken: list[tuple[int, str]], gpus: int) -> None:
            for nid, _ in taken:
                owner[nid] = index
            claims.append(
                {
                    "index": index,
                    "site_id": site,
                    "accelerator_id": acc,
                    "fabric": taken[0][1],
                    "start_h": hour(TERM[0]),
                    "end_h": hour(TERM[1]),
                    "gpus": gpus,
                    "internal": contracts[index]["type"] == "internal",
                    "exclusive": contracts[index]["type"] == "dedicated-site",
                }
            )

        *shared, whole = sorted(by_site)
        for sid in shared:
            pool = by_site[sid]
            cut_internal = int(len(pool) * INTERNAL_SHARE)
            i = contract(
                tenant_id=ops,
                type="internal",
                gpus=cut_internal * 8,
                site_id=sid,
                price=Decimal("1.596"),
            )
            hold(i, sid, pool[:cut_internal], cut_internal * 8)
            at, stop = cut_internal, int(len(pool) * (INTERNAL_SHARE + RESERVED_SHARE))
            while at < stop:
                gpus = rng.choice(SIZES)
                n = min(gpus // 8, stop - at)
                price = Decimal("2.2") + Decimal(rng.randrange(0, 20000)) / 10000
                i = contract(
                    tenant_id=rng.choice(customers),
                    type="reserved",
                    gpus=n * 8,
                    site_id=sid,
                    price=price,
                    take_or_pay=True,
                )
                hold(i, sid, pool[at : at + n], n * 8)
                at += n
            free.extend(nid for nid, _ in pool[at:])
        _, power_mw = (
            sites[-1] if sites[-1][0] == whole else next(s for s in sites if s[0] == whole)
        )
        pool = by_site[whole]
        i = contract(
            tenant_id=customers[0],
            type="dedicated-site",
            gpus=len(pool) * 8,
            mw=Decimal(power_mw),
            site_id=whole,
            price_model="per-mw-month",
            price=Decimal("712345.67"),
            take_or_pay=True,
        )
        hold(i, whole, pool, len(pool) * 8)
        usage_contracts = []
        for k in range(USAGE_CONTRACTS):
            kind = "on-demand" if k % 2 == 0 else "spot"
            usage_contracts.append(
                contract(
                    tenant_id=rng.choice(customers),
                    type=kind,
                    price=Decimal("3.99") if kind == "on-demand" else Decimal("1.3965"),
                )
            )
        for nid in free:
            owner[nid] = -1
        from neocloud.contracts.models import Contract

        conn.execute(sa.insert(Contract), contracts)
        by_name = dict(conn.execute(sa.text("SELECT name, id FROM contracts")).all())
        ids = [by_name[c["name"]] for c in contracts]
        conn.execute(
            sa.text(
                "INSERT INTO capacity_claims (contract_id, site_id, accelerator_id, fabric, start_h,"
                " end_h, gpus, internal, exclusive) VALUES (:contract_id, :site_id, :accelerator_id,"
                " :fabric, :start_h, :end_h, :gpus, :internal, :exclusive)"
            ),
            [
                {**{k: v for k, v in c.items() if k != "index"}, "contract_id": ids[c["index"]]}
                for c in claims
            ],
        )
    tenant_of = {ids[i]: c["tenant_id"] for i, c in enumerate(contracts)}
    log(f"{len(contracts):,} contracts, {len(claims):,} claims; writing usage intervals")
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(  # type: ignore[attr-defined]
            "COPY usage_intervals (tenant_id, contract_id, node_id, gpus, start_at, end_at,"
            " gpu_seconds, billable_gpu_seconds, source, event_id, event_time, ingested_at)"
            " FROM STDIN"
        ) as copy:
            slot = (PE - PS) // per_node
            written = 0
            for nid, owned in owner.items():
                for k in range(per_node):
                    cid = ids[owned] if owned >= 0 else ids[rng.choice(usage_contracts)]
                    start = PS + slot * k + timedelta(seconds=rng.randrange(0, 600))
                    length = rng.randrange(
                        int(slot.total_seconds() * 0.4), int(slot.total_seconds()) - 600
                    )
                    gpus = 8 if owned >= 0 else rng.randint(1, 8)
                    end = start + timedelta(seconds=length)
                    copy.write_row(
                        (
                            tenant_of[cid],
                            cid,
                            nid,
                            gpus,
                            start,
                            end,
                            gpus * length,
                            gpus * length,
                            "bench",
                            f"{nid}-{k}",
                            end,
                            now,
                        )
                    )
                    written += 1
        raw.commit()
    finally:
        raw.close()
    log(f"{written:,} intervals copied in {time.perf_counter() - t0:.1f} s; rolling up")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        rows = conn.execute(sa.text(ROLLUP)).rowcount
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.execute(sa.text(HALF_EVEN))
    log(f"{rows:,} rollup rows in {time.perf_counter() - t0:.1f} s")
    return {
        "contracts": len(contracts),
        "claims": len(claims),
        "usage_intervals": written,
        "rollup_rows": rows,
        "tenants": len(tenant_ids),
    }


def rate_and_invoice(engine: sa.Engine) -> tuple[float, dict[int, Decimal], dict[str, int]]:
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        out = _rate_and_invoice(engine)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        return out
    return _rate_and_invoice(engine)


def _rate_and_invoice(engine: sa.Engine) -> tuple[float, dict[int, Decimal], dict[str, int]]:
    from neocloud.auth.principal import SYSTEM
    from neocloud.billing import invoicing
    from neocloud.db.engine import make_sessionmaker, transaction

    factory = make_sessionmaker(engine)
    t0 = time.perf_counter()
    with transaction(factory) as s:
        result = invoicing.run(s, actor=SYSTEM, period=PERIOD, tenant=None, now=datetime.now(UTC))
        docs = len(result.documents)
    seconds = time.perf_counter() - t0
    with engine.connect() as conn:
        totals = {
            int(t): Decimal(v)
            for t, v in conn.execute(
                sa.text(
                    "SELECT tenant_id, SUM(total) FROM invoices WHERE period = :p GROUP BY tenant_id"
                ),
                {"p": PERIOD},
            )
        }
        lines = conn.execute(sa.text("SELECT count(*) FROM invoice_lines")).scalar_one()
    return seconds, totals, {"documents": docs, "lines": int(lines)}


def baseline(engine: sa.Engine) -> tuple[float, dict[int, Decimal]]:
    params = {"ps": PS, "pe": PE, "ps_h": hour(PS), "pe_h": hour(PE)}
    t0 = time.perf_counter()
    with engine.connect() as conn:
        totals = {int(t): Decimal(v) for t, v in conn.execute(sa.text(BASELINE), params)}
    return time.perf_counter() - t0, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=25_000)
    parser.add_argument("--intervals-per-node", type=int, default=40)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--db", help="a database an earlier run kept (--keep): skip the setup, drop the invoices"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    args = parser.parse_args()
    from neocloud.billing import invoicing  # noqa: F401 (imported before the clock starts)
    from neocloud.db.engine import make_engine
    from neocloud.db.migrate import upgrade

    with database(args.pg_url, args.db, args.keep) as url:
        engine = make_engine(url)
        if args.db:
            world = counts(engine)
        else:
            upgrade(url)
            world = setup(engine, args.nodes, args.intervals_per_node, random.Random(args.seed))
        log("warming up: one run and the baseline, then the invoices dropped")
        baseline(engine)
        rate_and_invoice(engine)
        counts(engine)
        log("rating and invoicing")
        ours_s, totals, written = rate_and_invoice(engine)
        log("baseline")
        base_s, base_totals = baseline(engine)
        engine.dispose()
    mismatched = sorted(
        t for t in set(totals) | set(base_totals) if totals.get(t) != base_totals.get(t)
    )
    result = {
        "benchmark": "billing",
        "database": "postgresql",
        "period": PERIOD,
        "gpus": args.nodes * 8,
        **world,
        **written,
        "seconds": {"rate_and_invoice": round(ours_s, 2), "baseline_group_by": round(base_s, 2)},
        "ratio": round(ours_s / base_s, 2) if base_s else None,
        "grand_total": str(sum(totals.values(), Decimal(0)).quantize(Decimal("0.01"))),
        "totals_match_to_the_cent": not mismatched,
        "mismatched_tenants": mismatched[:10],
        "targets": {
            "under_30_s": ours_s < TARGET_S,
            "within_5x_baseline": ours_s <= TARGET_RATIO * base_s,
        },
        "bench_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
