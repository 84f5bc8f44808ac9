"""`neocloud capacity show|conflicts`, `neocloud quote`, `neocloud quotes show`: what is free
and what a request would get, read through the API (a quote holds nothing).

Also how the CLI reads times and prints times and money, shared with `neocloud contracts`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from neocloud.capacity.planner import Unit
from neocloud.capacity.schemas import Step
from neocloud.cli.common import JsonOpt, api, console, fail, print_json, print_table
from neocloud.contracts.models import ContractType

capacity_app = typer.Typer(
    help="The capacity calendar: supply, committed and free GPUs over time.",
    no_args_is_help=True,
)
quotes_app = typer.Typer(help="Stored quotes.", no_args_is_help=True)
DEFAULT_DAYS = 30
PRICE_UNIT = {"per-gpu-hour": "GPU-h", "monthly-fee": "month", "per-mw-month": "MW-month"}
SiteOpt = typer.Option(None, "--site", help="a site; repeat for several")


def when(value: str | None, flag: str) -> str | None:
    """A date (`YYYY-MM-DD`, midnight UTC) or ISO datetime (naive = UTC) as ISO 8601 UTC.

    Checked here so that a typo is refused before anything is sent, naming the flag.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{flag}: '{value}' is not a date (YYYY-MM-DD) or an ISO 8601 datetime")
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.isoformat().replace("+00:00", "Z")


def moment(value: str | None) -> str:
    """An API timestamp as `YYYY-MM-DD HH:MM` (UTC), short enough for a table cell."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def amount(value: Any, currency: str = "") -> str:
    """Money with thousands separators (`475,352.64 USD`)."""
    try:
        return f"{Decimal(str(value)):,.2f} {currency}".strip()
    except InvalidOperation:
        return str(value)


def given(body: dict[str, Any]) -> dict[str, Any]:
    """Only what the user gave: the server fills the rest (and a quote's option stays intact)."""
    return {k: v for k, v in body.items() if v is not None and v is not False}


def site_fields(sites: list[str] | None) -> dict[str, Any]:
    if not sites:
        return {}
    return {"site": sites[0]} if len(sites) == 1 else {"sites": sites}


def price(row: dict[str, Any]) -> str:
    """`3.3915 USD/GPU-h`: the price in its model's unit, without the database's padding."""
    unit = PRICE_UNIT.get(row["price_model"], row["price_model"])
    try:
        value = format(Decimal(str(row["price"])).normalize(), "f")
    except InvalidOperation:
        value = str(row["price"])
    return f"{value} {row['currency']}/{unit}"


@capacity_app.command("show")
def capacity_show(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--start", help="from; default: today (UTC)"),
    end: str | None = typer.Option(None, "--end", help=f"until; default: {DEFAULT_DAYS} days on"),
    step: Step = typer.Option(Step.DAY, "--step", help="bucket size"),
    site: str | None = typer.Option(None, "--site"),
    accelerator: str | None = typer.Option(None, "--accelerator"),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="print the server's CSV (for spreadsheets)"),
) -> None:
    """Supply, committed and free GPUs per pool (site x accelerator x fabric) per step.

    Per bucket: the least supply, the most committed and the least free in it."""
    if as_json and as_csv:
        fail("give --json or --csv, not both")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    frm = when(start, "--start") or today.isoformat().replace("+00:00", "Z")
    until = when(end, "--end") or (
        datetime.fromisoformat(frm) + timedelta(days=DEFAULT_DAYS)
    ).isoformat().replace("+00:00", "Z")
    params = {
        "start": frm,
        "end": until,
        "step": step.value,
        "site": site,
        "accelerator": accelerator,
    }
    with api(ctx) as client:
        if as_csv:
            typer.echo(client.get_text("/v1/capacity", format="csv", **params), nl=False)
            return
        data = client.get("/v1/capacity", **params)
    if as_json:
        print_json(data)
        return
    pools = sorted(data["pools"], key=lambda p: (p["site"], p["accelerator"], p["fabric"]))
    rows = [
        {**{k: p[k] for k in ("site", "accelerator", "fabric")}, **bucket}
        for p in pools
        for bucket in p["series"]
    ]
    print_table(
        rows,
        [
            "site",
            "accelerator",
            "fabric",
            ("from", lambda r: moment(r["start"])),
            ("to", lambda r: moment(r["end"])),
            "supply",
            "committed",
            ("free", lambda r: r["free"] if r["free"] > 0 else f"[red]{r['free']}[/red]"),
        ],
        title=f"capacity by {step.value}, {moment(data['start'])} to {moment(data['end'])} UTC",
    )


@capacity_app.command("conflicts")
def capacity_conflicts(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--start", help="from; default: now"),
    end: str | None = typer.Option(None, "--end", help="until; default: the end of time"),
    as_json: bool = JsonOpt,
) -> None:
    """Where supply no longer covers commitments: which contracts are short, by how much,
    from when. Nothing is dropped or shrunk; this is the list to act on."""
    with api(ctx) as client:
        items = client.get(
            "/v1/capacity/conflicts", start=when(start, "--start"), end=when(end, "--end")
        )
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("no conflicts: every commitment is covered")
        return
    print_table(
        items,
        [
            "kind",
            "site",
            ("pool", lambda r: "/".join(x for x in (r["accelerator"], r["fabric"]) if x)),
            ("from", lambda r: moment(r["start"])),
            ("to", lambda r: moment(r["end"])),
            ("amount", lambda r: f"{r['amount']} {r['unit']}"),
            (
                "short",
                lambda r: ", ".join(
                    f"{c['contract']} ({c['tenant']}): {c['short_gpus']}" for c in r["contracts"]
                ),
            ),
            "detail",
        ],
        title="conflicts",
    )


# --- quotes ----------------------------------------------------------------------------------


def _asked(q: dict[str, Any]) -> str:
    req = q["request"]
    acc = req.get("accelerator") or ""
    if req.get("gpus"):
        what = f"{req['gpus']} {acc} GPUs"
    elif req.get("mw"):
        what = f"{req['mw']} MW of {acc}"
    else:
        what = "the whole site" if q["type"] == "dedicated-site" else f"{acc} capacity"
    term = next(
        (f"{req[k]} {k}" for k in ("months", "days", "hours") if req.get(k)), "no fixed term"
    )
    return f"quote {q['id']} for {q['tenant'] or '-'}: {q['type']}, {what}, {term}"


def _print_quote(q: dict[str, Any]) -> None:
    options = q["options"]
    console.print(
        f"[bold]{_asked(q)}[/bold] (valid until {moment(q['expires_at'])} UTC)", highlight=False
    )
    if options:
        print_table(
            options,
            [
                ("option", lambda r: r["option"]),
                "site",
                ("start", lambda r: moment(r["start"])),
                ("end", lambda r: moment(r["end"])),
                ("GPUs", lambda r: r["gpus"]),
                ("MW", lambda r: r["mw"]),
                ("price", price),
                ("contract value", lambda r: amount(r["contract_value"], r["currency"])),
                ("pools", lambda r: ", ".join(f"{p['fabric']}:{p['gpus']}" for p in r["pools"])),
            ],
        )
        for o in options:
            console.print(f"option {o['option']} ({o['site']}):", highlight=False)
            for use in o["uses"]:
                console.print(f"  - {use['detail']}", highlight=False)
            for m in o.get("relocations") or []:
                console.print(
                    f"  - moves {m['contract']} ({m['gpus']} GPUs) from {m['from_site']} to "
                    f"{m['to_site']}, {moment(m['start'])} to {moment(m['end'])}",
                    highlight=False,
                )
        console.print(
            f"book it: neocloud contracts book --quote {q['id']} --option N", highlight=False
        )
    gone = q.get("unavailable")
    if gone:
        console.print(f"[yellow]unavailable:[/yellow] {gone['detail']}", highlight=False)
        if gone["earliest_start"]:
            console.print(
                f"earliest start that fits: {moment(gone['earliest_start'])} UTC at "
                f"{gone['earliest_site']} (quote again with --start-after)",
                highlight=False,
            )
        if gone["missing"]:
            whole = q["type"] == "dedicated-site"  # a site is sold whole or not at all
            columns = ["site", "reason"] if whole else ["site", "possible", "missing", "reason"]
            print_table(gone["missing"], columns, "what is missing")


def quote(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="default: the token's tenant"),
    kind: ContractType = typer.Option(ContractType.RESERVED, "--type"),
    accelerator: str | None = typer.Option(None, "--accelerator", help="e.g. H100, GB200"),
    gpus: int | None = typer.Option(None, "--gpus", min=1),
    mw: str | None = typer.Option(None, "--mw", help="facility MW instead of GPUs"),
    sites: list[str] | None = SiteOpt,
    start_after: str | None = typer.Option(None, "--start-after", help="earliest start"),
    start_before: str | None = typer.Option(
        None, "--start-before", help="latest start (default: 90 days after the earliest)"
    ),
    months: int | None = typer.Option(None, "--months", min=1, help="730 hours each"),
    days: int | None = typer.Option(None, "--days", min=1),
    hours: int | None = typer.Option(None, "--hours", min=1),
    same_fabric: bool = typer.Option(False, "--same-fabric", help="all in one fabric"),
    unit: Unit = typer.Option(Unit.GPU, "--unit", help="whole GPUs, 8-GPU nodes or blocks"),
    max_options: int | None = typer.Option(None, "--max-options", min=1, max=20),
    as_json: bool = JsonOpt,
) -> None:
    """Ranked options for a request (site, start, price, what each uses up), or the earliest
    start that fits and what is missing. Nothing is held until it is booked."""
    if gpus is not None and mw is not None:
        fail("give --gpus or --mw, not both")
    body = given(
        {
            "tenant": tenant,
            "type": kind.value,
            "accelerator": accelerator,
            "gpus": gpus,
            "mw": mw,
            **site_fields(sites),
            "start_after": when(start_after, "--start-after"),
            "start_before": when(start_before, "--start-before"),
            "months": months,
            "days": days,
            "hours": hours,
            "same_fabric": same_fabric,
            "unit": unit.value,
            "max_options": max_options,
        }
    )
    with api(ctx) as client:
        data = client.post("/v1/quotes", body)
    if as_json:
        print_json(data)
    else:
        _print_quote(data)


@quotes_app.command("show")
def quotes_show(ctx: typer.Context, quote_id: int, as_json: bool = JsonOpt) -> None:
    """A stored quote and its options (to book one: contracts book --quote ID)."""
    with api(ctx) as client:
        data = client.get(f"/v1/quotes/{quote_id}")
    if as_json:
        print_json(data)
    else:
        _print_quote(data)
