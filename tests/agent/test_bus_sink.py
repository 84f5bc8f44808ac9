"""The agent on the bus: the real NATS JetStream server on 127.0.0.1:4222 takes its batches
(waiting for the PubAck), `meter consume`'s core writes them to the server's database, and
with NATS unreachable the agent buffers and later delivers. Each test makes its own stream
and subject and deletes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from neocloud.db.engine import make_engine, make_sessionmaker, sqlite_url
from neocloud.metering import consumer
from tests.agent.conftest import Server, agent, buffered, next_second, reports, stored
from tests.servers import free_port


@pytest.fixture
def bus() -> Iterator[list[str]]:
    tag = uuid.uuid4().hex[:10]
    stream, subject = f"AGENT_{tag}", f"test.{tag}.agent"
    yield ["--stream", stream, "--subject", subject]
    asyncio.run(consumer.delete_stream(stream))


def consume(data: Path, bus: list[str]) -> consumer.ConsumeStats:
    engine = make_engine(sqlite_url(data))
    try:
        return asyncio.run(
            consumer.consume(
                make_sessionmaker(engine),
                stream=bus[1],
                subject=bus[3],
                durable="agent-test",
                idle_exit_s=1.0,
            )
        )
    finally:
        engine.dispose()


def test_the_agent_publishes_to_the_stream_and_the_consumer_stores_it(
    server: Server, bus: list[str], tmp_path: Path
) -> None:
    node = server.nodes[4]
    args = ["--backend", "fake", "--interval", "1", "--node", node, "--sink", "bus", *bus]
    code, out = agent(
        "http://unused", *args, "--buffer-dir", str(tmp_path), "--count", "2", "--json"
    )
    assert code == 0, out
    assert [r["status"] for r in reports(out)] == ["delivered", "delivered"]
    before = len(stored(server.data, node))
    stats = consume(server.data, bus)
    assert (stats.messages, stats.accepted, stats.rejected) == (2, 16, 0)
    assert len(stored(server.data, node)) == before + 16


def test_with_nats_down_the_agent_buffers_then_delivers_once(
    server: Server, bus: list[str], tmp_path: Path
) -> None:
    node = server.nodes[5]
    args = ["--backend", "fake", "--interval", "1", "--node", node, "--sink", "bus", *bus]
    args += ["--buffer-dir", str(tmp_path), "--timeout", "2", "--json"]
    down = f"nats://127.0.0.1:{free_port()}"
    code, out = agent("http://unused", *args, "--nats", down, "--count", "2")
    assert code == 0, out
    assert [r["status"] for r in reports(out)] == ["buffered", "buffered"]
    assert "nats://127.0.0.1" in reports(out)[0]["detail"]
    assert len(buffered(tmp_path)) == 2
    next_second()
    code, out = agent("http://unused", *args, "--once")
    assert code == 0, out
    got = reports(out)
    assert [(r["status"], r["samples"]) for r in got] == [("resent", 16), ("delivered", 8)]
    assert buffered(tmp_path) == []
    stats = consume(server.data, bus)
    assert (stats.messages, stats.accepted, stats.duplicates) == (2, 24, 0)
