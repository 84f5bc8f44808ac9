"""GET /v1/placement/failed-nodes: nodes out of service and whom each failure hit (the
console's health view), on SQLite and PostgreSQL. The world is tests/contracts/world.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.contracts.world import GLOBEX
from tests.placement.api import allocation, book_now, reconcile


def test_failed_nodes_name_the_contract_they_were_taken_from(world: TestClient) -> None:
    book_now(world, "whole-fabric", 64, site="east", same_fabric=True)
    reconcile(world)
    held = allocation(world, "whole-fabric")["nodes"]
    book_now(world, "other-fabric", 64, site="east", same_fabric=True, tenant=GLOBEX)
    reconcile(world)
    victim = held[2]["name"]
    assert world.post(f"/v1/nodes/{victim}/fail", json={"reason": "XID 79"}).status_code == 200
    # a free node of the other site fails too: it hit no one
    free = world.get("/v1/nodes", params={"site": "west", "limit": 1}).json()["items"][0]
    assert world.post(f"/v1/nodes/{free['name']}/fail").status_code == 200

    out = world.get("/v1/placement/failed-nodes").json()
    rows = {n["name"]: n for n in out["items"]}
    assert set(rows) == {victim, free["name"]} and out["next_cursor"] is None
    hit = rows[victim]
    assert (hit["contract"], hit["tenant"], hit["state"], hit["reason"]) == (
        "whole-fabric",
        "acme",
        "failed",
        "XID 79",
    )
    assert (hit["site"], hit["fabric"], hit["gpus"]) == ("east", held[2]["fabric"], 8)
    assert rows[free["name"]]["contract"] is None and rows[free["name"]]["reason"] is None
    # the contract it names is the one left short
    assert [d["contract"] for d in world.get("/v1/placement/degraded").json()] == ["whole-fabric"]

    # pages by cursor, and a filter by site
    first = world.get("/v1/placement/failed-nodes", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = world.get(
        "/v1/placement/failed-nodes", params={"limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert {first["items"][0]["name"], rest["items"][0]["name"]} == set(rows)
    west = world.get("/v1/placement/failed-nodes", params={"site": "west"}).json()["items"]
    assert [n["name"] for n in west] == [free["name"]]

    # repaired: out of the list
    assert world.post(f"/v1/nodes/{victim}/repair").status_code == 200
    names = [n["name"] for n in world.get("/v1/placement/failed-nodes").json()["items"]]
    assert names == [free["name"]]


def test_tenants_may_not_list_failed_nodes(world: TestClient) -> None:
    r = world.post("/v1/tokens", json={"name": "g", "role": "tenant-admin", "tenant": GLOBEX})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert world.get("/v1/placement/failed-nodes", headers=headers).status_code == 403
