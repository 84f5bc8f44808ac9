"""`neocloud engines ...`: which engine manages each fabric, its drift, reconcile now.

`engines_app` is the one Typer group of every engine command. An engine's own subcommands
register into it from `cli/main.py` (for example
`engines_app.add_typer(kueue_app, name="kueue")`); commands common to every engine
(`status`, `reconcile`, `set`, `unset`, `manual`) live here.
"""

from __future__ import annotations

from typing import Any

import typer
import yaml

from neocloud.cli.common import JsonOpt, api, console, fail, print_json, print_table

engines_app = typer.Typer(
    help="Engines (Slurm, Kueue): carry contracts onto the clusters, read back what ran.",
    no_args_is_help=True,
)

STATUS_COLUMNS: list[Any] = [
    ("fabric", lambda r: f"{r['site']}/{r['fabric']}"),
    "engine",
    ("state", lambda r: "stale" if r["stale"] else "ok"),
    "last_success_at",
    "failures",
    "next_attempt_at",
    ("drift", lambda r: len(r["drift"])),
    ("marks", lambda r: len(r["marks"])),
    "error",
]
ACTION_COLUMNS = ["detail", "error"]


def _fabric_path(site: str, fabric: str) -> str:
    return f"/v1/engines/fabrics/{site}/{fabric}"


@engines_app.command("status")
def status(
    ctx: typer.Context,
    site: str | None = typer.Option(None, "--site", help="with --fabric: one fabric in detail"),
    fabric: str | None = typer.Option(None, "--fabric"),
    as_json: bool = JsonOpt,
) -> None:
    """Each managed fabric: its engine, whether what neocloud knows of it is stale, and the
    drift the last reconcile left (on objects marked manual, or refused by the engine)."""
    if (site is None) != (fabric is None):
        fail("give both --site and --fabric, or neither")
    with api(ctx) as client:
        if site is not None and fabric is not None:
            one = client.get(_fabric_path(site, fabric))
            if as_json:
                print_json(one)
                return
            _print_fabric(one)
            return
        rows = list(client.pages("/v1/engines/fabrics"))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no fabric has an engine (neocloud engines set SITE FABRIC slurm ...)")
        return
    print_table(rows, STATUS_COLUMNS)
    for row in rows:
        if row["drift"]:
            print_table(
                row["drift"], ACTION_COLUMNS, title=f"drift on {row['site']}/{row['fabric']}"
            )


def _print_fabric(one: dict[str, Any]) -> None:
    print_table([one], STATUS_COLUMNS)
    if one["drift"]:
        print_table(one["drift"], ACTION_COLUMNS, title="drift")
    if one["changes"]:
        print_table(one["changes"], ["detail"], title="changed by the last reconcile")
    if one["marks"]:
        print_table(
            one["marks"], ["kind", "name", "note", "created_by", "created_at"], title="manual"
        )


@engines_app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    site: str | None = typer.Option(None, "--site", help="only this site's fabrics"),
    fabric: str | None = typer.Option(None, "--fabric", help="only this fabric (with --site)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would change"),
    as_json: bool = JsonOpt,
) -> None:
    """Bring the engines in step now: health back, drift corrected, usage read. Exits 1 when
    an engine did not answer (its fabric is then stale)."""
    body: dict[str, Any] = {"dry_run": dry_run}
    if site:
        body["site"] = site
    if fabric:
        body["fabric"] = fabric
    with api(ctx) as client:
        data = client.post("/v1/engines/reconcile", body)
    if as_json:
        print_json(data)
    else:
        for item in data["items"]:
            _print_reconcile(item, dry_run)
    if any(not i["ok"] for i in data["items"]):
        raise typer.Exit(1)


def _print_reconcile(item: dict[str, Any], dry_run: bool) -> None:
    name = f"{item['site']}/{item['fabric']} ({item['engine']})"
    if not item["ok"]:
        why = item.get("skipped") or item.get("error") or "failed"
        console.print(f"[bold]{name}[/bold]: [red]not reconciled[/red]: {why}", highlight=False)
        return
    verb = "would change" if dry_run else "changed"
    console.print(f"[bold]{name}[/bold]: {len(item['changes'])} {verb}", highlight=False)
    if item["changes"]:
        print_table(item["changes"], ["detail"])
    if item["drift"]:
        print_table(item["drift"], ACTION_COLUMNS, title="drift left")
    if item["health"]:
        print_table(item["health"], ["node", "op", "reason"], title="node health")
    usage = item.get("usage")
    if usage:
        console.print(
            f"usage: {usage['runs']} job run(s), {usage['accepted']} new event(s), "
            f"{usage['duplicates']} already counted, {usage['rejected']} rejected",
            highlight=False,
        )


def _options(pairs: list[str], users: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--option wants KEY=VALUE, got '{pair}'")
        out[key] = yaml.safe_load(value) if value else ""
    for pair in users:
        tenant, sep, user = pair.partition("=")
        if not sep or not tenant or not user:
            fail(f"--user wants TENANT=UNIXUSER, got '{pair}'")
        out.setdefault("users", {}).setdefault(tenant, []).append(user)
    return out


@engines_app.command("set")
def set_engine(
    ctx: typer.Context,
    site: str,
    fabric: str,
    engine: str = typer.Argument(..., help="e.g. slurm"),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="KEY=VALUE (Slurm: cluster, conf, bin_dir, prefix, timeout_s)"
    ),
    user: list[str] = typer.Option(
        [], "--user", help="TENANT=UNIXUSER who submits under the tenant's account (repeat)"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Give a fabric's nodes to an engine (or change its settings)."""
    body = {"engine": engine, "options": _options(option, user)}
    with api(ctx) as client:
        data = client.request("PUT", _fabric_path(site, fabric), json=body)
    if as_json:
        print_json(data)
        return
    _print_fabric(data)


@engines_app.command("unset")
def unset_engine(ctx: typer.Context, site: str, fabric: str) -> None:
    """No engine manages the fabric any more (what is on the engine stays as it is)."""
    with api(ctx) as client:
        client.delete(_fabric_path(site, fabric))
    console.print(f"{site}/{fabric}: no engine", highlight=False)


@engines_app.command("manual")
def manual(
    ctx: typer.Context,
    site: str,
    fabric: str,
    kind: str = typer.Argument(..., help="reservation, partition, qos, account or drain"),
    name: str = typer.Argument(..., help="the object's name on the engine"),
    note: str | None = typer.Option(None, "--note", help="why it is managed by hand"),
    off: bool = typer.Option(False, "--off", help="neocloud manages it again"),
) -> None:
    """Mark an engine object as managed by hand: reconcile reports its drift and never
    changes it (`--off` undoes it)."""
    path = f"{_fabric_path(site, fabric)}/manual/{kind}/{name}"
    with api(ctx) as client:
        if off:
            client.delete(path)
            console.print(f"{kind}/{name}: managed by neocloud again", highlight=False)
            return
        client.request("PUT", path, json={"note": note})
    console.print(
        f"{kind}/{name}: managed by hand (drift reported, never changed)", highlight=False
    )
