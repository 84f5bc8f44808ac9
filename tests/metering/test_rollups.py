"""Hourly rollups per contract x site x accelerator: used, billable and excluded GPU-seconds
kept at ingest (late events land in their own hour), allocated GPU-seconds and energy set when
the hour closes (late telemetry makes it close again); tenants see only their own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import Contract
from neocloud.metering import rollups
from neocloud.placement.models import Allocation
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX
from tests.metering.conftest import World
from tests.metering.helpers import iso, now_s, post, telemetry, usage, window
from tests.placement.api import book_now, reconcile


def read(c: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = c.get("/v1/usage/rollups", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def hour_start(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def test_an_interval_across_an_hour_is_split_and_a_late_event_lands_in_its_own_hour(
    world: World,
) -> None:
    c, node = world.c, world.nodes[0]
    h = hour_start(now_s())
    post(c, [usage(world.contract, node, 8, h - timedelta(seconds=100), h + timedelta(seconds=50))])
    lo, hi = h - timedelta(hours=3), h + timedelta(hours=1)
    rows = read(c, contract=world.contract, start=iso(lo), end=iso(hi))
    assert [(r["start"][:19], r["measured_gpu_seconds"]) for r in rows] == [
        (iso(h - timedelta(hours=1))[:19], 800),
        (iso(h)[:19], 400),
    ]
    row = rows[0]
    assert (row["site"], row["accelerator"], row["tenant"]) == ("east", "H100", ACME)
    # Before the contract held the node: measured, not billable, with the reason.
    assert row["billable_gpu_seconds"] + sum(row["excluded_gpu_seconds"].values()) == 800
    assert row["used_gpu_hours"] == "0.222222"
    # Two hours late: it lands in its own hour, and resending it adds nothing.
    late = usage(
        world.contract,
        node,
        2,
        h - timedelta(hours=3),
        h - timedelta(hours=3) + timedelta(seconds=90),
    )
    post(c, [late])
    post(c, [late])
    rows = read(c, contract=world.contract, start=iso(lo), end=iso(hi))
    assert [r["measured_gpu_seconds"] for r in rows] == [180, 800, 400]
    assert rows[0]["start"][:19] == iso(h - timedelta(hours=3))[:19]


def test_an_exclusion_recorded_later_moves_billable_to_excluded_in_its_hours(
    world: World,
) -> None:
    c, node = world.c, world.nodes[0]
    t = world.since + timedelta(seconds=1)
    post(c, [usage(world.contract, node, 8, t, t + timedelta(seconds=100))])
    r = c.post(
        "/v1/usage/exclusions",
        json={
            "contract": world.contract,
            "reason": "operator-fault",
            "start": iso(t),
            "end": iso(t + timedelta(seconds=25)),
        },
    )
    assert r.status_code == 201, r.text
    lo, hi = window(t)
    rows = read(c, contract=world.contract, start=iso(lo), end=iso(hi))
    measured = sum(r["measured_gpu_seconds"] for r in rows)
    billable = sum(r["billable_gpu_seconds"] for r in rows)
    fault = sum(r["excluded_gpu_seconds"].get("operator-fault", 0) for r in rows)
    assert (measured, billable, fault) == (800, 600, 200)


def test_closing_an_hour_sets_what_the_contract_held_and_drew(
    world: World, factory: sessionmaker[Session]
) -> None:
    c = world.c
    h = hour_of(world.since)
    when = world.since + timedelta(seconds=2)
    # One sample per GPU of each node at 612 W: a node draws 8 x 612 W while held.
    post(c, [telemetry(n, g, when) for n in world.nodes for g in range(8)])
    with factory() as s, s.begin():
        since = s.scalars(
            sa.select(Allocation.since)
            .join(Contract, Contract.id == Allocation.contract_id)
            .where(Contract.name == world.contract, Allocation.until.is_(None))
        ).all()
        rollups.close(s, [h], now_s())
    end_of_hour = hour_start(world.since) + timedelta(hours=1)
    # Times are kept to the second (a fraction is dropped), as everywhere in metering.
    held_s = [int(end_of_hour.timestamp()) - int(t.timestamp()) for t in since]
    lo, hi = hour_start(world.since), end_of_hour
    rows = read(c, contract=world.contract, start=iso(lo), end=iso(hi))
    assert len(rows) == 1 and rows[0]["closed"] is True
    assert rows[0]["allocated_gpu_seconds"] == sum(8 * s for s in held_s)
    expected_wh = round(sum(8 * 612 * s / 3600 for s in held_s))
    assert rows[0]["energy_kwh"] == f"{expected_wh / 1000:.3f}"
    # A sample that arrives after the close makes the hour stale until it is closed again.
    hotter = telemetry(world.nodes[0], 0, when)
    hotter["data"]["power_w"] = 612.0 * 3
    post(c, [hotter])
    assert read(c, contract=world.contract, start=iso(lo), end=iso(hi))[0]["closed"] is False
    with factory() as s, s.begin():
        # The background pass, an hour from now: it closes this hour (and the next).
        closed = rollups.close_due(s, world.since + timedelta(hours=2))
    assert h in closed
    again = read(c, contract=world.contract, start=iso(lo), end=iso(hi))[0]
    assert again["closed"] is True
    assert float(again["energy_kwh"]) > float(rows[0]["energy_kwh"])


def test_the_close_endpoint_and_a_day_step(world: World) -> None:
    c = world.c
    r = c.post("/v1/usage/rollups/close")
    assert r.status_code == 200, r.text
    t = world.since + timedelta(seconds=1)
    post(c, [usage(world.contract, world.nodes[1], 4, t, t + timedelta(seconds=30))])
    day = read(c, contract=world.contract, step="day", start=iso(t), end=iso(t))
    assert len(day) == 1
    assert day[0]["measured_gpu_seconds"] == 120
    assert day[0]["start"].endswith("T00:00:00Z")


def test_a_tenant_reads_only_its_own_rollups(world: World, factory: sessionmaker[Session]) -> None:
    c = world.c
    book_now(c, "globex-r", 8, site="east", tenant=GLOBEX)
    reconcile(c)
    t = now_s() - timedelta(seconds=30)
    post(c, [usage(world.contract, world.nodes[0], 8, t, t + timedelta(seconds=10))])
    viewer = token_maker(factory)("tenant-viewer", GLOBEX)
    auth = {"Authorization": f"Bearer {viewer}"}
    r = c.get("/v1/usage/rollups", headers=auth)
    assert r.status_code == 200 and r.json()["items"] == []
    r = c.get("/v1/usage/rollups", params={"contract": world.contract}, headers=auth)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = c.post("/v1/usage/rollups/close", headers=auth)
    assert r.status_code == 403


def test_pages_follow_each_other_without_gaps(world: World) -> None:
    c = world.c
    h = hour_start(now_s())
    post(
        c,
        [
            usage(
                world.contract,
                world.nodes[0],
                1,
                h - timedelta(hours=k),
                h - timedelta(hours=k) + timedelta(seconds=60),
            )
            for k in range(1, 6)
        ],
    )
    lo, hi = h - timedelta(hours=6), h
    everything = read(c, start=iso(lo), end=iso(hi))
    pages, cursor = [], None
    while True:
        params = {
            "start": iso(lo),
            "end": iso(hi),
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        body = c.get("/v1/usage/rollups", params=params).json()
        pages += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == everything and len(pages) == 5


def test_bad_requests_say_what_is_wrong(world: World) -> None:
    c = world.c
    for params, where in (
        ({"step": "week"}, "step"),
        ({"start": "2026-11-01T00:00:00"}, "start"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"contract": "nope"}, "nope"),
        ({"site": "atlantis"}, "atlantis"),
    ):
        r = c.get("/v1/usage/rollups", params=params)
        assert r.status_code in (404, 422), (params, r.text)
        assert where in str(r.json()), (params, r.text)
    r = c.post(
        "/v1/usage/rollups/rebuild",
        json={"start": "2026-11-01T00:30:00Z", "end": "2026-11-01T02:00:00Z"},
    )
    assert r.status_code == 422 and "whole hour" in r.json()["detail"]
    r = c.post(
        "/v1/usage/rollups/rebuild",
        json={"start": "2026-11-01T02:00:00Z", "end": "2026-11-01T01:00:00Z"},
    )
    assert r.status_code == 422 and "end" in r.json()["detail"]
