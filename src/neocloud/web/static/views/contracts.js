// Contracts: the list (filters in the URL, paged by the API's cursor), a contract's page at
// #/contracts/<name> (contract.js), and the quote-and-book form (quote.js). Tenants see the
// same view; the API scopes every call to their own contracts.
import { h, fmt, badge, pagedTable } from "../lib/ui.js";
import { quotePanel } from "./quote.js";
import { renderContract, priceText } from "./contract.js";

export const live = true;

const STATES = ["quoted", "booked", "active", "ended", "cancelled"];
const TYPES = ["reserved", "dedicated-site", "on-demand", "spot", "internal"];
const SIZES = [5, 10, 25, 50, 100];
const FILTERS = ["state", "type", "tenant", "site", "size"];

/** What the selects offer, read once per visit to the view (kept across live re-renders). */
async function choicesFor(ctx) {
  if (ctx.state.choices) return ctx.state.choices;
  const may = (p) => ctx.me.permissions.includes(p);
  const [accelerators, tenants, sites] = await Promise.all([
    ctx.apiAll("accelerators").catch(() => []),
    ctx.me.operator && may("tenants:read") ? ctx.apiAll("tenants").catch(() => []) : [],
    ctx.me.operator && may("fleet:read") ? ctx.apiAll("sites").catch(() => null) : null,
  ]);
  ctx.state.choices = {
    accelerators: accelerators.map((a) => a.name),
    tenants: tenants.map((t) => t.name),
    sites: sites ? sites.map((s) => s.name) : null,
  };
  return ctx.state.choices;
}

function filtersForm(ctx, f, choices) {
  const go = (key) => (e) => {
    const next = { ...f, [key]: e.target.value };
    const q = {};
    for (const k of FILTERS) if (next[k]) q[k] = next[k];
    ctx.navigate("contracts", [], q);
  };
  const select = (id, label, key, options) =>
    h("label", { for: id }, label,
      h("select", { id, name: key, onchange: go(key) },
        options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(f[key] || "") }, text))));
  return h("form", { class: "inline", style: "margin:8px 0 12px", "aria-label": "Filter contracts", onsubmit: (e) => e.preventDefault() },
    select("f-state", "State", "state", [["", "Any state"], ...STATES.map((s) => [s, s])]),
    select("f-type", "Type", "type", [["", "Any type"], ...TYPES.map((t) => [t, t])]),
    ctx.me.operator ? select("f-tenant", "Tenant", "tenant", [["", "All tenants"], ...choices.tenants.map((t) => [t, t])]) : null,
    choices.sites ? select("f-site", "Site", "site", [["", "All sites"], ...choices.sites.map((s) => [s, s])]) : null,
    select("f-size", "Rows per page", "size", SIZES.map((n) => [n, String(n)])));
}

function where(c) {
  const sites = c.sites && c.sites.length ? c.sites : c.site ? [c.site] : [];
  return sites.length ? sites.join(", ") : "any site";
}

async function renderList(root, ctx) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || ""]));
  const size = SIZES.includes(Number(f.size)) ? Number(f.size) : 25;
  f.size = String(size);
  const choices = await choicesFor(ctx);
  const canQuote = ctx.me.permissions.includes("quotes:write");
  if (ctx.state.quoteOpen === undefined) ctx.state.quoteOpen = ctx.query.get("quote") === "1";

  const params = new URLSearchParams();
  for (const k of ["state", "type", "tenant", "site"]) if (f[k]) params.set(k, f[k]);
  const path = `contracts${params.toString() ? `?${params}` : ""}`;
  const columns = [
    { key: "name", label: "Contract", format: (v) => h("a", { href: `#/contracts/${encodeURIComponent(v)}` }, v) },
    ctx.me.operator ? { key: "tenant", label: "Tenant" } : null,
    { key: "type", label: "Type" },
    { key: "state", label: "State", format: (v) => badge(v) },
    { key: "accelerator", label: "Accelerator" },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "site", label: "Where", value: where },
    { key: "start", label: "Start", format: fmt.date },
    { key: "end", label: "End", format: fmt.date },
    { key: "price", label: "Price", num: true, value: priceText },
    { key: "contract_value", label: "Contract value", num: true, format: (v, r) => fmt.money(v, r.currency) },
  ].filter(Boolean);
  const list = pagedTable({
    api: ctx.api, path, columns, pageSize: size, state: ctx.state, key: "listPage",
    caption: ctx.me.operator ? "Contracts, oldest first" : `${ctx.me.tenant_display_name || ctx.me.tenant}'s contracts, oldest first`,
    onRow: (c) => ctx.navigate("contracts", [c.name]),
    empty: "No contract matches these filters.",
  });
  await list.ready;

  const quoteSlot = h("div", {});
  const toggle = canQuote
    ? h("button", { type: "button", "aria-expanded": String(ctx.state.quoteOpen), "aria-controls": "quote-slot", onclick: () => {
      ctx.state.quoteOpen = !ctx.state.quoteOpen;
      toggle.setAttribute("aria-expanded", String(ctx.state.quoteOpen));
      toggle.textContent = ctx.state.quoteOpen ? "Hide the quote form" : "New quote";
      quoteSlot.replaceChildren(ctx.state.quoteOpen ? quotePanel(ctx, choices) : "");
    } }, ctx.state.quoteOpen ? "Hide the quote form" : "New quote")
    : null;
  quoteSlot.id = "quote-slot";
  if (ctx.state.quoteOpen && canQuote) quoteSlot.append(quotePanel(ctx, choices));

  root.append(...[
    h("h1", {}, ctx.me.operator ? "Contracts" : "My contracts"),
    toggle ? h("div", { class: "actions" }, toggle) : null,
    quoteSlot,
    filtersForm(ctx, f, choices),
    list].filter(Boolean));
}

export async function render(root, ctx) {
  if (ctx.rest.length) return renderContract(root, ctx, ctx.rest[0]);
  return renderList(root, ctx);
}
