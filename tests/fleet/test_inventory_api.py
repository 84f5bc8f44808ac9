"""The fleet inventory through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import token_maker
from tests.fleet.test_fleet_apply import FLEET


def load(client: TestClient) -> None:
    r = client.post("/v1/fleet/apply", content=FLEET, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True


def test_sites_report_gpus_and_power(client: TestClient) -> None:
    load(client)
    sites = {s["name"]: s for s in client.get("/v1/sites").json()["items"]}
    alpha = sites["alpha"]
    assert alpha["gpus"] == 192 and alpha["nodes"] == 24 and alpha["state"] == "live"
    assert alpha["gpus_by_accelerator"] == {"H100": 192}
    assert alpha["it_power_mw"] == "0.245" and alpha["installed_power_mw"] == "0.294"
    assert alpha["committed_power_mw"] == "0.000" and alpha["power_mw"] == "2.000"
    assert sites["beta"]["gpus_by_accelerator"] == {"GB200": 72, "X9": 16}
    assert sites["beta"]["scheduled_gpus"] == 144
    assert client.get("/v1/sites/alpha").json()["gpus"] == 192


def test_topology_drill_down(client: TestClient) -> None:
    load(client)
    fabrics = client.get("/v1/sites/alpha/fabrics").json()
    assert [(f["name"], f["blocks"], f["nodes"], f["gpus"]) for f in fabrics] == [
        ("f01", 3, 12, 96),
        ("f02", 3, 12, 96),
    ]
    blocks = client.get("/v1/sites/alpha/fabrics/f01/blocks").json()
    assert [(b["name"], b["gpus"], b["gpus_available"]) for b in blocks] == [
        ("b1", 32, 32),
        ("b2", 32, 32),
        ("b3", 32, 32),
    ]
    assert client.get("/v1/sites/alpha/fabrics/nope/blocks").status_code == 404


def test_fabrics_and_blocks_count_their_nodes_by_state(client: TestClient) -> None:
    """What the console's fleet view shows at each level without listing the nodes."""
    load(client)
    r = client.patch("/v1/nodes/f01-b2-n1", json={"state": "failed", "reason": "xid 79"})
    assert r.status_code == 200, r.text
    fabrics = {f["name"]: f for f in client.get("/v1/sites/alpha/fabrics").json()}
    assert fabrics["f01"]["nodes_by_state"] == {"available": 11, "failed": 1}
    assert fabrics["f02"]["nodes_by_state"] == {"available": 12}
    assert fabrics["f01"]["accelerators"] == ["H100"]
    blocks = {b["name"]: b for b in client.get("/v1/sites/alpha/fabrics/f01/blocks").json()}
    assert blocks["b2"]["nodes_by_state"] == {"available": 3, "failed": 1}
    assert (blocks["b2"]["nodes"], blocks["b2"]["gpus_available"]) == (4, 24)
    assert blocks["b1"]["nodes_by_state"] == {"available": 4}
    beta = client.get("/v1/sites/beta/fabrics").json()
    assert beta[0]["accelerators"] == ["GB200", "X9"]


def test_cutting_a_sites_power_below_its_load_is_refused_with_figures(client: TestClient) -> None:
    load(client)
    r = client.patch("/v1/sites/alpha", json={"power_mw": "0.2"})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "would draw 0.294 MW" in r.json()["detail"] and "0.2 MW" in r.json()["detail"]
    assert client.get("/v1/sites/alpha").json()["power_mw"] == "2.000"
    assert client.patch("/v1/sites/alpha", json={"power_mw": "0.3"}).status_code == 200


def test_site_lifecycle_moves_forward(client: TestClient) -> None:
    r = client.post(
        "/v1/sites",
        json={
            "name": "gamma",
            "location": "Texas",
            "power_mw": "50",
            "pue": "1.2",
            "planned_on": "2027-01-01",
        },
    )
    assert r.status_code == 201 and r.json()["state"] == "planned"
    assert (
        client.patch(
            "/v1/sites/gamma", json={"state": "building", "building_on": "2027-02-01"}
        ).json()["state"]
        == "building"
    )
    r = client.patch("/v1/sites/gamma", json={"state": "planned"})
    assert r.status_code == 409 and "cannot go from building to planned" in r.json()["detail"]
    assert (
        client.post(
            "/v1/sites", json={"name": "gamma", "location": "x", "power_mw": "1", "pue": "1.2"}
        ).status_code
        == 409
    )
    assert client.delete("/v1/sites/gamma").status_code == 204


def test_a_site_with_nodes_cannot_be_deleted(client: TestClient) -> None:
    load(client)
    r = client.delete("/v1/sites/alpha")
    assert r.status_code == 409 and "24 node(s)" in r.json()["detail"]


def test_node_listing_filters_and_state_changes(client: TestClient) -> None:
    load(client)
    page = client.get("/v1/nodes", params={"site": "beta", "accelerator": "X9"}).json()
    assert [n["name"] for n in page["items"]] == ["beta-r1-x1", "beta-r1-x2"]
    r = client.patch("/v1/nodes/beta-r1-x1", json={"state": "failed", "reason": "GPU 3 XID 79"})
    assert r.status_code == 200 and r.json()["state"] == "failed"
    assert (
        client.get("/v1/nodes", params={"state": "failed"}).json()["items"][0]["name"]
        == "beta-r1-x1"
    )
    r = client.patch("/v1/nodes/beta-r1-x1", json={"state": "allocated"})
    assert r.status_code == 409 and "cannot go from failed to allocated" in r.json()["detail"]
    assert client.patch("/v1/nodes/nope", json={"state": "failed"}).status_code == 404
    events = client.get("/v1/audit-events", params={"action": "node.state"}).json()["items"]
    assert (
        events[-1]["before"] == {"state": "available"}
        and events[-1]["after"]["reason"] == "GPU 3 XID 79"
    )


def test_deliveries_slip_and_arrive(client: TestClient) -> None:
    load(client)
    assert client.get("/v1/deliveries/d1").json()["gpus"] == 144
    r = client.patch("/v1/deliveries/d1", json={"expected_on": "2027-09-01"})
    assert r.status_code == 200 and r.json()["expected_on"] == "2027-09-01"
    r = client.post(
        "/v1/deliveries",
        json={
            "name": "d2",
            "site": "alpha",
            "accelerator": "B200",
            "nodes": 10,
            "gpus_per_node": 8,
            "power_kw_per_node": "14.3",
            "expected_on": "2027-01-01",
        },
    )
    assert r.status_code == 201 and r.json()["state"] == "scheduled"
    assert (
        client.post(
            "/v1/deliveries",
            json={
                "name": "d3",
                "site": "nowhere",
                "accelerator": "B200",
                "nodes": 1,
                "gpus_per_node": 8,
                "power_kw_per_node": "14.3",
                "expected_on": "2027-01-01",
            },
        ).status_code
        == 422
    )
    assert (
        client.patch("/v1/deliveries/d2", json={"state": "delivered"}).json()["state"]
        == "delivered"
    )
    r = client.patch("/v1/deliveries/d2", json={"expected_on": "2027-02-01"})
    assert r.status_code == 409 and "delivered" in r.json()["detail"]
    assert [
        d["name"]
        for d in client.get("/v1/deliveries", params={"state": "scheduled"}).json()["items"]
    ] == ["d1"]


def test_custom_accelerators(client: TestClient) -> None:
    r = client.post(
        "/v1/accelerators",
        json={
            "name": "MI355X",
            "vendor": "AMD",
            "memory_gb": "288",
            "tdp_w": 1400,
            "bf16_tflops": "2500",
        },
    )
    assert r.status_code == 201 and r.json()["builtin"] is False
    assert client.patch("/v1/accelerators/MI355X", json={"tdp_w": 1500}).json()["tdp_w"] == 1500
    assert client.patch("/v1/accelerators/H100", json={"tdp_w": 1}).status_code == 409
    assert client.delete("/v1/accelerators/H100").status_code == 409
    assert client.delete("/v1/accelerators/MI355X").status_code == 204
    assert client.get("/v1/accelerators/MI355X").status_code == 404


def test_fleet_apply_errors_over_http(client: TestClient) -> None:
    r = client.post(
        "/v1/fleet/apply",
        content=b"sites:\n  - name: a\n    power_mw: 1\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 422
    body = r.json()
    assert "line 2" in body["detail"] and "location" in body["detail"]
    assert body["errors"][0]["line"] == 2
    assert client.get("/v1/sites").json()["items"] == []
    dry = client.post(
        "/v1/fleet/apply",
        params={"dry_run": "true"},
        content=FLEET,
        headers={"Content-Type": "application/yaml"},
    ).json()
    assert dry["applied"] is False and dry["counts"]["nodes_created"] == 44
    assert client.get("/v1/sites").json()["items"] == []


def test_tokens_and_audit(client: TestClient) -> None:
    assert (
        client.post("/v1/tenants", json={"name": "acme", "display_name": "Acme"}).status_code == 201
    )
    r = client.post(
        "/v1/tokens", json={"name": "acme-admin", "role": "tenant-admin", "tenant": "acme"}
    )
    assert r.status_code == 201
    secret = r.json()["token"]
    assert secret.startswith("nc_") and r.json()["prefix"] == secret[:10]
    tenant = TestClient(client.app, headers={"Authorization": f"Bearer {secret}"})
    assert [t["name"] for t in tenant.get("/v1/tenants").json()["items"]] == ["acme"]
    r = tenant.post("/v1/tokens", json={"name": "sneaky", "role": "admin"})
    assert r.status_code in (403, 422)
    # revoking takes effect at once
    token_id = r_id = client.get("/v1/tokens").json()["items"][-1]["id"]
    assert client.delete(f"/v1/tokens/{r_id}").json()["revoked_at"] is not None
    assert tenant.get("/v1/tenants").status_code == 401
    actions = [e["action"] for e in client.get("/v1/audit-events").json()["items"]]
    assert actions[-3:] == ["tenant.create", "token.create", "token.revoke"]
    revoke = client.get("/v1/audit-events", params={"action": "token.revoke"}).json()["items"][0]
    assert revoke["object_id"] == str(token_id) and revoke["actor"] == "bootstrap-admin"
    assert revoke["before"]["revoked_at"] is None and revoke["after"]["revoked_at"]


def test_finance_can_read_the_fleet_but_not_change_it(client: TestClient) -> None:
    load(client)
    finance = TestClient(
        client.app,
        headers={
            "Authorization": f"Bearer {token_maker(client.app.state.sessionmaker)('finance')}"
        },
    )
    assert finance.get("/v1/sites").status_code == 200
    r = finance.patch("/v1/sites/alpha", json={"pue": "1.3"})
    assert r.status_code == 403 and "finance" in r.json()["detail"]
