"""Draining a site: the plan (dry run), the moves step by step, the nodes that follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.db.engine import transaction
from neocloud.placement import service
from tests.contracts.world import GLOBEX
from tests.placement.api import PROBLEM_JSON, allocation, book_now, reconcile


def contract_sites(c: TestClient, name: str) -> set[str]:
    now = datetime.now(UTC)
    body = c.get(f"/v1/contracts/{name}").json()
    return {
        k["site"]
        for k in body["claims"]
        if datetime.fromisoformat(k["end"]) > now.replace(minute=0, second=0, microsecond=0)
    }


def test_a_dry_run_plans_what_moves_where_and_what_cannot_and_changes_nothing(
    world: TestClient,
) -> None:
    book_now(world, "big", 24, site="east")
    book_now(world, "small", 16, site="east", tenant=GLOBEX)
    reconcile(world)
    before = world.get("/v1/contracts/big").json()
    r = world.post("/v1/sites/east/drain", json={"to": ["west"], "dry_run": True})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dry_run"] is True and plan["placement"] == []
    steps = {s["contract"]: s for s in plan["steps"]}
    # west has 32 H100 GPUs now: the larger contract goes first and fits, the other does not.
    assert steps["big"]["moved"] is True and steps["big"]["to"] == "west"
    assert steps["big"]["effective"] is not None
    assert steps["small"]["moved"] is False and "west" in steps["small"]["reason"]
    assert world.get("/v1/contracts/big").json() == before
    assert world.get("/v1/sites/east").json()["state"] == "live"
    assert {n["site"] for n in allocation(world, "big")["nodes"]} == {"east"}


def test_a_drain_moves_each_contract_it_can_and_the_nodes_follow(
    world: TestClient, factory: sessionmaker[Session]
) -> None:
    book_now(world, "big", 24, site="east")
    book_now(world, "small", 16, site="east", tenant=GLOBEX)
    reconcile(world)
    r = world.post("/v1/sites/east/drain", json={"to": ["west"]})
    assert r.status_code == 200, r.text
    out = r.json()
    moved = {s["contract"]: s["moved"] for s in out["steps"]}
    assert moved == {"big": True, "small": False}
    assert world.get("/v1/sites/east").json()["state"] == "draining"
    assert "west" in contract_sites(world, "big")
    assert contract_sites(world, "small") == {"east"}
    # The contract's history says why it moved; its nodes followed it.
    history = world.get("/v1/contracts/big/history").json()
    assert history[-1]["action"] == "move" and "drain of east" in history[-1]["reason"]
    assert {p["site"] for p in out["placement"]} == {"east", "west"}
    # The move takes effect from the next hour; a reconcile then moves the nodes with it.
    effective = next(s["effective"] for s in out["steps"] if s["contract"] == "big")
    at = datetime.fromisoformat(effective) + timedelta(minutes=1)
    with transaction(factory) as session:
        done = {s.site: s for s in service.reconcile(session, actor=SYSTEM, now=at).sites}
    assert {(c.after, c.reason) for c in done["west"].changes} == {("big", "placed")}
    assert ("big", "ended") in {(c.before, c.reason) for c in done["east"].changes}
    assert {n["site"] for n in allocation(world, "big")["nodes"]} == {"west"}


def test_draining_into_itself_or_nowhere_is_refused_with_the_field(world: TestClient) -> None:
    r = world.post("/v1/sites/east/drain", json={"to": ["west", "east"]})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON
    assert "to[1]" in r.json()["detail"]
    r = world.post("/v1/sites/east/drain", json={"to": ["atlantis"]})
    assert r.status_code == 404 and "atlantis" in r.json()["detail"]
    assert world.post("/v1/sites/nowhere/drain", json={}).status_code == 404
    assert world.get("/v1/sites/east").json()["state"] == "live"
