"""Benchmark metering ingest into PostgreSQL: the batch API and the bus, against raw COPY.

Setup: a fresh PostgreSQL database; `neocloud serve --workers 3` on it (`--workers`: one per
client, so that no worker runs two batches at once under one GIL); through the API a
site of 1,250 8-GPU H100 nodes, a tenant, 10 reserved contracts of 100 nodes each that start
this hour, and a placement reconcile (so each contract holds its nodes and usage is billable).

What it measures (each path for `--seconds`, default 60):

- api: `--clients` threads (standard library http.client) POST batches of 10,000 usage
  events (`POST /v1/usage/events`), every event new (distinct ids), one per held node and
  10 s interval. Events/s counts the events the server stored (`accepted`); the latency is
  per batch, client side.
- bus: batches of 1,000 events per message are published to a JetStream stream (memory
  storage) ahead of time; then `--consumers` (default 2) `neocloud meter consume` processes
  sharing one durable consumer drain it, `--bus-batch` events (default 20,000: 20 messages)
  per pull and transaction (a pull is not bound by the API's 10,000 a batch; twice that cut
  the consumers' CPU per event by a fifth). Events/s is rows stored per second from the
  first row on, read from the database; the p99 batch latency is the consumer's (pull to
  ack).
- baseline: the same rows (the tuples the ingest path COPYs) COPYed into an unindexed,
  unconstrained table, in one transaction, in this process.

Each path starts from an empty `usage_intervals` table. Deduplication is on in both paths
(the unique key on (tenant, source, event id), `ON CONFLICT DO NOTHING`). Targets: >= 100,000
events/s on the best path and >= 40% of the raw COPY rate. Peak memory: the largest resident
set (VmHWM) of the server's workers, of the consumer, and of this process.

Where the time goes: for each path, the CPU time per 10,000 events of the Python
processes (server workers or consumers), of their PostgreSQL backends, of autovacuum on the
benchmark's database and of the clients (this process), read from /proc over the measured
stretch, and how busy the machine's CPUs
were in all (`machine_busy_pct`; what the benchmark itself did not use was others' work).

    .venv/bin/python bench/ingest.py               # about 5 minutes
    .venv/bin/python bench/ingest.py --seconds 10  # a quick look

PostgreSQL is the server at postgresql://postgres@127.0.0.1:5432 (`--pg-url`), NATS the one
at nats://127.0.0.1:4222 (`--nats`); the benchmark creates its own database and stream and
drops them when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from serving import NEOCLOUD, serve

TOKEN = "nc_bench_ingest_admin"
BATCH = 10_000
PER_MESSAGE = 1_000
TAG = b"@@@@@@@@@@"
FLEET = """\
apiVersion: neocloud/v1
sites:
  - name: bench
    location: Bench Town
    power_mw: 30
    pue: 1.2
    state: live
    fabrics:
      - name: f01
        blocks:
          name: b{i:02d}
          count: 50
          nodes: {name: "bench-{block}-n{i:02d}", count: 25, accelerator: H100, gpus: 8, power_kw: 10.2}
"""


def log(message: str) -> None:
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hwm_kib(pid: int) -> int:
    """Peak resident set of a process (VmHWM), in KiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used, in seconds; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def backends(db: str, kind: str = "client backend") -> list[int]:
    """The PostgreSQL processes of a kind (client backends, or autovacuum workers) working
    on the benchmark's database (but this connection)."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = %s",
            (kind,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def sample_backends(meter: CpuMeter, db: str) -> None:
    meter.sample("postgresql", backends(db))
    meter.sample("autovacuum", backends(db, "autovacuum worker"))


class CpuMeter:
    """CPU time of groups of processes over a stretch, per 10,000 events."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[int, tuple[float, float]]] = {}
        self.machine = machine_ticks()

    def sample(self, group: str, pids: list[int]) -> None:
        """The CPU time of `pids` now; one not seen at the start started since (from 0)."""
        known = self.seen.setdefault(group, {})
        for pid in pids:
            if (now := cpu_s(pid)) > 0:
                known[pid] = (known[pid][0] if pid in known else 0.0, now)

    def start(self, group: str, pids: list[int]) -> None:
        self.seen[group] = {pid: (cpu_s(pid), cpu_s(pid)) for pid in pids}

    def per_10k_ms(self, events: int) -> dict[str, float]:
        batches = max(events / BATCH, 1e-9)
        out = {
            group: round(1000 * sum(b - a for a, b in known.values()) / batches, 1)
            for group, known in self.seen.items()
        }
        busy, total = machine_ticks()
        out["machine_busy_pct"] = round(
            100 * (busy - self.machine[0]) / max(total - self.machine[1], 1), 1
        )
        return out


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(p) for p in task.read_text().split()]
    return out


@contextmanager
def database(pg_url: str) -> Iterator[str]:
    name = f"nc_bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = f"{pg_url.rstrip('/')}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type,unused-ignore]
    try:
        yield f"{pg_url.rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type,unused-ignore]


@contextmanager
def server(db: str, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {"NEOCLOUD_BOOTSTRAP_TOKEN": TOKEN, "NEOCLOUD_PLACEMENT_INTERVAL": "0"}
    with serve(db, workers, env) as running:
        yield running


def setup(base: str) -> list[tuple[str, str]]:
    """The fleet, a tenant, 10 contracts placed now; returns (contract, node) pairs held."""
    c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
    r = c.post("/v1/fleet/apply", content=FLEET, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    r = c.post("/v1/tenants", json={"name": "bench", "display_name": "Bench", "kind": "customer"})
    assert r.status_code == 201, r.text
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for i in range(10):
        body = {
            "name": f"bench-{i}",
            "tenant": "bench",
            "type": "reserved",
            "accelerator": "H100",
            "gpus": 800,
            "unit": "node",
            "site": "bench",
            "start": hour.isoformat(),
            "end": (hour + timedelta(days=30)).isoformat(),
        }
        r = c.post("/v1/contracts", json=body)
        assert r.status_code == 201, r.text
    r = c.post("/v1/placement/reconcile", json={})
    assert r.status_code == 200, r.text
    pairs = []
    for i in range(10):
        nodes = c.get(f"/v1/contracts/bench-{i}/allocation").json()["nodes"]
        pairs += [(f"bench-{i}", n["name"]) for n in nodes]
    c.close()
    return pairs


def template(pairs: list[tuple[str, str]], size: int, start: datetime) -> bytes:
    """A JSON array of `size` usage events whose ids carry TAG (replaced per batch)."""
    events = []
    for i in range(size):
        contract, node = pairs[i % len(pairs)]
        s = start + timedelta(seconds=10 * (i // len(pairs)))
        e = s + timedelta(seconds=10)
        events.append(
            {
                "specversion": "1.0",
                "id": f"{TAG.decode()}-{i:05d}",
                "source": f"agent://{node}",
                "type": "neocloud.usage.v1",
                "time": e.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "data": {
                    "contract": contract,
                    "node": node,
                    "gpus": 8,
                    "start": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": e.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            }
        )
    return json.dumps(events, separators=(",", ":")).encode()


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def next(self) -> bytes:
        with self.lock:
            self.n += 1
            return b"%010d" % self.n


def bench_api(
    base: str, body: bytes, seconds: float, clients: int, db: str, workers: list[int]
) -> dict[str, Any]:
    port = int(base.rsplit(":", 1)[1])
    counter = Counter()
    latencies: list[float] = []
    accepted = [0]
    errors: list[str] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        while time.monotonic() < stop:
            payload = body.replace(TAG, counter.next())
            began = time.perf_counter()
            conn.request("POST", "/v1/usage/events", payload, headers)
            resp = conn.getresponse()
            data = resp.read()
            took = time.perf_counter() - began
            if resp.status != 200:
                errors.append(f"{resp.status}: {data[:300]!r}")
                return
            out = json.loads(data)
            with lock:
                latencies.append(took)
                accepted[0] += out["accepted"]
                if out["rejected"]:
                    errors.append(str(out["rejected"][:3]))
        conn.close()

    meter = CpuMeter()
    meter.start("python", workers)
    meter.start("postgresql", backends(db))
    meter.start("autovacuum", backends(db, "autovacuum worker"))
    meter.start("clients", [os.getpid()])
    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        sample_backends(meter, db)  # connections the pool opens, vacuum workers come and go
        time.sleep(0.5)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    meter.sample("python", workers)
    sample_backends(meter, db)
    meter.sample("clients", [os.getpid()])
    if errors:
        raise RuntimeError(f"api path failed: {errors[:3]}")
    return {
        "events_per_s": round(accepted[0] / elapsed),
        "events": accepted[0],
        "batches": len(latencies),
        "batch_events": BATCH,
        "clients": clients,
        "batch_latency_ms": {
            "p50": round(1000 * percentile(latencies, 0.5), 1),
            "p99": round(1000 * percentile(latencies, 0.99), 1),
        },
        "seconds": round(elapsed, 1),
        "cpu_ms_per_10k_events": meter.per_10k_ms(accepted[0]),
    }


def rows(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM usage_intervals").fetchone()
    return int(row[0]) if row else 0


async def prepublish(nats_url: str, stream: str, subject: str, body: bytes, n: int) -> None:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.MEMORY))
    pending = []
    for i in range(n):
        payload = body.replace(TAG, b"b%09d" % i)
        pending.append(asyncio.ensure_future(js.publish(subject, payload, stream=stream)))
        if len(pending) >= 64:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()


def bench_bus(
    db: str,
    nats_url: str,
    body: bytes,
    seconds: float,
    events: int,
    consumers: int,
    per_transaction: int = BATCH,
) -> dict[str, Any]:
    from neocloud.metering.consumer import delete_stream

    tag = uuid.uuid4().hex[:8]
    stream, subject = f"BENCH_{tag}", f"bench.{tag}.usage"
    messages = events // PER_MESSAGE
    log(f"bus: publishing {messages} messages of {PER_MESSAGE} events")
    asyncio.run(prepublish(nats_url, stream, subject, body, messages))
    before = rows(db)
    logs = [
        Path(tempfile.gettempdir()) / f"neocloud-consume-{tag}-{i}.log" for i in range(consumers)
    ]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for out_file in logs:
            with out_file.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            NEOCLOUD,
                            "meter",
                            "consume",
                            "--db",
                            db,
                            "--nats",
                            nats_url,
                            "--stream",
                            stream,
                            "--subject",
                            subject,
                            "--durable",
                            "bench",
                            "--max-messages",
                            str(per_transaction // PER_MESSAGE),
                            "--until-idle",
                            "2",
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        peak = 0
        while rows(db) == before:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(logs[0].read_text()[-3000:])
            time.sleep(0.05)
        meter = CpuMeter()
        meter.start("python", [p.pid for p in procs])
        meter.start("postgresql", backends(db))
        meter.start("autovacuum", backends(db, "autovacuum worker"))
        t0, n0 = time.monotonic(), rows(db)
        stop = t0 + seconds
        n1 = n0
        while time.monotonic() < stop and n1 - before < events:
            time.sleep(0.2)
            peak = max([peak] + [hwm_kib(p.pid) for p in procs])
            sample_backends(meter, db)
            n1 = rows(db)
        t1 = time.monotonic()
        meter.sample("python", [p.pid for p in procs])
        sample_backends(meter, db)
        peak = max([peak] + [hwm_kib(p.pid) for p in procs])
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        summaries = [json.loads(f.read_text().strip().splitlines()[-1]) for f in logs]
    finally:
        for f in logs:
            f.unlink(missing_ok=True)
        asyncio.run(delete_stream(stream, nats_url))
    summary = {
        "batch_p50_ms": max(x["batch_p50_ms"] for x in summaries),
        "batch_p99_ms": max(x["batch_p99_ms"] for x in summaries),
    }
    return {
        "events_per_s": round((n1 - n0) / (t1 - t0)),
        "events": n1 - before,
        "events_per_transaction": per_transaction,
        "batch_latency_ms": {"p50": summary["batch_p50_ms"], "p99": summary["batch_p99_ms"]},
        "seconds": round(t1 - t0, 1),
        "drained": n1 - before >= events,
        "consumers": consumers,
        "consumer_peak_rss_mib": round(peak / 1024),
        "cpu_ms_per_10k_events": meter.per_10k_ms(n1 - n0),
    }


def bench_copy(db: str, n: int) -> dict[str, Any]:
    """COPY n rows shaped like the ingest path's into an unindexed table."""
    now = int(time.time())
    with psycopg.connect(db) as conn:
        conn.execute(
            """CREATE TABLE bench_copy_baseline (
            tenant_id int, contract_id int, node_id int, gpus int, start_at timestamptz,
            end_at timestamptz, gpu_seconds bigint, billable_gpu_seconds bigint, source text,
            event_id text, event_time timestamptz, ingested_at timestamptz)"""
        )
        conn.commit()
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_copy_baseline FROM STDIN") as copy:
            at = datetime.fromtimestamp(now, UTC)
            for i in range(n):
                copy.write_row(
                    (
                        1,
                        1 + i % 10,
                        1 + i % 1000,
                        8,
                        at,
                        at,
                        80,
                        80,
                        f"agent://bench-{i % 1000}",
                        f"x{i:09d}",
                        at,
                        at,
                    )
                )
        conn.commit()
        elapsed = time.perf_counter() - began
        conn.execute("DROP TABLE bench_copy_baseline")
        conn.commit()
    return {"events_per_s": round(n / elapsed), "events": n, "seconds": round(elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument(
        "--bus-batch", type=int, default=2 * BATCH, help="events per pull and transaction"
    )
    parser.add_argument(
        "--bus-events",
        type=int,
        default=4_500_000,
        help="events published for the bus path (enough for 60 s at 75,000 events/s)",
    )
    parser.add_argument("--copy-events", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    load = round(os.getloadavg()[0], 2)

    with database(args.pg_url) as db:
        from neocloud.db.migrate import upgrade

        upgrade(db)
        with server(db, args.workers) as (base, proc):
            log("setting up the fleet and contracts")
            pairs = setup(base)
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
            api_body = template(pairs, BATCH, start)
            log(f"api: {args.clients} clients for {args.seconds:g} s")
            workers = children(proc.pid)
            api = bench_api(base, api_body, args.seconds, args.clients, db, workers)
            api["server_peak_rss_mib"] = round(
                max([hwm_kib(p) for p in children(proc.pid)] or [0]) / 1024
            )
        with psycopg.connect(db) as conn:  # each path starts from an empty table
            conn.execute("TRUNCATE usage_intervals CASCADE")
        log(f"bus: consumer for up to {args.seconds:g} s")
        bus = bench_bus(
            db,
            args.nats,
            template(pairs, PER_MESSAGE, start),
            args.seconds,
            args.bus_events,
            args.consumers,
            args.bus_batch,
        )
        log("baseline: COPY into an unindexed table")
        copy = bench_copy(db, args.copy_events)
    best = max(api["events_per_s"], bus["events_per_s"])
    result = {
        "benchmark": "ingest",
        "database": "postgresql",
        "dedupe": "unique (tenant, source, event id), ON CONFLICT DO NOTHING",
        "api": api,
        "bus": bus,
        "baseline_copy": copy,
        "ratio_to_copy": {
            "api": round(api["events_per_s"] / copy["events_per_s"], 3),
            "bus": round(bus["events_per_s"] / copy["events_per_s"], 3),
        },
        "targets": {
            "best_events_per_s": best,
            "best_ge_100k": best >= 100_000,
            "best_ge_40pct_of_copy": best >= 0.4 * copy["events_per_s"],
        },
        "bench_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
        "loadavg_at_start": load,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
