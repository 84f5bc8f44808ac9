"""Server-side commands: `serve`, `demo`, `db`. These talk to the database, not the API."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import typer
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth import service as auth_service
from neocloud.auth.principal import SYSTEM
from neocloud.auth.roles import Role
from neocloud.auth.tokens import generate
from neocloud.cli.common import console, fail
from neocloud.config import Settings
from neocloud.db import migrate
from neocloud.db.engine import make_engine, make_sessionmaker, transaction

db_app = typer.Typer(help="Database schema (server-side).", no_args_is_help=True)
DbOpt = typer.Option(
    None, "--db", help="database URL (default: NEOCLOUD_DB_URL, else SQLite in --data-dir)"
)
DataDirOpt = typer.Option(None, "--data-dir", help="directory of the embedded SQLite database")


def _url(db: str | None, data_dir: Path | None) -> str:
    return Settings.from_env(db_url=db, data_dir=data_dir).db_url


@db_app.command("upgrade")
def db_upgrade(
    db: str | None = DbOpt, data_dir: Path | None = DataDirOpt, revision: str = typer.Option("head")
) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    migrate.upgrade(_url(db, data_dir), revision)
    console.print(f"database at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="target revision, or 'base'"),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
) -> None:
    """Undo migrations down to REVISION."""
    migrate.downgrade(_url(db, data_dir), revision)
    console.print(f"database at revision {revision}")


@db_app.command("current")
def db_current(db: str | None = DbOpt, data_dir: Path | None = DataDirOpt) -> None:
    """Show the database's revision and the latest one."""
    url = _url(db, data_dir)
    engine = make_engine(url)
    console.print(
        f"current: {migrate.current_revision(engine)}  head: {migrate.head_revision(url)}"
    )
    engine.dispose()


def _run(url: str, host: str, port: int, workers: int, bootstrap_token: str | None) -> None:
    os.environ["NEOCLOUD_DB_URL"] = url
    if bootstrap_token:
        os.environ["NEOCLOUD_BOOTSTRAP_TOKEN"] = bootstrap_token
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="neocloud-metrics-")
    uvicorn.run(
        "neocloud.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
    )


def _demo_token(
    factory: sessionmaker[Session], path: Path, name: str, role: Role, tenant: str | None
) -> str:
    """The token kept in PATH if the database still accepts it, else a new one written there
    (so a restarted demo keeps the tokens people pasted)."""
    token = path.read_text().strip() if path.exists() else ""
    with transaction(factory) as session:
        try:
            auth_service.authenticate(session, token)
        except Exception:
            token = generate()
            auth_service.create_token(
                session,
                actor=SYSTEM,
                name=f"{name}-{secrets.token_hex(2)}",
                role=role,
                tenant=tenant,
                raw_token=token,
            )
            path.write_text(token + "\n")
            path.chmod(0o600)
    return token


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, min=1, max=65535),
    workers: int = typer.Option(
        1, min=1, max=64, help="API processes (stateless; the database coordinates them)"
    ),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
) -> None:
    """Run the production server: applies migrations, then serves the API.

    Set NEOCLOUD_BOOTSTRAP_TOKEN on the first start of an empty database to make it the first
    admin's token.
    """
    url = _url(db, data_dir)
    migrate.upgrade(url)
    if url.startswith("sqlite") and workers > 1:
        console.print(
            "[yellow]SQLite serialises writers; use PostgreSQL for several workers[/yellow]"
        )
    _run(url, host, port, workers, os.environ.get("NEOCLOUD_BOOTSTRAP_TOKEN"))


def demo(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, min=1, max=65535),
    data_dir: Path = typer.Option(
        Path(".neocloud/demo"), "--data-dir", help="where the demo's SQLite database lives"
    ),
    reset: bool = typer.Option(False, "--reset", help="start again from an empty database"),
) -> None:
    """Start the API on embedded SQLite with the built-in scenario, and print how to use it."""
    from neocloud.billing import demo as demo_billing
    from neocloud.core.timeutil import utcnow
    from neocloud.demo import scenario
    from neocloud.demo import usage as demo_usage
    from neocloud.placement import loop as placement_loop

    data_dir.mkdir(parents=True, exist_ok=True)
    db_file = data_dir / "neocloud.db"
    token_file = data_dir / "admin-token"
    if reset:
        wal, shm = Path(f"{db_file}-wal"), Path(f"{db_file}-shm")
        for path in (db_file, wal, shm, token_file, data_dir / "tenant-token"):
            path.unlink(missing_ok=True)
    url = f"sqlite:///{db_file.resolve()}"
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        if not scenario.is_loaded(session):
            console.print("loading the demo scenario ...")
            scenario.load(session)
    changed = placement_loop.reconcile_all(factory)  # contracts in force get their nodes
    if changed:
        console.print(f"placement: {changed:,} nodes given to the contracts in force")
    with transaction(factory) as session:
        if not demo_usage.is_loaded(session):
            console.print("loading the demo's usage history (about a minute) ...")
            stored = demo_usage.load(session, utcnow())
            console.print(f"usage: {stored:,} usage and telemetry events stored and rolled up")
    with transaction(factory) as session:
        if not demo_billing.is_loaded(session):
            issued = demo_billing.load(session, utcnow())
            console.print(f"billing: {issued} invoices and showback statements issued")
    token = _demo_token(factory, token_file, "demo-admin", Role.ADMIN, None)
    customer = scenario.MAIN_CUSTOMER
    tenant_token = _demo_token(
        factory, data_dir / "tenant-token", f"demo-{customer}", Role.TENANT_ADMIN, customer
    )
    engine.dispose()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print(f"\n[bold green]neocloud demo[/bold green] at {base}   (API docs: {base}/docs)")
    console.print(f"web console: {base}/  (sign in with a token below)", highlight=False)
    console.print(f"admin token: {token}", highlight=False, soft_wrap=True)
    console.print(
        f"customer token ({customer}, tenant-admin): {tenant_token}",
        highlight=False,
        soft_wrap=True,
    )
    console.print("try, in another shell:", style="dim")
    console.print(
        f"  export NEOCLOUD_URL={base} NEOCLOUD_TOKEN={token}", highlight=False, soft_wrap=True
    )
    console.print("  .venv/bin/neocloud sites list\n", highlight=False)
    if not data_dir.exists():
        fail(f"data directory {data_dir} vanished")
    _run(url, host, port, 1, None)
