"""The shared pools' jobs through the API, on SQLite and PostgreSQL: each pool's nodes, gang
and GPU-type placement, FIFO vs backfill, spot reclaim, finishing, tenants, bad input, and
no GPU ever over-committed (checked from the rows)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.auth.roles import Role
from neocloud.db.engine import transaction
from neocloud.placement import job_service, loop
from neocloud.placement.job_models import Job, JobEvent
from neocloud.placement.job_pass import POLICY_ENV
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX, problem
from tests.placement.api import allocation, book_now, reconcile
from tests.placement.jobs_api import (
    check_jobs,
    internal,
    job,
    nodes_of,
    on_demand,
    schedule,
    spot,
    submit,
)


def engine_of(c: TestClient) -> sa.Engine:
    engine: sa.Engine = c.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_jobs_start_on_their_own_pools_nodes_only(world: TestClient) -> None:
    internal(world)  # ops: 2 nodes of east
    spot(world)  # globex: 2 idle nodes of east, leased
    on_demand(world, site="east")  # acme: the rest of east
    reconcile(world, "east")
    ops_nodes = {n["name"] for n in allocation(world, "ops-batch")["nodes"]}
    spot_nodes = {n["name"] for n in allocation(world, "cheap")["nodes"]}
    assert len(ops_nodes) == len(spot_nodes) == 2 and not ops_nodes & spot_nodes
    mine = {
        k: submit(world, c, 8)["name"]
        for k, c in (("internal", "ops-batch"), ("spot", "cheap"), ("od", "acme-od"))
    }
    out = schedule(world)
    assert {j["name"] for j in out["started"]} == set(mine.values())
    assert nodes_of(job(world, mine["internal"])) <= ops_nodes
    assert nodes_of(job(world, mine["spot"])) <= spot_nodes
    od = job(world, mine["od"])
    assert od["pool"] == "on-demand" and od["tenant"] == ACME
    assert not nodes_of(od) & (ops_nodes | spot_nodes)
    assert job(world, mine["spot"])["preemptible"] is True
    assert job(world, mine["internal"])["preemptible"] is False
    check_jobs(engine_of(world), in_pools=True)


def test_gang_jobs_are_all_or_nothing_and_finishing_frees_the_gpus(world: TestClient) -> None:
    internal(world, gpus=16)
    reconcile(world, "east")
    big = submit(world, "ops-batch", 12, name="big")  # 8 + 4 on the contract's two nodes
    schedule(world)
    assert job(world, "big")["state"] == "running" and len(nodes_of(job(world, "big"))) == 2
    assert len(job(world, "big")["placement"]) == 12
    submit(world, "ops-batch", 8, name="next")  # 4 GPUs left: not a piece of it runs
    assert schedule(world)["started"] == []
    waiting = job(world, "next")
    assert waiting["state"] == "queued" and waiting["placement"] == []
    r = world.post("/v1/jobs/big/finish")
    assert r.status_code == 200 and r.json()["state"] == "finished"
    assert r.json()["placement"] == []
    assert [j["name"] for j in schedule(world)["started"]] == ["next"]
    assert len(job(world, "next")["placement"]) == 8
    # More GPUs than the contract holds can never run: recorded, with why, not queued.
    never = submit(world, "ops-batch", 24)
    assert never["state"] == "unplaceable" and "24 GPUs" in never["reason"]
    assert "ops-batch" in never["reason"] and big["state"] == "queued"
    check_jobs(engine_of(world), in_pools=True)


def test_gpu_type_constraints_and_shares_of_a_gpu(world: TestClient) -> None:
    on_demand(world, site="west")  # west: 4 H100 nodes and 36 GB200 trays
    gb = submit(world, "acme-od", 4, gpu_types=["GB200"], name="gb")
    h = submit(world, "acme-od", 8, gpu_types=["H100"], name="h")
    a = submit(world, "acme-od", 1, gpu_milli=500, gpu_types=["H100"], name="half-a")
    b = submit(world, "acme-od", 1, gpu_milli=500, gpu_types=["H100"], name="half-b")
    assert {gb["gpu_types"][0], h["gpu_types"][0]} == {"GB200", "H100"}
    schedule(world)
    assert all(n.startswith("west-r") for n in nodes_of(job(world, "gb")))
    assert all(n.startswith("west-h01") for n in nodes_of(job(world, "h")))
    ga, gb_ = job(world, "half-a")["placement"], job(world, "half-b")["placement"]
    assert ga == gb_, "two halves share one GPU (first fit)"
    assert a["gpu_milli"] == b["gpu_milli"] == 500
    # A known model the site does not have: recorded as unplaceable, with why.
    b200 = submit(world, "acme-od", 1, gpu_types=["B200"])
    assert b200["state"] == "unplaceable" and "acceptable model" in b200["reason"]
    check_jobs(engine_of(world), in_pools=True)


def test_fifo_keeps_order_and_backfill_starts_a_short_job_early(
    world: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    internal(world, gpus=16)
    reconcile(world, "east")
    submit(world, "ops-batch", 8, duration_s=3600, name="first")
    schedule(world)
    submit(world, "ops-batch", 16, duration_s=3600, name="whole")  # waits for "first"
    submit(world, "ops-batch", 1, duration_s=60, name="short")  # fits now, behind "whole"
    monkeypatch.setenv(POLICY_ENV, "fifo")
    out = schedule(world)
    assert out["policy"] == "fifo+first-fit" and out["started"] == []
    assert job(world, "short")["state"] == "queued"
    monkeypatch.setenv(POLICY_ENV, "backfill")
    out = schedule(world)
    assert out["policy"] == "backfill+first-fit"
    assert [j["name"] for j in out["started"]] == ["short"]
    assert job(world, "whole")["state"] == "queued"
    monkeypatch.setenv(POLICY_ENV, "random")
    problem(world.post("/v1/jobs/schedule", json={}), 409, "unknown policy")


def test_spot_jobs_are_preempted_when_the_lease_is_reclaimed(world: TestClient) -> None:
    spot(world, gpus=16)
    reconcile(world, "east")
    names = [submit(world, "cheap", 4, name=f"s{i}")["name"] for i in range(3)]
    schedule(world)
    assert all(job(world, n)["state"] == "running" for n in names)
    # A reservation of the whole site takes the spot nodes back: the leases go on notice.
    book_now(world, "big", 128, site="east", tenant=ACME)
    reconcile(world, "east")
    out = schedule(world)
    assert sorted(p["job"] for p in out["preempted"]) == names
    assert {p["reason"] for p in out["preempted"]} == {"spot capacity reclaimed"}
    for n in names:
        j = job(world, n)
        assert j["state"] == "queued" and j["placement"] == [] and j["preemptions"] == 1
        assert j["reason"] == "spot capacity reclaimed"
        assert [(e["kind"], e["reason"]) for e in j["events"]][-1] == (
            "preempted",
            "spot capacity reclaimed",
        )
        assert [e["kind"] for e in j["events"]] == ["submitted", "started", "preempted"]
    assert schedule(world)["started"] == []  # no spot capacity left: they wait
    check_jobs(engine_of(world), in_pools=True)


def test_spot_does_not_lease_the_nodes_on_demand_jobs_run_on(world: TestClient) -> None:
    on_demand(world, site="east")
    first = submit(world, "acme-od", 8, name="od-1")["name"]
    schedule(world)
    busy = nodes_of(job(world, first))
    # A spot contract asking for every free GPU of east leases around the busy node.
    spot(world, gpus=128)
    reconcile(world, "east")
    leased = {n["name"] for n in allocation(world, "cheap")["nodes"]}
    assert leased and not busy & leased
    out = schedule(world)
    assert out["preempted"] == [] and job(world, first)["state"] == "running"


def test_a_failed_node_requeues_its_jobs_which_restart_elsewhere(world: TestClient) -> None:
    internal(world, gpus=16)
    reconcile(world, "east")
    submit(world, "ops-batch", 8, name="on-one")
    schedule(world)
    (node,) = nodes_of(job(world, "on-one"))
    assert world.post(f"/v1/nodes/{node}/fail").status_code == 200  # healed from a free node
    out = schedule(world)
    assert out["preempted"] == [{"job": "on-one", "reason": "node failed"}]
    assert [j["name"] for j in out["started"]] == ["on-one"]
    j = job(world, "on-one")
    assert node not in nodes_of(j) and j["preemptions"] == 1
    assert [e["kind"] for e in j["events"]] == ["submitted", "started", "preempted", "started"]
    check_jobs(engine_of(world), in_pools=True)


def test_cancel_and_finish_follow_the_jobs_state(world: TestClient) -> None:
    on_demand(world, site="east")
    submit(world, "acme-od", 1, name="q")
    problem(world.post("/v1/jobs/q/finish"), 409, "only a running job")
    r = world.post("/v1/jobs/q/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert r.json()["reason"] == "changed my mind"
    problem(world.post("/v1/jobs/q/cancel"), 409, "cancelled")
    assert schedule(world)["started"] == []
    submit(world, "acme-od", 8, name="r")
    schedule(world)
    r = world.post("/v1/jobs/r/cancel")
    assert r.status_code == 200 and r.json()["placement"] == []
    problem(world.get("/v1/jobs/nope"), 404, "not found")
    listed = world.get("/v1/jobs", params={"state": "cancelled", "limit": 1}).json()
    assert [j["name"] for j in listed["items"]] == ["q"] and listed["next_cursor"]
    more = world.get("/v1/jobs", params={"state": "cancelled", "cursor": listed["next_cursor"]})
    assert [j["name"] for j in more.json()["items"]] == ["r"]
    by_contract = world.get("/v1/jobs", params={"contract": "acme-od"}).json()["items"]
    assert [j["name"] for j in by_contract] == ["q", "r"]


def test_tenants_see_and_touch_only_their_own_jobs(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    on_demand(world, site="east")  # acme's
    spot(world)  # globex's
    reconcile(world, "east")
    submit(world, "acme-od", 1, name="acme-job")
    submit(world, "cheap", 1, name="globex-job")
    make = token_maker(factory)
    acme = {"Authorization": f"Bearer {make(Role.TENANT_ADMIN, ACME)}"}
    viewer = {"Authorization": f"Bearer {make(Role.TENANT_VIEWER, GLOBEX)}"}
    listed = world.get("/v1/jobs", headers=acme).json()["items"]
    assert [j["name"] for j in listed] == ["acme-job"]
    assert world.get("/v1/jobs/globex-job", headers=acme).status_code == 404
    problem(world.post("/v1/jobs/globex-job/cancel", headers=acme), 404, "not found")
    r = world.post("/v1/jobs", json={"contract": "cheap", "gpus": 1}, headers=acme)
    problem(r, 422, "unknown contract")
    r = world.post(
        "/v1/jobs", json={"contract": "acme-od", "gpus": 1, "name": "mine"}, headers=acme
    )
    assert r.status_code == 201
    out = world.post("/v1/jobs/schedule", json={}, headers=acme).json()
    assert {j["tenant"] for j in out["started"]} == {ACME}
    assert job(world, "globex-job")["state"] == "running"  # the pass ran for everyone
    assert world.get("/v1/jobs/globex-job", headers=viewer).status_code == 200
    problem(world.post("/v1/jobs", json={"contract": "cheap", "gpus": 1}, headers=viewer), 403)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"contract": "nope", "gpus": 1}, 422, "contract"),
        ({"contract": "acme-res", "gpus": 1}, 422, "contract"),
        ({"contract": "acme-od", "gpus": 0}, 422, "gpus"),
        ({"contract": "acme-od", "gpus": 1, "gpu_milli": 0}, 422, "gpu_milli"),
        ({"contract": "acme-od", "gpus": 1, "gpu_milli": 1001}, 422, "gpu_milli"),
        ({"contract": "acme-od", "gpus": 2, "gpu_milli": 500}, 422, "gpu_milli"),
        ({"contract": "acme-od", "gpus": 1, "gpu_types": ["XPU-0"]}, 422, "gpu_types"),
        ({"contract": "acme-od", "gpus": 1, "site": "east"}, 422, "site"),
        ({"contract": "acme-od", "gpus": 1, "name": "Not A Slug"}, 422, "name"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    world: TestClient, body: dict[str, object], status: int, field: str
) -> None:
    on_demand(world, site="west")
    book_now(world, "acme-res", 8, site="east")
    r = world.post("/v1/jobs", json=body)
    out = problem(r, status)
    assert any(field in [str(x) for x in e["loc"]] for e in out.get("errors") or []), out
    if field == "contract" and body["contract"] == "acme-res":
        assert "reserved" in out["detail"]
    with Session(engine_of(world)) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(JobEvent)) == 0


@pytest.mark.parametrize("seed", [20261125, 7, 42])
def test_a_gpu_is_never_over_committed_whatever_happens(world: TestClient, seed: int) -> None:
    """Random submissions, ends, passes, node failures, repairs and reconciles across the
    three pools; after every step the rows must hold the invariants (`check_jobs`)."""
    internal(world, gpus=24)
    spot(world, gpus=16)
    on_demand(world, site="east")
    reconcile(world, "east")
    rng = random.Random(seed)
    contracts = ["ops-batch", "cheap", "acme-od"]
    failed: list[str] = []
    nodes = [f"east-e0{f}-b{b}-n{i}" for f in (1, 2) for b in (1, 2) for i in (1, 2, 3, 4)]
    for _ in range(60):
        action = rng.choice(["submit", "submit", "submit", "pass", "pass", "end", "fail", "repair"])
        if action == "submit":
            gpus = rng.choice([1, 1, 2, 4, 8, 12, 16])
            milli = rng.choice([250, 500, 1000]) if gpus == 1 else 1000
            r = world.post(
                "/v1/jobs",
                json={
                    "contract": rng.choice(contracts),
                    "gpus": gpus,
                    "gpu_milli": milli,
                    "priority": rng.choice([0, 0, 1]),
                    "duration_s": rng.choice([None, 60, 3600]),
                },
            )
            assert r.status_code == 201, r.text
        elif action == "pass":
            schedule(world)
            check_jobs(engine_of(world), in_pools=True)
            continue
        elif action == "end":
            running = world.get("/v1/jobs", params={"state": "running"}).json()["items"]
            if running:
                victim = rng.choice(running)["name"]
                verb = rng.choice(["finish", "cancel"])
                assert world.post(f"/v1/jobs/{victim}/{verb}").status_code == 200
        elif action == "fail":
            node = rng.choice([n for n in nodes if n not in failed])
            assert world.post(f"/v1/nodes/{node}/fail").status_code == 200
            failed.append(node)
        elif action == "repair" and failed:
            node = failed.pop(rng.randrange(len(failed)))
            assert world.post(f"/v1/nodes/{node}/repair").status_code == 200
        check_jobs(engine_of(world), in_pools=False)
    schedule(world)
    check_jobs(engine_of(world), in_pools=True)
    states = {j["state"] for j in world.get("/v1/jobs", params={"limit": 1000}).json()["items"]}
    assert "running" in states


def test_the_background_round_schedules_and_an_ended_contract_cancels_its_jobs(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    internal(world, gpus=16)
    reconcile(world, "east")
    submit(world, "ops-batch", 8, name="bg")
    assert loop.reconcile_all(factory) == 0  # nothing changed hands; the pass ran after it
    assert job(world, "bg")["state"] == "running"
    later = datetime.now(UTC) + timedelta(days=31)  # past the contract's end
    with transaction(factory) as session:
        out = job_service.schedule(session, actor=SYSTEM, now=later)
    assert [j.name for j in out.cancelled] == ["bg"]
    j = job(world, "bg")
    assert j["state"] == "cancelled" and j["reason"] == "contract ops-batch ended"
    assert j["placement"] == [] and j["events"][-1]["kind"] == "cancelled"
