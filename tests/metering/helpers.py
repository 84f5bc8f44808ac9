"""Helpers of the metering tests: events as engines and agents send them, the ledgers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

USAGE = "neocloud.usage.v1"
TELEMETRY = "neocloud.telemetry.v1"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def usage(
    contract: str,
    node: str,
    gpus: int,
    start: datetime,
    end: datetime,
    *,
    id: str | None = None,
    source: str = "slurm://east",
    time: datetime | None = None,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id or uuid.uuid4().hex,
        "source": source,
        "type": USAGE,
        "time": iso(time or end),
        "data": {
            "contract": contract,
            "node": node,
            "gpus": gpus,
            "start": iso(start),
            "end": iso(end),
        },
    }


def telemetry(node: str, gpu: int, when: datetime, *, id: str | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id or uuid.uuid4().hex,
        "source": f"agent://{node}",
        "type": TELEMETRY,
        "time": iso(when),
        "data": {
            "node": node,
            "gpu": gpu,
            "utilization_pct": 87.5,
            "memory_used_mib": 61_440,
            "power_w": 612.0,
            "temperature_c": 66.0,
        },
    }


def post(c: TestClient, events: list[Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = c.post("/v1/usage/events", json=events, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def totals(c: TestClient, contract: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Measured, billable and excluded GPU-seconds of a contract over [start, end)."""
    r = c.get(
        "/v1/usage",
        params={"contract": contract, "start": iso(start), "end": iso(end), "step": "hour"},
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = {"measured": 0, "billable": 0, "excluded": {}}
    for item in r.json()["items"]:
        out["measured"] += item["measured_gpu_seconds"]
        out["billable"] += item["billable_gpu_seconds"]
        for reason, n in item["excluded_gpu_seconds"].items():
            out["excluded"][reason] = out["excluded"].get(reason, 0) + n
    return out


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def window(start: datetime, days: int = 1) -> tuple[datetime, datetime]:
    lo = start.replace(minute=0, second=0) - timedelta(days=days)
    return lo, lo + timedelta(days=2 * days)
