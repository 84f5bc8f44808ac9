"""Allocation, failures and healing through the API, on SQLite and PostgreSQL.

The world is the contract tests' small fleet (tests/contracts/world.py): site east has two
fabrics (e01, e02) of two 4-node blocks of 8-GPU H100 nodes; west has an NVL72 fabric of
two 18-node GB200 racks. Contracts here start this hour, so a reconcile places them now.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.contracts.world import ACME, GLOBEX
from tests.placement.api import PROBLEM_JSON, allocation, book_now, reconcile, this_hour


def test_a_contract_in_force_gets_whole_nodes_in_its_fabric_and_fewest_blocks(
    world: TestClient,
) -> None:
    booked = book_now(world, "train-a", 24, site="east", same_fabric=True)
    fabric = booked["claims"][0]["fabric"]
    assert allocation(world, "train-a")["nodes"] == []  # not placed before a reconcile
    out = reconcile(world)
    assert {c["reason"] for c in out["sites"][0]["changes"]} == {"placed"}
    a = allocation(world, "train-a")
    assert a["contracted_gpus"] == 24 and a["usable_gpus"] == 24 and a["shortfall_gpus"] == 0
    assert len(a["nodes"]) == 3 and {n["fabric"] for n in a["nodes"]} == {fabric}
    assert len({n["block"] for n in a["nodes"]}) == 1  # 3 nodes fit in one 4-node block
    assert all(n["state"] == "allocated" and n["reason"] == "placed" for n in a["nodes"])
    # The nodes come in pages; the totals count them all.
    first = world.get("/v1/contracts/train-a/allocation", params={"limit": 2}).json()
    assert len(first["nodes"]) == 2 and first["nodes_total"] == 3
    assert first["allocated_gpus"] == 24 and first["next_cursor"]
    rest = world.get(
        "/v1/contracts/train-a/allocation", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert len(rest["nodes"]) == 1 and rest["next_cursor"] is None
    names = {n["name"] for n in first["nodes"] + rest["nodes"]}
    assert names == {n["name"] for n in a["nodes"]}
    # The nodes show as allocated in the fleet, and a second reconcile changes nothing.
    node = world.get(f"/v1/nodes/{a['nodes'][0]['name']}").json()
    assert node["state"] == "allocated"
    assert all(s["changes"] == [] for s in reconcile(world)["sites"])


def test_a_failed_node_is_healed_in_the_same_fabric_and_repaired_nodes_return(
    world: TestClient,
) -> None:
    book_now(world, "train-b", 16, site="east", same_fabric=True)
    reconcile(world)
    before = allocation(world, "train-b")
    victim = before["nodes"][0]["name"]
    r = world.post(f"/v1/nodes/{victim}/fail", json={"reason": "XID 79: GPU fell off the bus"})
    assert r.status_code == 200, r.text
    changes = r.json()["site"]["changes"]
    assert {"node": victim, "before": "train-b", "after": None, "reason": "failed"} in changes
    healed = [c for c in changes if c["reason"] == "healed"]
    assert len(healed) == 1 and healed[0]["after"] == "train-b"
    after = allocation(world, "train-b")
    assert after["usable_gpus"] == 16 and after["degraded_since"] is None
    assert victim not in {n["name"] for n in after["nodes"]}
    assert {n["fabric"] for n in after["nodes"]} == {n["fabric"] for n in before["nodes"]}
    assert world.get(f"/v1/nodes/{victim}").json()["state"] == "failed"
    # Failing it again is a conflict; repairing it brings it back as a free node.
    again = world.post(f"/v1/nodes/{victim}/fail", json={})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM_JSON
    assert "already failed" in again.json()["detail"]
    r = world.post(f"/v1/nodes/{victim}/repair", json={"reason": "GPU reseated"})
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert world.get(f"/v1/nodes/{victim}").json()["state"] == "available"
    assert world.post(f"/v1/nodes/{victim}/repair").status_code == 409


def test_a_contract_that_cannot_be_healed_is_degraded_until_a_node_comes_back(
    world: TestClient,
) -> None:
    # The whole e01 fabric (8 nodes) for one contract: no free node is left to heal from.
    book_now(world, "whole-fabric", 64, site="east", same_fabric=True)
    reconcile(world)
    nodes = allocation(world, "whole-fabric")["nodes"]
    fabric = nodes[0]["fabric"]
    # Fill the other fabric too, so a replacement could only come from outside the contract's.
    book_now(world, "other-fabric", 64, site="east", same_fabric=True, tenant=GLOBEX)
    reconcile(world)
    victim = nodes[2]["name"]
    r = world.post(f"/v1/nodes/{victim}/fail")
    assert r.status_code == 200
    short = r.json()["site"]["short"]
    assert [(s["contract"], s["shortfall_gpus"]) for s in short] == [("whole-fabric", 8)]
    a = allocation(world, "whole-fabric")
    assert a["usable_gpus"] == 56 and a["shortfall_gpus"] == 8 and a["degraded_since"]
    assert {n["fabric"] for n in a["nodes"]} == {fabric}  # never healed across fabrics
    listed = world.get("/v1/placement/degraded").json()
    assert [d["contract"] for d in listed] == ["whole-fabric"]
    assert "failed" in listed[0]["reason"]
    # The node is repaired: the contract takes it back and is whole again.
    world.post(f"/v1/nodes/{victim}/repair")
    a = allocation(world, "whole-fabric")
    assert a["usable_gpus"] == 64 and a["degraded_since"] is None
    assert world.get("/v1/placement/degraded").json() == []


def test_block_contracts_get_whole_nvl72_racks(world: TestClient) -> None:
    r = world.post(
        "/v1/contracts",
        json={
            "name": "rack",
            "tenant": ACME,
            "type": "reserved",
            "accelerator": "GB200",
            "gpus": 72,
            "unit": "block",
            "start": this_hour(),
            "end": this_hour(days=30),
        },
    )
    assert r.status_code == 201, r.text
    reconcile(world, "west")
    a = allocation(world, "rack")
    assert len(a["nodes"]) == 18 and len({n["block"] for n in a["nodes"]}) == 1
    # One tray fails: the contract moves whole to the other rack.
    first = a["nodes"][0]["block"]
    world.post(f"/v1/nodes/{a['nodes'][4]['name']}/fail")
    a = allocation(world, "rack")
    assert len(a["nodes"]) == 18 and {n["block"] for n in a["nodes"]} != {first}
    assert a["usable_gpus"] == 72


def test_spares_are_kept_and_not_sold(world: TestClient) -> None:
    r = world.patch("/v1/sites/east", json={"spare_pct": 25})
    assert r.status_code == 200 and float(r.json()["spare_pct"]) == 25
    reconcile(world, "east")
    # 25% of each 8-node fabric: 2 spares each, so 48 GPUs per fabric are for sale.
    r = world.post(
        "/v1/contracts",
        json={
            "name": "too-big",
            "tenant": ACME,
            "type": "reserved",
            "accelerator": "H100",
            "gpus": 56,
            "site": "east",
            "same_fabric": True,
            "start": this_hour(),
            "end": this_hour(days=30),
        },
    )
    assert r.status_code == 409, r.text
    book_now(world, "fits", 48, site="east", same_fabric=True)
    reconcile(world, "east")
    a = allocation(world, "fits")
    victim = a["nodes"][0]["name"]
    changes = world.post(f"/v1/nodes/{victim}/fail").json()["site"]["changes"]
    healed = [c for c in changes if c["reason"] == "healed"]
    assert len(healed) == 1 and healed[0]["before"] == "spare"  # a hot spare took its place


def test_tenants_see_only_their_own_allocations_and_unknown_nodes_are_404(
    world: TestClient,
) -> None:
    book_now(world, "acme-job", 8, site="east")
    book_now(world, "globex-job", 8, site="east", tenant=GLOBEX)
    reconcile(world)
    r = world.post(
        "/v1/tokens", json={"name": "globex-admin", "role": "tenant-admin", "tenant": GLOBEX}
    )
    assert r.status_code == 201, r.text
    globex = {"Authorization": f"Bearer {r.json()['token']}"}
    assert world.get("/v1/contracts/globex-job/allocation", headers=globex).status_code == 200
    r = world.get("/v1/contracts/acme-job/allocation", headers=globex)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM_JSON
    assert world.post("/v1/placement/reconcile", headers=globex, json={}).status_code == 403
    r = world.post("/v1/nodes/no-such-node/fail")
    assert r.status_code == 404 and "no-such-node" in r.json()["detail"]
    r = world.post("/v1/placement/reconcile", json={"site": "atlantis"})
    assert r.status_code == 404
    r = world.post("/v1/placement/reconcile", json={"site": "east", "extra": 1})
    assert r.status_code == 422
