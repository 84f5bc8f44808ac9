"""Of events sent twice in one batch the first counts, with its own exclusions, on SQLite and
PostgreSQL; the rollups kept at ingest agree."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.metering.conftest import World
from tests.metering.helpers import iso, post, totals, usage, window


def test_the_first_of_two_events_with_one_id_counts(world: World) -> None:
    c, node = world.c, world.nodes[0]
    held_from = world.since + timedelta(seconds=1)
    early = world.term_start - timedelta(minutes=10)  # partly outside the term
    first = usage(world.contract, node, 8, early, held_from + timedelta(seconds=20), id="twice")
    second = usage(world.contract, node, 2, held_from, held_from + timedelta(seconds=5), id="twice")
    other = usage(world.contract, node, 1, held_from, held_from + timedelta(seconds=7), id="once")
    out = post(c, [second | {"id": "x"}, first, other, second])
    assert (out["accepted"], out["duplicates"], out["rejected"]) == (3, 1, [])
    lo, hi = window(early)
    t = totals(c, world.contract, lo, hi)
    span = int((held_from + timedelta(seconds=20) - early).total_seconds())
    assert t["measured"] == 8 * span + 2 * 5 + 1 * 7
    assert t["excluded"]["outside-term"] == 8 * 600
    r = c.get(
        "/v1/usage/rollups",
        params={"contract": world.contract, "start": iso(lo), "end": iso(hi), "limit": 1000},
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["items"]
    assert sum(x["measured_gpu_seconds"] for x in rows) == t["measured"]
    assert sum(x["billable_gpu_seconds"] for x in rows) == t["billable"]
