"""Fixtures of the Slurm engine tests: one real cluster per module (see slurm_cluster.py) and
a neocloud API over PostgreSQL whose fabric `f1` of site `east` is that cluster's nodes.

The cluster is shared by the tests of a module that run on one xdist worker (a worker that
gets some of them boots its own); each test has a database of its own and leaves the cluster
with no job running and no node drained. What a test leaves on the cluster (reservations,
QOS, accounts) is drift to the next test's database, which its first reconcile removes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neocloud.api.app import create_app
from neocloud.config import Settings
from neocloud.db.engine import make_engine
from tests.conftest import ADMIN_TOKEN, pg_exec, pg_url
from tests.engines.slurm_cluster import SlurmCluster, ensure_user, running_cluster

NODES = tuple(f"sn{i}" for i in range(1, 7))
USERS = {"acme": "nctest-acme", "spotco": "nctest-spotco", "beta": "nctest-beta"}
FLEET = """\
apiVersion: neocloud/v1
sites:
  - name: east
    location: Ashburn, VA
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: f1
        blocks:
          - name: b1
            nodes: {name: "sn{i}", count: 3, accelerator: H100, gpus: 8, power_kw: 10.2}
          - name: b2
            nodes: {name: "sn{i}", start: 4, count: 3, accelerator: H100, gpus: 8, power_kw: 10.2}
"""


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    root = Path(tempfile.mkdtemp(prefix="nc-slurm-"))
    try:
        for user in USERS.values():
            ensure_user(user)
        with running_cluster(root, NODES) as cluster:
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def nc(pg_template: str, slurm: SlurmCluster) -> Iterator[TestClient]:
    """The API (admin token) on a database of its own: the fleet applied, tenants created,
    the fabric given to Slurm."""
    name = f"nc_slurm_{uuid.uuid4().hex[:10]}"
    pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    eng = make_engine(pg_url(name))
    app = create_app(Settings(db_url=pg_url(name), bootstrap_token=ADMIN_TOKEN), engine=eng)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
            r = c.post(
                "/v1/fleet/apply", content=FLEET, headers={"Content-Type": "application/yaml"}
            )
            assert r.status_code == 200, r.text
            for tenant, kind in (
                ("acme", "customer"),
                ("spotco", "customer"),
                ("beta", "customer"),
            ):
                r = c.post(
                    "/v1/tenants", json={"name": tenant, "display_name": tenant, "kind": kind}
                )
                assert r.status_code == 201, r.text
            r = c.put(
                "/v1/engines/fabrics/east/f1",
                json={
                    "engine": "slurm",
                    "options": {
                        "cluster": slurm.name,
                        "conf": str(slurm.conf),
                        "users": {t: [u] for t, u in USERS.items()},
                        "timeout_s": 10,
                    },
                },
            )
            assert r.status_code == 200, r.text
            yield c
    finally:
        eng.dispose()
        _reset(slurm)
        pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset(slurm: SlurmCluster) -> None:
    """No job left, no node drained: what a test did to the cluster ends with it."""
    jobs = slurm.run("squeue", "-h", "-o", "%i", check=False).split()
    if jobs:
        slurm.run("scancel", *jobs, check=False)
    out = slurm.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
    for line in out.splitlines():
        name, _, state = line.partition(" ")
        if state.startswith(("drain", "drng", "down")):
            slurm.run("scontrol", "update", f"NodeName={name}", "State=RESUME", check=False)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll `check` until it returns something true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)
