"""The planner and the usage limits in a real browser, on the demo (issue 9's "in the console"):
the story's comparison asked for from the console and followed to its report, whose numbers
are the API's; a malformed scenario refused at its line; what +300 MW buy, as POST /v1/limits
answers; and a customer who never sees the planner."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import ConsoleServer

RUNS = 100  # Monte Carlo runs: the story plans in a few seconds
MINUS, TIMES = "\u2212", "\u00d7"  # as the console writes them
PLAN_TIMEOUT = 180_000  # ms: the demo's planner thread on a busy 2-core machine

# Records, in the page, every state of the run's progress bar it shows.
WATCH_PROGRESS = """
() => {
  window.planProgress = [];
  const main = document.getElementById("main");
  new MutationObserver(() => {
    const bar = main.querySelector("progress");
    if (!bar) return;
    const message = main.querySelector("#plan-progress-message")?.textContent || "";
    const last = window.planProgress[window.planProgress.length - 1];
    if (!last || last[0] !== bar.value || last[1] !== message) window.planProgress.push([bar.value, message]);
  }).observe(main, { subtree: true, childList: true, attributes: true, characterData: true });
}
"""


def show(page: Any, route: str, ready: str = "main > .view") -> None:
    """Go to a view the way a link does and wait until it has rendered."""
    if page.evaluate("location.hash") == route:  # the same hash fires no hashchange
        route += "&" if "?" in route else "?"
    page.evaluate(
        "h => { document.querySelector('main > .view')?.remove(); location.hash = h; }", route
    )
    page.wait_for_selector(ready)
    assert not page.locator("main > .view > .error").count(), page.inner_text("main")


def number(text: str) -> Decimal:
    """'$1,080,000,000.00', '\u221236.5' (a minus sign), '5.902\u00d7' (times) → Decimal."""
    cleaned = text.replace("$", "").replace(",", "").replace(TIMES, "").replace(MINUS, "-")
    return Decimal(cleaned.strip())


def money(v: float, signed: bool = False) -> str:
    """The console's short money (views/plans.js `money`)."""
    sign = MINUS if v < 0 else "+" if signed and v > 0 else ""
    a = abs(v)
    if a >= 1e9:
        return f"{sign}${a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.1f}M"
    return f"{sign}${a / 1e3:.0f}k" if a >= 1e3 else f"{sign}${a:.0f}"


def numbers_table(figure: Any) -> Any:
    """Open a chart's 'Numbers' and answer its table."""
    figure.locator("summary", has_text="Numbers").click()
    return figure.locator("details table")


def column(table: Any, name: str) -> list[str]:
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    index = headers.index(name)
    return [row.locator("td").nth(index).inner_text() for row in table.locator("tbody tr").all()]


def csv_of(page: Any, scope: Any) -> str:
    """The text of the first CSV download link in SCOPE (a blob made in the page)."""
    href = scope.locator("a[download]").first.get_attribute("href")
    text: str = page.evaluate("href => fetch(href).then(r => r.text())", href)
    return text


def test_the_storys_comparison_runs_from_the_console(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    show(page, "#/plans", "#plan-scenario")
    with console_server.api() as api:
        examples = api.get("/v1/plans/examples").json()
    text = {s["file"]: s["text"] for s in examples["scenarios"]}
    # the story is what the form starts from: sell-site-1.yaml compared with keep-site-1.yaml
    expect(page.locator("#plan-source option:checked")).to_contain_text("The story")
    assert page.input_value("#plan-scenario") == text["sell-site-1.yaml"]
    assert page.input_value("#plan-compare") == text["keep-site-1.yaml"]
    page.fill("#plan-runs", str(RUNS))
    page.fill("#plan-seed", "11")

    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Run the plan").click()
    page.wait_for_function("/^#\\/plans\\/\\d+$/.test(location.hash)")
    page.wait_for_selector("[data-plan-result]", timeout=PLAN_TIMEOUT)
    seen = page.evaluate("window.planProgress")
    assert seen, "the run's progress was never shown"
    assert all(0 <= value <= 1 for value, _ in seen)
    run_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])

    with console_server.api() as api:
        run = api.get(f"/v1/plans/{run_id}").json()
    assert run["status"] == "succeeded", run
    assert (run["runs"], run["seed"], run["name"]) == (RUNS, 11, "sell-site-1 vs keep-site-1")
    report = run["result"]
    sell, keep, diff = report["plan"], report["compare"], report["difference"]
    expect(page.locator("main h1")).to_have_text(f"Plan run {run_id}: sell-site-1 vs keep-site-1")

    # headline cards: both choices and their difference
    for name, plan in (("sell-site-1", sell), ("keep-site-1", keep)):
        group = page.locator(f"[data-cards='{name}']")
        expect(group.locator(".card", has_text="Revenue (plan)")).to_contain_text(
            money(plan["totals"]["revenue"])
        )
        expect(group.locator(".card", has_text="Backlog at the end")).to_contain_text(
            money(plan["totals"]["backlog_at_end"])
        )
        coverage = f"{plan['totals']['mean_internal_coverage'] * 100:.1f}%"
        expect(group.locator(".card", has_text="Internal coverage")).to_contain_text(coverage)
    difference = page.locator("[data-cards=difference]")
    expect(difference).to_contain_text(f"sell-site-1 {MINUS} keep-site-1")
    expect(difference.locator(".card", has_text="Revenue")).to_contain_text(
        money(diff["revenue"], signed=True)
    )
    expect(difference.locator(".card", has_text="Contract margin")).to_contain_text(
        money(diff["margin"], signed=True)
    )
    assert diff["revenue"] > 0  # selling earns more in the plan (docs/planning.md)

    # the Monte Carlo's P10/P50/P90 per quarter, drawn here, with the API's numbers
    for name, plan in (("sell-site-1", sell), ("keep-site-1", keep)):
        chart = page.locator(f"[data-chart=mc-revenue][data-plan='{name}']")
        figure = chart.locator("figure")
        expect(figure.locator("svg[role=img]")).to_have_attribute(
            "aria-label", re.compile(f"Revenue per quarter: {name}, P10 / P50 / P90")
        )
        assert figure.locator("svg rect").count() >= 3 * len(plan["quarters"])
        quarters = plan["montecarlo"]["quarters"]
        numbers = numbers_table(figure)
        assert column(numbers, "") == [q["quarter"] for q in quarters]
        for p in ("P10", "P50", "P90"):
            shown = [number(c) for c in column(numbers, p)]
            wanted = [
                Decimal(str(q["revenue"][p.lower()])).quantize(Decimal("0.01")) for q in quarters
            ]
            assert shown == wanted, (name, p)
        # ... and its CSV: the exact figures of the JSON
        lines = csv_of(page, figure.locator("details")).splitlines()
        assert lines[0] == ",P10,P50,P90"
        p50 = [float(line.split(",")[2]) for line in lines[1:]]
        assert p50 == [q["revenue"]["p50"] for q in quarters]
        assert [f"{line.split(',')[0]}" for line in lines[1:]] == [q["quarter"] for q in quarters]

    # deals taken (with their sites) and turned away (with why), per choice
    sell_section = page.locator("[data-plan-section='sell-site-1']")
    taken = sell_section.locator("[data-deals=accepted] table")
    assert column(taken, "Deal") == [a["deal"] for a in sell["accepted"]]
    assert column(taken, "Site") == [a["site"] for a in sell["accepted"]]
    turned = sell_section.locator("[data-deals=rejected] table")
    reasons = dict(zip(column(turned, "Deal"), column(turned, "Reason"), strict=True))
    assert reasons == {r["deal"]: r["reason"] for r in sell["rejected"]}
    assert "margin negative" in reasons["broker-h100"]
    keep_turned = page.locator("[data-plan-section='keep-site-1'] [data-deals=rejected] table")
    expect(keep_turned).to_contain_text("rejected by decision (compare:5)")
    quarters_table = sell_section.locator("[data-quarters] table")
    assert column(quarters_table, "Quarter") == [q["quarter"] for q in sell["quarters"]]

    # the server's PNG charts, fetched with the token
    with (
        page.expect_response(
            lambda r: r.url.endswith(f"/v1/plans/{run_id}/charts/revenue.png")
        ) as answered,
        page.context.expect_page() as opened,
    ):
        page.get_by_role("button", name="Revenue fan (PNG)").click()
    assert answered.value.status == 200
    assert answered.value.headers["content-type"] == "image/png"
    image = opened.value  # the PNG, as the browser shows an image of its own
    image.wait_for_load_state()
    assert image.url.startswith("blob:")
    assert image.evaluate("document.images.length && document.images[0].naturalWidth") > 0
    image.close()

    # the run is listed among the past runs, newest first, and opens again from there
    show(page, "#/plans", "#plan-scenario")
    first = page.locator("main table").first.locator("tbody tr").first
    expect(first).to_contain_text("sell-site-1 vs keep-site-1")
    expect(first).to_contain_text("succeeded")
    first.click()
    page.wait_for_selector(f"[data-plan-result='{run_id}']")


def test_a_malformed_scenario_shows_its_error_at_its_line(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    show(page, "#/plans", "#plan-scenario")
    bad = (
        "name: broken\n"
        "start: 2026Q3\n"
        "horizon: 4\n"
        "sites:\n"
        "  - name: alpha\n"
        "    power_mw: -5\n"
        "    accelerators: [{accelerator: H100, gpus: 64}]\n"
    )
    with console_server.api() as api:
        before = api.get("/v1/plans", params={"limit": 1000}).json()["items"]
        refused = api.post("/v1/plans", json={"scenario": bad, "runs": 0})
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["line"] == 6
    page.select_option("#plan-source", "own")
    page.fill("#plan-scenario", bad)
    page.fill("#plan-compare", "")
    page.get_by_role("button", name="Run the plan").click()

    shown = page.locator("#plan-scenario-error .error")
    expect(shown).to_contain_text("Line 6: sites[0].power_mw:")
    expect(shown).to_have_attribute("data-line", "6")
    expect(page.locator("#plan-scenario")).to_have_attribute("aria-invalid", "true")
    assert "sites[0].power_mw" in error["msg"] and "greater than 0" in shown.inner_text()
    # the line is selected in the textarea, and "Show line 6" selects it again
    page.locator("#plan-scenario").evaluate("a => a.setSelectionRange(0, 0)")
    shown.get_by_role("button", name="Show line 6").click()
    selected = page.locator("#plan-scenario").evaluate(
        "a => a.value.slice(a.selectionStart, a.selectionEnd)"
    )
    assert selected == "    power_mw: -5"
    assert page.evaluate("location.hash") == "#/plans"  # still on the form, nothing queued
    with console_server.api() as api:
        assert api.get("/v1/plans", params={"limit": 1000}).json()["items"] == before

    # a YAML syntax error in the second scenario is shown at that one
    page.fill("#plan-scenario", bad.replace("-5", "5"))
    page.fill("#plan-compare", "start: 2026Q3\nhorizon: [\n")
    page.get_by_role("button", name="Run the plan").click()
    expect(page.locator("#plan-compare-error .error")).to_contain_text("Line 3:")
    expect(page.locator("#plan-compare-error .error")).to_contain_text("not valid YAML")
    expect(page.locator("#plan-scenario-error .error")).to_have_count(0)


def test_the_limits_form_shows_what_300_mw_buy(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    page = operator_page
    show(page, "#/limits", "[data-limits-answer]")
    # the story's question is the form's default: 40,000 H100 today, +300 MW
    assert page.input_value("#limits-today") == "40000"
    assert page.input_value("#limits-add") == "300"
    assert page.input_value("#limits-add-kind") == "mw"
    page.get_by_role("button", name="Work out the limits").click()
    page.wait_for_function("location.hash.includes('add=300')")
    page.wait_for_selector("[data-limits-answer]")
    with console_server.api() as api:
        answer = api.post(
            "/v1/limits",
            json={
                "capacity": [{"accelerator": "H100", "gpus": 40000}],
                "add": {"capacity": [{"accelerator": "H100", "mw": 300, "pue": 1.2}]},
            },
        ).json()
    multiplier = answer["change"]["capacity_multiplier"]
    assert 5 < multiplier < 7  # docs/limits.md: 5.90x
    card = page.locator("[data-multiplier]")
    assert float(card.get_attribute("data-multiplier")) == multiplier
    assert number(card.inner_text()) == Decimal(str(multiplier))

    table = page.locator("[data-limits-table] table")
    tiers = answer["change"]["tiers"]
    assert column(table, "Tier") == [t["tier"] for t in tiers]
    assert [number(c) for c in column(table, "Multiplier")] == [
        Decimal(str(t["multiplier"])) for t in tiers
    ]
    today = [number(c) for c in column(table, "Messages / 5 h at peak, today")]
    assert today == [t["messages_per_5h"]["peak"] for t in answer["before"]["tiers"]]
    # the bar chart of the limits before and after, with its numbers
    chart = page.locator("figure", has_text="Messages per 5 hours at peak")
    numbers = numbers_table(chart)
    after = [number(c) for c in column(numbers, "with the new capacity")]
    assert after == [t["messages_per_5h"]["peak"] for t in answer["after"]["tiers"]]

    # the new block for the paying individual tiers only: theirs grow more, the others' not
    page.get_by_label("pro", exact=True).check()
    page.get_by_label("max", exact=True).check()
    page.get_by_role("button", name="Work out the limits").click()
    page.wait_for_function("location.hash.includes('to=pro%2Cmax')")
    page.wait_for_selector("[data-limits-answer]")
    table = page.locator("[data-limits-table] table")
    multipliers = dict(zip(column(table, "Tier"), column(table, "Multiplier"), strict=True))
    assert number(multipliers["free"]) == 1
    assert number(multipliers["pro"]) > Decimal(str(multiplier))


def test_a_customer_sees_no_planner_but_may_ask_about_limits(
    tenant_page: Any, console_server: ConsoleServer
) -> None:
    page = tenant_page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    menu = page.locator("#nav a").evaluate_all("links => links.map(a => a.hash)")
    assert "#/plans" not in menu and "#/limits" in menu
    page.evaluate("location.hash = '#/plans'")
    page.wait_for_function("location.hash === '#/portal'")  # the router sends it home
    page.wait_for_selector("main > .view")
    page.evaluate("location.hash = '#/plans/1'")
    page.wait_for_function("location.hash === '#/portal'")
    assert not [u for u in asked if "/v1/plans" in u]
    show(page, "#/limits", "[data-limits-answer]")
    expect(page.locator("[data-multiplier]")).to_contain_text(TIMES)
    assert page.locator("#limits-add-site").count() == 0  # naming a site needs fleet:read


def test_the_planner_and_limits_pass_the_consoles_accessibility_audit(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    """Names, charts with their numbers and contrast (tests/web/test_accessibility.py) on the
    planner's form, a finished comparison, and the limits."""
    from tests.web.test_accessibility import audit

    page = operator_page
    with console_server.api() as api:
        done = [
            r["id"]
            for r in api.get("/v1/plans", params={"status": "succeeded", "limit": 1000}).json()[
                "items"
            ]
        ]
        if not done:
            text = {s["file"]: s["text"] for s in api.get("/v1/plans/examples").json()["scenarios"]}
            body = {"scenario": text["sell-site-1.yaml"], "compare": text["keep-site-1.yaml"]}
            done = [api.post("/v1/plans", json={**body, "runs": RUNS}).json()["id"]]
    show(page, "#/plans", "#plan-scenario")
    assert audit(page) == []
    show(page, f"#/plans/{done[-1]}", "main > .view")
    page.wait_for_selector("[data-plan-result]", timeout=PLAN_TIMEOUT)
    assert audit(page) == []
    show(page, "#/limits", "[data-limits-answer]")
    assert audit(page) == []


def test_a_scenario_that_cannot_be_planned_shows_what_binds(
    operator_page: Any, console_server: ConsoleServer
) -> None:
    """Selling memphis-1 whole and a deal for its H200 too: the run succeeds with a report
    that says the plan is infeasible, and the page names the constraint that binds."""
    oversold = (
        "extends: plan-pipeline.yaml\n"
        "name: oversold\n"
        "decisions:\n"
        "  accept: [meridian-memphis-1, helix-h200]\n"
    )
    with console_server.api() as api:
        asked = api.post("/v1/plans", json={"scenario": oversold, "runs": 0})
        assert asked.status_code == 202, asked.text
    page = operator_page
    show(page, f"#/plans/{asked.json()['id']}", "main > .view")
    page.wait_for_selector("[data-infeasible]", timeout=PLAN_TIMEOUT)
    with console_server.api() as api:
        plan = api.get(asked.headers["location"]).json()["result"]["plan"]
    assert plan["status"] == "infeasible"
    explained = page.locator("[data-infeasible]")
    expect(explained.locator("[role=alert]")).to_have_text(plan["message"])
    binds = explained.locator("table")
    assert column(binds, "What binds") == [c["message"] for c in plan["infeasible"]]
    first = plan["infeasible"][0]
    assert (first["constraint"], first["site"], first["accelerator"]) == (
        "capacity",
        "memphis-1",
        "H200",
    )
    assert "held by accepted meridian-memphis-1 (scenario:4)" in first["message"]
    expect(page.locator("[data-cards=oversold]")).to_contain_text("cannot be planned")
