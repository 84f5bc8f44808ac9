"""Where the agent delivers its batches: the ingest API or the bus.

A sink answers each send with a Delivery: delivered (the API answered 2xx; JetStream sent its
PubAck) or not (unreachable, a timeout, a 5xx or 429: the loop keeps the batch on disk and
tries again). A refusal that waiting will not fix (a bad token, a node the server does not
know) raises SinkFatal with a one-line reason; the loop keeps the batch and stops. Events the
API rejects one by one are logged, not retried: sending them again gets the same answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx
import nats
import nats.errors
from nats.aio.client import Client as Nats
from nats.js import JetStreamContext
from nats.js.errors import APIError

from neocloud.metering.consumer import DEFAULT_NATS, DEFAULT_STREAM, DEFAULT_SUBJECT, ensure_stream

log = logging.getLogger(__name__)
UNKNOWN_NODE = "data.node: unknown node"
TENANT_TOKEN = "type: telemetry is accepted from operator tokens only"
RETRY_STATUS = frozenset({408, 425, 429})


class SinkKind(StrEnum):
    API = "api"
    BUS = "bus"


class SinkFatal(Exception):
    """The sink refused the samples for a reason that waiting will not fix."""


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered: bool
    accepted: int | None = None
    """Stored now (the API says; the bus does not know)."""
    duplicates: int | None = None
    rejected: int = 0
    detail: str = ""
    """Why it was not delivered."""


class Sink(Protocol):
    name: str
    max_bytes: int
    """The largest payload worth sending at once (buffered batches are joined up to it)."""

    async def send(self, payload: bytes) -> Delivery: ...

    async def close(self) -> None: ...


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


class ApiSink:
    """POST /v1/usage/events with the bearer token (an operator's: telemetry is the
    operator's own data)."""

    name = "api"
    max_bytes = 4 << 20

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        node: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.node = node
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, payload: bytes) -> Delivery:
        try:
            response = await self._http.post("/v1/usage/events", content=payload)
        except httpx.HTTPError as exc:
            return Delivery(False, detail=f"cannot reach {self.url}: {_why(exc)}")
        status = response.status_code
        if status in RETRY_STATUS or status >= 500:
            return Delivery(False, detail=f"{self.url} answered {status}: {_detail(response)}")
        if status >= 300:
            raise SinkFatal(f"{self.url} refused the samples: {status}: {_detail(response)}")
        try:
            body: dict[str, Any] = response.json()
            accepted, duplicates = int(body["accepted"]), int(body["duplicates"])
            rejected: list[dict[str, Any]] = list(body["rejected"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SinkFatal(
                f"{self.url} answered {status} but not as the ingest API does; is it the "
                "neocloud API's URL?"
            ) from exc
        self._check(rejected)
        return Delivery(True, accepted, duplicates, len(rejected))

    def _check(self, rejected: list[dict[str, Any]]) -> None:
        reasons = [str(r.get("reason", "")) for r in rejected]
        if any(r.startswith(UNKNOWN_NODE) for r in reasons):
            raise SinkFatal(
                f"the server at {self.url} does not know node '{self.node}': add it to the "
                "fleet, or give the node's fleet name with --node"
            )
        if any(r.startswith(TENANT_TOKEN) for r in reasons):
            raise SinkFatal("the token is a tenant's: only operator tokens may send telemetry")
        for item in rejected[:20]:
            log.warning("rejected sample %s: %s", item.get("id"), item.get("reason"))


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed connect with a traceback; the agent says it once, itself."""
    log.debug("nats: %s", exc)


class BusSink:
    """Publish each payload as one JetStream message and wait for its PubAck. The
    connection is made on first use and again after it is lost; the stream is created if
    missing, as `neocloud meter publish` does."""

    name = "bus"
    max_bytes = 512 << 10
    """Under NATS's default max_payload (1 MiB)."""

    def __init__(
        self,
        url: str = DEFAULT_NATS,
        *,
        stream: str = DEFAULT_STREAM,
        subject: str = DEFAULT_SUBJECT,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject = subject
        self.timeout = timeout
        self._nc: Nats | None = None
        self._js: JetStreamContext | None = None

    async def send(self, payload: bytes) -> Delivery:
        try:
            js = await self._connect()
            await js.publish(self.subject, payload, stream=self.stream, timeout=self.timeout)
        except nats.errors.MaxPayloadError as exc:
            raise SinkFatal(
                f"a batch of {len(payload)} bytes is over the NATS server's max_payload"
            ) from exc
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await self.close()
            return Delivery(False, detail=f"bus {self.url}: {_why(exc)}")
        return Delivery(True)

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), self.timeout)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                log.debug("nats close: %s", exc)

    async def _connect(self) -> JetStreamContext:
        if self._nc is not None and self._js is not None and self._nc.is_connected:
            return self._js
        await self.close()
        # One retry, then NoServersError: nats-py would otherwise retry the first connect
        # for minutes, and the loop has its own schedule for trying again.
        nc = await asyncio.wait_for(
            nats.connect(
                self.url,
                connect_timeout=self.timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                error_cb=_quiet,
            ),
            3 * self.timeout,
        )
        js = nc.jetstream(timeout=self.timeout)
        try:
            await ensure_stream(js, self.stream, self.subject)
        except APIError as exc:
            await nc.close()
            raise SinkFatal(
                f"the bus refused stream {self.stream} on subject {self.subject}: {exc}"
            ) from exc
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js
        return js
