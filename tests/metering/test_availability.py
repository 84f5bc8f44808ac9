"""Hourly availability: usable / contracted GPUs from placement's degradations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from neocloud.capacity.timeline import hour_of
from neocloud.metering.availability import Stretch, hourly
from tests.contracts.world import build
from tests.placement.api import allocation, book_now, reconcile

T0 = datetime(2027, 3, 1, tzinfo=UTC)
H0 = hour_of(T0)


def test_a_quarter_of_the_gpus_lost_for_half_an_hour_is_87_5_percent_that_hour() -> None:
    s = Stretch(T0 + timedelta(minutes=30), T0 + timedelta(minutes=60), 64, 48)
    hours = hourly({H0: 64, H0 + 1: 64}, [s], H0, H0 + 2, T0 + timedelta(days=1))
    assert [h.availability for h in hours] == [Decimal("0.875"), Decimal("1")]
    assert hours[0].lost_gpu_seconds == 16 * 1800
    # No contract in an hour: no availability to speak of.
    assert hourly({}, [s], H0, H0 + 1, T0)[0].availability is None


def test_an_open_stretch_runs_until_now() -> None:
    s = Stretch(T0, None, 8, 0)
    now = T0 + timedelta(minutes=15)
    assert hourly({H0: 8}, [s], H0, H0 + 1, now)[0].availability == Decimal("0.75")


stretch_st = st.builds(
    lambda start, minutes, contracted, usable: Stretch(
        T0 + timedelta(minutes=start),
        T0 + timedelta(minutes=start + minutes),
        contracted,
        min(usable, contracted),
    ),
    st.integers(0, 300),
    st.integers(1, 300),
    st.integers(1, 64),
    st.integers(0, 64),
)


@given(st.lists(stretch_st, max_size=5))
def test_availability_stays_between_0_and_1_and_lost_time_adds_up(stretches: list[Stretch]) -> None:
    hours = hourly({H0 + i: 64 for i in range(12)}, stretches, H0, H0 + 12, T0 + timedelta(days=1))
    assert all(Decimal(0) <= (h.availability or 0) <= 1 for h in hours)
    lost = sum(
        int(((s.end or T0) - s.start).total_seconds()) * (s.contracted - s.usable)
        for s in stretches
    )
    assert sum(h.lost_gpu_seconds for h in hours) == lost  # all stretches end within 12 h
    if not stretches or all(s.usable == s.contracted for s in stretches):
        assert all(h.availability == 1 for h in hours)


def test_a_failed_node_shows_in_the_contracts_availability(client: TestClient) -> None:
    build(client)
    book_now(client, "whole-fabric", 64, site="east", same_fabric=True)
    book_now(client, "other-fabric", 64, site="east", same_fabric=True)
    reconcile(client)
    node = allocation(client, "whole-fabric")["nodes"][0]["name"]
    assert client.post(f"/v1/nodes/{node}/fail").status_code == 200
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    span = {
        "start": (hour - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    r = client.get("/v1/contracts/whole-fabric/availability", params=span)
    assert r.status_code == 200, r.text
    before, current = r.json()["hours"]
    assert before["contracted_gpus"] == 0 and before["availability"] is None
    assert current["contracted_gpus"] == 64 and current["lost_gpu_seconds"] >= 0
    assert Decimal(current["availability"]) <= 1
    # The neighbour was never short.
    other = client.get("/v1/contracts/other-fabric/availability", params=span).json()
    assert Decimal(other["availability"]) == 1
    # Bad ranges are refused with the field.
    r = client.get(
        "/v1/contracts/whole-fabric/availability",
        params={"start": span["end"], "end": span["start"]},
    )
    assert r.status_code == 422 and "end" in r.json()["detail"]
    r = client.get(
        "/v1/contracts/whole-fabric/availability",
        params={"start": "2027-01-01T00:30:00Z", "end": "2027-01-02T00:00:00Z"},
    )
    assert r.status_code == 422 and "whole hours" in r.json()["detail"]
