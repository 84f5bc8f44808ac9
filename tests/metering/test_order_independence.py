"""A usage event counts once, whatever is resent or reordered: the ledgers and the hourly
rollups of a set of events are the same for any order, duplication and batching of it (on
SQLite and PostgreSQL), and the rollups kept at ingest equal those rebuilt from the ledgers."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from tests.metering.conftest import World
from tests.metering.helpers import iso, parse, post, usage, window


def ledgers(world: World, lo: Any, hi: Any) -> list[dict[str, Any]]:
    r = world.c.get(
        "/v1/usage",
        params={"contract": world.contract, "start": iso(lo), "end": iso(hi), "step": "hour"},
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def rollups(world: World, lo: Any, hi: Any) -> list[dict[str, Any]]:
    r = world.c.get(
        "/v1/usage/rollups",
        params={"contract": world.contract, "start": iso(lo), "end": iso(hi), "limit": 1000},
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_any_permutation_and_duplication_yields_the_same_ledgers(world: World) -> None:
    rnd = random.Random(5)
    # Up to an hour before the node was held (outside the term or node-down), some after it;
    # every end at most 200 s after the reconcile, so never ahead of the acceptance window.
    base = world.since - timedelta(seconds=3700)
    events = [
        usage(
            world.contract,
            rnd.choice(world.nodes),
            rnd.randint(1, 8),
            base + timedelta(seconds=(s := rnd.randint(0, 3000))),
            base + timedelta(seconds=s + rnd.randint(1, 900)),
            id=f"e{i}",
            source=rnd.choice(["slurm://east", "kueue://east"]),
        )
        for i in range(60)
    ]
    expected_measured = sum(
        e["data"]["gpus"]
        * int((parse(e["data"]["end"]) - parse(e["data"]["start"])).total_seconds())
        for e in events
    )
    lo, hi = window(base)
    seen: list[list[dict[str, Any]]] = []
    rolled: list[list[dict[str, Any]]] = []
    for round_ in range(3):
        resend = events + rnd.sample(events, 25)
        rnd.shuffle(resend)
        cut = sorted(rnd.sample(range(1, len(resend)), 4))
        accepted = duplicates = 0
        for a, b in zip([0, *cut], [*cut, len(resend)], strict=True):
            out = post(world.c, resend[a:b])
            assert out["rejected"] == []
            accepted, duplicates = accepted + out["accepted"], duplicates + out["duplicates"]
        assert accepted == (60 if round_ == 0 else 0)
        assert accepted + duplicates == len(resend)
        seen.append(ledgers(world, lo, hi))
        rolled.append(rollups(world, lo, hi))
    assert seen[0] == seen[1] == seen[2]
    assert rolled[0] == rolled[1] == rolled[2]
    # The rollups say per hour what the ledgers say (one site, one accelerator here).
    assert [
        (
            r["start"],
            r["measured_gpu_seconds"],
            r["billable_gpu_seconds"],
            r["excluded_gpu_seconds"],
        )
        for r in rolled[0]
    ] == [
        (
            r["start"],
            r["measured_gpu_seconds"],
            r["billable_gpu_seconds"],
            r["excluded_gpu_seconds"],
        )
        for r in seen[0]
    ]
    rebuilt = world.c.post("/v1/usage/rollups/rebuild", json={"start": iso(lo), "end": iso(hi)})
    assert rebuilt.status_code == 200, rebuilt.text
    after = rollups(world, lo, hi)
    usage_fields = ("start", "measured_gpu_seconds", "billable_gpu_seconds", "excluded_gpu_seconds")
    assert [{k: r[k] for k in usage_fields} for r in after] == [
        {k: r[k] for k in usage_fields} for r in rolled[0]
    ]
    assert sum(i["measured_gpu_seconds"] for i in seen[0]) == expected_measured
    for item in seen[0]:
        excluded = sum(item["excluded_gpu_seconds"].values())
        assert item["billable_gpu_seconds"] + excluded == item["measured_gpu_seconds"]
