"""What the agent sends passes the ingest's own checks, with deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from neocloud.metering import events
from neocloud.metering.agent.fake import FakeBackend
from neocloud.metering.agent.gpus import GpuFault, GpuReading
from neocloud.metering.agent.telemetry import batch_of, join

NOW = datetime(2026, 11, 25, 11, 0, 10, tzinfo=UTC)
AT = int(NOW.timestamp())


def test_a_round_is_a_batch_the_ingest_accepts_event_by_event() -> None:
    batch = batch_of("east-n1", AT, FakeBackend(node="east-n1", gpus=8).read(AT))
    parsed = events.parse(events.split_batch(batch.payload), now=NOW, window=events.Window())
    assert parsed.rejected == [] and parsed.usage == []
    assert batch.count == len(parsed.telemetry) == 8
    first = parsed.telemetry[0]
    assert (first.id, first.source, first.time) == ("east-n1/0/1795604410", "agent://east-n1", AT)
    assert [t.data.gpu for t in parsed.telemetry] == list(range(8))
    assert {t.data.node for t in parsed.telemetry} == {"east-n1"}


def test_the_same_round_makes_the_same_bytes() -> None:
    backend = FakeBackend(node="n1", gpus=4, seed=9)
    assert batch_of("n1", AT, backend.read(AT)) == batch_of("n1", AT, backend.read(AT))


def test_a_gpu_fault_is_left_out_of_the_batch_and_kept_for_the_log() -> None:
    readings: list[GpuReading | GpuFault] = [
        GpuReading(0, 50.0, 1024, 300.5, 55.0),
        GpuFault(1, "NVML: GPU is lost"),
    ]
    batch = batch_of("n1", AT, readings)
    assert batch.count == 1 and batch.faults == [GpuFault(1, "NVML: GPU is lost")]
    decoded = msgspec.json.decode(batch.payload)
    assert decoded[0]["data"] == {
        "node": "n1",
        "gpu": 0,
        "utilization_pct": 50.0,
        "memory_used_mib": 1024,
        "power_w": 300.5,
        "temperature_c": 55.0,
    }
    assert decoded[0]["time"] == "2026-11-25T11:00:10Z"


def test_batches_join_into_one_array() -> None:
    a = batch_of("n1", AT, FakeBackend(node="n1", gpus=2).read(AT))
    b = batch_of("n1", AT + 10, FakeBackend(node="n1", gpus=3).read(AT + 10))
    joined = events.split_batch(join([a.payload, b.payload]))
    assert len(joined) == 5
