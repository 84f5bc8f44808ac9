"""The operator's fleet and health views in a real browser, on the demo; sign-in; offline."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.web.conftest import ConsoleServer, sign_in


def test_a_bad_token_is_refused_on_the_sign_in_form(
    browser: Any, console_server: ConsoleServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_server.url + "/")
    sign_in(page, "nc_not_a_real_token")
    alert = page.locator(".signin [role=alert]")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("not accepted")
    # still on the form, signed in as no one
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#nav a")).to_have_count(0)
    context.close()


def test_the_console_is_served_offline(browser: Any, console_server: ConsoleServer) -> None:
    """Every request the page makes, signed in and on a view, goes to the server itself."""
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(console_server.url + "/")
    sign_in(page, console_server.admin_token)
    page.wait_for_selector("main > .view")
    page.wait_for_load_state("networkidle")
    own = urlsplit(console_server.url).netloc
    foreign = [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != own]
    assert foreign == []
    assert any(u.endswith("/app.js") for u in requests)
    assert any(u.endswith("/app.css") for u in requests)
    context.close()
