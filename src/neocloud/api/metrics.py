"""Prometheus metrics at /metrics: request counts and latencies, and fleet gauges.

Fleet gauges are read from the database at scrape time, so every API process reports the
same numbers. With several workers, request metrics use prometheus_client's multiprocess
mode (PROMETHEUS_MULTIPROC_DIR, set by `neocloud serve --workers N`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neocloud.fleet.models import Accelerator, Node, Site

REQUESTS = Counter("neocloud_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "neocloud_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class FleetCollector:
    """GPU and node counts per site, accelerator and state, straight from the database."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gpus = GaugeMetricFamily(
            "neocloud_fleet_gpus",
            "GPUs by site, accelerator and node state",
            labels=["site", "accelerator", "state"],
        )
        nodes = GaugeMetricFamily(
            "neocloud_fleet_nodes",
            "Nodes by site, accelerator and node state",
            labels=["site", "accelerator", "state"],
        )
        power = GaugeMetricFamily(
            "neocloud_site_power_mw", "Facility power of each site", labels=["site", "state"]
        )
        with self.factory() as session:
            rows = session.execute(
                sa.select(
                    Site.name, Accelerator.name, Node.state, sa.func.count(), sa.func.sum(Node.gpus)
                )
                .join(Site, Node.site_id == Site.id)
                .join(Accelerator, Node.accelerator_id == Accelerator.id)
                .group_by(Site.name, Accelerator.name, Node.state)
            )
            for site, acc, state, count, total in rows:
                labels = [site, acc, state.value]
                nodes.add_metric(labels, float(count))
                gpus.add_metric(labels, float(total or 0))
            for name, mw, site_state in session.execute(
                sa.select(Site.name, Site.power_mw, Site.state)
            ):
                power.add_metric([name, site_state.value], float(mw))
        yield from (gpus, nodes, power)


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route as a template (/v1/nodes/{node}), keeping label cardinality low."""
    if scope.get("route") is None:
        return "unmatched"
    params = {str(v): k for k, v in dict(scope.get("path_params") or {}).items()}
    path = str(scope.get("path", ""))
    return "/".join(f"{{{params[seg]}}}" if seg in params else seg for seg in path.split("/"))


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status (plain
    ASGI: Starlette's `BaseHTTPMiddleware` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, measured)
        finally:
            template = route_template(scope)
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)


def install(app: FastAPI) -> None:
    app.add_middleware(MetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Default())
        registry.register(FleetCollector(request.app.state.sessionmaker))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _Default:
    """This process's own metrics (used when not in multiprocess mode)."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()
