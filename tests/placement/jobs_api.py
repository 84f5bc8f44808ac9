"""Helpers of the job tests: contracts of the three shared pools, jobs, passes, and the
invariants read straight from the database."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from neocloud.placement import job_pools
from neocloud.placement.job_models import Job, JobState
from tests.contracts.world import ACME, GLOBEX, INTERNAL
from tests.placement.api import this_hour


def contract(c: TestClient, name: str, kind: str, **extra: Any) -> dict[str, Any]:
    tenant = {"internal": INTERNAL, "spot": GLOBEX}.get(kind, ACME)
    body: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "type": kind,
        "start": this_hour(),
        "end": this_hour(days=30),
        **extra,
    }
    r = c.post("/v1/contracts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def internal(c: TestClient, name: str = "ops-batch", gpus: int = 16) -> None:
    contract(c, name, "internal", accelerator="H100", gpus=gpus, unit="node", site="east")


def spot(c: TestClient, name: str = "cheap", gpus: int = 16) -> None:
    contract(c, name, "spot", accelerator="H100", gpus=gpus, site="east", notice_minutes=30)


def on_demand(c: TestClient, name: str = "acme-od", site: str = "west") -> None:
    contract(c, name, "on-demand", site=site)


def submit(c: TestClient, contract: str, gpus: int = 1, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/jobs", json={"contract": contract, "gpus": gpus, **extra})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def schedule(c: TestClient, site: str | None = None) -> dict[str, Any]:
    r = c.post("/v1/jobs/schedule", json={"site": site} if site else {})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def job(c: TestClient, name: str) -> dict[str, Any]:
    r = c.get(f"/v1/jobs/{name}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def nodes_of(j: dict[str, Any]) -> set[str]:
    return {g["node"] for g in j["placement"]}


def check_jobs(engine: sa.Engine, *, in_pools: bool) -> None:
    """From the rows alone: no GPU holds more than 1000 milli-GPUs of running jobs; a running
    job holds exactly its GPUs (all or nothing), of an acceptable model; only running jobs
    hold GPUs; and, right after a pass, every running job is inside its pool."""
    from neocloud.fleet.models import Accelerator, Node

    used: dict[tuple[int, int], int] = defaultdict(int)
    with Session(engine) as s:
        types = dict(
            s.execute(
                sa.select(Node.id, Accelerator.name).join(
                    Accelerator, Accelerator.id == Node.accelerator_id
                )
            ).all()
        )
        sizes = dict(s.execute(sa.select(Node.id, Node.gpus)).all())
        for j in s.scalars(sa.select(Job)):
            if j.state is not JobState.RUNNING:
                assert j.placement is None, (j.name, j.state, j.placement)
                continue
            pairs = [(int(n), int(g)) for n, g in j.placement or []]
            assert len(pairs) == j.gpus == len(set(pairs)), (j.name, pairs)
            for n, g in pairs:
                assert 0 <= g < sizes[n], (j.name, n, g)
                assert not j.gpu_types or types[n] in j.gpu_types, (j.name, types[n])
                used[(n, g)] += j.gpu_milli
            if in_pools:
                key = job_pools.pool_key(j.pool, j.contract_id)
                pool = {p.id for p in job_pools.pool_nodes(s, j.site_id, key)}
                assert {n for n, _ in pairs} <= pool, (j.name, j.pool, pairs)
    over = {k: v for k, v in used.items() if v > 1000}
    assert not over, f"over-committed GPUs: {over}"
