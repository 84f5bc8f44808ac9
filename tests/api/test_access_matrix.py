"""The access matrix: every endpoint x every role, and tenant isolation.

The routes are read from the application itself, so an endpoint added later joins the
matrix by itself. Each /v1 route must carry exactly one `require(permission)` dependency;
the expected answer for a role comes from `ROLE_PERMISSIONS`.

To add an endpoint, you may have to extend two registries below:
- `PATH_VALUES`: a value for each path parameter name (an object of tenant A, or global);
- `BODIES`: a valid request body for each route that takes one.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, routing
from fastapi.testclient import TestClient
from httpx import Response

from neocloud.api.app import create_app
from neocloud.api.deps import require
from neocloud.auth.roles import ROLE_PERMISSIONS, Permission, Role
from neocloud.config import Settings
from neocloud.db.base import Base
from neocloud.db.engine import make_engine, make_sessionmaker

ADMIN_TOKEN = "nc_matrix_admin_token"
TENANT_A = "acme-matrix"
TENANT_B = "globex-matrix"
PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
PROBLEM_JSON = "application/problem+json"

FLEET_YAML = """\
apiVersion: neocloud/v1
sites:
  - name: s1
    location: Test Town
    power_mw: 10
    pue: 1.2
    state: live
    fabrics:
      - name: f01
        blocks:
          name: b{i:02d}
          count: 2
          nodes: {name: "s1-{block}-n{i:02d}", count: 2, accelerator: H100, gpus: 8, power_kw: 10}
deliveries:
  - {name: d1, site: s1, fabric: f02, accelerator: H100, nodes: 4, gpus_per_node: 8,
     power_kw_per_node: 10, expected_on: 2030-01-15, supplier: Acme Supply}
"""

CUSTOM_ACCELERATOR = {
    "name": "XPU-9",
    "vendor": "Example",
    "memory_gb": "96",
    "tdp_w": 700,
    "bf16_tflops": "900",
}

# A value for each path parameter, by name: an object of tenant A (the caller's own tenant in
# the tenant-role rows) or a global one. "token_id" is filled in once the tokens exist.
PATH_VALUES: dict[str, Any] = {
    "tenant": TENANT_A,
    "site": "s1",
    "fabric": "f01",
    "node": "s1-b01-n01",
    "accelerator": CUSTOM_ACCELERATOR["name"],
    "delivery": "d1",
    "contract": "a-reserved",
    "token_id": None,
    "quote_id": None,
    "job": "a-job",
    "report": "revenue",
    "book": "list-usd",
    "invoice_id": None,
    "kind": "reservation",
    "name": "nc-a-reserved",
    "plan_id": 1,
    "chart": "revenue",
}
# The seeded fabric's engine: Slurm with no commands (a reconcile finds it unavailable, fast).
SEED_ENGINE = {"engine": "slurm", "options": {"cluster": "matrix", "bin_dir": "/nonexistent"}}

# The contract each tenant holds in the seeded world (tenant A's is PATH_VALUES["contract"]).
SEED_CONTRACT = {
    "type": "reserved",
    "accelerator": "H100",
    "gpus": 8,
    "start": "2029-01-01T00:00:00Z",
    "end": "2029-02-01T00:00:00Z",
}
FOREIGN_CONTRACT = "b-reserved"
# Each tenant's on-demand contract and queued job (tenant A's is PATH_VALUES["job"]).
SEED_ON_DEMAND = {**SEED_CONTRACT, "type": "on-demand", "site": "s1"}
SEED_ON_DEMAND.pop("gpus")
FOREIGN_JOB = "b-job"
INVOICE_PERIOD = "2029-01"  # the seeded contracts' month: each tenant gets a draft invoice

# A plan asked for in the seeded world (queued: the matrix's apps run no planner thread).
PLAN_SCENARIO = """\
start: 2029Q1
sites: [{name: p1, power_mw: 1, accelerators: [{accelerator: H100, gpus: 64}]}]
"""

# A valid body for each route that takes one, keyed by (method, path template).
# A str is sent as YAML, anything else as JSON.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/tenants"): {"name": "newco", "display_name": "New Co"},
    ("PATCH", "/v1/tenants/{tenant}"): {"display_name": "Renamed"},
    ("POST", "/v1/tokens"): {"name": "matrix", "role": "tenant-viewer", "tenant": TENANT_A},
    ("POST", "/v1/accelerators"): {**CUSTOM_ACCELERATOR, "name": "XPU-10"},
    ("PATCH", "/v1/accelerators/{accelerator}"): {"tdp_w": 800},
    ("POST", "/v1/sites"): {"name": "s9", "location": "Elsewhere", "power_mw": "5", "pue": "1.3"},
    ("PATCH", "/v1/sites/{site}"): {"display_name": "Site One"},
    ("PATCH", "/v1/nodes/{node}"): {"state": "draining", "reason": "matrix"},
    ("POST", "/v1/nodes/{node}/fail"): {"reason": "matrix"},
    ("POST", "/v1/nodes/{node}/repair"): {"reason": "matrix"},
    ("POST", "/v1/placement/reconcile"): {"site": "s1"},
    ("POST", "/v1/sites/{site}/drain"): {"dry_run": True},
    ("POST", "/v1/deliveries"): {
        "name": "d9",
        "site": "s1",
        "accelerator": "H100",
        "nodes": 2,
        "gpus_per_node": 8,
        "power_kw_per_node": "10",
        "expected_on": "2031-03-01",
    },
    ("PATCH", "/v1/deliveries/{delivery}"): {"supplier": "Other Supply"},
    ("POST", "/v1/fleet/apply"): FLEET_YAML,
    ("POST", "/v1/contracts"): {
        "name": "matrix-new",
        "tenant": TENANT_A,
        "type": "reserved",
        "accelerator": "H100",
        "gpus": 8,
        "start": "2029-06-01T00:00:00Z",
        "end": "2029-07-01T00:00:00Z",
    },
    ("POST", "/v1/contracts/{contract}/amendments"): {
        "kind": "extend",
        "end": "2029-03-01T00:00:00Z",
    },
    ("POST", "/v1/contracts/{contract}/cancel"): {"reason": "matrix"},
    ("POST", "/v1/contracts/{contract}/reclaim"): {"reason": "matrix"},
    # An event rejected for its time and data: the call is served, nothing is written.
    ("POST", "/v1/usage/events"): [
        {
            "specversion": "1.0",
            "id": "matrix-1",
            "source": "matrix",
            "type": "neocloud.usage.v1",
            "time": "2026-01-01T00:00:00Z",
            "data": {"contract": "a-reserved", "node": "s1-b01-n01", "gpus": 8},
        }
    ],
    ("POST", "/v1/jobs"): {"contract": "a-od", "gpus": 1, "gpu_milli": 500},
    ("POST", "/v1/jobs/{job}/cancel"): {"reason": "matrix"},
    ("POST", "/v1/jobs/{job}/finish"): {"reason": "matrix"},
    ("POST", "/v1/jobs/schedule"): {"site": "s1"},
    ("POST", "/v1/usage/exclusions"): {
        "contract": "a-reserved",
        "reason": "maintenance",
        "start": "2029-01-02T00:00:00Z",
        "end": "2029-01-02T04:00:00Z",
    },
    ("POST", "/v1/usage/rollups/rebuild"): {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T02:00:00Z",
    },
    ("POST", "/v1/price-books"): {
        "name": "matrix-eur",
        "currency": "EUR",
        "entries": [
            {
                "accelerator": "H100",
                "contract_type": "on-demand",
                "price": "3.69",
                "valid_from": "2026-01-01T00:00:00Z",
            }
        ],
    },
    ("POST", "/v1/price-books/{book}/prices"): {
        "accelerator": "H100",
        "contract_type": "on-demand",
        "price": "3.49",
        "valid_from": "2031-01-01T00:00:00Z",
    },
    ("POST", "/v1/invoices/run"): {"period": INVOICE_PERIOD},
    ("PUT", "/v1/engines/fabrics/{site}/{fabric}"): SEED_ENGINE,
    ("PUT", "/v1/engines/fabrics/{site}/{fabric}/manual/{kind}/{name}"): {"note": "matrix"},
    ("POST", "/v1/engines/reconcile"): {"site": "s1", "fabric": "f01"},
    ("POST", "/v1/invoices/{invoice_id}/void"): {"reason": "matrix"},
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"): {"reason": "matrix"},
    ("POST", "/v1/limits"): {"capacity": {"gpus": 1000}, "add": {"capacity": {"mw": 300}}},
    ("POST", "/v1/plans"): {"scenario": PLAN_SCENARIO, "runs": 0},
    ("POST", "/v1/quotes"): {
        "tenant": TENANT_A,
        "accelerator": "H100",
        "gpus": 8,
        "months": 1,
        "start_after": "2029-01-01T00:00:00Z",
    },
}

# Query parameters a route requires, keyed by (method, path template).
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/capacity"): {"start": "2029-01-01T00:00:00Z", "end": "2029-02-01T00:00:00Z"},
}

# Conflicts that a well-formed request may still meet in the seeded data.
ALLOWED_CONFLICTS = {
    ("DELETE", "/v1/sites/{site}"),  # s1 holds nodes: retire, don't delete
    ("POST", "/v1/contracts/{contract}/book"),  # the seeded contract is booked already
    ("POST", "/v1/nodes/{node}/repair"),  # the node has not failed
    ("POST", "/v1/contracts/{contract}/reclaim"),  # the seeded contract has nothing lent
    ("POST", "/v1/jobs/{job}/finish"),  # the seeded job is queued, not running
    ("POST", "/v1/invoices/{invoice_id}/issue"),  # the seeded draft's month is not over
    ("POST", "/v1/invoices/{invoice_id}/pay"),  # the seeded invoice is a draft
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"),  # ... and drafts are not credited
    ("GET", "/v1/plans/{plan_id}/charts/{chart}.png"),  # the seeded plan has not run
}


# --- the routes, read from the application ----------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permissions: tuple[Permission, ...]
    path_params: tuple[str, ...]
    takes_body: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def permission(self) -> Permission:
        assert len(self.permissions) == 1, (
            f"{self.id} must depend on exactly one require(permission), found {list(self.permissions)}"
        )
        return self.permissions[0]


def _permissions(dependant: Any) -> list[Permission]:
    found: list[Permission] = []
    for dep in dependant.dependencies:
        permission = getattr(dep.call, "permission", None)
        if permission is not None:
            found.append(permission)
        found.extend(_permissions(dep))
    return found


def _route_objects(app: FastAPI) -> Iterator[Any]:
    # FastAPI >= 0.165 keeps included routers lazily in app.routes; flatten them.
    iterate: Callable[..., Iterator[Any]] | None = getattr(routing, "iter_route_contexts", None)
    yield from (iterate(app.routes) if iterate else app.routes)


def endpoints(app: FastAPI) -> list[Endpoint]:
    out = []
    for route in _route_objects(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None:  # a plain Starlette route (openapi.json, docs)
            continue
        extra = getattr(route, "openapi_extra", None) or {}
        for method in sorted(route.methods):
            out.append(
                Endpoint(
                    method=method,
                    path=route.path,
                    permissions=tuple(_permissions(dependant)),
                    path_params=tuple(p.name for p in dependant.path_params),
                    takes_body=getattr(route, "body_field", None) is not None
                    or "requestBody" in extra,
                )
            )
    return out


def all_paths(app: FastAPI) -> set[str]:
    return {route.path for route in _route_objects(app) if getattr(route, "path", None)}


ROUTE_APP = create_app(Settings(db_url="sqlite://"), engine=sa.create_engine("sqlite://"))
ENDPOINTS = endpoints(ROUTE_APP)
V1 = [e for e in ENDPOINTS if e.path.startswith("/v1/")]
ROLES = list(Role)
TENANT_ROLES = [Role.TENANT_ADMIN, Role.TENANT_VIEWER]


def _allowed(endpoint: Endpoint, role: Role) -> bool | None:
    if len(endpoint.permissions) != 1:
        return None
    return endpoint.permissions[0] in ROLE_PERMISSIONS[role]


def _cases(roles: list[Role], keep: Callable[[Endpoint, Role], bool]) -> list[Any]:
    return [pytest.param(e, r, id=f"{e.id}-{r.value}") for e in V1 for r in roles if keep(e, r)]


# --- the world: two tenants, a small fleet, tokens of every role --------------------------


@dataclass
class World:
    db_file: Path
    tokens: dict[Role, str]  # role -> secret; tenant roles belong to tenant A
    tenant_ids: dict[str, int]
    a_token_ids: set[int]
    b_token_ids: set[int]
    b_prefixes: set[str]
    b_token_secret: str
    foreign: dict[str, Any]  # path values that name tenant B's objects
    own: dict[str, Any]


def _app(url: str) -> tuple[FastAPI, sa.Engine]:
    engine = make_engine(url)
    return create_app(Settings(db_url=url, bootstrap_token=ADMIN_TOKEN), engine=engine), engine


def _ok(resp: Response) -> Any:
    assert resp.status_code < 300, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    db_file = tmp_path_factory.mktemp("matrix") / "seed.db"
    shutil.copyfile(sqlite_template, db_file)
    app, engine = _app(f"sqlite:///{db_file}")
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        applied = c.post(
            "/v1/fleet/apply", content=FLEET_YAML, headers={"content-type": "application/yaml"}
        )
        _ok(applied)
        _ok(c.post("/v1/accelerators", json=CUSTOM_ACCELERATOR))
        tenant_ids = {}
        for name in (TENANT_A, TENANT_B):
            tenant_ids[name] = _ok(
                c.post("/v1/tenants", json={"name": name, "display_name": name.title()})
            )["id"]

        def token(name: str, role: Role, tenant: str | None = None) -> dict[str, Any]:
            body = {"name": name, "role": role.value, "tenant": tenant}
            created: dict[str, Any] = _ok(c.post("/v1/tokens", json=body))
            return created

        tokens: dict[Role, str] = {Role.ADMIN: ADMIN_TOKEN}
        a_ids: set[int] = set()
        for role in ROLES:
            if role is Role.ADMIN:
                continue
            created = token(f"matrix-{role.value}", role, TENANT_A if role.is_tenant_role else None)
            tokens[role] = created["token"]
            if role.is_tenant_role:
                a_ids.add(created["id"])
        a_spare = token("a-spare", Role.TENANT_VIEWER, TENANT_A)
        a_ids.add(a_spare["id"])
        b_tokens = [
            token("b-admin", Role.TENANT_ADMIN, TENANT_B),
            token("b-viewer", Role.TENANT_VIEWER, TENANT_B),
        ]
        for tenant, name in ((TENANT_A, PATH_VALUES["contract"]), (TENANT_B, FOREIGN_CONTRACT)):
            _ok(c.post("/v1/contracts", json={**SEED_CONTRACT, "tenant": tenant, "name": name}))
        for tenant, prefix in ((TENANT_A, "a"), (TENANT_B, "b")):
            od = {**SEED_ON_DEMAND, "tenant": tenant, "name": f"{prefix}-od"}
            _ok(c.post("/v1/contracts", json=od))
            _ok(
                c.post(
                    "/v1/jobs",
                    json={"contract": f"{prefix}-od", "gpus": 1, "name": f"{prefix}-job"},
                )
            )
        _ok(c.post("/v1/invoices/run", json={"period": INVOICE_PERIOD}))
        _ok(c.post("/v1/plans", json={"scenario": PLAN_SCENARIO}))
        _ok(c.put("/v1/engines/fabrics/s1/f01", json=SEED_ENGINE))
        mark = "/v1/engines/fabrics/s1/f01/manual/reservation/nc-a-reserved"
        _ok(c.put(mark, json={"note": "seeded"}))
        invoice_ids = {i["tenant"]: i["id"] for i in _ok(c.get("/v1/invoices"))["items"]}
        quote_ids = {
            tenant: _ok(
                c.post("/v1/quotes", json={**BODIES[("POST", "/v1/quotes")], "tenant": tenant})
            )["id"]
            for tenant in (TENANT_A, TENANT_B)
        }
    engine.dispose()
    with closing(sqlite3.connect(db_file)) as raw:  # fold the WAL in, so a file copy is whole
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return World(
        db_file=db_file,
        tokens=tokens,
        tenant_ids=tenant_ids,
        a_token_ids=a_ids,
        b_token_ids={t["id"] for t in b_tokens},
        b_prefixes={t["prefix"] for t in b_tokens},
        b_token_secret=b_tokens[0]["token"],
        foreign={
            "tenant": TENANT_B,
            "token_id": b_tokens[1]["id"],
            "contract": FOREIGN_CONTRACT,
            "quote_id": quote_ids[TENANT_B],
            "job": FOREIGN_JOB,
            "invoice_id": invoice_ids[TENANT_B],
        },
        own={
            **PATH_VALUES,
            "token_id": a_spare["id"],
            "quote_id": quote_ids[TENANT_A],
            "invoice_id": invoice_ids[TENANT_A],
        },
    )


@pytest.fixture(scope="module")
def shared_client(world: World) -> Iterator[TestClient]:
    app, engine = _app(f"sqlite:///{world.db_file}")
    engine.dispose()
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def db(
    shared_client: TestClient, world: World, tmp_path: Path
) -> Iterator[tuple[TestClient, sa.Engine]]:
    """The module's app over a private copy of the seeded database, so no write can leak."""
    target = tmp_path / "neocloud.db"
    shutil.copyfile(world.db_file, target)
    engine = make_engine(f"sqlite:///{target}")
    state = shared_client.app.state  # type: ignore[attr-defined]
    state.engine, state.sessionmaker = engine, make_sessionmaker(engine)
    yield shared_client, engine
    engine.dispose()


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the idempotency records (which aren't user data)."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name == "idempotency_records":
                continue
            out[table.name] = [
                tuple(r)
                for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
    return out


def call(c: TestClient, endpoint: Endpoint, values: dict[str, Any], token: str | None) -> Response:
    missing = [p for p in endpoint.path_params if p not in values]
    assert not missing, (
        f"{endpoint.id}: no value for path parameter(s) {missing}; "
        "add an entry to PATH_VALUES in tests/api/test_access_matrix.py"
    )
    path = endpoint.path.format(**{p: values[p] for p in endpoint.path_params})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"params": QUERIES.get((endpoint.method, endpoint.path), {})}
    if endpoint.takes_body:
        key = (endpoint.method, endpoint.path)
        assert key in BODIES, (
            f"{endpoint.id} takes a request body; add a valid one to BODIES "
            "in tests/api/test_access_matrix.py"
        )
        body = BODIES[key]
        if isinstance(body, str):
            kwargs["content"] = body
            headers["content-type"] = "application/yaml"
        else:
            kwargs["json"] = body
    resp: Response = c.request(endpoint.method, path, headers=headers, **kwargs)
    return resp


def assert_problem(resp: Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# --- the shape of the route table ---------------------------------------------------------


def test_every_v1_route_names_exactly_one_permission() -> None:
    wrong = [f"{e.id}: {[p.value for p in e.permissions]}" for e in V1 if len(e.permissions) != 1]
    assert not wrong, "routes without exactly one require(permission): " + "; ".join(wrong)


def test_routes_outside_v1_are_the_known_public_ones() -> None:
    outside = all_paths(ROUTE_APP) - {e.path for e in V1}
    assert outside == PUBLIC_PATHS, (
        f"unexpected routes outside /v1: {sorted(outside - PUBLIC_PATHS)}; "
        "put them under /v1 with a permission, or list them in PUBLIC_PATHS"
    )
    for e in ENDPOINTS:
        if e.path in PUBLIC_PATHS:
            assert not e.permissions, f"public route {e.id} demands {e.permissions}"


def test_the_route_walk_finds_a_missing_or_nested_permission() -> None:
    app = create_app(Settings(db_url="sqlite://"), engine=sa.create_engine("sqlite://"))
    guarded = require(Permission.FLEET_READ)

    # Dependencies as defaults: string annotations can't see these local names.
    def nested(principal: Any = Depends(guarded)) -> Any:
        return principal

    @app.get("/v1/unguarded")
    def unguarded() -> None: ...

    @app.get("/v1/nested")
    def nested_route(_: Any = Depends(nested)) -> None: ...

    found = {e.id: e.permissions for e in endpoints(app)}
    assert found["GET /v1/unguarded"] == ()
    assert found["GET /v1/nested"] == (Permission.FLEET_READ,)
    with pytest.raises(AssertionError, match="exactly one"):
        _ = Endpoint("GET", "/v1/unguarded", (), (), False).permission


def test_the_matrix_sees_the_whole_api() -> None:
    # Guards the route walk itself: if it found nothing, every case would pass vacuously.
    ids = {e.id for e in V1}
    assert {
        "GET /v1/tenants",
        "POST /v1/tokens",
        "DELETE /v1/tokens/{token_id}",
        "POST /v1/fleet/apply",
    } <= ids
    assert len(V1) >= 25


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_public_routes_need_no_token(db: tuple[TestClient, sa.Engine], path: str) -> None:
    c, _ = db
    assert c.get(path).status_code == 200


# --- every endpoint x every role ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", [pytest.param(e, id=e.id) for e in V1])
def test_no_token_is_401(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint
) -> None:
    c, engine = db
    before = snapshot(engine)
    resp = call(c, endpoint, world.own, token=None)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"
    assert snapshot(engine) == before


@pytest.mark.parametrize("endpoint", [pytest.param(e, id=e.id) for e in V1])
def test_unknown_token_is_401(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint
) -> None:
    c, _ = db
    assert_problem(call(c, endpoint, world.own, token="nc_not_a_real_token"), 401)


@pytest.mark.parametrize(
    ("endpoint", "role"), _cases(ROLES, lambda e, r: _allowed(e, r) is not True)
)
def test_role_without_permission_is_403(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint, role: Role
) -> None:
    assert endpoint.permission not in ROLE_PERMISSIONS[role]  # also: exactly one permission
    c, engine = db
    before = snapshot(engine)
    body = assert_problem(call(c, endpoint, world.own, world.tokens[role]), 403)
    assert role.value in body["detail"], body
    assert snapshot(engine) == before, f"a refused {endpoint.id} by {role} changed the database"


@pytest.mark.parametrize(("endpoint", "role"), _cases(ROLES, lambda e, r: _allowed(e, r) is True))
def test_role_with_permission_is_served(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint, role: Role
) -> None:
    c, _ = db
    resp = call(c, endpoint, world.own, world.tokens[role])
    assert resp.status_code not in (401, 403), f"{role} refused on {endpoint.id}: {resp.text}"
    if (endpoint.method, endpoint.path) in ALLOWED_CONFLICTS and resp.status_code == 409:
        return
    assert 200 <= resp.status_code < 300, (
        f"{role} on {endpoint.id} answered {resp.status_code}: {resp.text}; "
        "if the request was malformed, fix PATH_VALUES or BODIES"
    )


def test_matrix_has_both_outcomes_for_every_role() -> None:
    # Every role is allowed something and refused something, so both tests above bite.
    for role in ROLES:
        outcomes = {_allowed(e, role) for e in V1}
        assert True in outcomes, role
        if role is not Role.ADMIN:
            assert False in outcomes, role


# --- tenant isolation ---------------------------------------------------------------------

LISTS = [e for e in V1 if e.method == "GET" and not e.path_params]


@pytest.mark.parametrize(
    ("endpoint", "role"),
    [
        pytest.param(e, r, id=f"{e.id}-{r.value}")
        for e in LISTS
        for r in TENANT_ROLES
        if _allowed(e, r)
    ],
)
def test_tenant_lists_hold_only_their_own_objects(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint, role: Role
) -> None:
    c, _ = db
    resp = call(c, endpoint, world.own, world.tokens[role])
    assert resp.status_code == 200, resp.text
    if resp.headers["content-type"].startswith("text/csv"):  # an export: a row per line
        body: Any = list(csv.DictReader(io.StringIO(resp.text)))
    else:
        body = resp.json()
    items = body["items"] if isinstance(body, dict) and "items" in body else body
    if isinstance(items, dict):  # one object (GET /v1/me): it too names only its own tenant
        items = [items]
    assert isinstance(items, list), body
    own_id = world.tenant_ids[TENANT_A]
    for item in items:
        if not isinstance(item, dict):
            continue
        if "tenant_id" in item:
            assert item["tenant_id"] == own_id, f"{endpoint.id} leaked {item}"
        if "tenant" in item:
            assert item["tenant"] == TENANT_A, f"{endpoint.id} leaked {item}"
        if "BillingAccountId" in item:
            assert item["BillingAccountId"] == TENANT_A, f"{endpoint.id} leaked {item}"
        if endpoint.path == "/v1/tenants":
            assert (item["id"], item["name"]) == (own_id, TENANT_A), f"{endpoint.id} leaked {item}"
    assert TENANT_B not in resp.text
    for prefix in world.b_prefixes:
        assert prefix not in resp.text, f"{endpoint.id} shows a token of {TENANT_B}"


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_tenant_sees_exactly_its_tenant_and_tokens(
    db: tuple[TestClient, sa.Engine], world: World, role: Role
) -> None:
    c, _ = db
    auth = {"Authorization": f"Bearer {world.tokens[role]}"}
    tenants = c.get("/v1/tenants", headers=auth).json()["items"]
    assert [t["name"] for t in tenants] == [TENANT_A]
    tokens = c.get("/v1/tokens", headers=auth).json()["items"]
    assert {t["id"] for t in tokens} == world.a_token_ids


def test_operators_see_every_tenant(db: tuple[TestClient, sa.Engine], world: World) -> None:
    c, _ = db
    auth = {"Authorization": f"Bearer {world.tokens[Role.FINANCE]}"}
    names = {t["name"] for t in c.get("/v1/tenants", headers=auth).json()["items"]}
    assert {TENANT_A, TENANT_B} <= names
    assert c.get(f"/v1/tenants/{TENANT_B}", headers=auth).status_code == 200


TENANT_OBJECTS = {"tenant", "token_id", "contract", "quote_id", "job", "invoice_id"}
FOREIGN_ROUTES = [
    e
    for e in V1
    if TENANT_OBJECTS & set(e.path_params)
    and (e.method in ("GET", "PATCH", "DELETE") or {"contract", "job"} & set(e.path_params))
]


def test_foreign_routes_cover_every_tenant_owned_object() -> None:
    assert {e.path for e in FOREIGN_ROUTES} >= {
        "/v1/tenants/{tenant}",
        "/v1/tokens/{token_id}",
        "/v1/contracts/{contract}",
        "/v1/contracts/{contract}/history",
        "/v1/contracts/{contract}/amendments",
        "/v1/contracts/{contract}/cancel",
        "/v1/quotes/{quote_id}",
        "/v1/jobs/{job}",
        "/v1/jobs/{job}/cancel",
        "/v1/jobs/{job}/finish",
    }


@pytest.mark.parametrize(
    ("endpoint", "role"),
    [pytest.param(e, r, id=f"{e.id}-{r.value}") for e in FOREIGN_ROUTES for r in TENANT_ROLES],
)
def test_another_tenants_object_is_404_and_untouched(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint, role: Role
) -> None:
    c, engine = db
    before = snapshot(engine)
    values = {**world.own, **world.foreign}
    resp = call(c, endpoint, values, world.tokens[role])
    if _allowed(endpoint, role):
        body = assert_problem(resp, 404)
        assert "not found" in body["detail"]
    else:
        assert_problem(resp, 403)  # refused for every tenant alike: no existence leak
    assert snapshot(engine) == before, (
        f"{endpoint.id} by {role} of {TENANT_A} changed {TENANT_B}'s data"
    )


@pytest.mark.parametrize(
    "endpoint", [pytest.param(e, id=e.id) for e in FOREIGN_ROUTES if _allowed(e, Role.TENANT_ADMIN)]
)
def test_missing_object_and_foreign_object_answer_alike(
    db: tuple[TestClient, sa.Engine], world: World, endpoint: Endpoint
) -> None:
    # A tenant cannot tell "exists in another tenant" from "does not exist".
    c, _ = db
    role = Role.TENANT_ADMIN
    foreign = call(c, endpoint, {**world.own, **world.foreign}, world.tokens[role])
    missing = call(
        c,
        endpoint,
        {
            **world.own,
            "tenant": "no-such-tenant",
            "token_id": 999_999,
            "contract": "no-such-contract",
            "quote_id": 999_999,
            "job": "no-such-job",
            "invoice_id": 999_999,
        },
        world.tokens[role],
    )
    assert foreign.status_code == missing.status_code == 404


def test_tenant_admin_cannot_create_a_token_for_another_tenant(
    db: tuple[TestClient, sa.Engine], world: World
) -> None:
    c, engine = db
    before = snapshot(engine)
    resp = c.post(
        "/v1/tokens",
        json={"name": "sneaky", "role": "tenant-admin", "tenant": TENANT_B},
        headers={"Authorization": f"Bearer {world.tokens[Role.TENANT_ADMIN]}"},
    )
    assert_problem(resp, 403)
    assert snapshot(engine) == before


def test_tenant_b_token_still_works_after_tenant_a_tries_to_revoke_it(
    db: tuple[TestClient, sa.Engine], world: World
) -> None:
    c, _ = db
    b_admin_id = min(world.b_token_ids)
    resp = c.delete(
        f"/v1/tokens/{b_admin_id}",
        headers={"Authorization": f"Bearer {world.tokens[Role.TENANT_ADMIN]}"},
    )
    assert resp.status_code == 404
    mine = c.get("/v1/tokens", headers={"Authorization": f"Bearer {world.b_token_secret}"})
    assert mine.status_code == 200
    assert {t["id"] for t in mine.json()["items"]} == world.b_token_ids
