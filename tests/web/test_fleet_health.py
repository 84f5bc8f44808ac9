"""The operator's fleet and health views in a real browser, on the demo; sign-in; offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import expect

from tests.web.conftest import ConsoleServer, sign_in

LIVE = 15_000  # ms: the console polls every 3 s


def test_a_bad_token_is_refused_on_the_sign_in_form(
    browser: Any, console_server: ConsoleServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_server.url + "/")
    sign_in(page, "nc_not_a_real_token")
    alert = page.locator(".signin [role=alert]")
    expect(alert).to_contain_text("not accepted")
    # still on the form, signed in as no one
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#nav a")).to_have_count(0)
    context.close()


def test_the_console_is_served_offline(browser: Any, console_server: ConsoleServer) -> None:
    """Every request the pages make, signed in and through every view, goes to the server."""
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(console_server.url + "/")
    sign_in(page, console_server.admin_token)
    page.wait_for_selector("main > .view")
    for href in page.locator("#nav a").evaluate_all("links => links.map(a => a.hash)"):
        page.goto(console_server.url + "/" + href)
        page.wait_for_selector("main > .view, main > .error")
        page.wait_for_load_state("networkidle")
    own = urlsplit(console_server.url).netloc
    foreign = [
        u for u in requests if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != own
    ]
    assert foreign == []
    assert any(u.endswith("/app.js") for u in requests)
    assert any(u.endswith("/app.css") for u in requests)
    assert any(u.endswith("/views/fleet.js") for u in requests)
    context.close()


def _site_row(page: Any, site: str) -> Any:
    return page.locator("table tbody tr", has=page.get_by_role("link", name=site, exact=True))


def test_the_fleet_view_shows_each_sites_power_and_drills_down_to_nodes(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    with console_server.api() as api:
        sites = {s["name"]: s for s in api.get("/v1/sites").json()["items"]}
    expect(page.get_by_role("heading", name="Fleet", exact=True)).to_be_visible()
    for name, site in sites.items():
        row = _site_row(page, name).first
        expect(row).to_contain_text(f"{float(site['power_mw']):,.1f}")
        expect(row).to_contain_text(f"{float(site['committed_power_mw']):,.1f}")
        expect(row).to_contain_text(f"{float(site['pue']):.2f}")
        expect(row).to_contain_text(site["state"])
    # memphis-1 is sold whole: its committed power is its installed power, near its 300 MW
    expect(_site_row(page, "memphis-1").first).to_contain_text("300.0")
    expect(page.get_by_role("cell", name="m2-gb300-2027q1")).to_be_visible()  # a delivery

    _site_row(page, "memphis-1").first.get_by_role("link", name="memphis-1").click()
    expect(page).to_have_url(re.compile(r"#/fleet/memphis-1$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Memphis 1")
    fabrics = page.locator("table", has=page.locator("caption", has_text="Fabrics of memphis-1"))
    expect(fabrics.locator("tbody tr")).to_have_count(13)  # 9 H100, 3 H200, 1 GB200 fabrics
    fabrics.get_by_role("link", name="h100-f01", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/fleet/memphis-1/h100-f01$"))
    blocks = page.locator("table", has=page.locator("caption", has_text="Blocks of h100-f01"))
    expect(blocks.locator("tbody tr").first).to_contain_text("su01")
    expect(page.locator(".pager", has_text="of 3")).to_be_visible()  # 64 blocks, 25 a page

    # the fabric's 2,048 nodes come a page at a time from the API's cursor
    paged = page.locator("div.table", has=page.locator("caption", has_text="a page at a time"))
    nodes = paged.locator("tbody tr")
    expect(nodes).to_have_count(25)
    expect(nodes.first).to_contain_text("m1-h100-f01-su01-n01")
    expect(nodes.first).to_contain_text("allocated")
    paged.get_by_role("button", name="Next →").click()
    expect(paged.locator(".pager")).to_contain_text("Page 2")
    expect(nodes.first).to_contain_text("m1-h100-f01-su01-n26")

    # and a block's own page
    page.goto(console_server.url + "/#/fleet/memphis-1/h100-f01/su02")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Block su02")
    expect(nodes).to_have_count(25)
    expect(nodes.first).to_contain_text("m1-h100-f01-su02-n01")


@contextmanager
def _repaired_afterwards(server: ConsoleServer, node: str) -> Iterator[httpx.Client]:
    """Leave the shared demo as we found it: the node back in service."""
    api = server.api()
    try:
        yield api
    finally:
        if api.get(f"/v1/nodes/{node}").json()["state"] in ("failed", "repair"):
            api.post(f"/v1/nodes/{node}/repair")
        api.close()


def _degraded_table(page: Any) -> Any:
    return page.locator("table", has=page.locator("caption", has_text="fewer usable GPUs"))


def test_a_node_failed_in_the_health_view_shows_its_contract_degraded(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    node = "m1-h100-f02-su03-n04"
    page = operator_page
    page.get_by_role("link", name="Health", exact=True).click()
    degraded = _degraded_table(page)
    expect(page.get_by_text("Every contract has all the GPUs it bought.")).to_be_visible()
    with _repaired_afterwards(console_server, node):
        page.get_by_role("textbox", name="Node name").fill(node)
        page.get_by_role("textbox", name="Reason").fill("XID 79: GPU fell off the bus")
        page.get_by_role("button", name="Mark failed").click()
        # memphis-1 is all the AI lab's, with no spare: its contract is 8 GPUs short
        row = degraded.locator("tbody tr", has_text="meridian-memphis-1")
        expect(row).to_contain_text("degraded")
        expect(row).to_contain_text("meridian-labs")
        cells = row.locator("td")
        expect(cells.nth(3)).to_have_text("226,552")  # usable
        expect(cells.nth(4)).to_have_text("226,560")  # contracted
        expect(cells.nth(5)).to_have_text("8")  # short
        expect(page.get_by_role("status").filter(has_text=f"{node} failed")).to_contain_text(
            "meridian-memphis-1 short 8 GPUs"
        )
        failed = page.locator("table", has=page.locator("caption", has_text="Failed and in-repair"))
        node_row = failed.locator("tbody tr", has_text=node)
        expect(node_row).to_contain_text("XID 79")
        expect(node_row).to_contain_text("meridian-memphis-1")
        # repaired from the same page: the contract takes the node back and is whole again
        node_row.get_by_role("button", name=f"Repair {node}").click()
        expect(page.get_by_text("Every contract has all the GPUs it bought.")).to_be_visible()
        expect(page.get_by_text("No node is failed or in repair.")).to_be_visible()
        with console_server.api() as api:
            assert api.get("/v1/placement/degraded").json() == []


def test_the_open_views_follow_a_failure_without_a_reload(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    """A node fails through the API; the health view and the fleet view already open in the
    browser show it by themselves (the shell polls /v1/console/version)."""
    node = "m1-h200-f01-su01-n01"
    page = operator_page
    page.get_by_role("link", name="Health", exact=True).click()
    expect(page.get_by_text("Every contract has all the GPUs it bought.")).to_be_visible()
    page.evaluate("window.__not_reloaded = true")
    with _repaired_afterwards(console_server, node) as api:
        r = api.post(f"/v1/nodes/{node}/fail", json={"reason": "ECC storm"})
        assert r.status_code == 200, r.text
        row = _degraded_table(page).locator("tbody tr", has_text="meridian-memphis-1")
        expect(row).to_contain_text("degraded", timeout=LIVE)
        expect(page.locator("tbody tr", has_text=node)).to_contain_text("ECC storm")

        page.get_by_role("link", name="Fleet", exact=True).click()
        down = _site_row(page, "memphis-1").first.locator("td").nth(11)  # "GPUs down"
        expect(down).to_have_text("8")
        assert api.post(f"/v1/nodes/{node}/repair").status_code == 200
        expect(down).to_have_text("0", timeout=LIVE)
    assert page.evaluate("window.__not_reloaded") is True
