"""`neocloud fleet|sites|nodes|accelerators|deliveries ...`: the fleet inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from neocloud.cli.common import (
    JsonOpt,
    api,
    console,
    err_console,
    fail,
    listing,
    more_hint,
    print_json,
    print_table,
    show,
)

fleet_app = typer.Typer(help="Declarative fleet files.", no_args_is_help=True)
sites_app = typer.Typer(help="Sites: power, lifecycle, topology.", no_args_is_help=True)
nodes_app = typer.Typer(help="Nodes and their states.", no_args_is_help=True)
accelerators_app = typer.Typer(help="The accelerator catalog.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Hardware deliveries still to arrive.", no_args_is_help=True)

LimitOpt = typer.Option(100, "--limit", min=1, max=1000, help="page size")
CursorOpt = typer.Option(None, "--cursor", help="next_cursor of a previous page")
AllOpt = typer.Option(False, "--all", help="fetch every page")


def _print_diff(result: dict[str, Any]) -> None:
    verb = (
        "applied" if result["applied"] else ("would apply" if result["changed"] else "no changes")
    )
    console.print(f"[bold]{verb}[/bold]")
    symbols = {
        "create": "[green]+[/green]",
        "update": "[yellow]~[/yellow]",
        "retire": "[red]-[/red]",
        "cancel": "[red]-[/red]",
    }
    for change in result["changes"]:
        mark = symbols.get(change["op"], "*")
        if change["kind"] == "nodes":
            where = f"{change.get('site', '')}/{change.get('fabric', '')}".strip("/")
            sample = ", ".join(change.get("sample", []))
            console.print(
                f"{mark} {change['op']} {change['count']} nodes ({change.get('gpus', '?')} GPUs) in {where}, e.g. {sample}",
                highlight=False,
            )
        elif change["op"] == "update":
            fields = ", ".join(
                f"{k}: {change['before'].get(k)} -> {v}" for k, v in change["after"].items()
            )
            console.print(
                f"{mark} update {change['kind']} {change['name']}: {fields}", highlight=False
            )
        else:
            console.print(
                f"{mark} {change['op']} {change['kind']} {change['name']}", highlight=False
            )
    counts = {k: v for k, v in result["counts"].items() if v}
    if counts:
        console.print(
            ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()),
            style="dim",
            highlight=False,
        )


@fleet_app.command("apply")
def fleet_apply(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="fleet file (YAML)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print the difference without applying it"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Make the fleet match FILE: applies only the difference, and prints it."""
    text = file.read_text()
    with (
        api(ctx) as client,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as progress,
    ):
        progress.add_task(f"{'planning' if dry_run else 'applying'} {file.name}", total=None)
        result = client.apply_fleet(text, dry_run=dry_run)
    if as_json:
        print_json(result)
    else:
        _print_diff(result)


@sites_app.command("list")
def sites_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Sites with GPUs, power (facility, installed, committed) and state."""
    with api(ctx) as client:
        items = list(client.pages("/v1/sites"))
    show(
        items,
        as_json,
        [
            "name",
            "state",
            "location",
            "gpus",
            "nodes",
            ("power MW", lambda r: r["power_mw"]),
            ("PUE", lambda r: r["pue"]),
            ("installed MW", lambda r: r["installed_power_mw"]),
            ("committed MW", lambda r: r["committed_power_mw"]),
            ("scheduled GPUs", lambda r: r["scheduled_gpus"]),
        ],
    )


@sites_app.command("show")
def sites_show(ctx: typer.Context, site: str, as_json: bool = JsonOpt) -> None:
    """One site, with its fabrics."""
    with api(ctx) as client:
        data = client.get(f"/v1/sites/{site}")
        fabrics = client.get(f"/v1/sites/{site}/fabrics")
    if as_json:
        print_json({**data, "fabrics": fabrics})
        return
    print_table(
        [{"field": k, "value": v} for k, v in data.items()],
        ["field", "value"],
        title=f"site {site}",
    )
    print_table(fabrics, ["name", "blocks", "nodes", "gpus"], title="fabrics")


@sites_app.command("set")
def sites_set(
    ctx: typer.Context,
    site: str,
    state: str | None = typer.Option(None, help="planned, building, live, draining or retired"),
    power_mw: str | None = typer.Option(None, "--power-mw", help="facility power in MW"),
    pue: str | None = typer.Option(None),
    spare_pct: str | None = typer.Option(
        None, "--spare-pct", help="% of each pool's nodes kept as hot spares"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Change a site's lifecycle state, power, PUE or hot-spare share."""
    given = {"state": state, "power_mw": power_mw, "pue": pue, "spare_pct": spare_pct}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        fail("nothing to change: give --state, --power-mw, --pue or --spare-pct")
    with api(ctx) as client:
        data = client.patch(f"/v1/sites/{site}", changes)
    show(data, as_json, ["name", "state", "power_mw", "pue", "spare_pct", "installed_power_mw"])


@nodes_app.command("list")
def nodes_list(
    ctx: typer.Context,
    site: str | None = typer.Option(None),
    fabric: str | None = typer.Option(None),
    block: str | None = typer.Option(None),
    accelerator: str | None = typer.Option(None),
    state: str | None = typer.Option(None),
    limit: int = LimitOpt,
    cursor: str | None = CursorOpt,
    fetch_all: bool = AllOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Nodes, filtered by site, fabric, block, accelerator or state."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client,
            "/v1/nodes",
            limit,
            cursor,
            fetch_all,
            site=site,
            fabric=fabric,
            block=block,
            accelerator=accelerator,
            state=state,
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    print_table(
        items, ["name", "site", "fabric", "block", "accelerator", "gpus", "power_kw", "state"]
    )
    more_hint(next_cursor, as_json)


@nodes_app.command("show")
def nodes_show(ctx: typer.Context, node: str, as_json: bool = JsonOpt) -> None:
    with api(ctx) as client:
        data = client.get(f"/v1/nodes/{node}")
    show(
        data,
        as_json,
        ["name", "site", "fabric", "block", "accelerator", "gpus", "power_kw", "state"],
    )


@nodes_app.command("set-state")
def nodes_set_state(
    ctx: typer.Context,
    node: str,
    state: str,
    reason: str | None = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    """Move a node to another state (burn-in, available, draining, failed, repair)."""
    with api(ctx) as client:
        data = client.patch(f"/v1/nodes/{node}", {"state": state, "reason": reason})
    show(data, as_json, ["name", "state"])


@accelerators_app.command("list")
def accelerators_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    with api(ctx) as client:
        items = list(client.pages("/v1/accelerators"))
    show(items, as_json, ["name", "vendor", "memory_gb", "tdp_w", "bf16_tflops", "builtin"])


@accelerators_app.command("add")
def accelerators_add(
    ctx: typer.Context,
    name: str,
    vendor: str = typer.Option(...),
    memory_gb: str = typer.Option(..., "--memory-gb"),
    tdp_w: int = typer.Option(..., "--tdp-w"),
    bf16_tflops: str = typer.Option(..., "--bf16-tflops"),
    as_json: bool = JsonOpt,
) -> None:
    """Add a custom chip to the catalog."""
    with api(ctx) as client:
        data = client.post(
            "/v1/accelerators",
            {
                "name": name,
                "vendor": vendor,
                "memory_gb": memory_gb,
                "tdp_w": tdp_w,
                "bf16_tflops": bf16_tflops,
            },
        )
    show(data, as_json, ["name", "vendor", "memory_gb", "tdp_w", "bf16_tflops"])


@deliveries_app.command("list")
def deliveries_list(
    ctx: typer.Context,
    site: str | None = typer.Option(None),
    state: str | None = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    with api(ctx) as client:
        items = list(client.pages("/v1/deliveries", site=site, state=state))
    show(
        items,
        as_json,
        [
            "name",
            "site",
            "fabric",
            "accelerator",
            "nodes",
            "gpus",
            "expected_on",
            "state",
            "supplier",
        ],
    )


@deliveries_app.command("slip")
def deliveries_slip(
    ctx: typer.Context,
    delivery: str,
    expected_on: str = typer.Option(..., "--to", help="new expected date, YYYY-MM-DD"),
    as_json: bool = JsonOpt,
) -> None:
    """Record that a delivery will arrive later (or earlier) than promised."""
    with api(ctx) as client:
        data = client.patch(f"/v1/deliveries/{delivery}", {"expected_on": expected_on})
    show(data, as_json, ["name", "site", "gpus", "expected_on", "state"])
