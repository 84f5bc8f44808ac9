"""Utilization from usage ingested through the API, revenue on consumption (rated), revenue
per active MW, and the internal vs external split of contracted GPUs, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.capacity.timeline import hour_of
from neocloud.metering import rollups
from tests.contracts.world import ACME, GLOBEX, INTERNAL, book, build, reserved, t
from tests.metering.conftest import World
from tests.metering.helpers import iso, now_s, parse, post, usage
from tests.reports.test_money_reports import report

SHARE = Decimal("0.0001")
FREE_NODE = "east-e01-b1-n4"


def share(part: int, whole: int) -> str:
    return str((Decimal(part) / Decimal(whole)).quantize(SHARE))


def this_hour() -> Any:
    return now_s().replace(minute=0, second=0)


def test_utilization_is_allocated_and_used_over_installed_gpus(
    world: World, factory: sessionmaker[Session]
) -> None:
    c, h = world.c, this_hour()
    # All 16 GPUs of the contract's two nodes ran for the two hours before this one.
    post(c, [usage(world.contract, node, 8, h - timedelta(hours=2), h) for node in world.nodes])
    with factory() as s, s.begin():
        rollups.close(s, [hour_of(world.since)], now_s())  # sets what the nodes were held
    held = c.get(
        "/v1/usage/rollups",
        params={"contract": world.contract, "start": iso(h), "end": iso(h + timedelta(hours=1))},
    ).json()["items"]
    allocated = sum(r["allocated_gpu_seconds"] for r in held)
    assert allocated > 0
    day = h.replace(hour=0)
    body = report(
        c,
        "utilization",
        start=iso(day - timedelta(days=1)),
        end=iso(day + timedelta(days=1)),
        step="day",
    )
    used = 16 * 7200
    east = next(s for s in body["sites"] if s["site"] == "east")
    assert east["gpus"] == 128
    assert east["used_share"] == share(used, 128 * 48 * 3600)
    assert east["allocated_share"] == share(allocated, 128 * 48 * 3600)
    assert [p["total_gpus"] for p in east["periods"]] == ["128.0", "128.0"]
    # The fleet: east's 128 and west's 176 GPUs are live; north's 32 are installed but the
    # site goes live only in 2028, so they count for nothing yet.
    assert body["gpus"] == 128 + 176 + 32
    assert body["used_share"] == share(used, 304 * 48 * 3600)
    assert body["allocated_share"] == share(allocated, 304 * 48 * 3600)
    assert [p["total_gpus"] for p in body["periods"]] == ["304.0", "304.0"]
    assert body["chart"]["kind"] == "line"


def test_on_demand_revenue_is_its_rated_usage_and_counts_its_site_as_active(
    world: World,
) -> None:
    c, h = world.c, this_hour()
    r = c.post(
        "/v1/contracts",
        json={
            "name": "acme-od",
            "tenant": ACME,
            "type": "on-demand",
            "accelerator": "H100",
            "site": "east",
            "start": iso(h - timedelta(days=2)),
            "end": iso(h + timedelta(days=30)),
            "price": "4.00",
        },
    )
    assert r.status_code == 201, r.text
    # 8 GPUs for the hour before this one: 8 GPU-hours at $4.00.
    post(c, [usage("acme-od", FREE_NODE, 8, h - timedelta(hours=1), h)])
    params = {"start": iso(h - timedelta(days=40)), "end": iso(h + timedelta(days=1))}
    body = report(c, "revenue", **params)
    assert (body["recognized"], body["consumption"], body["ratable"]) == ("32.00", "32.00", "0.00")
    assert body["by_type"] == {"on-demand": "32.00"}
    assert body["by_site"] == {"east": "32.00"}
    assert body["by_customer"] == {ACME: "32.00"}
    # East (2 MW) was active for that one hour: 32.00 x 8760 / 2 MW-hours.
    per_mw = report(c, "revenue-per-mw", **params)
    assert per_mw["revenue_per_mw_year"] == "140160.00"
    assert [(s["site"], s["active_hours"]) for s in per_mw["sites"]] == [("east", 1)]


def test_capacity_split_by_site_and_month(client: TestClient) -> None:
    build(client)
    reserved(client, "acme-h100", 16, "2027-01-15", "2027-04-15", site="east")
    reserved(
        client,
        "ops-h100",
        8,
        "2027-01-01",
        "2028-01-01",
        site="east",
        tenant=INTERNAL,
        type="internal",
    )
    book(
        client,
        name="globex-west",
        tenant=GLOBEX,
        type="dedicated-site",
        site="west",
        start=t("2027-02-01"),
        end=t("2027-08-01"),
    )
    body = report(client, "capacity-split", start=t("2027-01-01"), end=t("2027-03-01"))
    jan, feb = body["periods"]
    assert (jan["period"], feb["period"]) == ("2027-01", "2027-02")
    # January: 8 internal all month; 16 external from the 15th (17 of 31 days).
    assert (jan["internal_gpus"], jan["external_gpus"]) == (
        "8.0",
        str(Decimal(16 * 17 / 31).quantize(Decimal("0.1"))),
    )
    # February: all of west (176 GPUs) is sold whole; north is not live.
    assert (feb["supply_gpus"], feb["internal_gpus"], feb["external_gpus"]) == (
        "304.0",
        "8.0",
        "192.0",
    )
    assert (feb["free_gpus"], feb["internal_share"]) == ("104.0", "0.0400")
    west = next(s for s in body["sites"] if s["site"] == "west")
    assert [p["external_gpus"] for p in west["periods"]] == ["0.0", "176.0"]
    assert body["chart"]["series"][0]["name"] == "internal"
    # West's scheduled delivery (64 H100 on 2027-07-01) counts from the day it is expected.
    july = report(client, "capacity-split", start=t("2027-07-01"), end=t("2027-08-01"))
    west = next(s for s in july["sites"] if s["site"] == "west")
    assert west["periods"][0]["supply_gpus"] == "240.0"


def test_a_reserved_contract_without_take_or_pay_earns_on_consumption(world: World) -> None:
    """Rated as its invoices are: the usage it ran at its price, no commitment; so nothing of
    it is ratable, and nothing is left in backlog."""
    c, h = world.c, this_hour()
    booked = c.post(
        "/v1/contracts",
        json={
            "name": "acme-flex",
            "tenant": ACME,
            "type": "reserved",
            "accelerator": "H100",
            "gpus": 8,
            "unit": "node",
            "site": "east",
            "start": iso(h),
            "end": iso(h + timedelta(days=30)),
            "price": "3.60",
            "take_or_pay": False,
        },
    )
    assert booked.status_code == 201, booked.text
    placed = c.post("/v1/placement/reconcile", json={})
    assert placed.status_code == 200, placed.text
    nodes = c.get("/v1/contracts/acme-flex/allocation").json()["nodes"]
    node, since = nodes[0]["name"], parse(nodes[0]["since"])
    # 8 GPUs for 60 s on its own node: 480 GPU-seconds at $3.60 an hour = $0.48.
    post(
        c,
        [usage("acme-flex", node, 8, since + timedelta(seconds=1), since + timedelta(seconds=61))],
    )
    train = c.get(f"/v1/contracts/{world.contract}").json()
    params = {
        "start": iso(h),
        "end": iso(h + timedelta(hours=1)),
        "as_of": iso(h + timedelta(hours=1)),
    }
    body = report(c, "revenue", **params)
    assert body["consumption"] == "0.48"
    # The take-or-pay reservation earns its hour ratably: 16 GPUs at its price.
    assert Decimal(body["ratable"]) == (16 * Decimal(train["price"])).quantize(Decimal("0.01"))
    backlog = report(c, "backlog", as_of=iso(h + timedelta(hours=1)))
    assert "acme-flex" not in {r["contract"] for r in backlog["contracts"]}
