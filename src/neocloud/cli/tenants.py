"""`neocloud tenants|tokens|audit ...`."""

from __future__ import annotations

from pathlib import Path

import typer

from neocloud.auth.principal import SYSTEM
from neocloud.auth.roles import Role
from neocloud.cli.common import (
    JsonOpt,
    api,
    console,
    fail,
    listing,
    more_hint,
    print_json,
    print_table,
    show,
)
from neocloud.config import Settings
from neocloud.core.errors import NeocloudError

tenants_app = typer.Typer(help="Tenants: internal teams and customers.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@tenants_app.command("list")
def tenants_list(
    ctx: typer.Context,
    kind: str | None = typer.Option(None, help="internal or customer"),
    as_json: bool = JsonOpt,
) -> None:
    with api(ctx) as client:
        items = list(client.pages("/v1/tenants", kind=kind))
    show(items, as_json, ["name", "display_name", "kind", "currency", "contact_email"])


@tenants_app.command("show")
def tenants_show(ctx: typer.Context, tenant: str, as_json: bool = JsonOpt) -> None:
    with api(ctx) as client:
        data = client.get(f"/v1/tenants/{tenant}")
    show(data, as_json, ["name", "display_name", "kind", "currency", "contact_email", "created_at"])


@tenants_app.command("create")
def tenants_create(
    ctx: typer.Context,
    name: str,
    display_name: str = typer.Option(..., "--display-name"),
    kind: str = typer.Option("customer", help="internal or customer"),
    currency: str = typer.Option("USD"),
    contact_email: str | None = typer.Option(None, "--email"),
    as_json: bool = JsonOpt,
) -> None:
    with api(ctx) as client:
        data = client.post(
            "/v1/tenants",
            {
                "name": name,
                "display_name": display_name,
                "kind": kind,
                "currency": currency,
                "contact_email": contact_email,
            },
        )
    show(data, as_json, ["name", "display_name", "kind", "currency"])


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    role: Role = typer.Option(
        ..., "--role", help="admin, ops, sales, finance, tenant-admin or tenant-viewer"
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="tenant name (tenant roles only)"),
    name: str | None = typer.Option(None, "--name", help="a label for the token"),
    db: str | None = typer.Option(
        None,
        "--db",
        help="create directly in this database (server-side bootstrap) instead of through the API",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="server-side: the SQLite data directory"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Create a token. Through the API by default; with --db or --data-dir, directly in the
    database (for bootstrapping a server that has no admin token yet)."""
    label = name or f"{role.value}{'-' + tenant if tenant else ''}"
    if db or data_dir:
        from neocloud.auth import service
        from neocloud.db.engine import make_engine, make_sessionmaker, transaction
        from neocloud.db.migrate import upgrade

        url = Settings.from_env(db_url=db, data_dir=data_dir).db_url
        upgrade(url)
        try:
            with transaction(make_sessionmaker(make_engine(url))) as session:
                row, secret = service.create_token(
                    session, actor=SYSTEM, name=label, role=role, tenant=tenant
                )
                data = {
                    "id": row.id,
                    "name": row.name,
                    "role": row.role.value,
                    "tenant": tenant,
                    "token": secret,
                }
        except NeocloudError as exc:
            fail(exc.detail)
    else:
        with api(ctx) as client:
            data = client.post("/v1/tokens", {"name": label, "role": role.value, "tenant": tenant})
    if as_json:
        print_json(data)
    else:
        console.print(f"token for [bold]{label}[/bold] ({role.value}); shown once:")
        console.print(data["token"], highlight=False, soft_wrap=True)


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    with api(ctx) as client:
        items = list(client.pages("/v1/tokens"))
    show(items, as_json, ["id", "name", "role", "tenant_id", "prefix", "created_at", "revoked_at"])


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: int, as_json: bool = JsonOpt) -> None:
    with api(ctx) as client:
        data = client.delete(f"/v1/tokens/{token_id}")
    show(data, as_json, ["id", "name", "role", "revoked_at"])


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    action: str | None = typer.Option(None, help="e.g. tenant.create"),
    limit: int = typer.Option(50, min=1, max=1000),
    cursor: str | None = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    """Audit events, oldest first (admins)."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client, "/v1/audit-events", limit, cursor, False, action=action
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    print_table(items, ["id", "at", "actor", "action", "object_type", "object_id"])
    more_hint(next_cursor, as_json)
