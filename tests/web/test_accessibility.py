"""Keyboard and screen-reader basics of every main view, as the operator and as a customer,
in a real browser on the demo (issue 8's "good manners"):

- every form control (input, select, textarea, button) and every link has an accessible
  name (aria-labelledby, aria-label, a label — by `for` or around it —, its text or value);
- every chart is an SVG with role=img and an aria-label, with its numbers as a table under it;
- every piece of visible text has a contrast of at least 4.5:1 with the background it is
  drawn on (3:1 for large text: 24 px, or 18.66 px bold), worked out in the page from the
  computed styles with WCAG's relative luminance, compositing translucent colours and
  backgrounds up to the first opaque one (an SVG label over a chart's shape is read against
  that shape); hidden text is skipped, and so are disabled controls (WCAG exempts them);
- the menu and a table's clickable rows work from the keyboard: Tab reaches them (showing
  where the focus is) and Enter opens what a click opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from tests.web.conftest import ConsoleServer, sign_in, signed_in_page

# Runs in the page on <body> once a view has rendered; answers a list of problems, each a
# line saying what is wrong and where. The "Numbers" under the charts are opened first so
# that their tables are checked too.
AUDIT = r"""
() => {
  const problems = [];
  const where = (el) => {
    const html = el.outerHTML.replace(/\s+/g, " ");
    return html.length > 140 ? `${html.slice(0, 140)}…` : html;
  };
  const squash = (s) => (s || "").replace(/\s+/g, " ").trim();
  const main = document.getElementById("main");
  main.querySelectorAll("details").forEach((d) => { d.open = true; });

  // 1. Accessible names.
  const controls = "input, select, textarea, button";
  const labelText = (label) => {
    const copy = label.cloneNode(true);
    copy.querySelectorAll(controls).forEach((c) => c.remove());
    return squash(copy.textContent);
  };
  const nameOf = (el) => {
    const by = el.getAttribute("aria-labelledby");
    if (by) {
      const text = squash(by.split(/\s+/).map((id) => document.getElementById(id)?.textContent || "").join(" "));
      if (text) return text;
    }
    const aria = squash(el.getAttribute("aria-label"));
    if (aria) return aria;
    if (el.id) {
      for (const label of document.querySelectorAll(`label[for="${CSS.escape(el.id)}"]`)) {
        if (labelText(label)) return labelText(label);
      }
    }
    const around = el.closest("label");
    if (around && labelText(around)) return labelText(around);
    if (el.tagName === "BUTTON" || el.tagName === "A") return squash(el.textContent);
    if (el.tagName === "INPUT" && ["submit", "button", "reset"].includes(el.type)) return squash(el.value);
    return squash(el.getAttribute("title"));
  };
  for (const el of document.body.querySelectorAll(`${controls}, a[href]`)) {
    if (el.type === "hidden") continue;
    if (!nameOf(el)) problems.push(`no accessible name: ${where(el)}`);
  }

  // 2. Charts: an image with a name, and its numbers as a table.
  for (const svg of main.querySelectorAll("svg")) {
    if (svg.getAttribute("role") !== "img") problems.push(`chart without role=img: ${where(svg)}`);
    if (!squash(svg.getAttribute("aria-label"))) problems.push(`chart without aria-label: ${where(svg)}`);
    const figure = svg.closest("figure");
    const numbers = figure && figure.querySelector("details > summary + * table, details table");
    if (!numbers || !numbers.querySelector("tbody tr td")) {
      problems.push(`chart without its numbers as a table: ${svg.getAttribute("aria-label")}`);
    }
  }

  // 3. Contrast.
  const parse = (value) => {
    const m = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(value || "");
    if (!m) return null;
    return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])];
  };
  const over = (top, below) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat(1);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const boxBackground = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      if (e instanceof SVGElement && !(e instanceof SVGSVGElement)) continue;
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg[3] > 0) {
        layers.push(bg);
        if (bg[3] >= 1) break;
      }
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  // SVG text is read against the topmost shape drawn before it under its middle, if any
  // (by geometry: elementsFromPoint sees only what is in the viewport), else the page.
  const svgBackground = (el) => {
    const svg = el.ownerSVGElement;
    const box = el.getBoundingClientRect();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    const shapes = [...svg.querySelectorAll("rect, circle, ellipse, polygon, path")]
      .filter((e) => e.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
    for (const e of shapes.reverse()) {
      const r = e.getBoundingClientRect();
      if (x < r.left || x > r.right || y < r.top || y > r.bottom) continue;
      const fill = parse(getComputedStyle(e).fill);
      if (fill && fill[3] > 0) return over(fill, boxBackground(svg));
    }
    return boxBackground(svg);
  };
  const opacity = (el) => {
    let o = 1;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  };
  const seen = new Map();
  const check = (el, fgValue, what) => {
    const style = getComputedStyle(el);
    const fg = parse(fgValue);
    const isSvg = el instanceof SVGElement;
    const bg = isSvg ? svgBackground(el) : boxBackground(el);
    if (!fg) { problems.push(`unreadable colour ${fgValue}: ${where(el)}`); return; }
    const shown = over([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    const got = ratio(shown, bg);
    if (got + 1e-9 < need) {
      const key = `${el.tagName}.${el.getAttribute("class") || ""}|${fgValue}|${bg.join(",")}`;
      if (!seen.has(key)) {
        seen.set(key, 0);
        problems.push(`contrast ${got.toFixed(2)}:1 < ${need}:1 for ${what} "${squash(el.textContent || el.value).slice(0, 40)}" (${fgValue} on rgb(${bg.slice(0, 3).map(Math.round).join(", ")})): ${where(el)}`);
      }
      seen.set(key, seen.get(key) + 1);
    }
  };
  const visible = (el) => {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const box = el.getBoundingClientRect();
    if (box.width * box.height <= 1) return false; // .sr-only: for screen readers only
    return box.right > 0 && box.bottom + window.scrollY > 0; // the skip link waits off-screen
  };
  const skip = "script, style, title, option, desc";
  for (const el of document.body.querySelectorAll("*")) {
    if (el.matches(skip) || el.closest(":disabled")) continue;
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const isField = el.matches("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea");
    if (!ownText && !isField) continue;
    if (el instanceof SVGElement && !el.matches("text, tspan")) continue;
    if (!visible(el)) continue;
    const style = getComputedStyle(el);
    check(el, el instanceof SVGElement ? style.fill : style.color, el.tagName.toLowerCase());
    if (el.matches("input[placeholder]:placeholder-shown")) {
      check(el, getComputedStyle(el, "::placeholder").color, "placeholder");
    }
  }
  return problems;
}
"""

# Which views, for whom: (test id, role, hash). `{site}`, `{fabric}`, `{contract}` and
# `{invoice}` come from the demo's data for the role.
VIEWS = [
    ("operator-fleet", "operator", "#/fleet"),
    ("operator-fleet-site", "operator", "#/fleet/{site}"),
    ("operator-fleet-fabric", "operator", "#/fleet/{site}/{fabric}"),
    ("operator-calendar", "operator", "#/calendar"),
    ("operator-contracts-and-quote-form", "operator", "#/contracts?quote=1"),
    ("operator-contract", "operator", "#/contracts/{contract}"),
    ("operator-health", "operator", "#/health"),
    ("operator-money", "operator", "#/money"),
    ("operator-invoices", "operator", "#/invoices"),
    ("operator-invoice", "operator", "#/invoices/{invoice}"),
    ("tenant-portal", "tenant", "#/portal"),
    ("tenant-contracts-and-quote-form", "tenant", "#/contracts?quote=1"),
    ("tenant-contract", "tenant", "#/contracts/{contract}"),
    ("tenant-usage", "tenant", "#/usage"),
    ("tenant-invoices", "tenant", "#/invoices"),
    ("tenant-invoice", "tenant", "#/invoices/{invoice}"),
]


def details_for(server: ConsoleServer, token: str) -> dict[str, str]:
    """The largest site and its largest fabric, a contract in force, an invoice with lines."""
    with server.api(token) as api:
        contracts = api.get("/v1/contracts", params={"state": "active", "limit": 100}).json()
        invoices = api.get("/v1/invoices", params={"kind": "invoice", "limit": 100}).json()
        out = {
            "contract": contracts["items"][0]["name"],
            "invoice": str(max(invoices["items"], key=lambda i: i["lines"])["id"]),
        }
        if token == server.admin_token:
            sites = api.get("/v1/sites", params={"limit": 100}).json()["items"]
            site = max(sites, key=lambda s: s["nodes"])["name"]
            fabrics = api.get(f"/v1/sites/{site}/fabrics").json()
            out |= {"site": site, "fabric": max(fabrics, key=lambda f: f["nodes"])["name"]}
    return out


@pytest.fixture(scope="module")
def pages(browser: Any, console_server: ConsoleServer) -> Iterator[dict[str, Any]]:
    """One signed-in page per role for the module's views (signing in once per role)."""
    operator = signed_in_page(browser, console_server, console_server.admin_token)
    tenant = signed_in_page(browser, console_server, console_server.tenant_token)
    yield {
        "operator": (next(operator), details_for(console_server, console_server.admin_token)),
        "tenant": (next(tenant), details_for(console_server, console_server.tenant_token)),
    }
    for gen in (operator, tenant):
        next(gen, None)  # closes the context


def show(page: Any, route: str) -> None:
    """Go to a view the way a link does and wait until it has rendered."""
    if page.evaluate("location.hash") == route:  # the same hash fires no hashchange
        route += "&" if "?" in route else "?"
    page.evaluate(
        "h => { document.querySelector('main > .view')?.remove(); location.hash = h; }", route
    )
    page.wait_for_selector("main > .view")
    assert not page.locator("main > .view > .error").count(), page.inner_text("main")


def audit(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(AUDIT)
    return problems


@pytest.mark.parametrize(("role", "route"), [v[1:] for v in VIEWS], ids=[v[0] for v in VIEWS])
def test_names_charts_and_contrast(pages: dict[str, Any], role: str, route: str) -> None:
    page, details = pages[role]
    show(page, route.format(**details))
    assert audit(page) == []


def test_the_quote_forms_errors_and_options(pages: dict[str, Any]) -> None:
    """The quote form as it answers: a bad entry named at its field, then the options with
    their Book and Save-as-draft buttons (a quote books nothing)."""
    page, _ = pages["operator"]
    show(page, "#/contracts?quote=1")
    page.locator("#q-tenant").select_option("helix-bio")
    page.locator("#q-accelerator").select_option("GB200")
    page.locator("#q-gpus").fill("0")
    page.get_by_role("button", name="Get quote").click()
    page.wait_for_selector("#q-gpus-error")
    assert audit(page) == []
    page.locator("#q-gpus").fill("72")
    page.get_by_role("button", name="Get quote").click()
    page.wait_for_selector("#quote-slot table tbody tr")
    assert page.get_by_role("button", name="Book option 1").count() == 1
    assert audit(page) == []


def test_the_sign_in_page(browser: Any, console_server: ConsoleServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_server.url + "/")
    page.wait_for_selector(".signin form")
    assert audit(page) == []
    sign_in(page, "nc_not_a_real_token")  # refused: the form says so in an alert
    page.wait_for_selector(".signin [role=alert]")
    assert audit(page) == []
    context.close()


def test_a_heatmaps_conflict_marks_are_readable_on_every_cell_colour(
    browser: Any, console_server: ConsoleServer
) -> None:
    """The calendar's "!" on a conflict's cell, whatever its fill: no supply, every committed
    share from 0 to 1, committed beyond supply (the demo may have no conflict to show)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_server.url + "/")
    page.wait_for_selector(".signin form")
    page.evaluate(
        """async () => {
          const { heatmap } = await import("/lib/charts.js");
          const values = [null, ...Array.from({ length: 21 }, (_, i) => i / 20), 1.5];
          const chart = heatmap({
            title: "Conflict marks",
            rowLabels: ["site · GPU"],
            colLabels: values.map((_, i) => `c${i}`),
            cells: [values.map((value) => ({ value, label: String(value), mark: "power" }))],
          });
          const view = document.createElement("div");
          view.className = "view";
          view.append(chart);
          document.getElementById("main").replaceChildren(view);
        }"""
    )
    assert page.locator("main svg text", has_text="!").count() == 23
    assert audit(page) == []
    context.close()


def test_every_badge_and_link_reads_on_a_focused_row(
    browser: Any, console_server: ConsoleServer
) -> None:
    """A clickable row under the pointer or the keyboard's focus takes a tint: the badges
    of every kind of state, the links and the muted text in it must still read."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_server.url + "/")
    page.wait_for_selector(".signin form")
    page.evaluate(
        """async () => {
          const { h, table, badge } = await import("/lib/ui.js");
          const states = ["active", "booked", "degraded", "failed", "other"];
          const view = h("div", { class: "view" }, table({
            columns: [
              { key: "name", label: "Name", format: (v) => h("a", { href: "#/x" }, v) },
              { key: "state", label: "State", format: (v) => badge(v) },
              { key: "note", label: "Note", format: (v) => h("span", { class: "muted" }, v) },
            ],
            rows: states.map((state) => ({ name: `row-${state}`, state, note: "muted" })),
            onRow: () => {},
          }));
          document.getElementById("main").replaceChildren(view);
        }"""
    )
    rows = page.locator("main tr.clickable")
    assert rows.count() == 5
    for i in range(5):
        rows.nth(i).focus()
        assert audit(page) == [], f"row {i}"
    context.close()


def tab_to(page: Any, selector: str, limit: int = 80) -> Any:
    """Press Tab until the focus is on an element matching `selector`; answer it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return page.evaluate_handle("document.activeElement")
    raise AssertionError(f"Tab never reached {selector}")


def focus_shows(page: Any) -> bool:
    """Whether the focused element is marked: an outline (the console's :focus-visible)."""
    return bool(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); "
            "return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"
        )
    )


def press_enter_and_wait(page: Any, route_prefix: str) -> None:
    """Enter on the focused element, then wait for the view it opens (not the one before)."""
    page.evaluate("document.querySelector('main > .view').dataset.before = '1'")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "p => location.hash.startsWith(p) && document.querySelector('main > .view:not([data-before])')",
        arg=route_prefix,
    )


@pytest.mark.parametrize(
    ("role", "start", "menu", "row_route"),
    [
        ("operator", "#/fleet", "Contracts", "#/contracts/"),
        ("operator", "#/contracts", "Fleet", "#/fleet/"),
        ("tenant", "#/portal", "Invoices", "#/invoices/"),
    ],
)
def test_the_menu_and_a_tables_rows_work_from_the_keyboard(
    browser: Any, console_server: ConsoleServer, role: str, start: str, menu: str, row_route: str
) -> None:
    token = console_server.admin_token if role == "operator" else console_server.tenant_token
    pages = signed_in_page(browser, console_server, token)
    page = next(pages)
    try:
        show(page, start)
        # The page's first stop, "Skip to content", moves the focus to the view and leaves
        # the address as it was.
        before = page.evaluate("location.hash")
        page.focus("a.skip")
        page.keyboard.press("Shift+Tab")  # nothing before it: the focus leaves the page
        assert page.evaluate("document.activeElement === document.body")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.matches('a.skip')")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        assert page.evaluate("location.hash") == before
        # From there, Tab reaches the menu.
        page.focus("a.skip")
        link = tab_to(page, f"#nav a[href='#/{menu.lower()}']")
        assert focus_shows(page)
        assert link.evaluate("a => a.textContent") == menu
        press_enter_and_wait(page, f"#/{menu.lower()}")
        assert page.locator("#nav a[aria-current=page]").inner_text() == menu
        # The view takes the focus; Tab goes on into it, to the list's first clickable row.
        row = tab_to(page, "main tr.clickable")
        assert focus_shows(page)
        name = row.evaluate("r => (r.querySelector('td a') || r.querySelector('td')).textContent")
        press_enter_and_wait(page, row_route)
        opened = page.inner_text("main h1") + unquote(page.evaluate("location.hash"))
        assert name.strip() in opened
    finally:
        next(pages, None)
