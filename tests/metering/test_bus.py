"""The bus path against the real NATS JetStream server (127.0.0.1:4222): the consumer writes
through the same ingest core, acknowledges after the commit, and a consumer killed with
SIGKILL mid-stream and restarted, with everything published again, leaves exact totals.

Each test makes its own stream and subject and deletes them."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from neocloud.metering import consumer
from neocloud.metering.models import UsageInterval
from tests.metering.conftest import World
from tests.metering.helpers import usage
from tests.servers import NEOCLOUD


@pytest.fixture
def bus() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    stream, subject = f"TEST_{tag}", f"test.{tag}.usage"
    yield stream, subject
    asyncio.run(consumer.delete_stream(stream))


def make_events(world: World, n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    start = world.since + timedelta(seconds=1)
    out = []
    for i in range(n):
        s = start + timedelta(seconds=rnd.randint(0, 100))
        out.append(
            usage(
                world.contract,
                rnd.choice(world.nodes),
                rnd.randint(1, 8),
                s,
                s + timedelta(seconds=rnd.randint(1, 120)),
                id=f"ev-{i}",
                source=f"agent://{i % 7}",
            )
        )
    return out


def encoded(events: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def stored(factory: sessionmaker[Session]) -> tuple[int, int]:
    """Rows and GPU-seconds stored."""
    with factory() as s:
        count, total = s.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(UsageInterval.gpu_seconds), 0))
        ).one()
    return int(count), int(total)


def expected(events: list[dict[str, Any]]) -> int:
    from tests.metering.helpers import parse

    return sum(
        e["data"]["gpus"]
        * int((parse(e["data"]["end"]) - parse(e["data"]["start"])).total_seconds())
        for e in events
    )


def test_the_consumer_ingests_single_and_batched_messages_once(
    world: World, factory: sessionmaker[Session], bus: tuple[str, str]
) -> None:
    stream, subject = bus
    events = make_events(world, 300)
    items = encoded(events)
    # Batches of 50, then every event again one per message, and a message that is not JSON.
    messages = [*consumer.chunks(items, 50), *items[:40], b"[not json"]
    sent = asyncio.run(consumer.publish(messages, stream=stream, subject=subject))
    assert sent == len(messages)
    stats = asyncio.run(
        consumer.consume(
            factory, stream=stream, subject=subject, durable="t", idle_exit_s=1.5, max_messages=7
        )
    )
    assert stats.messages == len(messages)
    assert (stats.accepted, stats.duplicates, stats.rejected) == (300, 40, 1)
    assert stored(factory) == (300, expected(events))


def _consumer(url: str, stream: str, subject: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                NEOCLOUD,
                "meter",
                "consume",
                "--db",
                url,
                "--stream",
                stream,
                "--subject",
                subject,
                "--durable",
                "crash",
                "--max-messages",
                "2",
                "--ack-wait",
                "2",
                "--until-idle",
                "4",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )


def test_a_consumer_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    world: World,
    factory: sessionmaker[Session],
    db_url: str,
    bus: tuple[str, str],
    tmp_path: Path,
) -> None:
    stream, subject = bus
    events = make_events(world, 30_000, seed=11)
    messages = list(consumer.chunks(encoded(events), 100))
    log = tmp_path / "consumer.log"
    asyncio.run(consumer.publish(messages, stream=stream, subject=subject))
    first = _consumer(db_url, stream, subject, log)
    try:
        while stored(factory)[0] == 0:
            assert first.poll() is None, log.read_text()
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = stored(factory)[0]
    assert 0 < at_kill < len(events), "the consumer was not killed mid-stream"
    # Restart it and publish everything again (new messages: the stream's duplicate window
    # does not know them; only the database's unique key does).
    second = _consumer(db_url, stream, subject, log)
    asyncio.run(consumer.publish(messages, stream=stream, subject=subject))
    assert second.wait(timeout=120) == 0, log.read_text()
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    assert summary["accepted"] == len(events) - at_kill
    assert summary["accepted"] + summary["duplicates"] >= len(events)
    assert stored(factory) == (len(events), expected(events))
