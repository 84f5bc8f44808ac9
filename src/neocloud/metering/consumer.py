"""The bus path: NATS JetStream in, the same ingest core, acknowledged after the commit.

Producers publish events to a subject of a stream, one event (a JSON object) or a batch (a
JSON array of up to 10,000 events) per message. `consume` pulls messages with a durable pull
consumer, ingests each pull as one database transaction (`ingest.ingest_batch`, as the
operator) and acknowledges the messages only after the commit. A consumer killed between the
commit and the acks gets the same messages again; the database's unique key makes them
duplicates, so nothing is counted twice however long after the stream's own duplicate
window they come back. Rejected events are logged with their reasons and acknowledged (a
resend would be rejected again).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec
import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.metering import events, ingest

log = logging.getLogger(__name__)
DEFAULT_NATS = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "USAGE"
DEFAULT_SUBJECT = "neocloud.usage"
DEFAULT_DURABLE = "neocloud-meter"


@dataclass
class ConsumeStats:
    messages: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)


async def ensure_stream(js: JetStreamContext, stream: str, subject: str) -> None:
    """Create the stream (file storage, the given subject) unless it exists."""
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject]))


def raws_of(payloads: Iterable[bytes]) -> tuple[events.RawBatch, list[events.Reject]]:
    """The raw events of messages (an array message is a batch, anything else one event),
    with the messages they came from; an array that is not a usable batch is one reject."""
    raws: list[msgspec.Raw] = []
    bodies: list[bytes] = []
    bad: list[events.Reject] = []
    for payload in payloads:
        body = payload.lstrip()
        if body.startswith(b"["):
            try:
                raws += events.split_batch(body)
            except events.BatchError as exc:
                bad.append(events.Reject(-1, None, f"message: {exc}"))
                continue
        else:
            raws.append(msgspec.Raw(body))
        bodies.append(body)
    return events.RawBatch(raws, bodies), bad


def ingest_messages(
    factory: sessionmaker[Session], payloads: list[bytes], window: events.Window
) -> ingest.IngestResult:
    """One transaction for the events of a pull (as the operator, like an ops token)."""
    raws, bad = raws_of(payloads)
    with factory() as session:

        def work() -> ingest.IngestResult:
            return ingest.ingest_batch(
                session, actor=SYSTEM, raws=raws, now=utcnow(), window=window
            )

        result = retrying(session, work)
    result.rejected += bad
    return result


async def consume(
    factory: sessionmaker[Session],
    *,
    url: str = DEFAULT_NATS,
    stream: str = DEFAULT_STREAM,
    subject: str = DEFAULT_SUBJECT,
    durable: str = DEFAULT_DURABLE,
    max_messages: int = 200,
    ack_wait_s: float = 30.0,
    idle_exit_s: float | None = None,
    create_stream: bool = True,
    stop: asyncio.Event | None = None,
) -> ConsumeStats:
    """Pull, ingest, commit, acknowledge, until `stop` is set (or no message came for
    `idle_exit_s` seconds)."""
    stop = stop or asyncio.Event()
    window = ingest.window_from_env()
    stats = ConsumeStats()
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        if create_stream:
            await ensure_stream(js, stream, subject)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            max_ack_pending=max(1000, 4 * max_messages),
        )
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)

        async def pull() -> list[Msg]:
            try:
                return await sub.fetch(max_messages, timeout=1.0)
            except (NatsTimeout, TimeoutError):  # the client raises either when none came
                return []

        idle_since = time.monotonic()
        # The next pull is under way while a batch is ingested (the ingest waits mostly on
        # the database); what it brings is ingested next, or handed back at the end.
        next_pull: asyncio.Future[list[Msg]] | None = asyncio.ensure_future(pull())
        try:
            while next_pull is not None:
                msgs = await next_pull
                next_pull = None
                if stop.is_set():
                    await _nak(msgs)
                    break
                next_pull = asyncio.ensure_future(pull())
                if not msgs:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                began = time.perf_counter()
                result = await asyncio.to_thread(
                    ingest_messages, factory, [m.data for m in msgs], window
                )
                for m in msgs:
                    await m.ack()
                await nc.flush()
                stats.batch_seconds.append(time.perf_counter() - began)
                stats.messages += len(msgs)
                stats.batches += 1
                stats.events += result.received
                stats.accepted += result.accepted
                stats.duplicates += result.duplicates
                stats.rejected += len(result.rejected)
                for reject in result.rejected[:20]:
                    log.warning(
                        "rejected event %s (#%d): %s", reject.id, reject.index, reject.reason
                    )
        finally:
            # Messages pulled and not ingested go back at once rather than after --ack-wait
            # (best effort: if this fails they come back after it all the same).
            if next_pull is not None:
                with contextlib.suppress(Exception):
                    await _nak(await next_pull)
            with contextlib.suppress(Exception):
                await nc.flush()
    finally:
        await nc.close()  # acks are flushed after each batch; drain would wait on the pull
    return stats


async def _nak(msgs: list[Msg]) -> None:
    for m in msgs:
        await m.nak()


def run(factory: sessionmaker[Session], **kwargs: object) -> ConsumeStats:
    """`consume` until SIGINT or SIGTERM (the batch in hand is finished and acknowledged)."""
    # What exists once started (modules, the ORM's mappings) lives as long as the process:
    # leaving it out of the collector's full passes keeps them short.
    gc.freeze()

    async def main() -> ConsumeStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await consume(factory, stop=stop, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(main())


async def publish(
    batches: Iterable[bytes],
    *,
    url: str = DEFAULT_NATS,
    stream: str = DEFAULT_STREAM,
    subject: str = DEFAULT_SUBJECT,
    create_stream: bool = True,
    in_flight: int = 64,
) -> int:
    """Publish each payload as one message, waiting for the stream's acknowledgements (at
    most `in_flight` outstanding); return how many messages were stored."""
    nc = await nats.connect(url)
    stored = 0
    try:
        js = nc.jetstream()
        if create_stream:
            await ensure_stream(js, stream, subject)
        pending: list[asyncio.Future[object]] = []
        for payload in batches:
            pending.append(asyncio.ensure_future(js.publish(subject, payload, stream=stream)))
            if len(pending) >= in_flight:
                await asyncio.gather(*pending)
                stored += len(pending)
                pending = []
        await asyncio.gather(*pending)
        stored += len(pending)
    finally:
        await nc.close()
    return stored


def chunks(items: list[bytes], size: int) -> Iterator[bytes]:
    """JSON arrays of `size` encoded events each (the messages `publish` sends)."""
    for at in range(0, len(items), size):
        yield b"[" + b",".join(items[at : at + size]) + b"]"


async def delete_stream(stream: str, url: str = DEFAULT_NATS) -> None:
    nc = await nats.connect(url)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()
