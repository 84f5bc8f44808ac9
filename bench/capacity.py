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

Targets: quote p99 under 20 ms and at least 50x faster than the baseline (p50 of the
availability part, which is what the baseline recomputes; end to end is reported beside it,
and includes ~2 ms of name lookups, storing and committing that both sides pay); at least
300 bookings/s; zero oversold pools.

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
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from capacity_world import (
    HORIZON_DAYS,
    SIZE_WEIGHTS,
    SIZES,
    World,
    log,
    setup,
)
from fleet_apply import GPUS_PER_NODE, NODES, SITES
from oversell import verify
from serving import serve

PG_URL = "postgresql://postgres@127.0.0.1:5432"
CONTRACTS = 10_000
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


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    """`neocloud serve --workers N` on the database until the block ends; yields its base URL."""
    with serve(url, workers, {"NEOCLOUD_BOOTSTRAP_TOKEN": ""}) as (base, _proc):
        yield base


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
