"""Spot on the idle nodes of lendable contracts: lending, taking back, reclaim, metering.

Telemetry goes in through the real `POST /v1/usage/events`; placement runs through the API
(or the service, for a reconcile later than now).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.models import Contract
from neocloud.db.engine import transaction
from neocloud.metering import rollups
from neocloud.placement import service
from neocloud.placement.models import Allocation, SpotLease
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX, problem
from tests.metering.helpers import TELEMETRY, iso, post, totals, usage
from tests.placement.api import allocation, book_now, reconcile, this_hour
from tests.placement.jobs_api import contract, job, nodes_of, schedule, submit


def spot(c: TestClient, name: str = "cheap", gpus: int = 16, notice: int = 30) -> None:
    r = c.post(
        "/v1/contracts",
        json={
            "name": name,
            "tenant": GLOBEX,
            "type": "spot",
            "accelerator": "H100",
            "gpus": gpus,
            "site": "east",
            "notice_minutes": notice,
            "start": this_hour(),
            "end": this_hour(days=30),
        },
    )
    assert r.status_code == 201, r.text


def sample(node: str, gpu: int, when: datetime, util: float, memory: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{node}/{gpu}/{when.timestamp()}",
        "source": f"agent://{node}",
        "type": TELEMETRY,
        "time": iso(when),
        "data": {
            "node": node,
            "gpu": gpu,
            "utilization_pct": util,
            "memory_used_mib": memory,
            "power_w": 90.0,
            "temperature_c": 35.0,
        },
    }


def idle(c: TestClient, *nodes: str, gpus: int = 8) -> None:
    """Every GPU of the nodes idle over the last half hour (three samples each)."""
    now = datetime.now(UTC)
    events = [
        sample(node, gpu, now - timedelta(minutes=m), 0.0, 300)
        for node in nodes
        for gpu in range(gpus)
        for m in (28, 15, 1)
    ]
    assert post(c, events)["accepted"] == len(events)


def busy(c: TestClient, node: str, gpus: int = 8) -> None:
    now = datetime.now(UTC)
    post(c, [sample(node, gpu, now, 93.0, 70_000) for gpu in range(gpus)])


def spot_changes(out: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for site in out["sites"] for s in site["spot"] if s["action"] == action]


def later(factory: sessionmaker[Session], minutes: int) -> Any:
    with transaction(factory) as session:
        return service.reconcile(
            session, actor=SYSTEM, site="east", now=datetime.now(UTC) + timedelta(minutes=minutes)
        )


@pytest.fixture
def full(world: TestClient) -> TestClient:
    """East is full: `owner` (lendable, 4 nodes) and `other` (not lendable, 12 nodes); the
    spot contract `cheap` wants 16 GPUs and has found nothing free."""
    book_now(world, "owner", 32, site="east", lendable=True)
    book_now(world, "other", 96, site="east")
    spot(world)
    out = reconcile(world, "east")
    assert spot_changes(out, "leased") == []
    return world


def nodes(c: TestClient, contract: str) -> list[str]:
    return [n["name"] for n in allocation(c, contract)["nodes"]]


def test_idle_nodes_of_a_lendable_contract_are_lent_and_stay_its_own(
    full: TestClient, factory: sessionmaker[Session]
) -> None:
    owner, other = nodes(full, "owner"), nodes(full, "other")
    # No telemetry: nothing is lent, whatever waits for capacity.
    assert spot_changes(reconcile(full, "east"), "leased") == []
    # Idle telemetry on two of the owner's nodes and two of `other`'s (not lendable).
    idle(full, owner[0], owner[1], other[0], other[1])
    out = reconcile(full, "east")
    leased = spot_changes(out, "leased")
    assert {s["node"] for s in leased} == {owner[0], owner[1]}
    assert {s["reason"] for s in leased} == {"lent by owner"}
    # The owner still holds all four nodes (two of them lent), and only it holds them.
    a = allocation(full, "owner")
    assert a["usable_gpus"] == 32 and len(a["nodes"]) == 4
    assert {n["name"] for n in a["nodes"] if n["lent"]} == {owner[0], owner[1]}
    s = allocation(full, "cheap")
    assert s["usable_gpus"] == 16 and all(n["lent"] for n in s["nodes"])
    with factory() as session:
        held = session.execute(
            sa.select(Allocation.node_id, sa.func.count())
            .where(Allocation.until.is_(None))
            .group_by(Allocation.node_id)
            .having(sa.func.count() > 1)
        ).all()
        assert held == []
    # A second reconcile changes nothing: idle nodes stay lent, nothing more is taken.
    again = reconcile(full, "east")
    assert all(x["spot"] == [] and x["changes"] == [] for x in again["sites"])


def test_free_nodes_are_leased_before_lent_ones(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    book_now(world, "owner", 32, site="east", lendable=True)
    book_now(world, "other", 88, site="east")  # 11 nodes: one node stays free
    reconcile(world, "east")
    idle(world, *nodes(world, "owner"))
    spot(world, gpus=24)
    leased = spot_changes(reconcile(world, "east"), "leased")
    assert [s["reason"] for s in leased] == ["idle capacity", "lent by owner", "lent by owner"]


def test_the_owner_reclaims_and_the_loans_end_after_their_notice(
    full: TestClient, factory: sessionmaker[Session]
) -> None:
    owner = nodes(full, "owner")
    idle(full, owner[0], owner[1])
    reconcile(full, "east")
    acme_admin = token_maker(factory)("tenant-admin", ACME)
    r = full.post(
        "/v1/contracts/owner/reclaim",
        json={"reason": "training run"},
        headers={"Authorization": f"Bearer {acme_admin}"},
    )
    assert r.status_code == 200, r.text
    back = r.json()["nodes"]
    assert {n["node"] for n in back} == {owner[0], owner[1]}
    for n in back:
        until, notice = datetime.fromisoformat(n["until"]), datetime.fromisoformat(n["notice_at"])
        assert until - notice == timedelta(minutes=30)
    # Asking again changes nothing: the loans keep their end.
    again = full.post("/v1/contracts/owner/reclaim").json()["nodes"]
    assert [n["until"] for n in again] == [n["until"] for n in back]
    # The reclaimed nodes are not lent again meanwhile; the spot contract stays short.
    assert spot_changes(reconcile(full, "east"), "leased") == []
    done = later(factory, 31)
    preempted = [s for s in done.sites[0].spot if s.action == "preempted"]
    assert {s.node for s in preempted} == {owner[0], owner[1]}
    assert {s.reason for s in preempted} == {"preempted: the owner reclaimed it"}
    rows = full.get("/v1/placement/preemptions").json()
    assert {(p["lent_by"], p["reason"]) for p in rows} == {
        ("owner", "preempted: the owner reclaimed it")
    }
    for p in rows:  # never after its notice
        notice_at, ended_at = (datetime.fromisoformat(p[k]) for k in ("notice_at", "ended_at"))
        assert ended_at - notice_at == timedelta(minutes=30)
    # The spot tenant sees its preemptions, not whose nodes they were.
    globex = token_maker(factory)("tenant-viewer", GLOBEX)
    seen = full.get(
        "/v1/placement/preemptions", headers={"Authorization": f"Bearer {globex}"}
    ).json()
    assert len(seen) == 2 and {(p["lent"], p["lent_by"]) for p in seen} == {(True, None)}
    assert allocation(full, "owner")["usable_gpus"] == 32


def test_reclaim_refusals_are_problems(full: TestClient, factory: sessionmaker[Session]) -> None:
    problem(full.post("/v1/contracts/nope/reclaim"), 404, "nope")
    problem(full.post("/v1/contracts/other/reclaim"), 409, "not lendable")
    problem(full.post("/v1/contracts/owner/reclaim"), 409, "nothing of it is lent")
    problem(full.post("/v1/contracts/owner/reclaim", json={"nodes": []}), 422)
    idle(full, nodes(full, "owner")[0])
    reconcile(full, "east")
    make = token_maker(factory)
    for role, tenant, status in (
        ("tenant-admin", GLOBEX, 404),  # another tenant's contract reads as unknown
        ("tenant-viewer", ACME, 403),
        ("sales", None, 403),
    ):
        r = full.post(
            "/v1/contracts/owner/reclaim",
            headers={"Authorization": f"Bearer {make(role, tenant)}"},
        )
        problem(r, status)
    ops = make("ops")
    r = full.post("/v1/contracts/owner/reclaim", headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200 and len(r.json()["nodes"]) == 1


def test_busy_telemetry_takes_a_lent_node_back_unless_spot_runs_there(
    full: TestClient, factory: sessionmaker[Session]
) -> None:
    owner = nodes(full, "owner")
    idle(full, owner[0], owner[1])
    reconcile(full, "east")
    # The spot tenant runs work on owner[1] (reported as usage): its busy GPUs are spot's own.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    post(full, [usage("cheap", owner[1], 8, start, start + timedelta(seconds=60))])
    busy(full, owner[0])
    busy(full, owner[1])
    noticed = spot_changes(reconcile(full, "east"), "noticed")
    assert [(s["node"], s["reason"]) for s in noticed] == [
        (owner[0], "preempted: the owner's workload resumed")
    ]


def test_usage_of_the_owner_on_a_lent_node_takes_it_back(full: TestClient) -> None:
    owner = nodes(full, "owner")
    idle(full, owner[0])
    reconcile(full, "east")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    post(full, [usage("owner", owner[0], 8, start, start + timedelta(seconds=30))])
    noticed = spot_changes(reconcile(full, "east"), "noticed")
    assert [(s["node"], s["reason"]) for s in noticed] == [
        (owner[0], "preempted: the owner's workload resumed")
    ]


def test_a_contract_that_stops_being_lendable_takes_its_nodes_back(
    full: TestClient, factory: sessionmaker[Session]
) -> None:
    idle(full, nodes(full, "owner")[0])
    reconcile(full, "east")
    with transaction(factory) as s:
        s.execute(sa.update(Contract).where(Contract.name == "owner").values(lendable=False))
    noticed = spot_changes(reconcile(full, "east"), "noticed")
    assert [s["reason"] for s in noticed] == [
        "preempted: the owner's contract is no longer lendable"
    ]


def test_a_lent_node_is_billed_to_each_contract_for_its_own_usage_only(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    book_now(world, "owner", 32, site="east", lendable=True)
    book_now(world, "other", 96, site="east")
    spot(world, gpus=8, notice=0)
    reconcile(world, "east")
    node = nodes(world, "owner")[0]
    idle(world, node)
    reconcile(world, "east")
    with factory() as s:
        lease = s.scalars(sa.select(SpotLease)).one()
        began = lease.started_at
    start = began.replace(microsecond=0) + timedelta(seconds=1)
    mid = start + timedelta(seconds=60)
    # Both report 4 GPUs of the lent node for a minute: each is billed for its own.
    post(
        world,
        [
            usage("cheap", node, 4, start, mid, source="spot-engine"),
            usage("owner", node, 4, start, mid, source="owner-engine"),
        ],
    )
    # The owner reclaims (notice 0): the loan ends now; spot usage after its end is not billed.
    world.post("/v1/contracts/owner/reclaim")
    reconcile(world, "east")
    with factory() as s:
        ended = s.scalars(sa.select(SpotLease.ended_at)).one()
    assert ended is not None
    after = ended.replace(microsecond=0) + timedelta(seconds=1)
    post(world, [usage("cheap", node, 4, after, after + timedelta(seconds=30))])
    lo, hi = start - timedelta(hours=1), start + timedelta(hours=2)
    spot_totals = totals(world, "cheap", lo, hi)
    assert spot_totals["measured"] == 4 * 60 + 4 * 30
    assert spot_totals["billable"] == 4 * 60
    assert spot_totals["excluded"] == {"node-down": 4 * 30}
    owner_totals = totals(world, "owner", lo, hi)
    assert owner_totals["measured"] == owner_totals["billable"] == 4 * 60


def test_nodes_running_our_jobs_are_not_idle_and_the_owners_jobs_take_loans_back(
    world: TestClient,
) -> None:
    contract(
        world,
        "ops-batch",
        "internal",
        accelerator="H100",
        gpus=32,
        unit="node",
        site="east",
        lendable=True,
    )
    book_now(world, "other", 96, site="east")
    spot(world)
    reconcile(world, "east")
    first = submit(world, "ops-batch", gpus=8)["name"]
    schedule(world, "east")
    busy_node = nodes_of(job(world, first))
    assert len(busy_node) == 1
    idle(world, *nodes(world, "ops-batch"))
    leased = {s["node"] for s in spot_changes(reconcile(world, "east"), "leased")}
    assert len(leased) == 2 and not leased & busy_node
    # The owner's work grows onto every node it holds, the lent ones included.
    second = submit(world, "ops-batch", gpus=24)["name"]
    schedule(world, "east")
    assert leased <= nodes_of(job(world, second))
    noticed = spot_changes(reconcile(world, "east"), "noticed")
    assert {(s["node"], s["reason"]) for s in noticed} == {
        (n, "preempted: the owner's workload resumed") for n in leased
    }


def test_rollups_count_a_lent_node_once_for_the_spot_contract(
    full: TestClient, factory: sessionmaker[Session]
) -> None:
    owner = nodes(full, "owner")
    idle(full, owner[0], owner[1])
    reconcile(full, "east")
    now = datetime.now(UTC)
    h = hour_of(now)
    with factory() as s, s.begin():
        held = s.scalars(sa.select(Allocation.since).where(Allocation.until.is_(None))).all()
        lent = s.scalars(sa.select(SpotLease.started_at)).all()
        rollups.close(s, [h], now)
    end = int(at_hour(h + 1).timestamp())
    r = full.get(
        "/v1/usage/rollups",
        params={"start": iso(at_hour(h)), "end": iso(at_hour(h + 1)), "limit": 1000},
    )
    assert r.status_code == 200, r.text
    allocated = {x["contract"]: x["allocated_gpu_seconds"] for x in r.json()["items"]}
    # Every node-second once: the whole site's allocations, the lent part moved to spot.
    assert sum(allocated.values()) == sum(8 * (end - int(t.timestamp())) for t in held)
    assert allocated["cheap"] == sum(8 * (end - int(t.timestamp())) for t in lent)
