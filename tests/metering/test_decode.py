"""A batch read in one pass gives the same answer as one read event by event: the same
good events, the same rejects with the same reasons, whatever mix of good and bad it holds."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.metering import events
from tests.metering.helpers import iso, telemetry, usage

NOW = datetime(2026, 11, 25, 11, 0, 10, tzinfo=UTC)
WINDOW = events.Window()
Event = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Event], Any]:
    def change(event: Event) -> Any:
        *parents, leaf = path.split(".")
        at = event
        for name in parents:
            at = at[name]
        at[leaf] = value
        return event

    return change


def _drop(path: str) -> Callable[[Event], Any]:
    def change(event: Event) -> Any:
        *parents, leaf = path.split(".")
        at = event
        for name in parents:
            at = at[name]
        at.pop(leaf, None)
        return event

    return change


SPOILERS: list[Callable[[Event], Any]] = [
    _set("specversion", "0.3"),
    _set("type", "neocloud.other.v1"),
    _drop("type"),
    _drop("id"),
    _set("id", ""),
    _set("source", 7),
    _set("time", "2026-11-25T11:00:00"),
    _set("time", iso(NOW + timedelta(hours=1))),
    _set("time", iso(NOW - timedelta(days=40))),
    _set("data.extra", 1),
    _set("data", [1, 2]),
    lambda e: [e],
    lambda e: "an event",
]
USAGE_SPOILERS: list[Callable[[Event], Any]] = [
    _set("data.gpus", 0),
    _set("data.gpus", "8"),
    _set("data.start", "yesterday"),
    _set("data.end", iso(NOW - timedelta(hours=2))),
    _set("data.start", iso(NOW - timedelta(days=2))),
    lambda e: _set("data.start", iso(NOW - timedelta(days=36)))(
        _set("data.end", iso(NOW - timedelta(days=36) + timedelta(seconds=5)))(e)
    ),
    _set("data.end", iso(NOW + timedelta(hours=1))),
    _drop("data.contract"),
]
TELEMETRY_SPOILERS: list[Callable[[Event], Any]] = [
    _set("data.gpu", -1),
    _set("data.utilization_pct", 101),
    _set("data.temperature_c", -100),
    _drop("data.power_w"),
]


@st.composite
def an_event(draw: st.DrawFn) -> Any:
    start = NOW - timedelta(seconds=draw(st.integers(1, 7200)))
    length = timedelta(seconds=draw(st.integers(1, 3600)), microseconds=draw(st.integers(0, 9)))
    if draw(st.booleans()):
        event = usage(
            draw(st.sampled_from(["train-a", "train-b"])),
            draw(st.sampled_from(["n1", "n2"])),
            draw(st.integers(1, 8)),
            start,
            min(start + length, NOW),
            id=draw(st.sampled_from(["a", "b", "c", "d"])),
        )
        spoilers = SPOILERS + USAGE_SPOILERS
    else:
        event = telemetry(draw(st.sampled_from(["n1", "n2"])), draw(st.integers(0, 7)), start)
        spoilers = SPOILERS + TELEMETRY_SPOILERS
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(spoilers))(copy.deepcopy(event))
    return event


def _slow(raws: list[msgspec.Raw]) -> events.Decoded:
    parsed = events.parse(raws, now=NOW, window=WINDOW)
    return events.Decoded(events.Usages.of(parsed.usage), parsed.telemetry, parsed.rejected)


@settings(max_examples=300, deadline=None)
@given(st.lists(an_event(), max_size=12))
def test_one_pass_and_event_by_event_agree(batch: list[Any]) -> None:
    raws = events.split_batch(msgspec.json.encode(batch))
    expected = _slow(raws)
    assert events.decode(raws, now=NOW, window=WINDOW) == expected
    assert events.decode(list(raws), now=NOW, window=WINDOW) == expected  # no bodies


@pytest.mark.parametrize(
    ("kind", "spoil"),
    [("usage", s) for s in SPOILERS + USAGE_SPOILERS]
    + [("telemetry", s) for s in SPOILERS + TELEMETRY_SPOILERS],
)
def test_each_kind_of_bad_event_is_rejected_alike(kind: str, spoil: Callable[[Event], Any]) -> None:
    start = NOW - timedelta(minutes=10)
    if kind == "usage":
        good = [
            usage("train-a", "n1", 8, start, start + timedelta(seconds=10), id=f"u{i}")
            for i in range(3)
        ]
    else:
        good = [telemetry("n1", i, start, id=f"t{i}") for i in range(3)]
    batch = [good[0], spoil(copy.deepcopy(good[1])), good[2]]
    raws = events.split_batch(msgspec.json.encode(batch))
    expected = _slow(raws)
    assert [r.index for r in expected.rejected] == [1]
    assert events.decode(raws, now=NOW, window=WINDOW) == expected


def test_a_good_batch_comes_back_as_columns() -> None:
    start = NOW - timedelta(minutes=10)
    batch = [
        usage("train-a", "n1", 8, start, start + timedelta(seconds=10, microseconds=500), id="u1"),
        telemetry("n1", 3, start, id="t1"),
        usage("train-b", "n2", 4, start, start + timedelta(seconds=20), id="u2"),
    ]
    raws = events.split_batch(msgspec.json.encode(batch))
    got = events.decode(raws, now=NOW, window=WINDOW)
    at = int(start.timestamp())
    assert got.rejected == []
    assert got.usage.index == [0, 2] and got.usage.id == ["u1", "u2"]
    assert got.usage.start == [at, at] and got.usage.end == [at + 10, at + 20]
    assert [(t.index, t.id, t.time, t.data.gpu) for t in got.telemetry] == [(1, "t1", at, 3)]


def test_messages_of_single_events_and_batches_read_as_one_batch() -> None:
    start = NOW - timedelta(minutes=10)
    one = usage("train-a", "n1", 8, start, start + timedelta(seconds=10), id="u1")
    two = [
        usage("train-a", "n2", 8, start, start + timedelta(seconds=10), id=f"u{i}") for i in (2, 3)
    ]
    bodies = [msgspec.json.encode(one), msgspec.json.encode(two)]
    raws = events.RawBatch([msgspec.Raw(bodies[0]), *events.split_batch(bodies[1])], bodies)
    assert events.decode(raws, now=NOW, window=WINDOW).usage.id == ["u1", "u2", "u3"]
    # Two events in one message that is not an array are one bad event, as before.
    glued = b",".join(msgspec.json.encode(e) for e in two)
    raws = events.RawBatch([msgspec.Raw(glued)], [glued])
    got = events.decode(raws, now=NOW, window=WINDOW)
    assert len(got.usage) == 0 and [r.index for r in got.rejected] == [0]
