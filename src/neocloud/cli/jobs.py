"""`neocloud jobs ...`: jobs of the shared pools (on-demand, spot, internal).

A client of /v1/jobs: every check (the contract, the shape, the GPU types, who may do what)
is the server's; a refusal exits 2 with the server's reason.
"""

from __future__ import annotations

from typing import Any

import typer

from neocloud.cli.common import (
    JsonOpt,
    api,
    console,
    listing,
    more_hint,
    print_json,
    print_table,
    show,
)

jobs_app = typer.Typer(
    help="Jobs of the shared pools: submit, list, show, cancel, finish, schedule.",
    no_args_is_help=True,
)

COLUMNS: list[Any] = [
    "name",
    "tenant",
    "contract",
    "site",
    "pool",
    ("gpus", lambda j: j["gpus"] if j["gpu_milli"] == 1000 else f"{j['gpu_milli'] / 1000:g}"),
    ("types", lambda j: "|".join(j["gpu_types"]) or "any"),
    "priority",
    "state",
    ("on", lambda j: _nodes(j)),
    "reason",
]
ReasonOpt = typer.Option(None, "--reason", help="why (kept with the job's events)")


def _nodes(job: dict[str, Any]) -> str:
    return ", ".join(dict.fromkeys(g["node"] for g in job["placement"]))


@jobs_app.command("submit")
def submit(
    ctx: typer.Context,
    contract: str = typer.Option(..., "--contract", help="an internal, spot or on-demand contract"),
    gpus: int = typer.Option(1, "--gpus", min=1, help="GPUs, all or nothing"),
    gpu_milli: int = typer.Option(
        1000, "--gpu-milli", min=1, max=1000, help="milli-GPUs per GPU (below 1000: a share)"
    ),
    gpu_type: list[str] = typer.Option(
        [], "--gpu-type", help="an acceptable accelerator (repeat); default: any"
    ),
    priority: int = typer.Option(0, "--priority", help="higher runs first"),
    duration_s: int | None = typer.Option(
        None, "--duration-s", min=1, help="expected run time in seconds (backfill uses it)"
    ),
    name: str | None = typer.Option(None, "--name", help="default: generated"),
    site: str | None = typer.Option(None, "--site", help="when the contract runs at several"),
    as_json: bool = JsonOpt,
) -> None:
    """Queue a job; the next scheduling pass starts it (or it is unplaceable, with why)."""
    body: dict[str, Any] = {
        "contract": contract,
        "gpus": gpus,
        "gpu_milli": gpu_milli,
        "priority": priority,
    }
    for key, value in (
        ("gpu_types", gpu_type or None),
        ("duration_s", duration_s),
        ("name", name),
        ("site", site),
    ):
        if value is not None:
            body[key] = value
    with api(ctx) as client:
        data = client.post("/v1/jobs", body)
    show(data, as_json, COLUMNS)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    contract: str | None = typer.Option(None, "--contract"),
    state: str | None = typer.Option(None, "--state", help="queued, running, finished, ..."),
    site: str | None = typer.Option(None, "--site"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="page size"),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of a previous page"),
    fetch_all: bool = typer.Option(False, "--all", help="fetch every page"),
    as_json: bool = JsonOpt,
) -> None:
    """Jobs, oldest first (a tenant token: its own)."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client, "/v1/jobs", limit, cursor, fetch_all, contract=contract, state=state, site=site
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    print_table(items, COLUMNS)
    more_hint(next_cursor, as_json)


@jobs_app.command("show")
def show_job(ctx: typer.Context, job: str, as_json: bool = JsonOpt) -> None:
    """One job with its events (started, preempted and why, ended)."""
    with api(ctx) as client:
        data = client.get(f"/v1/jobs/{job}")
    if as_json:
        print_json(data)
        return
    print_table([data], COLUMNS)
    print_table(data["events"], ["at", "kind", "reason"], title="events")


@jobs_app.command("cancel")
def cancel(
    ctx: typer.Context, job: str, reason: str | None = ReasonOpt, as_json: bool = JsonOpt
) -> None:
    """Take a queued job out, or stop a running one."""
    with api(ctx) as client:
        data = client.post(f"/v1/jobs/{job}/cancel", {"reason": reason})
    show(data, as_json, COLUMNS)


@jobs_app.command("finish")
def finish(
    ctx: typer.Context, job: str, reason: str | None = ReasonOpt, as_json: bool = JsonOpt
) -> None:
    """A running job ended: its GPUs go to the next pass."""
    with api(ctx) as client:
        data = client.post(f"/v1/jobs/{job}/finish", {"reason": reason})
    show(data, as_json, COLUMNS)


@jobs_app.command("schedule")
def schedule(
    ctx: typer.Context,
    site: str | None = typer.Option(None, "--site", help="only this site's pools"),
    as_json: bool = JsonOpt,
) -> None:
    """Run a scheduling pass now: prints what started, what was preempted and why."""
    with api(ctx) as client:
        data = client.post("/v1/jobs/schedule", {"site": site} if site else {})
    if as_json:
        print_json(data)
        return
    console.print(
        f"{data['policy']}: {len(data['started'])} started, {len(data['preempted'])} "
        f"preempted, {len(data['unplaceable'])} unplaceable, {len(data['cancelled'])} cancelled",
        highlight=False,
    )
    if data["started"]:
        print_table(data["started"], COLUMNS, title="started")
    if data["preempted"]:
        print_table(data["preempted"], ["job", "reason"], title="preempted")
    if data["unplaceable"]:
        print_table(data["unplaceable"], ["name", "contract", "reason"], title="unplaceable")
    if data["cancelled"]:
        print_table(data["cancelled"], ["name", "contract", "reason"], title="cancelled")
