"""The money and invoices views (operator) and the customer portal (tenant) in a real
browser, on the demo: charts with their numbers, an invoice's documents, the customer's
capacity, usage and export — and no trace of any other tenant anywhere a tenant looks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import ConsoleServer

CENT = Decimal("0.01")


def show(page: Any, server: ConsoleServer, route: str) -> None:
    """Go to a view (a hash route) the way a link does, and wait until it has rendered:
    a view appends itself once its API calls are answered."""
    if page.evaluate("location.hash") == route:  # the same hash fires no hashchange
        route += "&" if "?" in route else "?"
    page.evaluate(
        "h => { document.querySelector('main > .view')?.remove(); location.hash = h; }", route
    )
    page.wait_for_selector("main > .view")
    assert not page.locator("main > .view > .error").count(), page.inner_text("main")


def amount(text: str) -> Decimal:
    """'$2,643,627,131.93' or '1,234.50' → Decimal."""
    return Decimal(text.replace("$", "").replace(",", "").strip() or "0")


def column(table: Any, name: str) -> list[str]:
    """A column's cells, by its header's text."""
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    index = headers.index(name)
    return [row.locator("td").nth(index).inner_text() for row in table.locator("tbody tr").all()]


def bars(figure: Any) -> int:
    """How many bars a chart draws (a zero is a bar of no height)."""
    return int(
        figure.locator("svg rect").evaluate_all(
            "rects => rects.filter(r => Number(r.getAttribute('height')) > 0).length"
        )
    )


def numbers_of(figure: Any) -> Any:
    """Open a chart's 'Numbers' and answer its table."""
    figure.locator("summary", has_text="Numbers").click()
    return figure.locator("details table")


def test_money_charts_come_with_numbers_that_add_up_to_the_reports(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    as_of = f"{today}T00:00:00Z"
    show(operator_page, console_server, f"#/money?as_of={today}&step=quarter")
    with console_server.api() as api:
        revenue = api.get("/v1/reports/revenue", params={"as_of": as_of, "step": "quarter"})
        backlog = api.get("/v1/reports/backlog", params={"as_of": as_of, "step": "quarter"})
    total = Decimal(revenue.json()["recognized"])
    assert total > 0

    for by in ("by_site", "by_customer", "by_type"):
        pair = operator_page.locator(f"[data-by={by}]")
        assert bars(pair) > 0
        # the totals beside the chart: each key's amount, then the total, which is the report's
        totals = pair.locator(".totals table")
        cells = [amount(c) for c in column(totals, "Recognized")]
        assert cells[-1] == total
        assert sum(cells[:-1]) == total
        assert len(cells) - 1 == len(revenue.json()[by])
        # the chart's own numbers: one row per quarter, a column per key; all of them sum up
        per_period = numbers_of(pair.locator("figure"))
        rows = per_period.locator("tbody tr").all()
        assert [r.locator("td").first.inner_text() for r in rows] == [
            p["period"] for p in revenue.json()["periods"]
        ]
        assert sum(amount(c) for r in rows for c in r.locator("td.num").all_inner_texts()) == total

    # backlog by quarter and customer: the chart's numbers are the periods' amounts
    b = backlog.json()
    figure = operator_page.locator("figure", has_text="Backlog by quarter")
    rows = numbers_of(figure).locator("tbody tr").all()
    shown = sum(amount(c) for r in rows for c in r.locator("td.num").all_inner_texts())
    assert shown == Decimal(b["total"]) - Decimal(b["later"])
    assert Decimal(b["total"]) > 0

    # utilization and concentration are drawn too, with their headline figures
    expect(
        operator_page.locator("figure", has_text="GPU utilization").locator("svg path")
    ).to_have_count(2)
    largest = revenue.json()["by_customer"]
    top = max(largest, key=lambda k: Decimal(largest[k]))
    expect(operator_page.locator(".card", has_text="Largest customer")).to_contain_text(top)


def test_operator_opens_an_invoice_its_lines_html_and_pdf(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant
    show(operator_page, console_server, f"#/invoices?tenant={tenant}&kind=invoice")
    first = operator_page.locator("main table tbody tr").first
    number = first.locator("td").first.inner_text()
    assert number.startswith("INV-")
    first.click()
    operator_page.wait_for_selector(f"main > .view h1:has-text('Invoice {number}')")
    invoice_id = operator_page.evaluate("location.hash").rsplit("/", 1)[1]
    with console_server.api() as api:
        invoice = api.get(f"/v1/invoices/{invoice_id}").json()
    assert invoice["number"] == number and invoice["tenant"] == tenant

    lines = operator_page.locator("main table", has_text="Description").first
    amounts = [amount(a) for a in column(lines, "Amount")]
    assert amounts[-1] == Decimal(invoice["total"])  # the total row
    assert sum(amounts[:-1]) == Decimal(invoice["total"])
    assert len(amounts) - 1 == len(invoice["items"])
    expect(lines).to_contain_text(invoice["items"][0]["description"])

    with operator_page.context.expect_page() as opened:
        operator_page.get_by_role("button", name="Open HTML").click()
    document = opened.value
    document.wait_for_load_state()
    assert number in document.content()
    document.close()

    with operator_page.expect_download() as downloading:
        operator_page.get_by_role("button", name="Download PDF").click()
    pdf = downloading.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert Path(pdf.path()).read_bytes()[:4] == b"%PDF"


def test_the_portal_shows_the_customers_contracts_capacity_usage_and_invoices(
    tenant_page: Any, console_server: ConsoleServer
) -> None:
    # a customer lands on its overview
    expect(tenant_page.locator("#nav a[aria-current=page]")).to_have_text("Overview")
    with console_server.api(console_server.tenant_token) as api:
        contracts = api.get("/v1/contracts", params={"limit": 500}).json()["items"]
        now = dt.datetime.now(dt.UTC)
        in_force = [
            c
            for c in contracts
            if dt.datetime.fromisoformat(c["start"]) <= now < dt.datetime.fromisoformat(c["end"])
        ]
        allocations = {
            c["name"]: api.get(f"/v1/contracts/{c['name']}/allocation", params={"limit": 1}).json()
            for c in in_force
        }
        invoices = api.get("/v1/invoices", params={"limit": 500}).json()["items"]
    assert in_force and invoices

    table = tenant_page.locator("main table", has_text="Contracts in force")
    names = column(table, "Contract")
    assert sorted(names) == sorted(allocations)
    for name, contracted, usable in zip(
        names, column(table, "Contracted GPUs"), column(table, "Usable GPUs now"), strict=True
    ):
        assert int(contracted.replace(",", "")) == allocations[name]["contracted_gpus"]
        assert int(usable.replace(",", "")) == allocations[name]["usable_gpus"]
    expect(tenant_page.locator("figure", has_text="Contracted vs usable GPUs now")).to_be_visible()
    usage = tenant_page.locator("figure", has_text="GPU-hours used per day")
    assert bars(usage) > 0
    latest = tenant_page.locator("main table", has_text="Latest documents")
    expect(latest).to_contain_text(invoices[-1]["number"])

    # a contract's row leads to its detail
    tenant_page.locator("main table", has_text="Contracts in force").locator(
        "tbody tr"
    ).first.click()
    tenant_page.wait_for_function("location.hash.startsWith('#/contracts/')")


def test_usage_shows_what_was_excluded_and_why_and_exports_the_customers_rows(
    tenant_page: Any, console_server: ConsoleServer
) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    with console_server.api(console_server.tenant_token) as api:
        rollups = api.get(
            "/v1/usage/rollups",
            params={"step": "day", "start": f"{yesterday}T00:00:00Z", "limit": 1000},
        ).json()["items"]
    used = [r for r in rollups if r["start"].startswith(str(yesterday))]
    assert used, "the demo's customer used GPUs yesterday"
    contract = used[0]["contract"]
    with console_server.api(console_server.tenant_token) as api:
        node = api.get(f"/v1/contracts/{contract}/allocation", params={"limit": 1}).json()
        contracts = api.get("/v1/contracts", params={"limit": 500}).json()["items"]
    # the operator takes an hour of yesterday off the bill (maintenance) ...
    with console_server.api() as api:
        excluded = api.post(
            "/v1/usage/exclusions",
            json={
                "contract": contract,
                "node": node["nodes"][0]["name"],
                "reason": "maintenance",
                "start": f"{yesterday}T10:00:00Z",
                "end": f"{yesterday}T11:00:00Z",
                "note": "browser test",
            },
        )
        assert excluded.status_code == 201, excluded.text
    gone = Decimal(excluded.json()["excluded_gpu_seconds"]) / 3600
    assert gone > 0

    # ... and the customer sees it, by day and by hour, with its reason
    show(
        tenant_page,
        console_server,
        f"#/usage?start={yesterday}&end={yesterday}&contract={contract}",
    )
    totals = tenant_page.locator("main table", has_text="Used of held")
    assert [amount(c) for c in column(totals, "· maintenance")] == [gone.quantize(CENT)]
    expect(
        tenant_page.locator("figure", has_text="Billable vs excluded").locator(".legend")
    ).to_contain_text("excluded: maintenance")
    show(
        tenant_page,
        console_server,
        f"#/usage?step=hour&start={yesterday}&end={yesterday}&chart=bar",
    )
    hourly = numbers_of(tenant_page.locator("figure", has_text="GPU-hours used per hour"))
    expect(hourly.locator("tbody tr")).to_have_count(24)

    # the export of yesterday, as CSV: the customer's own rows, the hour taken off among them
    show(tenant_page, console_server, "#/usage")
    form = tenant_page.locator("form[aria-label='Usage export']")
    form.get_by_label("a range").check()
    form.get_by_label("From (day)").fill(str(yesterday))
    form.get_by_label("Until (day, inclusive)").fill(str(yesterday))
    with tenant_page.expect_download() as downloading:
        form.get_by_role("button", name="Download export").click()
    export = downloading.value
    assert export.suggested_filename == f"usage-{console_server.tenant}-{yesterday}-{yesterday}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(export.path()).read_text())))
    assert rows
    assert {r["BillingAccountId"] for r in rows} == {console_server.tenant}
    assert {r["SubAccountId"] for r in rows} <= {c["name"] for c in contracts}
    assert {r["ChargePeriodStart"][:10] for r in rows} == {str(yesterday)}
    maintenance = [r for r in rows if r["x_ExclusionReason"] == "maintenance"]
    assert (
        sum(int(r["x_ExcludedGpuSeconds"]) for r in maintenance)
        == excluded.json()["excluded_gpu_seconds"]
    )


def test_a_tenant_finds_no_trace_of_other_tenants(
    tenant_page: Any, console_server: ConsoleServer
) -> None:
    """Every view a customer can reach, every detail behind it and every JSON answer the
    page fetched: none names another tenant."""
    answers: list[Any] = []
    bodies: list[str] = []
    seen: list[str] = []

    def read_answers() -> None:
        """The JSON bodies so far (a body is gone once its page navigates away)."""
        while answers:
            answer = answers.pop()
            if "json" in (answer.headers.get("content-type") or ""):
                bodies.append(f"{answer.url}\n{json.dumps(answer.json())}")

    def look(route: str) -> None:
        show(tenant_page, console_server, route)
        for details in tenant_page.locator("main details").all():
            details.evaluate("d => { d.open = true; }")
        seen.append(f"{route}\n{tenant_page.content()}")
        read_answers()

    tenant_page.on("response", lambda answer: answers.append(answer))
    tenant_page.reload()  # signed in still (the tab's session): GET /v1/me again, recorded
    tenant_page.wait_for_selector("main > .view")
    read_answers()

    views = tenant_page.locator("#nav a").evaluate_all("links => links.map(a => a.hash)")
    assert "#/portal" in views and "#/invoices" in views and "#/fleet" not in views
    for route in views:
        look(route)
    with console_server.api(console_server.tenant_token) as api:
        contracts = [c["name"] for c in api.get("/v1/contracts").json()["items"]]
        invoices = [i["id"] for i in api.get("/v1/invoices", params={"limit": 500}).json()["items"]]
    for name in contracts:
        look(f"#/contracts/{name}")
    for invoice_id in invoices[-3:]:
        look(f"#/invoices/{invoice_id}")
    with tenant_page.context.expect_page() as opened:
        tenant_page.get_by_role("button", name="Open HTML").click()
    opened.value.wait_for_load_state()
    seen.append(f"invoice HTML\n{opened.value.content()}")
    look("#/usage?step=hour")

    read_answers()
    assert len(bodies) > 10
    for other in console_server.other_tenants:
        leaks = [text.split("\n", 1)[0] for text in seen + bodies if other in text]
        assert not leaks, f"{other!r} shows up for {console_server.tenant!r} in {leaks}"
    assert any(console_server.tenant in text for text in seen)
