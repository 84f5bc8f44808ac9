"""Spot on idle capacity: leases, notice when the capacity is taken back, preemptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.db.engine import transaction
from neocloud.placement import service
from tests.contracts.world import ACME, GLOBEX
from tests.placement.api import allocation, book_now, reconcile, this_hour


def spot(c: TestClient, name: str, gpus: int, notice: int = 30) -> None:
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


def test_spot_runs_on_idle_nodes_and_is_preempted_after_its_notice_never_later(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    spot(world, "cheap", 16, notice=30)
    out = reconcile(world, "east")
    leased = [s for s in out["sites"][0]["spot"] if s["action"] == "leased"]
    assert len(leased) == 2 and {s["contract"] for s in leased} == {"cheap"}
    a = allocation(world, "cheap")
    assert a["contracted_gpus"] == 16 and a["usable_gpus"] == 16
    assert {n["reason"] for n in a["nodes"]} == {"spot"} and all(
        n["until"] is None for n in a["nodes"]
    )
    # A reservation of the whole site needs those nodes back: the spot leases get notice.
    book_now(world, "big", 128, site="east", tenant=ACME)
    out = reconcile(world, "east")
    noticed = [s for s in out["sites"][0]["spot"] if s["action"] == "noticed"]
    assert len(noticed) == 2 and all("taken back" in s["reason"] for s in noticed)
    assert allocation(world, "big")["usable_gpus"] == 128
    until = {n["until"] for n in allocation(world, "cheap")["nodes"]}
    assert len(until) == 1 and None not in until
    # Half an hour later (a reconcile then), the leases end exactly at their notice's end.
    later = datetime.now(UTC) + timedelta(minutes=31)
    with transaction(factory) as session:
        done = service.reconcile(session, actor=SYSTEM, site="east", now=later)
    preempted = [s for s in done.sites[0].spot if s.action == "preempted"]
    assert len(preempted) == 2
    r = world.get("/v1/placement/preemptions")
    assert r.status_code == 200
    rows = r.json()
    assert [p["contract"] for p in rows] == ["cheap", "cheap"]
    for p in rows:
        notice_at = datetime.fromisoformat(p["notice_at"])
        ended_at = datetime.fromisoformat(p["ended_at"])
        assert ended_at - notice_at == timedelta(minutes=30)  # spot never outlives its notice
        assert "taken back" in p["reason"]
    assert allocation(world, "cheap")["nodes"] == []


def test_a_spot_lease_ends_at_once_when_its_node_fails(world: TestClient) -> None:
    spot(world, "fragile", 8)
    reconcile(world, "east")
    node = allocation(world, "fragile")["nodes"][0]["name"]
    r = world.post(f"/v1/nodes/{node}/fail")
    assert r.status_code == 200
    ended = [s for s in r.json()["site"]["spot"] if s["action"] == "ended"]
    assert [(s["node"], s["reason"]) for s in ended] == [(node, "the node failed")]
    # The spot contract leases another idle node in the same reconcile.
    assert [s["action"] for s in r.json()["site"]["spot"]] == ["ended", "leased"]
    assert allocation(world, "fragile")["usable_gpus"] == 8
