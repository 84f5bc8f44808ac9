"""Property-based run over the whole OpenAPI spec: no input makes the server fail (5xx),
and every answer, success or problem, matches the schema the spec promises.

One application is built for the module (its schema needs no database); each operation
then runs against its own copy of a seeded SQLite database (two tenants, a small fleet, a
delivery, a custom accelerator), authenticated as an admin.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from neocloud.api.app import create_app
from neocloud.config import Settings
from neocloud.db.engine import make_engine, make_sessionmaker

ADMIN_TOKEN = "nc_schemathesis_admin_token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

FLEET_YAML = """\
apiVersion: neocloud/v1
accelerators:
  - {name: XPU-9, vendor: Example, memory_gb: 96, tdp_w: 700, bf16_tflops: 900}
sites:
  - name: s1
    location: Test Town
    power_mw: 10
    pue: 1.2
    state: live
    dates: {planned: 2024-01-01, building: 2024-02-01, live: 2024-06-01}
    fabrics:
      - name: f01
        blocks:
          name: b{i:02d}
          count: 2
          nodes: {name: "s1-{block}-n{i:02d}", count: 2, accelerator: H100, gpus: 8, power_kw: 10}
  - {name: s2, location: Elsewhere, power_mw: 5, pue: 1.3}
deliveries:
  - {name: d1, site: s1, fabric: f02, accelerator: H100, nodes: 4, gpus_per_node: 8,
     power_kw_per_node: 10, expected_on: 2030-01-15, supplier: Acme Supply}
"""

# Path values that name objects of the seeded database, for the second pass.
EXISTING = {
    "tenant": "acme",
    "site": "s1",
    "fabric": "f01",
    "node": "s1-b01-n01",
    "accelerator": "XPU-9",
    "delivery": "d1",
    "token_id": 2,  # the spare token created after the admin's (id 1)
    "contract": "acme-reserved",
    "quote_id": 1,
    "job": "acme-job",
    "book": "list-usd",
    "invoice_id": 1,  # acme's draft for 2029-01
    "report": "revenue",
    "kind": "reservation",  # an engine object marked manual on s1/f01
    "name": "nc-acme-reserved",
    "plan_id": 1,  # a plan asked for (queued: no planner thread runs here)
    "chart": "revenue",
}

# The schema is read from the app; the database behind it is swapped in per test.
APP = create_app(Settings(db_url="sqlite://"), engine=sa.create_engine("sqlite://"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


@dataclass
class Seed:
    db_file: Path
    admin_id: int
    spare_id: int


@pytest.fixture(scope="module")
def seed(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    db_file = tmp_path_factory.mktemp("fuzz") / "seed.db"
    shutil.copyfile(sqlite_template, db_file)
    url = f"sqlite:///{db_file}"
    engine = make_engine(url)
    app = create_app(Settings(db_url=url, bootstrap_token=ADMIN_TOKEN), engine=engine)
    with TestClient(app) as c:
        c.headers.update(AUTH)
        spare = c.post("/v1/tokens", json={"name": "spare", "role": "ops"})
        assert spare.status_code == 201, spare.text
        applied = c.post(
            "/v1/fleet/apply", content=FLEET_YAML, headers={"content-type": "application/yaml"}
        )
        assert applied.status_code == 200, applied.text
        for name in ("acme", "globex"):
            r = c.post("/v1/tenants", json={"name": name, "display_name": name.title()})
            assert r.status_code == 201, r.text
        viewer = {"name": "acme-viewer", "role": "tenant-viewer", "tenant": "acme"}
        assert c.post("/v1/tokens", json=viewer).status_code == 201
        quote = {"tenant": "acme", "accelerator": "H100", "gpus": 8, "months": 1}
        quoted = c.post("/v1/quotes", json={**quote, "start_after": "2029-01-01T00:00:00Z"})
        assert quoted.json()["id"] == EXISTING["quote_id"], quoted.text
        booked = c.post("/v1/contracts", json={"quote": 1, "name": EXISTING["contract"]})
        assert booked.status_code == 201, booked.text
        od = {"name": "acme-od", "tenant": "acme", "type": "on-demand", "site": "s1"}
        od |= {"start": "2029-01-01T00:00:00Z", "end": "2029-02-01T00:00:00Z"}
        assert c.post("/v1/contracts", json=od).status_code == 201
        job = {"contract": "acme-od", "gpus": 1, "name": EXISTING["job"]}
        assert c.post("/v1/jobs", json=job).status_code == 201
        slurm = {"engine": "slurm", "options": {"cluster": "fuzz", "bin_dir": "/nonexistent"}}
        assert c.put("/v1/engines/fabrics/s1/f01", json=slurm).status_code == 200
        mark = f"/v1/engines/fabrics/s1/f01/manual/{EXISTING['kind']}/{EXISTING['name']}"
        assert c.put(mark, json={}).status_code == 200
        plan = {"scenario": "start: 2029Q1\nsites: [{name: p1, power_mw: 1}]\n", "runs": 0}
        assert c.post("/v1/plans", json=plan).json()["id"] == EXISTING["plan_id"]
        run = c.post("/v1/invoices/run", json={"period": "2029-01"})
        assert [d["id"] for d in run.json()["documents"]] == [EXISTING["invoice_id"]], run.text
        admin_id = next(
            t["id"] for t in c.get("/v1/tokens").json()["items"] if t["role"] == "admin"
        )
    engine.dispose()
    with closing(sqlite3.connect(db_file)) as raw:  # fold the WAL in, so a file copy is whole
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert spare.json()["id"] == EXISTING["token_id"]
    return Seed(db_file=db_file, admin_id=admin_id, spare_id=spare.json()["id"])


@pytest.fixture
def fresh_db(seed: Seed, tmp_path: Path) -> Iterator[Seed]:
    """Point the module's app at a private copy of the seeded database."""
    target = tmp_path / "neocloud.db"
    shutil.copyfile(seed.db_file, target)
    engine = make_engine(f"sqlite:///{target}")
    APP.state.engine, APP.state.sessionmaker = engine, make_sessionmaker(engine)
    yield seed
    engine.dispose()


def _keep_the_admin(case: schemathesis.Case[Any], seed: Seed) -> None:
    # Revoking the token the run authenticates with would turn the rest into 401s.
    if (
        case.method == "DELETE"
        and case.path_parameters
        and case.path_parameters.get("token_id") == seed.admin_id
    ):
        case.path_parameters["token_id"] = seed.spare_id


def errors_are_problems(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """Every error answer is RFC 9457 problem+json whose status matches the response's."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{case.method} {case.formatted_path}: {content_type}"
    )
    body = response.json()
    assert body["status"] == response.status_code, body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body


def _validate(case: schemathesis.Case[Any], seed: Seed) -> None:
    _keep_the_admin(case, seed)
    response = case.call(headers=AUTH)
    # Successes and problem+json errors alike must be what the spec promises.
    checks: list[Any] = [
        not_a_server_error,
        errors_are_problems,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    case.validate_response(response, checks=checks)


@schema.parametrize()
@FUZZ
def test_no_server_error_and_answers_match_the_schema(
    case: schemathesis.Case[Any], fresh_db: Seed
) -> None:
    _validate(case, fresh_db)


@schema.include(path_regex=r"\{").parametrize()
@FUZZ
def test_no_server_error_on_existing_objects(case: schemathesis.Case[Any], fresh_db: Seed) -> None:
    """The same, with the path naming real objects, so the handlers get past their 404."""
    assert case.path_parameters is not None
    for name in case.path_parameters:
        assert name in EXISTING, f"add a value for path parameter '{name}' to EXISTING"
        case.path_parameters[name] = EXISTING[name]
    _validate(case, fresh_db)


def test_the_fuzzed_spec_covers_the_api() -> None:
    loaded = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    operations = {f"{op.method.upper()} {op.path}" for op in loaded}
    assert {
        "POST /v1/tenants",
        "PATCH /v1/sites/{site}",
        "POST /v1/fleet/apply",
        "DELETE /v1/tokens/{token_id}",
    } <= operations
