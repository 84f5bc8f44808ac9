"""Benchmark the money reports at the scale the design aims at: 10,000 contracts on
PostgreSQL, against a baseline of one SQL statement that computes the same revenue.

The world (set up directly in the database, not timed): 5 live sites of 8-GPU H100 nodes
(`fleet_apply.fleet_text`), 500 customer tenants and the operator's own, 10,000 contracts
with terms of 1 to 48 months starting between 2024 and 2028 — reserved take-or-pay at a
price per GPU-hour (one or two claims each, at one or two sites), internal showback, and
a few whole sites per MW-month — and their capacity claims (written as booking would; the
calendar's invariants are not the point here).

Timed, each in its own transaction, as the API runs them (`reports.build`):

- **revenue**: 2026 by month, split by site, customer and type;
- **backlog**: every remaining obligation at 2027-01-01 by quarter;
- **concentration**: 2026;
- **revenue-per-mw**: 2026, with the sites' active hours;
- **baseline**: one SQL statement that computes 2026's external ratable revenue per contract
  (the cumulative half-even rule, in the database) and sums it.

Prints one JSON object: the times, the baseline, and whether the revenue report's total
equals the baseline's to the cent (it must). Target: each report under 5 s.

    .venv/bin/python bench/reports.py [--contracts 10000] [--nodes 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

YEAR = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
AS_OF = datetime(2027, 1, 1, tzinfo=UTC)
TENANTS = 500
TARGET_S = 5.0

HALF_EVEN = """
CREATE OR REPLACE FUNCTION he(x numeric) RETURNS numeric IMMUTABLE LANGUAGE sql AS $$
  SELECT CASE WHEN abs(x * 100 - trunc(x * 100)) = 0.5
              THEN (trunc(x * 100) + CASE WHEN mod(trunc(x * 100), 2) = 0 THEN 0 ELSE sign(x) END) / 100
              ELSE round(x, 2) END
$$"""

BASELINE = """
WITH held AS (
    SELECT contract_id,
           SUM(gpus * GREATEST(0, LEAST(end_h, :b) - start_h)) AS to_b,
           SUM(gpus * GREATEST(0, LEAST(end_h, :a) - start_h)) AS to_a
    FROM capacity_claims GROUP BY contract_id
)
SELECT SUM(CASE
    WHEN c.price_model = 'per-mw-month' THEN
      he(c.price * c.mw * GREATEST(0, LEAST(:b, c.end_h) - c.start_h) / 730)
      - he(c.price * c.mw * GREATEST(0, LEAST(:a, c.end_h) - c.start_h) / 730)
    ELSE he(c.price * h.to_b) - he(c.price * h.to_a) END)
FROM (SELECT *, (EXTRACT(EPOCH FROM start_at) / 3600)::int AS start_h,
             (EXTRACT(EPOCH FROM end_at) / 3600)::int AS end_h FROM contracts) c
JOIN tenants t ON t.id = c.tenant_id AND t.kind = 'customer'
LEFT JOIN held h ON h.contract_id = c.id
"""


def log(message: str) -> None:
    print(f"[reports] {message}", file=sys.stderr, flush=True)


def hour(at: datetime) -> int:
    return int(at.timestamp()) // 3600


@contextmanager
def database(pg_url: str) -> Iterator[str]:
    name = f"nc_bench_reports_{uuid.uuid4().hex[:8]}"
    admin = f"{pg_url.rstrip('/')}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type,unused-ignore]
    try:
        yield f"postgresql+psycopg://{pg_url.split('://', 1)[1].rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type,unused-ignore]


def setup(engine: sa.Engine, contracts: int, nodes: int, rng: random.Random) -> dict[str, int]:
    from neocloud.auth.principal import SYSTEM
    from neocloud.capacity.models import CapacityClaim
    from neocloud.contracts.models import Contract
    from neocloud.db.engine import make_sessionmaker, transaction
    from neocloud.fleet.apply import apply_fleet_file
    from neocloud.tenants.models import Tenant

    with transaction(make_sessionmaker(engine)) as s:
        apply_fleet_file(s, actor=SYSTEM, text=fleet_text(nodes))
    with engine.begin() as conn:
        acc = conn.execute(sa.text("SELECT id FROM accelerators WHERE name = 'H100'")).scalar_one()
        sites = [r[0] for r in conn.execute(sa.text("SELECT id FROM sites ORDER BY id"))]
        conn.execute(
            sa.insert(Tenant),
            [
                {"name": f"cust-{i:03d}", "display_name": f"Customer {i}", "kind": "customer"}
                for i in range(TENANTS)
            ]
            + [{"name": "ops", "display_name": "Operator", "kind": "internal"}],
        )
        tenants = [r[0] for r in conn.execute(sa.text("SELECT id FROM tenants ORDER BY id"))]
        rows: list[dict[str, Any]] = []
        claims: list[tuple[int, int, int, int]] = []  # (row, site, start_h, end_h, gpus)
        for i in range(contracts):
            start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 5 * 365))
            end = start + timedelta(hours=730 * rng.randrange(1, 49))
            kind = rng.random()
            row: dict[str, Any] = {
                "name": f"c{i:05d}",
                "tenant_id": tenants[-1]
                if kind < 0.1
                else tenants[int(rng.paretovariate(1.2)) % TENANTS],
                "type": "internal" if kind < 0.1 else "reserved",
                "state": "booked",
                "accelerator_id": acc,
                "gpus": 8 * rng.randrange(1, 64),
                "start_at": start,
                "end_at": end,
                "price_model": "per-gpu-hour",
                "price": Decimal(rng.randrange(150, 400)) / 100,
                "take_or_pay": True,
            }
            if 0.1 <= kind < 0.102:
                row.update(
                    type="dedicated-site",
                    price_model="per-mw-month",
                    price=Decimal("1500000"),
                    mw=Decimal("20"),
                    site_id=rng.choice(sites),
                )
            rows.append(row)
            for _ in range(rng.choice((1, 1, 1, 2))):
                claims.append((i, rng.choice(sites), hour(start), hour(end)))
        conn.execute(sa.insert(Contract), rows)
        ids = dict(conn.execute(sa.text("SELECT name, id FROM contracts")).all())
        conn.execute(
            sa.insert(CapacityClaim),
            [
                {
                    "contract_id": ids[rows[i]["name"]],
                    "site_id": site,
                    "accelerator_id": acc,
                    "fabric": "ib-f01",
                    "start_h": a,
                    "end_h": b,
                    "gpus": rows[i]["gpus"],
                    "internal": rows[i]["type"] == "internal",
                    "exclusive": rows[i]["type"] == "dedicated-site",
                }
                for i, site, a, b in claims
            ],
        )
        conn.execute(sa.text(HALF_EVEN))
    return {"contracts": len(rows), "claims": len(claims), "tenants": len(tenants)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument(
        "--pg", default=os.environ.get("NEOCLOUD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()

    from neocloud.auth.principal import SYSTEM
    from neocloud.billing import reports
    from neocloud.db.engine import make_engine, make_sessionmaker
    from neocloud.db.migrate import upgrade

    with database(args.pg) as url:
        upgrade(url)
        engine = make_engine(url)
        world = setup(engine, args.contracts, args.nodes, random.Random(7))
        log(f"world: {world}")
        factory = make_sessionmaker(engine)
        timings: dict[str, float] = {}
        totals: dict[str, str] = {}
        for name, params in (
            ("revenue", {"start": YEAR[0], "end": YEAR[1]}),
            ("backlog", {}),
            ("concentration", {"start": YEAR[0], "end": YEAR[1]}),
            ("revenue-per-mw", {"start": YEAR[0], "end": YEAR[1]}),
        ):
            t0 = time.perf_counter()
            with factory() as s, s.begin():
                got = reports.build(s, actor=SYSTEM, name=name, as_of=AS_OF, now=AS_OF, **params)
            timings[name] = round(time.perf_counter() - t0, 3)
            totals[name] = str(getattr(got, "recognized", None) or getattr(got, "total", ""))
            log(f"{name}: {timings[name]} s")
        t0 = time.perf_counter()
        with engine.connect() as conn:
            baseline = conn.execute(
                sa.text(BASELINE), {"a": hour(YEAR[0]), "b": hour(YEAR[1])}
            ).scalar_one()
        baseline_s = round(time.perf_counter() - t0, 3)
        engine.dispose()
    same = Decimal(totals["revenue"]) == Decimal(baseline).quantize(Decimal("0.01"))
    print(
        json.dumps(
            {
                "world": world,
                "seconds": timings,
                "baseline_sql_s": baseline_s,
                "revenue_2026": totals["revenue"],
                "backlog_at_2027": totals["backlog"],
                "baseline_revenue_2026": str(Decimal(baseline).quantize(Decimal("0.01"))),
                "revenue_matches_baseline": same,
                "target_s": TARGET_S,
                "within_target": all(t <= TARGET_S for t in timings.values()),
            },
            indent=2,
        )
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
