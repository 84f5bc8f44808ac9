"""The capacity calendar and the contracts views in a real browser, on the demo: quote and
book through the form and see the booking on the calendar; a bad entry named at its field;
the list's filters and pages; a contract's contracted vs usable GPUs; a tenant's own view."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ConsoleServer

ROW = "memphis-2 · GB200"


def month_ahead(months: int) -> dt.date:
    """The first day of the month `months` after this one (UTC)."""
    today = dt.datetime.now(dt.UTC).date()
    index = today.year * 12 + today.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def cell_figures(page: Any, row: str, column: str) -> dict[str, int]:
    """Supply, committed and free of one heatmap cell, from its tooltip."""
    cell = page.locator(f'rect[data-row="{row}"][data-col="{column}"]')
    expect(cell).to_have_count(1)
    text = cell.locator("title").text_content() or ""
    figures = dict(re.findall(r"(supply|committed|free) ([\d,]+)", text))
    assert set(figures) == {"supply", "committed", "free"}, text
    return {k: int(v.replace(",", "")) for k, v in figures.items()}


@pytest.fixture
def cancel_after(console_server: ConsoleServer) -> Iterator[list[str]]:
    """Contracts a test books, cancelled afterwards so that other views' tests on the same
    demo find it as it was."""
    names: list[str] = []
    yield names
    with console_server.api() as api:
        for name in names:
            api.post(f"/v1/contracts/{name}/cancel", json={"reason": "browser test"})


def open_quote_form(page: Any, server: ConsoleServer) -> None:
    page.goto(server.url + "/#/contracts")
    page.get_by_role("button", name="New quote").click()
    expect(page.get_by_role("heading", name="Quote and book")).to_be_visible()


def test_quote_and_book_through_the_form_and_see_it_on_the_calendar(
    operator_page: Any, console_server: ConsoleServer, cancel_after: list[str]
) -> None:
    page = operator_page
    start = month_ahead(13)  # far enough ahead that nothing is placed or billed meanwhile
    column = start.strftime("%Y-%m")
    page.goto(console_server.url + "/#/calendar?site=memphis-2&accelerator=GB200")
    expect(page.get_by_role("heading", name="Capacity calendar")).to_be_visible()
    before = cell_figures(page, ROW, column)
    assert before["free"] >= 720, before

    open_quote_form(page, console_server)
    page.locator("#q-tenant").select_option("helix-bio")
    page.locator("#q-type").select_option("reserved")
    page.locator("#q-accelerator").select_option("GB200")
    page.locator("#q-gpus").fill("720")
    page.locator("#q-term").fill("1")
    page.locator("#q-start_after").fill(start.isoformat())
    page.locator("#q-start_before").fill((start + dt.timedelta(days=1)).isoformat())
    page.locator("#q-site").select_option("memphis-2")
    page.get_by_role("button", name="Get quote").click()

    options = page.locator("#quote-slot table")
    expect(options.locator("caption")).to_contain_text(re.compile(r"Quote \d+: 1 option"))
    first = options.locator("tbody tr").first
    expect(first).to_contain_text("memphis-2")
    expect(first).to_contain_text(f"{start.isoformat()} 00:00 UTC")
    expect(first).to_contain_text("720")
    expect(first).to_contain_text("/ GPU-hour")
    expect(first).to_contain_text("of the free GB200 capacity at memphis-2")

    name = f"console-{uuid.uuid4().hex[:8]}"
    page.locator("#q-name").fill(name)
    page.get_by_role("button", name="Book option 1").click()
    cancel_after.append(name)
    notice = page.locator("#quote-slot .notice")
    expect(notice).to_contain_text(f"Booked {name}: 720 GB200 GPUs at memphis-2")
    # The list below shows it without a reload.
    expect(
        page.locator("main table").last.get_by_role("link", name=name, exact=True)
    ).to_be_visible()

    notice.get_by_role("link", name="See it on the capacity calendar").click()
    expect(page).to_have_url(re.compile(r"#/calendar\?.*site=memphis-2"))
    expect(page.get_by_role("heading", name="Capacity calendar")).to_be_visible()
    after = cell_figures(page, ROW, column)
    assert after == {
        "supply": before["supply"],
        "committed": before["committed"] + 720,
        "free": before["free"] - 720,
    }
    # Clicking the cell shows the same figures, and the contract's pools are there per fabric.
    page.locator(f'rect[data-row="{ROW}"][data-col="{column}"]').click()
    panel = page.locator("#cal-cell")
    expect(panel).to_contain_text(f"{after['committed']:,}")
    page.get_by_label("Rows").select_option("pool")
    expect(page.locator('rect[data-row="memphis-2 · GB200 · gb200-f01"]').first).to_be_attached()


def test_a_draft_holds_nothing_until_booked_from_its_page(
    operator_page: Any, console_server: ConsoleServer, cancel_after: list[str]
) -> None:
    page = operator_page
    open_quote_form(page, console_server)
    page.locator("#q-tenant").select_option("helix-bio")
    page.locator("#q-accelerator").select_option("GB200")
    page.locator("#q-gpus").fill("72")
    page.locator("#q-term").fill("30")
    page.locator("#q-term").locator("xpath=following-sibling::select").select_option("days")
    page.locator("#q-start_after").fill(month_ahead(14).isoformat())
    page.get_by_role("button", name="Get quote").click()
    name = f"draft-{uuid.uuid4().hex[:8]}"
    page.locator("#q-name").fill(name)
    page.get_by_role("button", name="Save option 1 as a draft").click()
    cancel_after.append(name)
    notice = page.locator("#quote-slot .notice")
    expect(notice).to_contain_text(f"Saved {name} as a draft")
    notice.get_by_role("link", name=f"Open {name}").click()
    expect(page.get_by_role("heading", name=name)).to_contain_text("quoted")
    claims = page.locator("section", has=page.get_by_role("heading", name="Held on the capacity"))
    expect(claims).to_contain_text("A draft holds nothing until it is booked.")
    page.get_by_role("button", name="Book now").click()
    expect(page.locator("main .notice")).to_have_text(f"Booked {name}.")
    expect(page.get_by_role("heading", name=name)).to_contain_text("booked")
    expect(claims.locator("tbody tr")).to_have_count(1)
    expect(claims.locator("tbody tr")).to_contain_text("72")
    expect(page.get_by_role("button", name="Book now")).to_have_count(0)


def test_a_conflict_is_marked_on_the_calendar_and_listed(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    """A failed node of the whole-site sale leaves memphis-1's H100 short: the row is marked
    from this month and the conflict names the short contract."""
    page = operator_page
    with console_server.api() as api:
        node = api.get(
            "/v1/nodes", params={"site": "memphis-1", "fabric": "h100-f01", "limit": 1}
        ).json()["items"][0]["name"]
        assert api.post(f"/v1/nodes/{node}/fail", json={"reason": "browser test"}).is_success
        try:
            page.goto(console_server.url + "/#/calendar?site=memphis-1")
            this_month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
            cell = page.locator(f'rect[data-row="memphis-1 · H100"][data-col="{this_month}"]')
            expect(cell).to_have_attribute("stroke", "#cf222e")
            expect(cell.locator("title")).to_contain_text("(oversold)")
            expect(cell.locator("title")).to_contain_text("free -8")
            calm = page.locator(f'rect[data-row="memphis-1 · H200"][data-col="{this_month}"]')
            expect(calm).not_to_have_attribute("stroke", "#cf222e")
            listed = page.get_by_role("table", name=re.compile("supply no longer covers"))
            expect(listed.locator("tbody tr")).to_have_count(1)
            expect(listed.locator("tbody tr")).to_contain_text("8 GPUs")
            expect(listed.get_by_role("link", name="meridian-memphis-1")).to_be_visible()
        finally:
            api.post(f"/v1/nodes/{node}/repair", json={})


def test_a_bad_entry_is_named_at_its_field(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    open_quote_form(page, console_server)
    page.locator("#q-tenant").select_option("helix-bio")
    page.locator("#q-accelerator").select_option("GB200")
    page.locator("#q-gpus").fill("0")
    page.get_by_role("button", name="Get quote").click()
    gpus = page.locator("#q-gpus")
    expect(gpus).to_have_attribute("aria-invalid", "true")
    error = page.locator("#q-gpus-error")
    expect(error).to_have_text(re.compile(r"^GPUs: .*greater than 0"))
    expect(gpus).to_have_attribute("aria-describedby", "q-gpus-error")
    expect(page.locator("#quote-slot table")).to_have_count(0)  # no quote was made

    # Fixed, another mistake: the latest start before the earliest. Only that field is marked.
    gpus.fill("72")
    page.locator("#q-start_after").fill(month_ahead(3).isoformat())
    page.locator("#q-start_before").fill(month_ahead(2).isoformat())
    page.get_by_role("button", name="Get quote").click()
    expect(page.locator("#q-start_before-error")).to_contain_text(
        "Latest start: must not be before"
    )
    expect(page.locator("#q-gpus-error")).to_have_count(0)
    expect(gpus).not_to_have_attribute("aria-invalid", "true")
    # What was typed is kept.
    expect(gpus).to_have_value("72")


def test_the_list_filters_and_pages(operator_page: Any, console_server: ConsoleServer) -> None:
    page = operator_page
    page.goto(console_server.url + "/#/contracts")
    rows = page.locator("main .table tbody tr")
    with console_server.api() as api:
        everything = [
            c["name"] for c in api.get("/v1/contracts", params={"limit": 500}).json()["items"]
        ]
        codeloom = [
            c["name"]
            for c in api.get("/v1/contracts", params={"tenant": "codeloom"}).json()["items"]
        ]
    assert len(everything) > 5
    expect(rows).to_have_count(len(everything))

    page.locator("#f-tenant").select_option("codeloom")
    expect(page).to_have_url(re.compile(r"#/contracts\?.*tenant=codeloom"))
    expect(rows).to_have_count(len(codeloom))
    for name in codeloom:
        expect(rows.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.locator("#f-type").select_option("spot")
    expect(page.locator("main .table")).to_contain_text("No contract matches these filters.")
    page.locator("#f-tenant").select_option("")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("pixelforge-spot")
    page.locator("#f-type").select_option("")
    page.locator("#f-state").select_option("booked")  # booked: starts later
    expect(rows.filter(has_text="codeloom-gb300")).to_have_count(1)
    expect(rows.filter(has_text="codeloom-gb200")).to_have_count(0)

    # Pages of five, by the API's cursor: Next and Previous.
    page.goto(console_server.url + "/#/contracts?size=5")
    expect(rows).to_have_count(5)
    first_page = rows.locator("td:first-child").all_inner_texts()
    assert first_page == everything[:5]
    page.get_by_role("button", name="Next →").click()
    expect(page.locator(".pager")).to_contain_text("Page 2")
    expect(rows.first).to_contain_text(everything[5])
    second_page = rows.locator("td:first-child").all_inner_texts()
    assert second_page == everything[5:10]
    page.get_by_role("button", name="← Previous").click()
    expect(rows.first).to_contain_text(everything[0])


def test_a_contract_shows_contracted_vs_usable_gpus(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    page.goto(console_server.url + "/#/contracts")
    page.get_by_role("link", name="codeloom-gb200", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/contracts/codeloom-gb200$"))
    with console_server.api() as api:
        alloc = api.get("/v1/contracts/codeloom-gb200/allocation", params={"limit": 1}).json()
    assert alloc["contracted_gpus"] == 4608
    capacity = page.locator("#allocation")
    for label, value in (
        ("Contracted GPUs", alloc["contracted_gpus"]),
        ("Usable GPUs", alloc["usable_gpus"]),
        ("Allocated GPUs", alloc["allocated_gpus"]),
    ):
        expect(capacity.locator(".card", has_text=label).locator(".value")).to_have_text(
            f"{value:,}"
        )
    main = page.locator("main")
    expect(main.locator(".card", has_text="Tenant")).to_contain_text("codeloom")
    expect(main.locator(".card", has_text="SLA")).to_contain_text("premium")
    claims = page.locator(
        "section", has=page.get_by_role("heading", name="Held on the capacity calendar")
    )
    expect(claims.locator("tbody tr").first).to_contain_text("4,608")
    history = page.locator("section", has=page.get_by_role("heading", name="History"))
    expect(history.locator("tbody tr").first).to_contain_text("book")
    capacity.locator("summary").click()
    expect(capacity.locator("details tbody tr")).to_have_count(20)
    expect(capacity.locator("details tbody tr").first).to_contain_text("memphis-2")


def test_a_tenant_sees_its_own_contracts_and_may_ask_for_a_quote_but_not_book(
    tenant_page: Any, console_server: ConsoleServer
) -> None:
    page = tenant_page
    page.goto(console_server.url + "/#/contracts")
    expect(page.get_by_role("heading", name="My contracts")).to_be_visible()
    rows = page.locator("main .table tbody tr")
    expect(rows.first).to_be_visible()
    text = page.locator("main").inner_text()
    for other in console_server.other_tenants:
        assert other not in text
    expect(page.locator("#f-tenant")).to_have_count(0)

    page.get_by_role("button", name="New quote").click()
    expect(page.get_by_role("heading", name="Ask for a quote")).to_be_visible()
    expect(page.locator("#q-tenant")).to_have_count(0)
    page.locator("#q-accelerator").select_option("GB200")
    page.locator("#q-gpus").fill("72")
    page.locator("#q-term").fill("1")
    page.get_by_role("button", name="Get quote").click()
    expect(page.locator("#quote-slot table caption")).to_contain_text("Quote")
    expect(page.get_by_role("button", name=re.compile("^Book option"))).to_have_count(0)
    expect(page.locator("#quote-slot")).to_contain_text("sales team books quotes")

    # Another tenant's contract is not there to open.
    page.goto(console_server.url + "/#/contracts/pixelforge-spot")
    expect(page.locator("main [role=alert]")).to_contain_text("not found")
