"""What every CLI command shares: where the API is, how to print, how to fail."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from neocloud.client.http import DEFAULT_URL, ApiError, Client

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

CONFIG_PATH = Path(
    os.environ.get("NEOCLOUD_CONFIG", Path.home() / ".config" / "neocloud" / "config.toml")
)
JsonOpt = typer.Option(False, "--json", help="print JSON instead of a table")


@dataclass
class ClientSettings:
    url: str | None = None
    token: str | None = None

    def resolve(self) -> tuple[str, str | None]:
        """Flags win over NEOCLOUD_URL / NEOCLOUD_TOKEN, which win over the config file."""
        file: dict[str, Any] = {}
        if CONFIG_PATH.exists():
            try:
                file = tomllib.loads(CONFIG_PATH.read_text())
            except tomllib.TOMLDecodeError as exc:
                fail(f"config file {CONFIG_PATH} is not valid TOML: {exc}")
        url = self.url or os.environ.get("NEOCLOUD_URL") or file.get("url") or DEFAULT_URL
        token = self.token or os.environ.get("NEOCLOUD_TOKEN") or file.get("token")
        return url, token


def settings(ctx: typer.Context) -> ClientSettings:
    root = ctx.find_root()
    if not isinstance(root.obj, ClientSettings):
        root.obj = ClientSettings()
    return root.obj


@contextmanager
def api(ctx: typer.Context) -> Iterator[Client]:
    url, token = settings(ctx).resolve()
    client = Client(url, token)
    try:
        yield client
    except ApiError as exc:
        fail(
            exc.detail if exc.status == 0 else f"{exc.status}: {exc.detail}",
            code=2 if 400 <= exc.status < 500 else 1,
        )
    finally:
        client.close()


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_plain))


def _field(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(key)


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str | tuple[str, Callable[[dict[str, Any]], Any]]],
    title: str | None = None,
) -> None:
    table = Table(title=title, header_style="bold")
    getters = [col if isinstance(col, tuple) else (col, _field(col)) for col in columns]
    for name, _ in getters:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in getters))
    console.print(table)


def show(
    data: Any,
    as_json: bool,
    columns: Sequence[str | tuple[str, Callable[[dict[str, Any]], Any]]],
    title: str | None = None,
) -> None:
    """Print a list (or one object) as a table, or as JSON with --json."""
    if as_json:
        print_json(data)
        return
    rows = data if isinstance(data, list) else [data]
    print_table(rows, columns, title)


def listing(
    client: Client, path: str, limit: int, cursor: str | None, fetch_all: bool, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    if fetch_all:
        return list(client.pages(path, **params)), None
    page = client.get(path, limit=limit, cursor=cursor, **params)
    return page["items"], page.get("next_cursor")


def more_hint(next_cursor: str | None, as_json: bool) -> None:
    if next_cursor and not as_json:
        err_console.print(f"[dim]more: --cursor {next_cursor}  (or --all)[/dim]")
