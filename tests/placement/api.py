"""Helpers of the placement API tests: book contracts that start this hour, reconcile,
read allocations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.world import ACME

PROBLEM_JSON = "application/problem+json"


def this_hour(days: int = 0) -> str:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def book_now(c: TestClient, name: str, gpus: int, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "tenant": ACME,
        "type": "reserved",
        "accelerator": "H100",
        "gpus": gpus,
        "unit": "node",
        "start": this_hour(),
        "end": this_hour(days=30),
        **extra,
    }
    r = c.post("/v1/contracts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def reconcile(c: TestClient, site: str | None = None) -> dict[str, Any]:
    r = c.post("/v1/placement/reconcile", json={"site": site} if site else {})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def allocation(c: TestClient, name: str) -> dict[str, Any]:
    r = c.get(f"/v1/contracts/{name}/allocation")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out
