"""On-demand holds no nodes: what it used inside its term is billable on whichever node its
jobs ran; outside the term it is not."""

from __future__ import annotations

from datetime import timedelta

from tests.contracts.world import ACME
from tests.metering.conftest import World
from tests.metering.helpers import post, totals, usage, window
from tests.placement.api import this_hour


def test_on_demand_usage_inside_its_term_is_billable(world: World) -> None:
    c = world.c
    r = c.post(
        "/v1/contracts",
        json={
            "name": "acme-od",
            "tenant": ACME,
            "type": "on-demand",
            "accelerator": "H100",
            "site": "east",
            "start": this_hour(),
            "end": this_hour(days=30),
        },
    )
    assert r.status_code == 201, r.text
    start = world.term_start
    free_node = "east-e01-b1-n4"
    post(
        c,
        [
            usage(
                "acme-od", free_node, 8, start + timedelta(seconds=5), start + timedelta(seconds=65)
            ),
            # A minute before the term began: measured, not billable.
            usage("acme-od", free_node, 8, start - timedelta(seconds=60), start),
        ],
    )
    lo, hi = window(start)
    got = totals(c, "acme-od", lo, hi)
    assert got == {"measured": 960, "billable": 480, "excluded": {"outside-term": 480}}
