"""`neocloud demo` serves the built-in scenario on embedded SQLite with no other service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import pg_exec, pg_url
from tests.servers import running


def test_demo_serves_the_scenario(tmp_path: Path) -> None:
    demo = ["demo", "--data-dir", str(tmp_path)]
    with running(demo, env={"NEOCLOUD_DB_URL": ""}, timeout=300) as url:
        token = (tmp_path / "admin-token").read_text().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        sites = {s["name"]: s for s in api.get("/v1/sites").json()["items"]}
        first, second = sites["memphis-1"], sites["memphis-2"]
        # the Colossus-1-like site: about 230k GPUs of H100, H200 and GB200 within about 300 MW
        assert 220_000 <= first["gpus"] <= 240_000
        assert set(first["gpus_by_accelerator"]) == {"H100", "H200", "GB200"}
        assert float(first["installed_power_mw"]) <= float(first["power_mw"]) == 300
        # the newer site grows through scheduled GB300 deliveries; the orbital one is planned
        assert second["scheduled_gpus"] > 0 and sites["orbital-1"]["state"] == "planned"
        assert 290_000 <= sum(s["gpus"] for s in sites.values()) <= 310_000
        deliveries = api.get("/v1/deliveries").json()["items"]
        assert {d["accelerator"] for d in deliveries} == {"GB300"}
        tenants = {t["name"]: t["kind"] for t in api.get("/v1/tenants").json()["items"]}
        assert tenants == {
            "training": "internal",
            "meridian-labs": "customer",
            "codeloom": "customer",
            "helix-bio": "customer",
            "pixelforge": "customer",
        }
        _assert_the_story(api)
        # The demo placed the contracts in force: the AI lab holds all of memphis-1's nodes.
        assert api.get("/v1/nodes", params={"limit": 1}).json()["items"][0]["state"] == "allocated"
        sold = api.get("/v1/contracts/meridian-memphis-1/allocation").json()
        assert sold["usable_gpus"] == sold["contracted_gpus"] == first["gpus"]
        assert len(api.get("/v1/accelerators").json()["items"]) == 5
        assert "neocloud_fleet_gpus" in httpx.get(url + "/metrics").text
        _assert_the_usage_history(api)
        _assert_the_invoices(api)
        # the customer's token, for the console's portal: tenant-admin of codeloom
        customer = (tmp_path / "tenant-token").read_text().strip()
        me = httpx.get(url + "/v1/me", headers={"Authorization": f"Bearer {customer}"}).json()
        assert (me["role"], me["tenant"], me["operator"]) == ("tenant-admin", "codeloom", False)
        assert httpx.get(url + "/").status_code == 200  # the console
    # a second start keeps the data and the token
    with running(demo, env={"NEOCLOUD_DB_URL": ""}, timeout=300) as url:
        assert (tmp_path / "admin-token").read_text().strip() == token
        assert (tmp_path / "tenant-token").read_text().strip() == customer
        r = httpx.get(url + "/v1/sites", headers={"Authorization": f"Bearer {token}"})
        assert len(r.json()["items"]) == 3


def _days(api: httpx.Client, contract: str) -> list[dict[str, Any]]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "contract": contract,
        "step": "day",
        "start": (today - timedelta(days=120)).isoformat(),
        "end": today.isoformat(),
        "limit": 1000,
    }
    r = api.get("/v1/usage/rollups", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _assert_the_usage_history(api: httpx.Client) -> None:
    """Months of usage for the reserved, on-demand and spot customers, days for the big
    ones; billable where the contracts held their nodes, rolled up and closed."""
    for contract, at_least in (
        ("codeloom-gb200", 60),
        ("helix-on-demand", 60),
        ("pixelforge-spot", 60),
    ):
        days = _days(api, contract)
        assert len(days) >= at_least, contract
        assert all(d["closed"] for d in days)
        assert all(0 < d["billable_gpu_seconds"] <= d["measured_gpu_seconds"] for d in days)
    reserved = _days(api, "codeloom-gb200")
    # A reserved block holds its nodes all day, used or not; it used most of them.
    assert all(d["allocated_gpu_seconds"] == 4_608 * 86_400 for d in reserved[1:])
    assert all(d["measured_gpu_seconds"] < d["allocated_gpu_seconds"] for d in reserved)
    assert any(float(d["energy_kwh"]) > 0 for d in reserved)
    sale = _days(api, "meridian-memphis-1")
    assert len(sale) >= 2 and {d["site"] for d in sale} == {"memphis-1"}
    assert {d["accelerator"] for d in sale} == {"H100", "H200", "GB200"}


def _assert_the_story(api: httpx.Client) -> None:
    """The training moved from memphis-1 to memphis-2, then memphis-1 was sold whole."""
    contracts = {c["name"]: c for c in api.get("/v1/contracts").json()["items"]}
    sale = contracts["meridian-memphis-1"]
    assert (sale["tenant"], sale["type"], sale["site"]) == (
        "meridian-labs",
        "dedicated-site",
        "memphis-1",
    )
    assert 220_000 <= sale["gpus"] <= 240_000 and float(sale["mw"]) == 300
    moved = contracts["training-gb200-m1"]
    after_sale = [c for c in moved["claims"] if c["start"] >= sale["start"]]
    assert after_sale and {c["site"] for c in after_sale} == {"memphis-2"}
    assert sum(c["gpus"] for c in after_sale) == moved["gpus"]
    actions = [r["action"] for r in api.get("/v1/contracts/training-gb200-m1/history").json()]
    assert actions == ["book", "relocate"]
    kinds = {c["type"] for c in contracts.values() if c["tenant"] != "training"}
    assert {"reserved", "dedicated-site", "on-demand", "spot"} <= kinds
    assert {c["unit"] for c in contracts.values() if c["tenant"] == "codeloom"} == {"block"}
    assert api.get("/v1/capacity/conflicts").json() == []
    # nothing else can be sold on memphis-1 while the lab holds it
    quote = api.post(
        "/v1/quotes",
        json={
            "tenant": "codeloom",
            "accelerator": "H100",
            "gpus": 8,
            "months": 1,
            "site": "memphis-1",
            "start_after": "2027-01-01T00:00:00Z",
            "start_before": "2027-02-01T00:00:00Z",
        },
    ).json()
    assert quote["options"] == []
    assert "dedicated-site" in quote["unavailable"]["missing"][0]["reason"]


@pytest.mark.postgres
def test_serve_runs_several_workers_on_postgresql() -> None:
    name = "nc_serve_workers_test"
    pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_exec(f'CREATE DATABASE "{name}"')
    try:
        env = {"NEOCLOUD_DB_URL": pg_url(name), "NEOCLOUD_BOOTSTRAP_TOKEN": "nc_workers"}
        with running(["serve", "--workers", "2"], env=env) as url:
            api = httpx.Client(base_url=url, headers={"Authorization": "Bearer nc_workers"})
            for i in range(6):
                assert (
                    api.post(
                        "/v1/tenants", json={"name": f"t{i}", "display_name": f"T{i}"}
                    ).status_code
                    == 201
                )
            assert len(api.get("/v1/tenants").json()["items"]) == 6
            metrics = httpx.get(url + "/metrics").text
            assert (
                'neocloud_http_requests_total{method="POST",route="/v1/tenants",status="201"}'
                in metrics
            )
    finally:
        pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _assert_the_invoices(api: httpx.Client) -> None:
    """The full months of the history are invoiced and issued: every customer has invoices
    (the whole-site sale's a fixed fee), the training team showback statements."""
    docs = api.get("/v1/invoices", params={"limit": 1000}).json()["items"]
    assert {d["status"] for d in docs} == {"issued"}
    kinds = {(d["tenant"], d["kind"]) for d in docs}
    customers = {"meridian-labs", "codeloom", "helix-bio", "pixelforge"}
    assert kinds == {(t, "invoice") for t in customers} | {("training", "showback")}
    site = next(d for d in docs if d["tenant"] == "meridian-labs")
    lines = api.get(f"/v1/invoices/{site['id']}").json()["items"]
    assert [x["kind"] for x in lines] == ["commitment"] and "whole-site fee" in lines[0][
        "description"
    ]
