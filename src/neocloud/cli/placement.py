"""`neocloud placement ...`, `neocloud nodes fail|repair`, `neocloud contracts allocation`."""

from __future__ import annotations

from typing import Any

import typer

from neocloud.cli.common import JsonOpt, api, console, more_hint, print_json, print_table, show

placement_app = typer.Typer(
    help="Which nodes hold which contract: reconcile, degraded contracts.", no_args_is_help=True
)

CHANGE_COLUMNS = ["node", "before", "after", "reason"]
SHORT_COLUMNS = ["contract", "tenant", "since", "contracted_gpus", "usable_gpus", "shortfall_gpus"]


def _print_site(site: dict[str, Any]) -> None:
    changes = site["changes"]
    console.print(f"[bold]{site['site']}[/bold]: {len(changes)} change(s)", highlight=False)
    if changes:
        print_table(changes, CHANGE_COLUMNS)
    if site.get("spot"):
        print_table(site["spot"], ["node", "contract", "action", "reason"], title="spot")
    if site["short"]:
        print_table(site["short"], [*SHORT_COLUMNS, "reason"], title="short of GPUs")


@placement_app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    site: str | None = typer.Option(None, help="only this site"),
    as_json: bool = JsonOpt,
) -> None:
    """Give contracts in force their nodes, take back ended ones', heal failed nodes."""
    with api(ctx) as client:
        data = client.post("/v1/placement/reconcile", {"site": site} if site else {})
    if as_json:
        print_json(data)
        return
    for s in data["sites"]:
        _print_site(s)


@placement_app.command("degraded")
def degraded(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Contracts short of the GPUs they bought, since when and why."""
    with api(ctx) as client:
        data = client.get("/v1/placement/degraded")
    show(data, as_json, [*SHORT_COLUMNS, "reason"])


@placement_app.command("preemptions")
def preemptions(
    ctx: typer.Context,
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Spot leases ended because their capacity was taken back, newest first."""
    with api(ctx) as client:
        data = client.get("/v1/placement/preemptions", limit=limit)
    show(
        data,
        as_json,
        ["contract", "tenant", "node", ("lent", _lent_by), "notice_at", "ended_at", "reason"],
    )


def _lent_by(row: dict[str, Any]) -> str | None:
    """A lease on an idle node lent by a lendable contract (whose name a tenant may not see)."""
    if not row.get("lent"):
        return None
    return f"lent by {row['lent_by']}" if row.get("lent_by") else "lent"


def site_drain(
    ctx: typer.Context,
    site: str,
    to: list[str] = typer.Option(
        [], "--to", help="a target site (repeat, in order of preference); default: all others"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="only print the plan"),
    as_json: bool = JsonOpt,
) -> None:
    """Move every contract on SITE elsewhere, one at a time (each checked like a booking),
    then mark the site draining; prints what moves where, from when, and what cannot."""
    with api(ctx) as client:
        data = client.post(f"/v1/sites/{site}/drain", {"to": to or None, "dry_run": dry_run})
    if as_json:
        print_json(data)
        return
    verb = "would move" if data["dry_run"] else "moved"
    moved = [s for s in data["steps"] if s["moved"]]
    stuck = [s for s in data["steps"] if not s["moved"]]
    console.print(
        f"[bold]{data['site']}[/bold]: {len(moved)} contract(s) {verb}, {len(stuck)} cannot move",
        highlight=False,
    )
    if moved:
        print_table(moved, ["contract", "tenant", "type", "gpus", "to", "effective"], title=verb)
    if stuck:
        print_table(stuck, ["contract", "tenant", "type", "gpus", "reason"], title="cannot move")
    for s in data["placement"]:
        _print_site(s)


def node_fail(
    ctx: typer.Context,
    node: str,
    reason: str | None = typer.Option(None, help="what happened (kept in the audit log)"),
    as_json: bool = JsonOpt,
) -> None:
    """Mark a node failed: what it held is healed from spares or free nodes of its pool."""
    with api(ctx) as client:
        data = client.post(f"/v1/nodes/{node}/fail", {"reason": reason})
    if as_json:
        print_json(data)
        return
    console.print(f"{data['node']}: {data['state']}", highlight=False)
    _print_site(data["site"])


def node_repair(
    ctx: typer.Context,
    node: str,
    reason: str | None = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    """A failed node is back in service: it returns to the pool."""
    with api(ctx) as client:
        data = client.post(f"/v1/nodes/{node}/repair", {"reason": reason})
    if as_json:
        print_json(data)
        return
    console.print(f"{data['node']}: {data['state']}", highlight=False)
    _print_site(data["site"])


def contract_allocation(
    ctx: typer.Context,
    contract: str,
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="nodes per page"),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of a previous page"),
    fetch_all: bool = typer.Option(False, "--all", help="every node"),
    as_json: bool = JsonOpt,
) -> None:
    """The nodes a contract holds now, and its contracted vs usable GPUs."""
    path = f"/v1/contracts/{contract}/allocation"
    with api(ctx) as client:
        data = client.get(path, limit=limit, cursor=cursor)
        while fetch_all and data["next_cursor"]:
            more = client.get(path, limit=limit, cursor=data["next_cursor"])
            data = {**more, "nodes": data["nodes"] + more["nodes"]}
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{data['contract']}[/bold] ({data['tenant']}, {data['state']}): "
        f"contracted {data['contracted_gpus']} GPUs, allocated {data['allocated_gpus']}, "
        f"usable {data['usable_gpus']}"
        + (
            f", [red]short {data['shortfall_gpus']} since {data['degraded_since']}[/red]"
            if data["degraded_since"]
            else ""
        ),
        highlight=False,
    )
    columns: list[Any] = ["name", "site", "fabric", "block", "gpus", "state", "since", "reason"]
    if any(n.get("lent") for n in data["nodes"]):  # lent to spot, or borrowed from an owner
        columns.append(("lent", lambda n: "lent" if n.get("lent") else None))
    if any(n.get("until") for n in data["nodes"]):  # spot leases on notice
        columns.append("until")
    print_table(data["nodes"], columns)
    more_hint(data["next_cursor"], as_json)


def contract_availability(
    ctx: typer.Context,
    contract: str,
    start: str | None = typer.Option(None, help="first hour (ISO 8601, on the hour)"),
    end: str | None = typer.Option(None, help="end hour (default: the end of this hour)"),
    as_json: bool = JsonOpt,
) -> None:
    """Hourly availability of a contract (usable / contracted GPUs): what SLA credits read."""
    with api(ctx) as client:
        data = client.get(f"/v1/contracts/{contract}/availability", start=start, end=end)
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{data['contract']}[/bold]: availability {data['availability']} "
        f"from {data['start']} to {data['end']}",
        highlight=False,
    )
    print_table(
        [h for h in data["hours"] if h["contracted_gpus"]],
        ["start", "contracted_gpus", "lost_gpu_seconds", "availability"],
    )
