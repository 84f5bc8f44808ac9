"""An invoice as a file: HTML (a small template), PDF (fpdf2, pure Python) and CSV.

All three are made from the API's own shape of the document (`InvoiceOut`), so what a file
says is what `GET /v1/invoices/{id}` says: every line with its contract, what it rates and
its amount, and the total that the lines sum to.
"""

from __future__ import annotations

import csv
import html
import io
from decimal import Decimal
from string import Template

from fpdf import FPDF

from neocloud.billing.schemas import InvoiceOut

MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "csv": "text/csv"}
TITLES = {"invoice": "Invoice", "credit-note": "Credit note", "showback": "Showback statement"}
CSV_COLUMNS = [
    "number",
    "tenant",
    "kind",
    "status",
    "period",
    "currency",
    "position",
    "contract",
    "line_kind",
    "for_period",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "amount",
]

PAGE = Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>$title $number</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;
vertical-align:top;text-align:left}td.n,th.n{text-align:right;white-space:nowrap}
tfoot td{font-weight:bold;border-top:2px solid #222}.meta td{border:0;padding:.1rem .5rem}
.note{color:#666;font-size:.9em}
</style></head><body>
<h1>$title $number</h1>
<table class="meta">
<tr><td>Issuer</td><td>$issuer</td></tr>
<tr><td>Customer</td><td>$tenant</td></tr>
<tr><td>Period</td><td>$period ($start to $end, UTC)</td></tr>
<tr><td>Status</td><td>$status</td></tr>
<tr><td>Issued</td><td>$issued</td></tr>
<tr><td>Due</td><td>$due</td></tr>
$extra</table>
<h2>Lines</h2>
<table>
<thead><tr><th>#</th><th>Contract</th><th>Kind</th><th>Description</th>
<th class="n">Quantity</th><th>Unit</th><th class="n">Unit price</th>
<th class="n">Amount ($currency)</th></tr></thead>
<tbody>
$rows</tbody>
<tfoot><tr><td colspan="7">Total</td><td class="n">$total</td></tr></tfoot>
</table>
<p class="note">Amounts are computed exactly and each line is rounded to the currency's
minor unit, half to even; the total is the sum of the lines.</p>
</body></html>
"""
)


def render(doc: InvoiceOut, fmt: str, issuer: str = "neocloud") -> bytes:
    if fmt == "html":
        return to_html(doc, issuer).encode()
    if fmt == "pdf":
        return to_pdf(doc, issuer)
    return to_csv(doc).encode()


def filename(doc: InvoiceOut, fmt: str) -> str:
    name = doc.number or f"draft-{doc.id}"
    return f"{doc.tenant}-{name}.{fmt}"


def to_html(doc: InvoiceOut, issuer: str = "neocloud") -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{x.position}</td><td>{e(x.contract or '')}</td><td>{e(x.kind)}"
        f"{'' if x.for_period == doc.period else ' (' + e(x.for_period) + ')'}</td>"
        f"<td>{e(x.description)}</td><td class='n'>{_qty(x.quantity)}</td><td>{e(x.unit)}</td>"
        f"<td class='n'>{_qty(x.unit_price)}</td><td class='n'>{_amount(x.amount)}</td></tr>\n"
        for x in doc.items
    )
    extra = ""
    if doc.credits_invoice:
        extra += f"<tr><td>Credits</td><td>invoice {e(doc.credits_invoice)}</td></tr>\n"
    if doc.reason:
        extra += f"<tr><td>Reason</td><td>{e(doc.reason)}</td></tr>\n"
    if doc.credited:
        extra += f"<tr><td>Credited</td><td>{_amount(doc.credited)} {e(doc.currency)}</td></tr>\n"
    return PAGE.substitute(
        title=TITLES.get(doc.kind.value, "Invoice"),
        number=e(doc.number or f"(draft {doc.id})"),
        issuer=e(issuer),
        tenant=e(doc.tenant),
        period=e(doc.period),
        start=f"{doc.period_start:%Y-%m-%d %H:%M}",
        end=f"{doc.period_end:%Y-%m-%d %H:%M}",
        status=e(doc.status.value),
        issued=f"{doc.issued_at:%Y-%m-%d}" if doc.issued_at else "-",
        due=f"{doc.due_at:%Y-%m-%d}" if doc.due_at else "-",
        extra=extra,
        currency=e(doc.currency),
        rows=rows,
        total=_amount(doc.total),
    )


def to_csv(doc: InvoiceOut) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for x in doc.items:
        w.writerow(
            [
                doc.number or "",
                doc.tenant,
                doc.kind.value,
                doc.status.value,
                doc.period,
                doc.currency,
                x.position,
                x.contract or "",
                x.kind,
                x.for_period,
                x.description,
                f"{x.quantity:f}",
                x.unit,
                f"{x.unit_price:f}",
                f"{x.amount:f}",
            ]
        )
    return out.getvalue()


def to_pdf(doc: InvoiceOut, issuer: str = "neocloud") -> bytes:
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    title = f"{TITLES.get(doc.kind.value, 'Invoice')} {doc.number or f'(draft {doc.id})'}"
    pdf.cell(0, 10, _latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    meta = [
        ("Issuer", issuer),
        ("Customer", doc.tenant),
        ("Period", f"{doc.period} ({doc.period_start:%Y-%m-%d} to {doc.period_end:%Y-%m-%d}, UTC)"),
        ("Status", doc.status.value),
        ("Issued", f"{doc.issued_at:%Y-%m-%d}" if doc.issued_at else "-"),
        ("Due", f"{doc.due_at:%Y-%m-%d}" if doc.due_at else "-"),
    ]
    if doc.credits_invoice:
        meta.append(("Credits", f"invoice {doc.credits_invoice}"))
    if doc.reason:
        meta.append(("Reason", doc.reason))
    for k, v in meta:
        pdf.cell(30, 6, k)
        pdf.cell(0, 6, _latin(v), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (8, 38, 26, 120, 28, 20, 20, 0)
    heads = ("#", "Contract", "Kind", "Description", "Quantity", "Unit", "Unit price", "Amount")
    pdf.set_font("Helvetica", "B", 8)
    for w, h in zip(widths, heads, strict=True):
        pdf.cell(
            w, 6, h, border="B", align="R" if h in ("Quantity", "Unit price", "Amount") else "L"
        )
    pdf.ln()
    pdf.set_font("Helvetica", size=7)
    for x in doc.items:
        kind = x.kind if x.for_period == doc.period else f"{x.kind} ({x.for_period})"
        y = pdf.get_y()
        pdf.cell(widths[0], 4, str(x.position))
        pdf.cell(widths[1], 4, _latin(x.contract or "")[:28])
        pdf.cell(widths[2], 4, _latin(kind)[:24])
        left = pdf.get_x()
        pdf.multi_cell(widths[3], 4, _latin(x.description), new_x="RIGHT", new_y="TOP")
        bottom = pdf.get_y()
        pdf.set_xy(left + widths[3], y)
        pdf.cell(widths[4], 4, _qty(x.quantity), align="R")
        pdf.cell(widths[5], 4, _latin(x.unit))
        pdf.cell(widths[6], 4, _qty(x.unit_price), align="R")
        pdf.cell(widths[7], 4, _amount(x.amount), align="R")
        pdf.set_y(max(bottom, y + 4) + 1)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(sum(widths[:7]), 8, f"Total ({doc.currency})", border="T")
    pdf.cell(0, 8, _amount(doc.total), border="T", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=7)
    pdf.multi_cell(
        0,
        4,
        "Amounts are computed exactly and each line is rounded to the currency's minor unit, "
        "half to even; the total is the sum of the lines.",
    )
    return bytes(pdf.output())


def _latin(text: str) -> str:
    """The PDF's core fonts speak Latin-1: anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _qty(value: Decimal) -> str:
    text = f"{value.normalize():,f}"
    return text


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,f}"
