"""Shared fixtures: every service-level test runs on SQLite and on PostgreSQL.

PostgreSQL is the local server on 127.0.0.1:5432 (override with NEOCLOUD_TEST_PG). Each test
session migrates one template database; each test gets its own copy (CREATE DATABASE ...
TEMPLATE) and drops it afterwards. SQLite tests copy a migrated template file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from neocloud.api.app import create_app
from neocloud.auth import service as auth_service
from neocloud.auth.principal import SYSTEM
from neocloud.auth.roles import Role
from neocloud.config import Settings
from neocloud.db.engine import make_engine, make_sessionmaker, transaction
from neocloud.db.migrate import upgrade
from neocloud.tenants import service as tenant_service
from neocloud.tenants.models import TenantKind

PG_ADMIN = os.environ.get("NEOCLOUD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "nc_test_admin_token"


def pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


def pg_exec(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"nc_tmpl_{uuid.uuid4().hex[:10]}"
    pg_exec(f'CREATE DATABASE "{name}"')
    try:
        upgrade(pg_url(name))
        yield name
    finally:
        pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def new_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "neocloud.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"nc_test_{uuid.uuid4().hex[:12]}"
    pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield pg_url(name)
    finally:
        pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    yield from new_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """For tests about the API surface rather than the database (fast, SQLite only)."""
    yield from new_database("sqlite", request, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as s:
        yield s


def _client(url: str) -> Iterator[TestClient]:
    eng = make_engine(url)
    app = create_app(Settings(db_url=url, bootstrap_token=ADMIN_TOKEN), engine=eng)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield c
    eng.dispose()


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    """An admin-authenticated API client over each database."""
    yield from _client(db_url)


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    """An admin-authenticated API client over SQLite only."""
    yield from _client(sqlite_url)


MakeToken = Callable[..., str]


def token_maker(factory: sessionmaker[Session]) -> MakeToken:
    def make(role: Role | str, tenant: str | None = None) -> str:
        with transaction(factory) as s:
            _, secret = auth_service.create_token(
                s, actor=SYSTEM, name=f"test-{role}", role=Role(role), tenant=tenant
            )
        return secret

    return make


def tenant_maker(factory: sessionmaker[Session]) -> Callable[..., None]:
    def make(name: str, kind: TenantKind = TenantKind.CUSTOMER) -> None:
        with transaction(factory) as s:
            tenant_service.create_tenant(
                s, actor=SYSTEM, name=name, display_name=name.title(), kind=kind
            )

    return make
