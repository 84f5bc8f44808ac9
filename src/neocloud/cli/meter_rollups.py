"""`neocloud meter rollups|close|rebuild`: the hourly rollups per contract x site x
accelerator (registered on `meter` in cli/main.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from neocloud.cli.common import JsonOpt, api, listing, more_hint, print_json, show

COLUMNS: Sequence[str | tuple[str, Callable[[dict[str, Any]], Any]]] = [
    "start",
    "contract",
    "site",
    "accelerator",
    "allocated_gpu_hours",
    "used_gpu_hours",
    "billable_gpu_hours",
    ("excluded", lambda r: ", ".join(f"{k} {v}" for k, v in r["excluded_gpu_hours"].items())),
    "energy_kwh",
    ("closed", lambda r: "yes" if r["closed"] else "no"),
]


def rollups(
    ctx: typer.Context,
    contract: str | None = typer.Option(None, "--contract"),
    site: str | None = typer.Option(None, "--site"),
    start: str | None = typer.Option(None, "--start", help="ISO time with offset"),
    end: str | None = typer.Option(None, "--end", help="ISO time with offset"),
    step: str = typer.Option("hour", "--step", help="hour or day"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="page size"),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of a previous page"),
    fetch_all: bool = typer.Option(False, "--all", help="fetch every page"),
    as_json: bool = JsonOpt,
) -> None:
    """Allocated, used, billable and excluded GPU-hours and energy per contract, site,
    accelerator and hour (or day); default: the last 24 hours."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client,
            "/v1/usage/rollups",
            limit,
            cursor,
            fetch_all,
            contract=contract,
            site=site,
            start=start,
            end=end,
            step=step,
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    show(items, False, COLUMNS)
    more_hint(next_cursor, as_json)


def close(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Close the hours that are due now (the API does so every minute by itself)."""
    with api(ctx) as client:
        data = client.post("/v1/usage/rollups/close")
    if as_json:
        print_json(data)
        return
    hours = data["hours_closed"]
    print(f"closed {len(hours)} hour(s)" + (f": {hours[0]} .. {hours[-1]}" if hours else ""))


def rebuild(
    ctx: typer.Context,
    start: str = typer.Option(..., "--start", help="a whole hour, ISO with offset"),
    end: str = typer.Option(..., "--end", help="a whole hour, ISO with offset"),
    as_json: bool = JsonOpt,
) -> None:
    """Work a range of hours out again from the ledgers and placement's record (usage:adjust)."""
    with api(ctx) as client:
        data = client.post("/v1/usage/rollups/rebuild", json={"start": start, "end": end})
    if as_json:
        print_json(data)
        return
    print(
        f"rebuilt {data['rows']} row(s) of {data['start']} .. {data['end']}; closed {data['hours_closed']} hour(s)"
    )
