"""Exclusions an operator records later (maintenance, operator fault): carved out of what is
stored, and out of what arrives afterwards; never more than is still billable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.metering.conftest import World
from tests.metering.helpers import iso, post, totals, usage, window


def exclude(world: World, start: Any, end: Any, reason: str, **extra: Any) -> dict[str, Any]:
    body = {"contract": world.contract, "reason": reason, "start": iso(start), "end": iso(end)}
    r = world.c.post("/v1/usage/exclusions", json={**body, **extra})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_maintenance_recorded_later_takes_only_billable_seconds_and_applies_to_late_events(
    world: World,
) -> None:
    c, (a, b) = world.c, world.nodes
    t = world.since + timedelta(seconds=1)
    post(c, [usage(world.contract, a, 8, t, t + timedelta(seconds=100))])
    lo, hi = window(t)
    assert totals(c, world.contract, lo, hi)["billable"] == 800
    # 40 s of maintenance in the middle of the interval, on all of the contract's nodes.
    m0, m1 = t + timedelta(seconds=30), t + timedelta(seconds=70)
    out = exclude(world, m0, m1, "maintenance", note="firmware")
    assert (out["intervals"], out["excluded_gpu_seconds"]) == (1, 320)
    # The same window again takes nothing; an overlapping fault takes only what is left.
    assert exclude(world, m0, m1, "maintenance")["excluded_gpu_seconds"] == 0
    fault = exclude(world, t + timedelta(seconds=60), t + timedelta(seconds=80), "operator-fault")
    assert fault["excluded_gpu_seconds"] == 8 * 10
    got = totals(c, world.contract, lo, hi)
    assert got == {
        "measured": 800,
        "billable": 800 - 320 - 80,
        "excluded": {"maintenance": 320, "operator-fault": 80},
    }
    # Usage that arrives afterwards meets the windows at ingest.
    post(c, [usage(world.contract, b, 4, t, t + timedelta(seconds=100))])
    got = totals(c, world.contract, lo, hi)
    assert got["measured"] == 1200
    assert got["excluded"] == {"maintenance": 320 + 160, "operator-fault": 80 + 40}
    assert got["billable"] + sum(got["excluded"].values()) == got["measured"]


def test_an_exclusion_on_one_node_leaves_the_others_billable(world: World) -> None:
    c, (a, b) = world.c, world.nodes
    t = world.since + timedelta(seconds=1)
    post(
        c,
        [
            usage(world.contract, a, 8, t, t + timedelta(seconds=50)),
            usage(world.contract, b, 8, t, t + timedelta(seconds=50)),
        ],
    )
    out = exclude(world, t, t + timedelta(seconds=50), "operator-fault", node=a)
    assert (out["intervals"], out["excluded_gpu_seconds"]) == (1, 400)
    got = totals(c, world.contract, *window(t))
    assert (got["measured"], got["billable"]) == (800, 400)


def test_bad_exclusions_are_refused_and_change_nothing(world: World) -> None:
    c = world.c
    t = world.since
    body = {"contract": world.contract, "reason": "maintenance"}
    cases = [
        ({**body, "start": iso(t), "end": iso(t)}, 422, "end: must be after start"),
        ({**body, "contract": "nope", "start": iso(t), "end": iso(t + timedelta(1))}, 404, "nope"),
        ({**body, "node": "nope", "start": iso(t), "end": iso(t + timedelta(1))}, 404, "nope"),
        ({**body, "reason": "outside-term", "start": iso(t), "end": iso(t)}, 422, "reason"),
    ]
    for payload, status, words in cases:
        r = c.post("/v1/usage/exclusions", json=payload)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]
