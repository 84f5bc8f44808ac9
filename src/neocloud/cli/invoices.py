"""`neocloud invoices ...` and `neocloud prices ...`: billing from the command line, as a
client of /v1/invoices and /v1/price-books."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from neocloud.cli.common import (
    JsonOpt,
    api,
    console,
    fail,
    listing,
    more_hint,
    print_json,
    settings,
    show,
)
from neocloud.client.download import download

invoices_app = typer.Typer(
    help="Invoices, credit notes and showback statements", no_args_is_help=True
)
prices_app = typer.Typer(help="Price books", no_args_is_help=True)

COLUMNS: Sequence[str | tuple[str, Callable[[dict[str, Any]], Any]]] = [
    "id",
    ("number", lambda r: r["number"] or "(draft)"),
    "tenant",
    "kind",
    "status",
    "period",
    ("total", lambda r: f"{r['total']} {r['currency']}"),
    "lines",
    "due_at",
]
LINE_COLUMNS: Sequence[str | tuple[str, Callable[[dict[str, Any]], Any]]] = [
    "position",
    "contract",
    ("kind", lambda r: r["kind"]),
    "for_period",
    "description",
    "amount",
]


@invoices_app.command("run")
def run(
    ctx: typer.Context,
    period: str = typer.Option(..., "--period", help="YYYY-MM"),
    tenant: str | None = typer.Option(None, "--tenant", help="one tenant (default: all)"),
    as_json: bool = JsonOpt,
) -> None:
    """Rate a period and write its draft invoices (finalized ones are kept)."""
    with api(ctx) as client:
        out = client.post("/v1/invoices/run", json={"period": period, "tenant": tenant})
    if as_json:
        print_json(out)
        return
    show(out["documents"], False, COLUMNS, title=f"{out['period']}: drafts written")
    if out["kept"]:
        show(out["kept"], False, COLUMNS, title="kept (finalized)")
    console.print(f"replaced drafts: {out['replaced_drafts']}")


@invoices_app.command("list")
def list_invoices(
    ctx: typer.Context,
    period: str | None = typer.Option(None, "--period", help="YYYY-MM"),
    tenant: str | None = typer.Option(None, "--tenant"),
    status: str | None = typer.Option(None, "--status", help="draft, issued, paid or void"),
    kind: str | None = typer.Option(None, "--kind", help="invoice, credit-note or showback"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    cursor: str | None = typer.Option(None, "--cursor"),
    fetch_all: bool = typer.Option(False, "--all", help="fetch every page"),
    as_json: bool = JsonOpt,
) -> None:
    """Invoices, credit notes and showback statements (a tenant's token: its own)."""
    with api(ctx) as client:
        items, next_cursor = listing(
            client,
            "/v1/invoices",
            limit,
            cursor,
            fetch_all,
            period=period,
            tenant=tenant,
            status=status,
            kind=kind,
        )
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    show(items, False, COLUMNS)
    more_hint(next_cursor, as_json)


@invoices_app.command("show")
def show_invoice(ctx: typer.Context, invoice_id: int, as_json: bool = JsonOpt) -> None:
    """One document with every line."""
    with api(ctx) as client:
        doc = client.get(f"/v1/invoices/{invoice_id}")
    if as_json:
        print_json(doc)
        return
    show(doc, False, COLUMNS)
    show(doc["items"], False, LINE_COLUMNS, title="lines")
    console.print(f"total: {doc['total']} {doc['currency']} (the sum of the lines)")


def _act(ctx: typer.Context, invoice_id: int, action: str, body: Any, as_json: bool) -> None:
    with api(ctx) as client:
        doc = client.post(f"/v1/invoices/{invoice_id}/{action}", json=body)
    show(doc, as_json, COLUMNS)


@invoices_app.command("issue")
def issue(ctx: typer.Context, invoice_id: int, as_json: bool = JsonOpt) -> None:
    """Number and issue a draft (its period must be over)."""
    _act(ctx, invoice_id, "issue", None, as_json)


@invoices_app.command("pay")
def pay(ctx: typer.Context, invoice_id: int, as_json: bool = JsonOpt) -> None:
    """Record that an issued invoice was paid."""
    _act(ctx, invoice_id, "pay", None, as_json)


@invoices_app.command("void")
def void(
    ctx: typer.Context,
    invoice_id: int,
    reason: str | None = typer.Option(None, "--reason"),
    as_json: bool = JsonOpt,
) -> None:
    """Void a draft or an issued invoice (a paid one takes a credit note)."""
    _act(ctx, invoice_id, "void", {"reason": reason}, as_json)


@invoices_app.command("credit")
def credit(
    ctx: typer.Context,
    invoice_id: int,
    reason: str = typer.Option(..., "--reason"),
    amount: str | None = typer.Option(None, "--amount", help="default: all that is left"),
    as_json: bool = JsonOpt,
) -> None:
    """Write a credit note against an issued or paid invoice."""
    _act(ctx, invoice_id, "credit-notes", {"reason": reason, "amount": amount}, as_json)


@invoices_app.command("download")
def download_invoice(
    ctx: typer.Context,
    invoice_id: int,
    fmt: str = typer.Option("pdf", "--format", help="html, pdf or csv"),
    output: str | None = typer.Option(
        None, "-o", "--output", help="file (default: the server's name; -: stdout)"
    ),
) -> None:
    """The document as HTML, PDF or CSV."""
    if fmt not in ("html", "pdf", "csv"):
        fail("--format: html, pdf or csv")
    url, token = settings(ctx).resolve()
    path = f"/v1/invoices/{invoice_id}/document"
    with api(ctx), download(url, token, path, {"format": fmt}) as got:
        if output == "-":
            for chunk in got.chunks:
                sys.stdout.buffer.write(chunk)
            return
        target = Path(output or got.filename or f"invoice-{invoice_id}.{fmt}")
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as f:
            for chunk in got.chunks:
                f.write(chunk)
        partial.replace(target)
    console.print(f"wrote {target}")


@prices_app.command("list")
def list_prices(
    ctx: typer.Context,
    book: str | None = typer.Argument(None, help="a book's entries (default: the books)"),
    as_json: bool = JsonOpt,
) -> None:
    """The price books, or one book's entries."""
    with api(ctx) as client:
        if book is None:
            items = list(client.pages("/v1/price-books"))
            show(items, as_json, ["name", "currency", "tenant", "entry_count", "description"])
            return
        data = client.get(f"/v1/price-books/{book}")
    if as_json:
        print_json(data)
        return
    show(
        data["entries"],
        False,
        [
            "id",
            ("accelerator", lambda r: r["accelerator"] or "any"),
            "contract_type",
            "min_term_months",
            "unit",
            "price",
            (
                "tiers",
                lambda r: ", ".join(
                    f"{t['from_gpu_hours']}+: -{t['discount_pct']}%" for t in r["tiers"]
                ),
            ),
            "valid_from",
            "valid_to",
        ],
        title=f"{data['name']} ({data['currency']})",
    )


@prices_app.command("set")
def set_price(
    ctx: typer.Context,
    book: str = typer.Argument(..., help="the price book"),
    accelerator: str | None = typer.Option(None, "--accelerator", help="default: any"),
    contract_type: str = typer.Option(
        ..., "--type", help="reserved, dedicated-site, on-demand, spot or internal"
    ),
    price: str = typer.Option(..., "--price"),
    valid_from: str = typer.Option(
        ..., "--from", help="the first of a month, e.g. 2027-01-01T00:00:00Z"
    ),
    min_term_months: int = typer.Option(0, "--min-term-months"),
    unit: str = typer.Option("gpu-hour", "--unit", help="gpu-hour, month or mw-month"),
    as_json: bool = JsonOpt,
) -> None:
    """Set a price from a month on: the one in force then ends there."""
    body = {
        "accelerator": accelerator,
        "contract_type": contract_type,
        "price": price,
        "valid_from": valid_from,
        "min_term_months": min_term_months,
        "unit": unit,
    }
    with api(ctx) as client:
        data = client.post(f"/v1/price-books/{book}/prices", json=body)
    if as_json:
        print_json(data)
        return
    console.print(
        f"{book}: {len(data['entries'])} entries; {contract_type} {accelerator or 'any'} at {price} from {valid_from}"
    )
