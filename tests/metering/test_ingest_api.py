"""POST /v1/usage/events and GET /v1/usage through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX
from tests.metering.conftest import World, held
from tests.metering.helpers import iso, now_s, post, telemetry, totals, usage, window
from tests.placement.api import book_now, reconcile

PROBLEM_JSON = "application/problem+json"


def test_a_resent_batch_is_acknowledged_and_never_counted_twice(world: World) -> None:
    c, start = world.c, world.since + timedelta(seconds=1)
    events = [
        usage(world.contract, node, 8, start, start + timedelta(seconds=60 + i))
        for i, node in enumerate(world.nodes)
    ]
    first = post(c, events)
    assert (first["received"], first["accepted"], first["duplicates"]) == (2, 2, 0)
    assert first["rejected"] == []
    expected = 8 * 60 + 8 * 61
    lo, hi = window(start)
    assert totals(c, world.contract, lo, hi) == {
        "measured": expected,
        "billable": expected,
        "excluded": {},
    }
    again = post(c, events + events[:1])  # resent, and one twice in the same batch
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert totals(c, world.contract, lo, hi)["measured"] == expected
    # A resend with other contents is still the same event: the first one counts.
    changed = {**events[0], "data": {**events[0]["data"], "gpus": 1}}
    assert post(c, [changed])["duplicates"] == 1
    assert totals(c, world.contract, lo, hi)["measured"] == expected


def test_each_bad_event_is_rejected_with_its_field_and_the_good_ones_are_kept(
    world: World,
) -> None:
    c, start = world.c, world.since + timedelta(seconds=1)
    end = start + timedelta(seconds=30)
    node = world.nodes[0]
    good = usage(world.contract, node, 4, start, end, id="good")
    bad: list[Any] = [
        {"id": "no-type", "specversion": "1.0", "source": "s", "time": iso(end), "data": {}},
        {**usage(world.contract, node, 4, start, end, id="v2"), "specversion": "0.3"},
        {**usage(world.contract, node, 4, start, end, id="kind"), "type": "other.v1"},
        usage("no-such-contract", node, 4, start, end, id="contract"),
        usage(world.contract, "no-such-node", 4, start, end, id="node"),
        usage(world.contract, node, 0, start, end, id="zero"),
        usage(world.contract, node, 9, start, end, id="too-many"),
        usage(world.contract, node, 4, end, start, id="backwards"),
        usage(world.contract, node, 4, start - timedelta(days=2), end, id="too-long"),
        usage(
            world.contract,
            node,
            4,
            start - timedelta(days=40),
            start - timedelta(days=39.9),
            id="old",
        ),
        usage(world.contract, node, 4, start, start + timedelta(hours=1), id="future", time=start),
        {**usage(world.contract, node, 4, start, end, id="naive"), "time": "2026-01-01T00:00:00"},
        {**good, "id": "extra", "data": {**good["data"], "price": 3}},
        "not an object",
    ]
    out = post(c, [bad[0], good, *bad[1:]])
    assert (out["received"], out["accepted"], out["duplicates"]) == (15, 1, 0)
    reasons = {r["id"]: r["reason"] for r in out["rejected"]}
    assert [r["index"] for r in out["rejected"]] == [0, *range(2, 15)]
    expected = {
        "no-type": "type: required",
        "v2": "specversion:",
        "kind": "type: must be one of",
        "contract": "data.contract: unknown contract 'no-such-contract'",
        "node": "data.node: unknown node",
        "zero": "data.gpus:",
        "too-many": "data.gpus: 9 is more than node",
        "backwards": "data.end: must be after data.start",
        "too-long": "data.end: an interval may last at most 86400 s",
        "old": "time: outside the acceptance window",
        "future": "data.end: outside the acceptance window",
        "naive": "time:",
        "extra": "data.price: unknown field",
    }
    for ident, words in expected.items():
        assert words in reasons[ident], (ident, reasons[ident])
    assert out["rejected"][-1]["id"] is None and out["rejected"][-1]["reason"].startswith("event:")
    lo, hi = window(start)
    assert totals(c, world.contract, lo, hi)["measured"] == 4 * 30


def test_usage_outside_the_term_or_off_the_node_is_excluded_with_its_reason(
    world: World,
) -> None:
    c = world.c
    node = world.nodes[0]
    # Before the term started (10 min) and before the reconcile gave it the node.
    early = world.term_start - timedelta(minutes=10)
    held_from = world.since + timedelta(seconds=1)
    end = held_from + timedelta(seconds=20)
    post(c, [usage(world.contract, node, 8, early, end)])
    lo, hi = window(early)
    t = totals(c, world.contract, lo, hi)
    span = int((end - early).total_seconds())
    assert t["measured"] == 8 * span
    assert t["excluded"]["outside-term"] == 8 * 600
    # From the term's start to when the node was held: not held, so node-down.
    not_held = (world.since - world.term_start).total_seconds()
    assert t["excluded"]["node-down"] == 8 * int(not_held)  # held from its whole second
    assert t["billable"] + sum(t["excluded"].values()) == t["measured"]
    assert t["billable"] >= 8 * 20


def test_a_node_that_failed_mid_interval_is_node_down_from_the_failure(world: World) -> None:
    c = world.c
    node = world.nodes[0]
    start = world.since + timedelta(seconds=1)
    r = c.post(f"/v1/nodes/{node}/fail", json={"reason": "XID 79"})
    assert r.status_code == 200, r.text
    failed_at = now_s()
    end = max(failed_at, start) + timedelta(seconds=100)
    post(c, [usage(world.contract, node, 8, start, end)])
    t = totals(c, world.contract, *window(start))
    measured = 8 * int((end - start).total_seconds())
    assert t["measured"] == measured
    down = t["excluded"]["node-down"]
    # At least the 100 s after the failure; at most the whole interval.
    assert 8 * 100 <= down <= measured
    assert t["billable"] == measured - down


def test_telemetry_is_stored_once_and_only_from_operators(
    world: World, factory: sessionmaker[Session]
) -> None:
    c = world.c
    when = now_s()
    sample = telemetry(world.nodes[0], 3, when)
    assert post(c, [sample])["accepted"] == 1
    assert post(c, [sample])["duplicates"] == 1
    out = post(c, [telemetry(world.nodes[0], 8, when), telemetry("nowhere", 0, when)])
    assert [r["reason"][:9] for r in out["rejected"]] == ["data.gpu:", "data.node"]
    tenant_admin = token_maker(factory)("tenant-admin", ACME)
    out = post(c, [telemetry(world.nodes[0], 1, when)], token=tenant_admin)
    assert out["rejected"][0]["reason"].startswith("type: telemetry is accepted from operator")


def test_a_tenant_reports_and_reads_only_its_own_contracts(
    world: World, factory: sessionmaker[Session]
) -> None:
    c = world.c
    book_now(c, "globex-m", 8, site="east", tenant=GLOBEX)
    reconcile(c)
    other_node = held(factory, "globex-m")[0][0]
    start = world.since + timedelta(seconds=1)
    end = start + timedelta(seconds=10)
    make = token_maker(factory)
    acme_admin, acme_viewer = make("tenant-admin", ACME), make("tenant-viewer", ACME)
    theirs = usage("globex-m", other_node, 8, start, end, id="sneaky")
    out = post(c, [usage(world.contract, world.nodes[0], 8, start, end), theirs], acme_admin)
    assert out["accepted"] == 1
    # Another tenant's contract reads exactly like one that does not exist.
    assert out["rejected"] == [
        {"index": 1, "id": "sneaky", "reason": "data.contract: unknown contract 'globex-m'"}
    ]
    post(c, [usage("globex-m", other_node, 8, start, end)])  # the operator may
    auth = {"Authorization": f"Bearer {acme_viewer}"}
    lo, hi = window(start)
    mine = c.get("/v1/usage", params={"start": iso(lo), "end": iso(hi)}, headers=auth).json()
    assert {i["contract"] for i in mine["items"]} == {world.contract}
    r = c.get("/v1/usage", params={"contract": "globex-m"}, headers=auth)
    assert r.status_code == 404
    everyone = c.get("/v1/usage", params={"start": iso(lo), "end": iso(hi)}).json()
    assert {i["contract"] for i in everyone["items"]} == {world.contract, "globex-m"}
    assert c.post("/v1/usage/events", json=[], headers=auth).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 422, "not valid JSON"),
        (b'{"events": []}', 422, "JSON array"),
        (json.dumps([{}] * 10_001).encode(), 413, "at most 10000"),
    ],
)
def test_a_batch_that_is_not_a_json_array_or_too_large_is_a_problem(
    world: World, body: bytes, status: int, words: str
) -> None:
    r = world.c.post("/v1/usage/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert words in r.json()["detail"]


def test_the_acceptance_window_is_configurable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = world.since + timedelta(seconds=1)
    ahead = usage(
        world.contract, world.nodes[0], 8, start, now_s() + timedelta(minutes=30), time=start
    )
    assert post(world.c, [ahead])["rejected"][0]["reason"].startswith("data.end: outside")
    monkeypatch.setenv("NEOCLOUD_USAGE_MAX_AHEAD_S", "3600")
    assert post(world.c, [ahead])["accepted"] == 1


def test_the_ledgers_split_intervals_at_hour_boundaries_exactly(world: World) -> None:
    c = world.c
    r = c.get("/v1/usage", params={"contract": world.contract, "step": "day"})
    assert r.status_code == 200 and r.json()["items"] == []
    start = world.since + timedelta(seconds=1)
    post(c, [usage(world.contract, world.nodes[1], 8, start, start + timedelta(seconds=200))])
    lo, hi = window(start)
    hours = c.get(
        "/v1/usage",
        params={"contract": world.contract, "start": iso(lo), "end": iso(hi), "step": "hour"},
    ).json()["items"]
    days = c.get(
        "/v1/usage",
        params={"contract": world.contract, "start": iso(lo), "end": iso(hi), "step": "day"},
    ).json()["items"]
    assert sum(h["measured_gpu_seconds"] for h in hours) == 1600
    assert sum(d["measured_gpu_seconds"] for d in days) == 1600
    assert all(h["tenant"] == ACME for h in hours)
    bad = c.get("/v1/usage", params={"start": "2026-01-01T00:00:00"})
    assert bad.status_code == 422 and "start" in bad.json()["detail"]
