"""Concurrent booking through the HTTP API: two `neocloud serve` processes on one PostgreSQL.

Many clients book, amend and cancel at once, alternating between the two processes (each has
its own in-process calendar cache, so only the database can keep them honest). Afterwards the
database's rows are checked with plain SQL, independently of `neocloud.capacity`: no pool,
site power or internal floor is oversold at any hour, a dedicated site holds nothing else,
every refusal was a 409 saying why, and what the clients were told was booked is exactly what
`capacity_claims` holds. Also: N clients racing for room for exactly K of them (K succeed),
bookings and moves that lock two sites in opposite orders (no deadlock surfaces as a 500),
and amendments that would stretch or move an internal floor onto sold capacity (409).

The cluster tests need PostgreSQL (`-m postgres`); `-m "not slow"` leaves out the long run.
"""

from __future__ import annotations

import os
import random
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import pg_exec, pg_url
from tests.servers import running

ADMIN = "nc_stress_admin_token"
PROBLEM = "application/problem+json"
REASON = re.compile(r"capacity|GPUs|site|floor|power|dedicated", re.IGNORECASE)
IN_SERVICE = ("burn-in", "available", "allocated")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the cluster: one database, two server processes ----------------------------------------


@dataclass
class Cluster:
    urls: list[str]
    dsn: str


@pytest.fixture(scope="module")
def cluster(pg_template: str) -> Iterator[Cluster]:
    """A fresh migrated PostgreSQL database served by two separate `neocloud serve`
    processes (not workers of one), so no per-process cache or lock can hide a race."""
    name = f"nc_stress_{uuid.uuid4().hex[:10]}"
    pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        env = {"NEOCLOUD_DB_URL": pg_url(name), "NEOCLOUD_BOOTSTRAP_TOKEN": ADMIN}
        with running(["serve"], env=env) as one, running(["serve"], env=env) as two:
            dsn = pg_url(name).replace("postgresql+psycopg://", "postgresql://", 1)
            yield Cluster([one, two], dsn)
    finally:
        pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin(url: str) -> httpx.Client:
    """An admin client of one server (generous timeout: bookings may wait for site locks)."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120)


def server_log(url: str) -> str:
    """The tail of a server's log (where `tests.servers.running` writes it), for failures."""
    port = url.rsplit(":", 1)[1]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"neocloud-{port}.log"
    try:
        return log.read_text(errors="replace")[-6000:]
    except OSError:
        return "(no log)"


def setup_world(cluster: Cluster, fleet: str, tenants: dict[str, str]) -> None:
    """Load a fleet file and tenants through the API, as an operator would."""
    with admin(cluster.urls[0]) as api:
        r = api.post("/v1/fleet/apply", content=fleet, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 200, r.text
        for name, kind in tenants.items():
            r = api.post("/v1/tenants", json={"name": name, "display_name": name, "kind": kind})
            assert r.status_code == 201, r.text


# --- recording what the clients did ----------------------------------------------------------


@dataclass
class Call:
    client: int
    op: str
    target: str
    status: int
    body: dict[str, Any]
    content_type: str
    server: str


@dataclass
class Known:
    """What the clients were told about a contract by its last successful answer."""

    type: str
    gpus: int
    start: int
    end: int
    site: str | None
    unit: str
    state: str = "booked"


@dataclass
class Record:
    """Every answer the clients got, and what they were told about each contract."""

    calls: list[Call] = field(default_factory=list)
    known: dict[str, Known] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)


def hour(value: str | datetime) -> int:
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return int((t - EPOCH).total_seconds()) // 3600


def iso(h: int) -> str:
    return (EPOCH + timedelta(hours=h)).isoformat()


def known_from(body: dict[str, Any]) -> Known:
    return Known(
        body["type"],
        int(body["gpus"] or 0),
        hour(body["start"]),
        hour(body["end"]),
        body["site"],
        body["unit"],
        body["state"],
    )


class Client:
    """One simulated customer: alternates between the server processes on every request."""

    def __init__(self, idx: int, cluster: Cluster, record: Record) -> None:
        self.idx = idx
        self.record = record
        self.apis = [admin(u) for u in cluster.urls]
        self.turn = idx % len(self.apis)
        self.mine: list[str] = []  # contracts this client booked

    def close(self) -> None:
        for api in self.apis:
            api.close()

    def call(self, op: str, target: str, path: str, body: dict[str, Any]) -> Call:
        api = self.apis[self.turn]
        self.turn = (self.turn + 1) % len(self.apis)
        r = api.post(path, json=body)
        try:
            payload = r.json()
        except ValueError:
            payload = {"raw": r.text}
        call = Call(
            self.idx,
            op,
            target,
            r.status_code,
            payload,
            r.headers.get("content-type", ""),
            str(api.base_url),
        )
        self.record.add(call)
        return call

    def book(self, body: dict[str, Any], op: str = "book") -> Call:
        name = body["name"]
        call = self.call(op, name, "/v1/contracts", body)
        with self.record.lock:
            if call.status == 201:
                self.record.known[name] = known_from(call.body)
                self.mine.append(name)
            elif call.status == 409:
                self.record.refused.add(name)
        return call

    def amend(self, name: str, body: dict[str, Any]) -> Call:
        call = self.call(body["kind"], name, f"/v1/contracts/{name}/amendments", body)
        if call.status == 200:
            with self.record.lock:
                self.record.known[name] = known_from(call.body)
        return call

    def cancel(self, name: str) -> Call:
        call = self.call("cancel", name, f"/v1/contracts/{name}/cancel", {"reason": "stress"})
        if call.status == 200:
            with self.record.lock:
                self.record.known[name] = known_from(call.body)
        return call


def run_clients(n: int, work: Callable[[Client], None], cluster: Cluster, record: Record) -> None:
    """Run `work` in n threads that all start together."""
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        client = Client(i, cluster, record)
        try:
            barrier.wait(timeout=60)
            work(client)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        for f in [pool.submit(one, i) for i in range(n)]:
            f.result()


def check_answers(record: Record, cluster: Cluster, ok: dict[str, set[int]]) -> None:
    """Every answer is a success or a 409 problem that says why; never a 5xx or a 422."""
    bad = [c for c in record.calls if c.status not in ok[c.op]]
    logs = "\n".join(server_log(u) for u in cluster.urls) if bad else ""
    assert not bad, f"{len(bad)} unexpected answers, e.g. {bad[:3]}\n{logs}"
    for c in record.calls:
        if c.status == 409:
            assert c.content_type.startswith(PROBLEM), c
            detail = c.body.get("detail", "")
            assert REASON.search(detail), f"a 409 that does not say why: {c}"


# --- the independent check, from the database's rows ----------------------------------------


def _watts(kw: Decimal, gpus: int) -> Decimal:
    return kw * 1000 / gpus


def violations(dsn: str) -> list[str]:
    """`invariant_violations` on the committed rows."""
    with psycopg.connect(dsn) as conn:
        return invariant_violations(conn)


def invariant_violations(conn: psycopg.Connection[Any]) -> list[str]:
    """Read the fleet and the calendar's rows with plain SQL and list every broken invariant:
    committed > supply in a pool, committed power > the site's MW, customers inside an
    internal floor, or a dedicated site shared, at any breakpoint."""
    sites = {
        sid: (name, Decimal(mw), Decimal(pue), state, live_on, retired_on)
        for sid, name, mw, pue, state, live_on, retired_on in conn.execute(
            "SELECT id, name, power_mw, pue, state, live_on, retired_on FROM sites"
        )
    }
    # pool -> [(from hour, gpus)], pool -> watts per GPU
    supply: dict[tuple[int, int, str], list[tuple[int, int]]] = defaultdict(list)
    watts: dict[tuple[int, int, str], Decimal] = {}
    for sid, acc, fabric, gpus, kw in conn.execute(
        "SELECT n.site_id, n.accelerator_id, f.name, sum(n.gpus), sum(n.power_kw) "
        "FROM nodes n JOIN fabrics f ON f.id = n.fabric_id "
        "WHERE n.state = ANY(%s) GROUP BY 1, 2, 3",
        (list(IN_SERVICE),),
    ):
        supply[(sid, acc, fabric)].append((0, int(gpus)))
        watts[(sid, acc, fabric)] = _watts(Decimal(kw), int(gpus))
    for sid, acc, fabric, nodes, per_node, kw, expected in conn.execute(
        "SELECT site_id, accelerator_id, coalesce(fabric, 'unassigned'), nodes, "
        "gpus_per_node, power_kw_per_node, expected_on FROM deliveries "
        "WHERE state = 'scheduled'"
    ):
        key = (sid, acc, fabric)
        at = hour(datetime(expected.year, expected.month, expected.day, tzinfo=UTC))
        supply[key].append((at, int(nodes) * int(per_node)))
        watts.setdefault(key, _watts(Decimal(kw), int(per_node)))
    claims = list(
        conn.execute(
            "SELECT contract_id, site_id, accelerator_id, fabric, start_h, end_h, gpus, "
            "internal, exclusive FROM capacity_claims"
        )
    )
    floors = list(
        conn.execute(
            "SELECT site_id, accelerator_id, start_h, end_h, gpus, share FROM capacity_floors"
        )
    )
    for name, _mw, _pue, state, live_on, retired_on in sites.values():
        # The fleets here are live sites without a retirement date: supply has no end.
        assert state == "live" and retired_on is None and live_on <= date(2029, 1, 1), name

    def supply_at(key: tuple[int, int, str], h: int) -> int:
        return sum(g for since, g in supply.get(key, []) if since <= h)

    points = sorted(
        {c[4] for c in claims}
        | {f[2] for f in floors}
        | {since for steps in supply.values() for since, _ in steps}
    )
    out: list[str] = []
    for h in points:
        live = [c for c in claims if c[4] <= h < c[5]]
        pools: dict[tuple[int, int, str], int] = defaultdict(int)
        site_watts: dict[int, Decimal] = defaultdict(Decimal)
        customers: dict[tuple[int, int], int] = defaultdict(int)
        exclusive: dict[int, set[int]] = defaultdict(set)
        others: dict[int, int] = defaultdict(int)
        for cid, sid, acc, fabric, _a, _b, gpus, internal, excl in live:
            key = (sid, acc, fabric)
            pools[key] += gpus
            site_watts[sid] += gpus * watts.get(key, Decimal(0))
            if not internal:
                customers[(sid, acc)] += gpus
            if excl:
                exclusive[sid].add(cid)
            else:
                others[sid] += 1
        for key, held in pools.items():
            if held > supply_at(key, h):
                out.append(f"{iso(h)}: pool {key} holds {held} > supply {supply_at(key, h)}")
        for sid, w in site_watts.items():
            _name, mw, pue, *_ = sites[sid]
            if w * pue > mw * 1_000_000:
                out.append(f"{iso(h)}: site {sid} draws {w * pue / 1_000_000} MW > {mw} MW")
        levels: dict[tuple[int, int], int] = defaultdict(int)
        for sid, acc, a, b, fgpus, share in floors:
            if a <= h < b:
                total = sum(supply_at(k, h) for k in supply if k[:2] == (sid, acc))
                level = (
                    fgpus
                    if fgpus is not None
                    else int((Decimal(share) * total).to_integral_value(ROUND_CEILING))
                )
                levels[(sid, acc)] = max(levels[(sid, acc)], level)
        for (sid, acc), level in levels.items():
            total = sum(supply_at(k, h) for k in supply if k[:2] == (sid, acc))
            # A floor above the supply with no customer there sells nothing (an internal
            # reservation may set a floor larger than the site holds of that accelerator).
            if customers[(sid, acc)] > max(0, total - level):
                out.append(
                    f"{iso(h)}: site {sid} sells {customers[(sid, acc)]} GPUs of {acc} to "
                    f"customers but supply {total} - floor {level} leaves {total - level}"
                )
        for sid, holders in exclusive.items():
            if len(holders) > 1 or others[sid]:
                out.append(f"{iso(h)}: dedicated site {sid} is shared: {holders}, {others[sid]}")
    return out


def claims_by_contract(dsn: str, prefix: str) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
    """name -> (stored state, claims as (start, end, gpus, exclusive)) for the test's contracts."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.name, c.state, k.start_h, k.end_h, k.gpus, k.exclusive FROM contracts c "
            "LEFT JOIN capacity_claims k ON k.contract_id = c.id WHERE c.name LIKE %s",
            (prefix + "%",),
        )
        out: dict[str, tuple[str, list[tuple[int, ...]]]] = {}
        for name, state, a, b, g, x in rows:
            entry = out.setdefault(name, (state, []))
            if a is not None:
                entry[1].append((a, b, g, int(x)))
        return out


def held_per_hour(claims: list[tuple[int, ...]]) -> list[tuple[int, int]]:
    """A contract's claims as a step function [(hour, GPUs from then)], merged."""
    deltas: dict[int, int] = defaultdict(int)
    for a, b, g, _x in claims:
        deltas[a] += g
        deltas[b] -= g
    steps, level = [], 0
    for h in sorted(deltas):
        if deltas[h]:
            level += deltas[h]
            steps.append((h, level))
    return steps


def check_ledger(record: Record, dsn: str, prefix: str) -> None:
    """What the clients were told is what the database holds: every 201 booked and holding
    exactly its GPUs over exactly its term, every refusal holding nothing, nothing lost."""
    stored = claims_by_contract(dsn, prefix)
    assert not record.refused & set(stored), "a refused booking was stored"
    told_gpu_hours = 0
    for name, k in record.known.items():
        assert name in stored, f"{name} was booked (201) but is not in the database"
        state, claims = stored[name]
        if k.state == "cancelled":
            assert state == "cancelled", name
            assert claims == [], f"cancelled {name} (in the future) still holds {claims}"
            continue
        assert state == "booked", (name, state)
        expected = [(k.start, k.gpus), (k.end, 0)]
        assert held_per_hour(claims) == expected, f"{name}: told {k}, holds {claims}"
        if k.type == "dedicated-site":
            assert all(c[3] for c in claims), name
        told_gpu_hours += k.gpus * (k.end - k.start)
    stored_gpu_hours = sum(
        (b - a) * g for _state, claims in stored.values() for a, b, g, _x in claims
    )
    assert stored_gpu_hours == told_gpu_hours
    assert set(stored) == set(record.known), "contracts stored that no client was told about"


# --- the stress test ----------------------------------------------------------------------------

STRESS_FLEET = """\
sites:
  - name: st-east
    location: Ashburn, Virginia, US
    power_mw: 0.5
    pue: 1.25
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: e-h{i}
        count: 2
        blocks: {name: b1, nodes: {name: "st-e-{fabric}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
      - name: e-nvl
        blocks:
          name: r{i}
          count: 2
          nodes: {name: "st-e-nvl-{block}-n{i:02d}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}
  - name: st-west
    location: Dallas, Texas, US
    power_mw: 0.264
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: w-h1
        blocks: {name: b1, nodes: {name: "st-w-h1-n{i}", count: 6, accelerator: H100, gpus: 8, power_kw: 10.2}}
      - name: w-nvl
        blocks: {name: r1, nodes: {name: "st-w-nvl-n{i:02d}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}}
  - name: st-north
    location: Quebec, Canada
    power_mw: 0.03
    pue: 1.1
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: n-h1
        blocks: {name: b1, nodes: {name: "st-n-h1-n{i}", count: 2, accelerator: H100, gpus: 8, power_kw: 10.2}}
deliveries:
  - {name: st-west-h100, site: st-west, fabric: w-h2, accelerator: H100, nodes: 8, gpus_per_node: 8, power_kw_per_node: 10.2, expected_on: 2030-07-01}
"""
# st-west can power 220 kW of IT load: its nodes draw 180 kW, so once the delivery lands
# (another 81.6 kW) power, not GPUs, is what runs out there.
STRESS_SITES = ["st-east", "st-west", "st-north"]
STRESS_CUSTOMERS = ["st-lab", "st-coder", "st-games", "st-bio"]
STRESS_INTERNAL = "st-research"


def random_term(rng: random.Random, year: int) -> tuple[datetime, datetime]:
    first = datetime(year, 1, 1, tzinfo=UTC)
    start = first + timedelta(days=rng.randrange(0, 330), hours=rng.choice([0, 6, 12]))
    return start, start + timedelta(days=rng.randrange(20, 150))


def random_reserved(rng: random.Random, name: str, year: int) -> dict[str, Any]:
    start, end = random_term(rng, year)
    body: dict[str, Any] = {
        "name": name,
        "tenant": rng.choice(STRESS_CUSTOMERS),
        "type": "reserved",
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    if rng.random() < 0.6:
        body["accelerator"] = "H100"
        if rng.random() < 0.5:
            body |= {"unit": "node", "gpus": 8 * rng.randint(1, 4)}
        else:
            body["gpus"] = rng.randint(1, 24)
    else:
        body["accelerator"] = "GB200"
        if rng.random() < 0.4:
            body |= {"unit": "block", "gpus": 72 * rng.randint(1, 2)}
        else:
            body["gpus"] = rng.randint(4, 60)
    where = rng.choice([None, None, ["st-east"], ["st-west"], ["st-west", "st-east"], ["st-north"]])
    if where:
        body["sites"] = where
    if rng.random() < 0.3:
        body["same_fabric"] = True
    return body


def random_internal(rng: random.Random, name: str, year: int) -> dict[str, Any]:
    start, end = random_term(rng, year)
    gpus = 8 * rng.randint(1, 2)
    body: dict[str, Any] = {
        "name": name,
        "tenant": STRESS_INTERNAL,
        "type": "internal",
        "accelerator": "H100",
        "unit": "node",
        "gpus": gpus,
        "sites": [rng.choice(["st-east", "st-west", "st-north"])],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    if rng.random() < 0.5:
        body["floors"] = [{"gpus": gpus + 8 * rng.randint(0, 1)}]
    return body


def grow_step(k: Known) -> int:
    return {"node": 8, "block": 72}.get(k.unit, 4)


def stress_client(ops: int, seed: int, year: int) -> Callable[[Client], None]:
    def work(c: Client) -> None:
        rng = random.Random(seed * 1000 + c.idx)
        prefix = f"st{seed}-c{c.idx}"
        if c.idx < 2:  # two clients race to buy st-north whole
            start = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=30 * c.idx)
            c.book(
                {
                    "name": f"{prefix}-dedicated",
                    "tenant": "st-lab",
                    "type": "dedicated-site",
                    "site": "st-north",
                    "start": start.isoformat(),
                    "end": (start + timedelta(days=90)).isoformat(),
                },
                op="dedicated",
            )
        for i in range(ops):
            roll = rng.random()
            live = [
                n
                for n in c.mine
                if c.record.known[n].state == "booked"
                and c.record.known[n].type != "dedicated-site"
            ]
            if live and roll < 0.12:
                name = rng.choice(live)
                k = c.record.known[name]
                c.amend(name, {"kind": "grow", "gpus": k.gpus + grow_step(k)})
            elif live and roll < 0.22:
                name = rng.choice(live)
                end = c.record.known[name].end + 24 * rng.randrange(10, 90)
                c.amend(name, {"kind": "extend", "end": iso(end)})
            elif live and roll < 0.27:
                name = rng.choice(live)
                site = rng.choice(["st-east", "st-west"])
                c.amend(name, {"kind": "move", "site": site})
            elif live and roll < 0.33:
                c.cancel(rng.choice(live))
            elif roll < 0.50:
                c.book(random_internal(rng, f"{prefix}-{i}", year))
            else:
                c.book(random_reserved(rng, f"{prefix}-{i}", year))

    return work


STRESS_OK = {
    "book": {201, 409},
    "dedicated": {201, 409},
    "grow": {200, 409},
    "extend": {200, 409},
    "move": {200, 409},
    "cancel": {200},
}


def stress(cluster: Cluster, clients: int, ops: int, seed: int, year: int) -> Record:
    """Run the random clients over one year of the stress fleet, then check everything."""
    record = Record()
    run_clients(clients, stress_client(ops, seed, year), cluster, record)
    check_answers(record, cluster, STRESS_OK)
    broken = violations(cluster.dsn)
    assert not broken, "\n".join(broken[:20])
    check_ledger(record, cluster.dsn, f"st{seed}-")
    return record


@pytest.fixture(scope="module")
def stress_world(cluster: Cluster) -> Cluster:
    setup_world(
        cluster,
        STRESS_FLEET,
        {**dict.fromkeys(STRESS_CUSTOMERS, "customer"), STRESS_INTERNAL: "internal"},
    )
    return cluster


@pytest.mark.postgres
def test_64_clients_on_two_processes_never_oversell_and_every_refusal_is_a_409(
    stress_world: Cluster,
) -> None:
    record = stress(stress_world, clients=64, ops=5, seed=1, year=2030)
    by_status: dict[int, int] = defaultdict(int)
    for c in record.calls:
        by_status[c.status] += 1
    # Demand far exceeds supply: both outcomes happen, and on both processes.
    assert by_status[201] >= 20 and by_status[409] >= 20, dict(by_status)
    assert {c.server for c in record.calls if c.status in (200, 201)} == set(stress_world.urls)
    # Refusals name what is missing, and amendments pass the same checks as bookings.
    assert any("not enough capacity" in c.body.get("detail", "") for c in record.calls)
    assert any(c.op in ("grow", "extend") and c.status == 200 for c in record.calls)
    assert any(c.op == "cancel" for c in record.calls)


@pytest.mark.slow
@pytest.mark.postgres
def test_stress_at_length(stress_world: Cluster) -> None:
    stress(stress_world, clients=64, ops=30, seed=2, year=2032)


@pytest.mark.postgres
def test_the_independent_check_sees_each_kind_of_oversell(stress_world: Cluster) -> None:
    """The SQL check above is what makes the stress test worth anything: rows written by
    hand that oversell a pool, a site's power, an internal floor or a dedicated site (in an
    uncommitted transaction, rolled back after) are each reported."""
    with admin(stress_world.urls[0]) as api:
        r = api.post(
            "/v1/contracts",
            json={
                "name": "chk-north",
                "tenant": "st-lab",
                "type": "reserved",
                "accelerator": "H100",
                "gpus": 8,
                "site": "st-north",
                "start": "2041-03-01T00:00:00Z",
                "end": "2041-04-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text
    with psycopg.connect(stress_world.dsn) as conn:
        assert invariant_violations(conn) == []
        (cid,) = conn.execute("SELECT id FROM contracts WHERE name = 'chk-north'").fetchone() or ()
        site: dict[str, int] = dict(conn.execute("SELECT name, id FROM sites").fetchall())
        acc: dict[str, int] = dict(conn.execute("SELECT name, id FROM accelerators").fetchall())
        claim = (
            "INSERT INTO capacity_claims (contract_id, site_id, accelerator_id, fabric, start_h, "
            "end_h, gpus, internal, exclusive) VALUES (%s, %s, %s, %s, %s, %s, %s, false, %s)"
        )
        mar, apr = hour("2041-03-01T00:00:00+00:00"), hour("2041-04-01T00:00:00+00:00")
        jun, jul = hour("2041-06-01T00:00:00+00:00"), hour("2041-07-01T00:00:00+00:00")
        sep, oct_ = hour("2041-09-01T00:00:00+00:00"), hour("2041-10-01T00:00:00+00:00")
        # st-north has 16 H100 and powers ~21 of them: 8 booked + 16 more breaks both.
        conn.execute(claim, (cid, site["st-north"], acc["H100"], "n-h1", mar, apr, 16, False))
        # A floor of 60 of st-east's 64 H100 leaves customers 4; a customer holds 8.
        conn.execute(
            "INSERT INTO capacity_floors (contract_id, site_id, accelerator_id, start_h, end_h, "
            "gpus) VALUES (%s, %s, %s, %s, %s, 60)",
            (cid, site["st-east"], acc["H100"], jun, jul),
        )
        conn.execute(claim, (cid, site["st-east"], acc["H100"], "e-h1", jun, jul, 8, False))
        # st-west held whole and by someone else at once.
        conn.execute(claim, (cid, site["st-west"], acc["GB200"], "w-nvl", sep, oct_, 4, True))
        conn.execute(claim, (cid, site["st-west"], acc["H100"], "w-h1", sep, oct_, 8, False))
        found = invariant_violations(conn)
        conn.rollback()
    text = "\n".join(found)
    assert "2041-03-01T00:00:00+00:00: pool" in text and "holds 24 > supply 16" in text, text
    assert f"site {site['st-north']} draws" in text, text
    assert "sells 8 GPUs" in text and "floor 60 leaves 4" in text, text
    assert f"dedicated site {site['st-west']} is shared" in text, text
    assert violations(stress_world.dsn) == []


# --- exactly K of N -----------------------------------------------------------------------------

RACE_FLEET = """\
sites:
  - name: race
    location: Reno, Nevada, US
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: r-f{i}
        count: 2
        blocks: {name: b1, nodes: {name: "race-{fabric}-n{i}", count: 5, accelerator: H100, gpus: 8, power_kw: 10.2}}
"""


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("gpus", "same_fabric", "fits"),
    [(16, False, 5), (16, True, 4)],
    ids=["any-fabric", "same-fabric"],
)
def test_when_n_clients_race_for_a_pool_exactly_those_that_fit_succeed(
    cluster: Cluster, gpus: int, same_fabric: bool, fits: int
) -> None:
    """80 GPUs in two fabrics of 40, 32 clients asking 16 each at once: 5 fit (4 when each
    must sit in one fabric, which then has 8 left over); all others get 409 saying why."""
    with admin(cluster.urls[0]) as api:
        known_sites = {s["name"] for s in api.get("/v1/sites").json()["items"]}
    if "race" not in known_sites:
        setup_world(cluster, RACE_FLEET, {"race-lab": "customer"})
    year = 2035 + int(same_fabric)  # each case in its own year of the same site
    record = Record()
    prefix = f"race{year}-"

    def work(c: Client) -> None:
        c.book(
            {
                "name": f"{prefix}{c.idx}",
                "tenant": "race-lab",
                "type": "reserved",
                "accelerator": "H100",
                "unit": "node",
                "gpus": gpus,
                "same_fabric": same_fabric,
                "site": "race",
                "start": f"{year}-01-01T00:00:00Z",
                "end": f"{year}-04-01T00:00:00Z",
            }
        )

    run_clients(32, work, cluster, record)
    check_answers(record, cluster, {"book": {201, 409}})
    statuses = sorted(c.status for c in record.calls)
    assert statuses.count(201) == fits and statuses.count(409) == 32 - fits, statuses
    for c in record.calls:
        if c.status == 409:
            assert "not enough capacity" in c.body["detail"] and "race" in c.body["detail"], c
    assert not violations(cluster.dsn)
    check_ledger(record, cluster.dsn, prefix)


# --- two sites locked in opposite orders ----------------------------------------------------------

CROSS_FLEET = """\
sites:
  - name: x-left
    location: Oslo, Norway
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: l-f1
        blocks: {name: b1, nodes: {name: "x-left-n{i}", count: 10, accelerator: H100, gpus: 8, power_kw: 10.2}}
  - name: x-right
    location: Bergen, Norway
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: r-f1
        blocks: {name: b1, nodes: {name: "x-right-n{i}", count: 10, accelerator: H100, gpus: 8, power_kw: 10.2}}
"""
CROSS_START = datetime(2033, 1, 1, tzinfo=UTC)


@pytest.mark.postgres
def test_bookings_that_lock_two_sites_in_opposite_orders_end_201_or_409(
    cluster: Cluster,
) -> None:
    """Contracts on each site move to the other one at the same time (each holds its own
    site's lock and wants the other's), while others grow in place, book on both sites (in the
    next term, taking the same locks) and two try to buy a site whole: a deadlock must never
    surface as a 500, and the moves that fit go through."""
    setup_world(cluster, CROSS_FLEET, {"x-lab": "customer", "x-ops": "internal"})
    record = Record()
    prefix = "x33-"
    term = {"start": CROSS_START.isoformat(), "end": (CROSS_START + timedelta(days=60)).isoformat()}
    later = {"start": term["end"], "end": (CROSS_START + timedelta(days=120)).isoformat()}
    seeded: list[str] = []
    with admin(cluster.urls[0]) as api:
        for i in range(12):  # 6 x 8 GPUs on each site: 32 of 80 left free on each
            name = f"{prefix}seed-{i}"
            body = {
                "name": name,
                "tenant": "x-ops" if i % 3 == 0 else "x-lab",
                "type": "internal" if i % 3 == 0 else "reserved",
                "accelerator": "H100",
                "unit": "node",
                "gpus": 8,
                "site": "x-left" if i % 2 == 0 else "x-right",
                **term,
            }
            r = api.post("/v1/contracts", json=body)
            assert r.status_code == 201, r.text
            record.known[name] = known_from(r.json())
            seeded.append(name)

    def work(c: Client) -> None:
        i = c.idx
        if i < 8:  # move a seeded contract to the other site
            other = "x-right" if i % 2 == 0 else "x-left"
            c.amend(seeded[i], {"kind": "move", "site": other})
        elif i < 12:  # grow one in place
            c.amend(seeded[i], {"kind": "grow", "gpus": 16})
        elif i < 14:
            site = "x-left" if i == 12 else "x-right"
            whole = {"name": f"{prefix}whole-{i}", "tenant": "x-lab", "type": "dedicated-site"}
            c.book(whole | {"site": site} | term, op="dedicated")
        else:  # book on either site, listed in either order
            sites = ["x-left", "x-right"] if i % 2 else ["x-right", "x-left"]
            c.book(
                {
                    "name": f"{prefix}both-{i}",
                    "tenant": "x-lab",
                    "type": "reserved",
                    "accelerator": "H100",
                    "gpus": 8 * (1 + i % 3),
                    "sites": sites,
                    **later,
                }
            )

    # The seeded contracts are amended by the clients, so record those answers too.
    run_clients(40, work, cluster, record)
    check_answers(record, cluster, STRESS_OK)
    assert not violations(cluster.dsn)
    check_ledger(record, cluster.dsn, prefix)
    # Each site has 32 GPUs free and 6 takers of 8 (two grows, four moves in): whatever the
    # order, the first four takers fit, so at least two moves into each site succeed.
    moved = [c for c in record.calls if c.op == "move"]
    assert len(moved) == 8
    for site in ("x-left", "x-right"):
        into = [c for c in moved if c.status == 200 and c.body["site"] == site]
        assert len(into) >= 2, moved


# --- floors that amendments stretch or move ------------------------------------------------------

FLOOR_FLEET = """\
sites:
  - name: fl-a
    location: Lyon, France
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: a-f1
        blocks: {name: b1, nodes: {name: "fl-a-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
  - name: fl-b
    location: Lille, France
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: b-f1
        blocks: {name: b1, nodes: {name: "fl-b-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
"""


def test_an_amendment_cannot_stretch_or_move_a_floor_onto_capacity_customers_hold(
    client: TestClient,
) -> None:
    """Extending an internal contract stretches its floor, and moving it moves the floor:
    either is a new floor where customers may already hold the GPUs, so it is a 409 (it
    used to go through and leave the floor sold)."""
    assert client.post("/v1/fleet/apply", content=FLOOR_FLEET).status_code == 200
    for name, kind in (("fl-lab", "customer"), ("fl-ops", "internal")):
        assert (
            client.post(
                "/v1/tenants", json={"name": name, "display_name": name, "kind": kind}
            ).status_code
            == 201
        )
    h100 = {"accelerator": "H100", "gpus": 8}
    jan = {"start": "2030-01-01T00:00:00Z", "end": "2030-02-01T00:00:00Z"}
    feb = {"start": "2030-02-01T00:00:00Z", "end": "2030-03-01T00:00:00Z"}
    own = {"name": "fl-int", "tenant": "fl-ops", "type": "internal", "site": "fl-a"}
    r = client.post("/v1/contracts", json=own | h100 | jan | {"floors": [{"gpus": 24}]})
    assert r.status_code == 201, r.text
    # Customers hold 16 of fl-a's 32 GPUs in February and 16 of fl-b's in January.
    for site, term in (("fl-a", feb), ("fl-b", jan)):
        body = {"name": f"fl-cust-{site}", "tenant": "fl-lab", "type": "reserved", "site": site}
        assert (
            client.post("/v1/contracts", json=body | h100 | term | {"gpus": 16}).status_code == 201
        )

    extend = {"kind": "extend", "end": feb["end"]}
    r = client.post("/v1/contracts/fl-int/amendments", json=extend)
    assert r.status_code == 409, r.text
    assert "floor at fl-a would take 8 GPUs that customers already hold" in r.json()["detail"]
    r = client.post("/v1/contracts/fl-int/amendments", json={"kind": "move", "site": "fl-b"})
    assert r.status_code == 409, r.text
    assert "floor at fl-b would take 8 GPUs" in r.json()["detail"]

    assert client.get("/v1/capacity/conflicts").json() == []
    out = client.get("/v1/contracts/fl-int").json()
    assert out["end"].startswith("2030-02-01") and out["site"] == "fl-a"
    assert [(f["site"], f["end"][:10]) for f in out["floors"]] == [("fl-a", "2030-02-01")]
    # Once the customer's February is released, the same extension goes through.
    assert client.post("/v1/contracts/fl-cust-fl-a/cancel", json={}).status_code == 200
    r = client.post("/v1/contracts/fl-int/amendments", json=extend)
    assert r.status_code == 200, r.text
    assert [(f["site"], f["end"][:10]) for f in r.json()["floors"]] == [("fl-a", "2030-03-01")]
