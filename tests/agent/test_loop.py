"""The sampling loop with a sink that is down, then up (in memory, to see exactly what was
sent in what order): buffered batches go out oldest first, joined, once each; a fatal
refusal keeps the batch on disk; two rounds never share a second."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from neocloud.metering.agent.buffer import DiskBuffer
from neocloud.metering.agent.fake import FakeBackend
from neocloud.metering.agent.loop import Agent, Report
from neocloud.metering.agent.sinks import Delivery, SinkFatal


class Switch:
    """A sink that delivers only while `up`, recording every payload it took."""

    name = "switch"
    max_bytes = 4 << 20

    def __init__(self) -> None:
        self.up = False
        self.fatal: str | None = None
        self.taken: list[list[str]] = []

    async def send(self, payload: bytes) -> Delivery:
        if self.fatal:
            raise SinkFatal(self.fatal)
        if not self.up:
            return Delivery(False, detail="down")
        self.taken.append([e["id"] for e in json.loads(payload)])
        return Delivery(True, accepted=len(self.taken[-1]), duplicates=0)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[DiskBuffer]:
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        yield buf


def make(
    buffer: DiskBuffer, sink: Switch, clock: Clock, gpus: int = 2
) -> tuple[Agent, list[Report]]:
    seen: list[Report] = []
    agent = Agent(
        node="n1",
        backend=FakeBackend(node="n1", gpus=gpus),
        sink=sink,
        buffer=buffer,
        interval=10,
        on_report=seen.append,
        clock=clock,
    )
    return agent, seen


def test_buffered_rounds_are_resent_oldest_first_once_and_joined(
    buffer: DiskBuffer, tmp_path: Path
) -> None:
    sink, clock = Switch(), Clock(1_790_000_000.5)
    agent, seen = make(buffer, sink, clock)

    async def rounds(n: int) -> None:
        for _ in range(n):
            await agent.round()
            clock.at += 10

    asyncio.run(rounds(3))
    assert [r.status for r in seen] == ["buffered"] * 3
    assert (seen[-1].waiting_batches, seen[-1].waiting_samples) == (3, 6)
    sink.up = True
    asyncio.run(rounds(2))
    assert [r.status for r in seen[3:]] == ["resent", "delivered", "delivered"]
    assert (seen[3].samples, seen[3].batches) == (6, 3)
    first, *_ = sink.taken
    assert first == [f"n1/{g}/{1_790_000_000 + 10 * k}" for k in range(3) for g in range(2)]
    every = [i for payload in sink.taken for i in payload]
    assert len(every) == len(set(every)) == 10
    assert agent.buffer.batches == 0 and not list(tmp_path.glob("*.json"))


def test_a_fatal_refusal_keeps_the_round_on_disk(buffer: DiskBuffer) -> None:
    sink, clock = Switch(), Clock(1_790_000_000)
    agent, _ = make(buffer, sink, clock)
    sink.fatal = "the server does not know node 'n1'"
    with pytest.raises(SinkFatal):
        asyncio.run(agent.round())
    assert agent.buffer.samples == 2


def test_two_rounds_never_share_a_second(buffer: DiskBuffer) -> None:
    sink, clock = Switch(), Clock(1_790_000_000.2)
    sink.up = True
    agent, seen = make(buffer, sink, clock)

    async def go() -> None:
        await agent.round()
        clock.at += 0.5  # still the same second: the round waits for the next
        task = asyncio.create_task(agent.round())
        await asyncio.sleep(0.05)
        assert not task.done()
        clock.at += 0.5
        await task

    asyncio.run(go())
    assert [r.at for r in seen] == [1_790_000_000, 1_790_000_001]


def test_a_gpu_that_fails_is_reported_and_the_others_sent(buffer: DiskBuffer) -> None:
    sink, clock = Switch(), Clock(1_790_000_000)
    sink.up = True
    seen: list[Report] = []
    agent = Agent(
        node="n1",
        backend=FakeBackend(node="n1", gpus=3, broken=frozenset({1})),
        sink=sink,
        buffer=buffer,
        on_report=seen.append,
        clock=clock,
    )
    asyncio.run(agent.round())
    assert sink.taken == [["n1/0/1790000000", "n1/2/1790000000"]]
    assert [f.gpu for f in seen[0].gpu_errors] == [1]
    assert "1 GPU(s) not read: 1: fake fault" in seen[0].line()
