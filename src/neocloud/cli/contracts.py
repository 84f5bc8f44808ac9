"""`neocloud contracts ...`: book (from a quote or directly), amend, cancel, read history.

A client of /v1/contracts: every check (capacity, power, floors, who may do
what) is the server's; a refusal exits 2 with the server's reason.
"""

from __future__ import annotations

from typing import Any

import typer

from neocloud.capacity.planner import Unit
from neocloud.cli.capacity import SiteOpt, amount, given, moment, price, site_fields, when
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
from neocloud.contracts.models import ContractState, ContractType, PriceModel
from neocloud.contracts.schemas import SlaTier

contracts_app = typer.Typer(
    help="Contracts: book, amend, cancel, and read their history.", no_args_is_help=True
)

ReasonOpt = typer.Option(None, "--reason", help="why (kept in the history)")
EffectiveOpt = typer.Option(None, "--effective", help="from when; default: now (or the start)")
PriceOpt = typer.Option(None, "--price", help="the price in the price model's unit")
PriceModelOpt = typer.Option(None, "--price-model", help="default: the type's usual model")
CommitmentOpt = typer.Option(None, "--commitment", help="committed spend over the term")
PrepaymentOpt = typer.Option(None, "--prepayment-pct", help="0 to 100")
SlaOpt = typer.Option(None, "--sla-tier", help="availability target and credit ladder")
LendableOpt = typer.Option(False, "--lendable", help="idle capacity may be resold as spot")
NotesOpt = typer.Option(None, "--notes")
FloorGpusOpt = typer.Option(None, "--floor-gpus", min=1, help="internal: GPUs sales cannot take")
FloorShareOpt = typer.Option(
    None, "--floor-share", help="internal: share (0-1] of the site's GPUs sales cannot take"
)
NoRelocateOpt = typer.Option(
    False, "--no-relocate", help="dedicated-site: refuse rather than move internal work away"
)
DraftOpt = typer.Option(
    False, "--draft", help="record it as quoted, holding nothing (book later: book-draft)"
)


def _floors(gpus: int | None, share: str | None) -> list[dict[str, Any]] | None:
    if gpus is not None and share is not None:
        fail("give --floor-gpus or --floor-share, not both")
    if gpus is not None:
        return [{"gpus": gpus}]
    return [{"share": share}] if share is not None else None


CONTRACT_COLUMNS: list[Any] = [
    "name",
    "tenant",
    "type",
    "state",
    "accelerator",
    ("GPUs", lambda r: r["gpus"]),
    ("MW", lambda r: r["mw"]),
    ("site", lambda r: r["site"] or ", ".join(r["sites"] or [])),
    ("start", lambda r: moment(r["start"])),
    ("end", lambda r: moment(r["end"])),
    ("price", price),
    ("value", lambda r: amount(r["contract_value"], r["currency"])),
]
CLAIM_COLUMNS: list[Any] = [
    "site",
    "accelerator",
    "fabric",
    ("GPUs", lambda r: r["gpus"]),
    ("from", lambda r: moment(r["start"])),
    ("to", lambda r: moment(r["end"])),
    ("exclusive", lambda r: "yes" if r["exclusive"] else ""),
]
FLOOR_COLUMNS: list[Any] = [
    "site",
    "accelerator",
    ("GPUs", lambda r: r["gpus"]),
    "share",
    ("from", lambda r: moment(r["start"])),
    ("to", lambda r: moment(r["end"])),
]


def _done(verb: str, data: dict[str, Any], as_json: bool) -> None:
    """What a write did: the contract as it now stands, with where its capacity is held."""
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{verb}[/bold] {data['name']} ({data['state']}, revision {data['revision']})",
        highlight=False,
    )
    print_table([data], CONTRACT_COLUMNS)
    if data["claims"]:
        print_table(data["claims"], CLAIM_COLUMNS, title="held capacity")
    if data["floors"]:
        print_table(data["floors"], FLOOR_COLUMNS, title="internal floors")


# --- reading contracts -----------------------------------------------------------------------


@contracts_app.command("list")
def contracts_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant"),
    kind: ContractType | None = typer.Option(None, "--type"),
    state: ContractState | None = typer.Option(
        None, "--state", help="active = in its term, booked = not started yet"
    ),
    site: str | None = typer.Option(None, "--site"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="page size"),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of a previous page"),
    fetch_all: bool = typer.Option(False, "--all", help="fetch every page"),
    as_json: bool = JsonOpt,
) -> None:
    """Contracts, oldest first; tenant tokens see only their own."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client,
            "/v1/contracts",
            limit,
            cursor,
            fetch_all,
            tenant=tenant,
            type=kind.value if kind else None,
            state=state.value if state else None,
            site=site,
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    print_table(items, CONTRACT_COLUMNS)
    more_hint(next_cursor, as_json)


@contracts_app.command("show")
def contracts_show(ctx: typer.Context, name: str, as_json: bool = JsonOpt) -> None:
    """One contract: its terms, the capacity it holds (claims) and its internal floors."""
    with api(ctx) as client:
        data = client.get(f"/v1/contracts/{name}")
    if as_json:
        print_json(data)
        return
    fields = [
        {"field": k, "value": v} for k, v in data.items() if k not in ("claims", "floors", "sites")
    ]
    print_table(fields, ["field", "value"], title=f"contract {name}")
    print_table(data["claims"], CLAIM_COLUMNS, title="held capacity")
    if data["floors"]:
        print_table(data["floors"], FLOOR_COLUMNS, title="internal floors")


@contracts_app.command("history")
def contracts_history(ctx: typer.Context, name: str, as_json: bool = JsonOpt) -> None:
    """Every revision: booking, amendments, relocations, cancellation, with who and why."""
    with api(ctx) as client:
        items = client.get(f"/v1/contracts/{name}/history")
    snap = "snapshot"
    show(
        items,
        as_json,
        [
            "revision",
            ("at", lambda r: moment(r["at"])),
            "action",
            "actor",
            "reason",
            ("GPUs", lambda r: r[snap].get("gpus")),
            ("site", lambda r: r[snap].get("site")),
            ("start", lambda r: moment(r[snap].get("start"))),
            ("end", lambda r: moment(r[snap].get("end"))),
            ("state", lambda r: r[snap].get("stored_state")),
        ],
        title=f"history of {name}",
    )


# --- booking ---------------------------------------------------------------------------------


def _terms(
    price_: str | None,
    price_model: PriceModel | None,
    commitment: str | None,
    prepayment_pct: str | None,
    sla_tier: SlaTier | None,
    lendable: bool,
    notes: str | None,
) -> dict[str, Any]:
    return {
        "price": price_,
        "price_model": price_model.value if price_model else None,
        "commitment": commitment,
        "prepayment_pct": prepayment_pct,
        "sla_tier": sla_tier.value if sla_tier else None,
        "lendable": lendable,
        "notes": notes,
    }


@contracts_app.command("book")
def contracts_book(
    ctx: typer.Context,
    quote_id: int = typer.Option(..., "--quote", help="the quote's id"),
    option: int | None = typer.Option(None, "--option", min=1, help="default: 1"),
    name: str | None = typer.Option(None, "--name", help="default: generated"),
    price_: str | None = PriceOpt,
    price_model: PriceModel | None = PriceModelOpt,
    commitment: str | None = CommitmentOpt,
    prepayment_pct: str | None = PrepaymentOpt,
    sla_tier: SlaTier | None = SlaOpt,
    lendable: bool = LendableOpt,
    notes: str | None = NotesOpt,
    floor_gpus: int | None = FloorGpusOpt,
    floor_share: str | None = FloorShareOpt,
    no_relocate: bool = NoRelocateOpt,
    draft: bool = DraftOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Book an option of a quote. Checked again at booking: it fits, or exits 2 saying why."""
    body = given(
        {
            "quote": quote_id,
            "option": option,
            "name": name,
            **_terms(price_, price_model, commitment, prepayment_pct, sla_tier, lendable, notes),
            "floors": _floors(floor_gpus, floor_share),
        }
    )
    if no_relocate:
        body["relocate_internal"] = False
    if draft:
        body["book"] = False
    with api(ctx) as client:
        data = client.post("/v1/contracts", body)
    _done("recorded (draft)" if draft else "booked", data, as_json)


@contracts_app.command("create")
def contracts_create(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="default: the token's tenant"),
    kind: ContractType = typer.Option(..., "--type"),
    accelerator: str | None = typer.Option(None, "--accelerator"),
    gpus: int | None = typer.Option(None, "--gpus", min=1),
    mw: str | None = typer.Option(None, "--mw"),
    start: str = typer.Option(..., "--start", help="YYYY-MM-DD or an ISO datetime (UTC)"),
    end: str = typer.Option(..., "--end", help="YYYY-MM-DD or an ISO datetime (UTC)"),
    sites: list[str] | None = SiteOpt,
    name: str | None = typer.Option(None, "--name", help="default: generated"),
    same_fabric: bool = typer.Option(False, "--same-fabric", help="all in one fabric"),
    unit: Unit | None = typer.Option(None, "--unit", help="whole GPUs, 8-GPU nodes or blocks"),
    price_: str | None = PriceOpt,
    price_model: PriceModel | None = PriceModelOpt,
    currency: str | None = typer.Option(None, "--currency", help="default: USD"),
    commitment: str | None = CommitmentOpt,
    prepayment_pct: str | None = PrepaymentOpt,
    sla_tier: SlaTier | None = SlaOpt,
    lendable: bool = LendableOpt,
    notice_minutes: int | None = typer.Option(None, "--notice-minutes", help="spot preemption"),
    notes: str | None = NotesOpt,
    floor_gpus: int | None = FloorGpusOpt,
    floor_share: str | None = FloorShareOpt,
    no_relocate: bool = NoRelocateOpt,
    draft: bool = DraftOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Book a contract directly (no quote), atomically: it fits, or exits 2 saying why."""
    body = given(
        {
            "tenant": tenant,
            "type": kind.value,
            "accelerator": accelerator,
            "gpus": gpus,
            "mw": mw,
            "start": when(start, "--start"),
            "end": when(end, "--end"),
            **site_fields(sites),
            "name": name,
            "same_fabric": same_fabric,
            "unit": unit.value if unit else None,
            **_terms(price_, price_model, commitment, prepayment_pct, sla_tier, lendable, notes),
            "currency": currency,
            "notice_minutes": notice_minutes,
            "floors": _floors(floor_gpus, floor_share),
        }
    )
    if no_relocate:
        body["relocate_internal"] = False
    if draft:
        body["book"] = False
    with api(ctx) as client:
        data = client.post("/v1/contracts", body)
    _done("recorded (draft)" if draft else "booked", data, as_json)


@contracts_app.command("book-draft")
def contracts_book_draft(ctx: typer.Context, name: str, as_json: bool = JsonOpt) -> None:
    """Book a contract recorded with --draft (state quoted), checking capacity now."""
    with api(ctx) as client:
        data = client.post(f"/v1/contracts/{name}/book")
    _done("booked", data, as_json)


# --- amending --------------------------------------------------------------------------------


def _amend(ctx: typer.Context, name: str, body: dict[str, Any], verb: str, as_json: bool) -> None:
    with api(ctx) as client:
        data = client.post(f"/v1/contracts/{name}/amendments", given(body))
    _done(verb, data, as_json)


@contracts_app.command("extend")
def contracts_extend(
    ctx: typer.Context,
    name: str,
    to: str = typer.Option(..., "--to", help="the new end"),
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move a contract's end later; the added time is checked like a new booking."""
    _amend(
        ctx,
        name,
        {"kind": "extend", "end": when(to, "--to"), "reason": reason},
        "extended",
        as_json,
    )


@contracts_app.command("grow")
def contracts_grow(
    ctx: typer.Context,
    name: str,
    gpus: int = typer.Option(..., "--gpus", min=1, help="the new total number of GPUs"),
    effective: str | None = EffectiveOpt,
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Hold more GPUs from --effective to the end."""
    body = {"kind": "grow", "gpus": gpus, "effective": when(effective, "--effective")}
    _amend(ctx, name, {**body, "reason": reason}, "grown", as_json)


@contracts_app.command("shrink")
def contracts_shrink(
    ctx: typer.Context,
    name: str,
    gpus: int = typer.Option(..., "--gpus", min=1, help="the new total number of GPUs"),
    effective: str | None = EffectiveOpt,
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Hold fewer GPUs from --effective to the end."""
    body = {"kind": "shrink", "gpus": gpus, "effective": when(effective, "--effective")}
    _amend(ctx, name, {**body, "reason": reason}, "shrunk", as_json)


@contracts_app.command("move")
def contracts_move(
    ctx: typer.Context,
    name: str,
    sites: list[str] = typer.Option(
        ..., "--site", help="the site to move to; repeat to allow several"
    ),
    effective: str | None = EffectiveOpt,
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move a contract (and its internal floors) to another site from --effective on."""
    body = {"kind": "move", **site_fields(sites), "effective": when(effective, "--effective")}
    _amend(ctx, name, {**body, "reason": reason}, "moved", as_json)


@contracts_app.command("cancel")
def contracts_cancel(
    ctx: typer.Context, name: str, reason: str | None = ReasonOpt, as_json: bool = JsonOpt
) -> None:
    """Cancel: capacity is released from the next hour; the history keeps what was."""
    with api(ctx) as client:
        data = client.post(f"/v1/contracts/{name}/cancel", given({"reason": reason}))
    _done("cancelled", data, as_json)


@contracts_app.command("reclaim")
def contracts_reclaim(
    ctx: typer.Context,
    name: str,
    reason: str | None = typer.Option(None, "--reason", help="why (kept in the audit log)"),
    as_json: bool = JsonOpt,
) -> None:
    """Take back the idle nodes a lendable contract lent to spot: each spot lease ends after
    the spot contract's notice period (prints when each node is back)."""
    with api(ctx) as client:
        data = client.post(f"/v1/contracts/{name}/reclaim", given({"reason": reason}))
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{data['contract']}[/bold]: {len(data['nodes'])} lent node(s) on their way back",
        highlight=False,
    )
    print_table(data["nodes"], ["node", "site", "gpus", "lent_since", "notice_at", "until"])
