"""The sampling loop: every interval, read every GPU, send one batch, keep what failed.

Order of a round: read the GPUs; resend what the buffer holds, oldest first, joined into
requests (or messages) as large as the sink takes, stopping at the first failure; then send
the new batch if nothing older is still waiting, else append it behind the others. So the
buffer drains in order, and a batch is on disk before the agent moves on from it. A round's
time is its whole Unix second, and two rounds never share one (a second round in the same
second would repeat the first round's event ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from neocloud.metering.agent.buffer import DiskBuffer
from neocloud.metering.agent.gpus import GpuBackend, GpuFault
from neocloud.metering.agent.sinks import Delivery, Sink, SinkFatal
from neocloud.metering.agent.telemetry import batch_of, join

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What became of a batch: delivered now, buffered, or resent from the buffer."""

    status: str
    at: int
    samples: int
    batches: int = 1
    accepted: int | None = None
    duplicates: int | None = None
    rejected: int = 0
    waiting_batches: int = 0
    waiting_samples: int = 0
    gpu_errors: list[GpuFault] = field(default_factory=list)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = _iso(self.at)
        return out

    def line(self) -> str:
        """One line for a person (or a journal)."""
        counts = ""
        if self.accepted is not None:
            counts = (
                f" ({self.accepted} new, {self.duplicates} duplicates, {self.rejected} rejected)"
            )
        what = _count(self.samples, "sample") + (
            f" in {self.batches} batches" if self.batches > 1 else ""
        )
        text = f"{_iso(self.at)} {self.status} {what}{counts}"
        if self.status == "buffered":
            waiting = _count(self.waiting_batches, "batch", "batches")
            text += f"; waiting: {_count(self.waiting_samples, 'sample')} in {waiting}"
            if self.detail:
                text += f" ({self.detail})"
        if self.gpu_errors:
            text += f"; {len(self.gpu_errors)} GPU(s) not read: " + ", ".join(
                f"{f.gpu}: {f.error}" for f in self.gpu_errors
            )
        return text


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Agent:
    """One node's loop: a backend to read, a sink to deliver to, a buffer for the rest."""

    def __init__(
        self,
        *,
        node: str,
        backend: GpuBackend,
        sink: Sink,
        buffer: DiskBuffer,
        interval: float = 10.0,
        on_report: Callable[[Report], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval < 1:
            raise ValueError("the interval is at least one second (event ids are per second)")
        self.node = node
        self.backend = backend
        self.sink = sink
        self.buffer = buffer
        self.interval = interval
        self.on_report = on_report
        self.clock = clock
        self.stop = asyncio.Event()
        self._last_at = 0
        self._failure = ""

    async def run(self, rounds: int | None = None) -> None:
        """Rounds every `interval` seconds until `rounds` are done or `stop` is set (a
        round in progress finishes first). Rounds keep to a fixed grid from the start; one
        that overruns its slot skips the slots it missed rather than bursting to catch up."""
        began = time.monotonic()
        done = 0
        while not self.stop.is_set():
            await self.round()
            done += 1
            if rounds is not None and done >= rounds:
                return
            elapsed = time.monotonic() - began
            next_at = began + (math.floor(elapsed / self.interval) + 1) * self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, next_at - time.monotonic()))

    async def round(self) -> None:
        """Read, resend the buffer, send or buffer the new batch (see the module's doc)."""
        at = await self._new_second()
        batch = batch_of(self.node, at, self.backend.read(at))
        for fault in batch.faults:
            log.warning("GPU %d of %s not read: %s", fault.gpu, self.node, fault.error)
        try:
            await self.flush()
        except SinkFatal:
            self._buffer(batch.payload, batch.count)  # kept for a run that can deliver it
            raise
        if batch.count == 0:
            self.on_report(self._report("no samples", at, 0, faults=batch.faults))
            return
        if self.buffer.batches:
            self._buffer(batch.payload, batch.count)
            self.on_report(
                self._report("buffered", at, batch.count, faults=batch.faults, why=self._failure)
            )
            return
        try:
            delivery = await self.sink.send(batch.payload)
        except SinkFatal:
            self._buffer(batch.payload, batch.count)  # kept for a run that can deliver it
            raise
        if delivery.delivered:
            self.on_report(self._report("delivered", at, batch.count, delivery, batch.faults))
        else:
            self._failure = delivery.detail
            self._buffer(batch.payload, batch.count)
            self.on_report(
                self._report("buffered", at, batch.count, faults=batch.faults, why=delivery.detail)
            )

    async def flush(self) -> bool:
        """Resend the buffer, oldest first; False at the first batch not delivered."""
        for group in self.buffer.groups(max_bytes=self.sink.max_bytes):
            if self.stop.is_set():
                return False
            entries, payloads = [], []
            for entry in group:
                data = self.buffer.read(entry)
                if data is not None:
                    entries.append(entry)
                    payloads.append(data)
            if not entries:
                continue
            delivery = await self.sink.send(join(payloads))
            if not delivery.delivered:
                self._failure = delivery.detail
                return False
            self.buffer.remove(entries)
            samples = sum(e.count for e in entries)
            report = self._report("resent", self._last_at, samples, delivery)
            report.batches = len(entries)
            self.on_report(report)
        return True

    def _buffer(self, payload: bytes, count: int) -> None:
        if count == 0:
            return
        try:
            self.buffer.append(payload, count)
        except OSError as exc:  # a full or broken disk: say so and go on sampling
            log.error("could not buffer %d samples in %s: %s", count, self.buffer.path, exc)

    async def _new_second(self) -> int:
        at = int(self.clock())
        while at <= self._last_at:
            await asyncio.sleep(max(0.01, self._last_at + 1 - self.clock()))
            at = int(self.clock())
        self._last_at = at
        return at

    def _report(
        self,
        status: str,
        at: int,
        samples: int,
        delivery: Delivery | None = None,
        faults: list[GpuFault] | None = None,
        why: str = "",
    ) -> Report:
        return Report(
            status=status,
            at=at,
            samples=samples,
            accepted=delivery.accepted if delivery else None,
            duplicates=delivery.duplicates if delivery else None,
            rejected=delivery.rejected if delivery else 0,
            waiting_batches=self.buffer.batches,
            waiting_samples=self.buffer.samples,
            gpu_errors=list(faults or []),
            detail=why,
        )
