"""A round of GPU readings as one batch of `neocloud.telemetry.v1` events (docs/metering.md).

Events are built from the ingest's own structs (`events.Envelope`, `events.TelemetryData`),
so what the agent sends has the shape the ingest decodes. Each event's id is
`{node}/{gpu}/{unix seconds}` and its source `agent://{node}`: the same reading always makes
the same event, so a batch resent after a restart or a lost answer is a duplicate for the
database's (source, id) key, never a second sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from neocloud.metering import events
from neocloud.metering.agent.gpus import GpuFault, GpuReading

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Batch:
    """The events of one round: a JSON array, how many events it holds, and the GPUs that
    could not be read."""

    at: int
    payload: bytes
    count: int
    faults: list[GpuFault] = field(default_factory=list)


def event_id(node: str, gpu: int, at: int) -> str:
    return f"{node}/{gpu}/{at}"


def source_of(node: str) -> str:
    return f"agent://{node}"


def encode_event(node: str, at: int, reading: GpuReading) -> bytes:
    data = events.TelemetryData(
        node=node,
        gpu=reading.gpu,
        utilization_pct=reading.utilization_pct,
        memory_used_mib=reading.memory_used_mib,
        power_w=reading.power_w,
        temperature_c=reading.temperature_c,
    )
    envelope = events.Envelope(
        specversion="1.0",
        id=event_id(node, reading.gpu, at),
        source=source_of(node),
        type=events.TELEMETRY_TYPE,
        time=events.from_epoch(at),
        data=msgspec.Raw(_encode(data)),
    )
    return _encode(envelope)


def batch_of(node: str, at: int, readings: list[GpuReading | GpuFault]) -> Batch:
    """One event per GPU read; the faults ride along for the log, not the wire."""
    good = [encode_event(node, at, r) for r in readings if isinstance(r, GpuReading)]
    faults = [r for r in readings if isinstance(r, GpuFault)]
    return Batch(at, b"[" + b",".join(good) + b"]", len(good), faults)


def join(payloads: list[bytes]) -> bytes:
    """Several batches (JSON arrays of events) as one array."""
    inner = [p.strip()[1:-1].strip() for p in payloads]
    return b"[" + b",".join(i for i in inner if i) + b"]"
