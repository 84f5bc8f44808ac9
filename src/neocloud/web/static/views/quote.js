// The quote-and-book form of the contracts view: POST /v1/quotes shows ranked options (price,
// start, where, what each uses up); Book sends POST /v1/contracts {quote, option, name}
// (checked again, atomically), "Save as draft" the same with book: false (booked later from
// the contract's page with POST /v1/contracts/{name}/book). Whoever may ask for quotes
// (quotes:write: admin, sales, a tenant admin) gets the form; only contracts:write may book.
// What was typed, the quote and its outcome live in ctx.state, so a live re-render keeps them.
import { h, fmt, table } from "../lib/ui.js";
import { priceText } from "./contract.js";

const TYPES = ["reserved", "dedicated-site", "on-demand", "spot", "internal"];
const UNITS = [["gpu", "GPUs"], ["node", "whole nodes"], ["block", "whole blocks"]];
const TERMS = [["months", "months (730 h)"], ["days", "days"], ["hours", "hours"]];

/** The form's fields: name (the API's field, used to place its 422 errors) and label. */
const LABELS = {
  tenant: "Tenant", type: "Type", accelerator: "Accelerator", gpus: "GPUs", unit: "Unit",
  term: "Term", start_after: "Earliest start", start_before: "Latest start", site: "Site", same_fabric: "Same fabric",
  name: "Contract name",
};
/** API fields shown by another field of the form. */
const ALIAS = { months: "term", days: "term", hours: "term", sites: "site" };

/** What the form starts with: the URL may prefill it (#/contracts?quote=1&q_site=…). */
function defaults(query) {
  return {
    tenant: query.get("q_tenant") || "",
    type: query.get("q_type") || "reserved",
    accelerator: query.get("q_accelerator") || "",
    gpus: query.get("q_gpus") || "",
    unit: "gpu",
    term: query.get("q_months") || "12",
    termUnit: "months",
    start_after: query.get("q_start_after") || "",
    start_before: "",
    site: query.get("q_site") || "",
    same_fabric: false,
    name: "",
  };
}

function dayStart(value) {
  return value ? `${value}T00:00:00Z` : undefined;
}

/** The request body from what was typed: numbers stay as typed when they are not numbers, so
 *  the API's 422 names the field (the form does not second-guess the server). */
function quoteBody(v, me) {
  const number = (s) => (s === "" ? undefined : /^-?\d+$/.test(String(s).trim()) ? Number(s) : s);
  const body = {
    type: v.type,
    accelerator: v.accelerator || undefined,
    gpus: number(v.gpus),
    unit: v.unit,
    start_after: dayStart(v.start_after),
    start_before: dayStart(v.start_before),
    site: v.site || undefined,
    same_fabric: v.same_fabric,
  };
  if (me.operator) body.tenant = v.tenant || undefined;
  body[v.termUnit] = number(v.term);
  return body;
}

function newKey() {
  return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** Split a problem's `errors` into those a field of the form shows and the rest. */
export function fieldErrors(err) {
  const byField = {};
  const other = [];
  for (const e of (err.problem && err.problem.errors) || []) {
    const loc = (e.loc || []).filter((p) => p !== "body" && p !== "query");
    const field = ALIAS[loc[0]] || loc[0];
    if (field && LABELS[field]) (byField[field] = byField[field] || []).push(e.msg);
    else other.push(e);
  }
  return { byField, other };
}

/** A labelled control with its error under it. `control` may be a wrapper (the term: a
 *  number and its unit): its first input is the one the label and the error describe. */
function field(id, name, control, errors, hint) {
  const err = errors[name];
  const errId = `${id}-error`;
  const input = control.matches("input, select") ? control : control.querySelector("input, select");
  input.id = id;
  if (!input.name) input.name = name;
  if (err) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", errId);
  }
  control.style.maxWidth = "100%";
  return h("label", { for: id, style: "align-content:start" }, LABELS[name], control,
    hint ? h("span", { class: "muted", style: "font-weight:400" }, hint) : null,
    err ? h("span", { class: "field-error", id: errId, role: "alert", style: "color:var(--bad);font-weight:600" }, `${LABELS[name]}: ${err.join("; ")}`) : null);
}

function select(options, value, onchange) {
  return h("select", { onchange }, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)));
}

function optionsTable(ctx, q, quote, redraw) {
  const canBook = ctx.me.permissions.includes("contracts:write");
  const book = async (option, draft) => {
    q.busy = true;
    q.outcome = null;
    redraw();
    const body = { quote: quote.id, option: option.option, book: !draft };
    if (q.values.name.trim()) body.name = q.values.name.trim();
    q.keys = q.keys || {};
    const keyOf = `${quote.id}:${option.option}:${draft}:${body.name || ""}`;
    q.keys[keyOf] = q.keys[keyOf] || newKey();
    try {
      const contract = await ctx.api("contracts", { method: "POST", body, headers: { "Idempotency-Key": q.keys[keyOf] } });
      q.outcome = { contract, draft };
      q.errors = {};
      q.busy = false;
      await ctx.refresh(); // the list below shows it (the panel is drawn again from ctx.state)
      return;
    } catch (err) {
      const { byField } = fieldErrors(err);
      q.errors = byField;
      q.outcome = { error: err };
    }
    q.busy = false;
    redraw();
  };
  const columns = [
    { key: "option", label: "#", num: true },
    { key: "site", label: "Site" },
    { key: "start", label: "Start", format: fmt.time },
    { key: "end", label: "End", format: fmt.time },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "mw", label: "MW", num: true, format: (v) => fmt.num(v, 2) },
    { key: "price", label: "Price", num: true, value: priceText },
    { key: "contract_value", label: "Contract value", num: true, format: (v, r) => fmt.money(v, r.currency) },
    { key: "uses", label: "What it uses up", format: (uses, r) => [
      uses.length ? h("ul", { style: "margin:0;padding-left:16px" }, uses.map((u) => h("li", {}, u.detail))) : "—",
      r.relocations && r.relocations.length ? h("div", { class: "muted" }, `moves ${r.relocations.map((m) => `${m.contract} (${fmt.int(m.gpus)} GPUs → ${m.to_site})`).join(", ")}`) : null,
    ] },
  ];
  if (canBook) {
    columns.push({ key: "option", label: "", format: (_, r) => h("div", { class: "actions", style: "margin:0" },
      h("button", { type: "button", class: "primary", disabled: q.busy, onclick: () => book(r, false), "aria-label": `Book option ${r.option}` }, "Book"),
      h("button", { type: "button", disabled: q.busy, onclick: () => book(r, true), "aria-label": `Save option ${r.option} as a draft` }, "Save as draft")) });
  }
  return table({ columns, rows: quote.options, caption: `Quote ${quote.id}: ${quote.options.length} option${quote.options.length === 1 ? "" : "s"} (valid until ${fmt.time(quote.expires_at)})`, pageSize: 20 });
}

function unavailable(q, quote, redraw, ask) {
  const u = quote.unavailable;
  return h("div", { class: "panel", role: "status" },
    h("p", { class: "error" }, u.detail),
    u.missing.length ? table({
      caption: "What is missing where",
      columns: [
        { key: "site", label: "Site" },
        { key: "possible", label: "Possible", num: true, format: fmt.int },
        { key: "missing", label: "Missing", num: true, format: fmt.int },
        { key: "reason", label: "Why" },
      ],
      rows: u.missing,
    }) : null,
    u.earliest_start ? h("button", { type: "button", onclick: () => {
      q.values.start_after = u.earliest_start.slice(0, 10);
      q.values.start_before = "";
      if (u.earliest_site) q.values.site = u.earliest_site;
      redraw();
      ask();
    } }, `Quote from the earliest start that fits (${fmt.date(u.earliest_start)}${u.earliest_site ? ` at ${u.earliest_site}` : ""})`) : null);
}

function outcome(q) {
  const o = q.outcome;
  if (!o) return null;
  if (o.error) {
    const { other } = fieldErrors(o.error);
    return h("div", { class: "error", role: "alert" }, o.error.message,
      other.length ? h("ul", {}, other.map((e) => h("li", {}, e.site ? `${e.site}: ${e.possible} possible, ${e.missing} missing (${e.reason})` : `${(e.loc || []).join(".")}: ${e.msg}`))) : null);
  }
  const c = o.contract;
  const where = (c.sites || [c.site]).filter(Boolean).join(", ") || "—";
  const calendar = new URLSearchParams({ site: c.site || "", accelerator: c.accelerator || "" });
  return h("div", { class: "notice", role: "status" },
    o.draft ? `Saved ${c.name} as a draft (holds nothing until booked). ` : `Booked ${c.name}: ${fmt.int(c.gpus)} ${c.accelerator || ""} GPUs at ${where}, ${fmt.date(c.start)} → ${fmt.date(c.end)}. `,
    h("a", { href: `#/contracts/${encodeURIComponent(c.name)}` }, `Open ${c.name}`),
    q.operator && !o.draft ? [" · ", h("a", { href: `#/calendar?${calendar}` }, "See it on the capacity calendar")] : null);
}

/** The quote-and-book panel. `choices`: {tenants, accelerators, sites} for the selects. */
export function quotePanel(ctx, choices) {
  const q = ctx.state.quote || (ctx.state.quote = { values: defaults(ctx.query), errors: {}, quote: null, outcome: null, busy: false });
  q.operator = ctx.me.operator;
  const panel = h("section", { class: "panel", "aria-labelledby": "quote-title" });
  const v = q.values;
  const set = (key) => (e) => { v[key] = e.target.type === "checkbox" ? e.target.checked : e.target.value; };

  const ask = async () => {
    q.busy = true;
    q.errors = {};
    q.outcome = null;
    q.quote = null;
    redraw();
    try {
      q.quote = await ctx.api("quotes", { method: "POST", body: quoteBody(v, ctx.me) });
    } catch (err) {
      const { byField, other } = fieldErrors(err);
      q.errors = byField;
      if (!Object.keys(byField).length || other.length) q.outcome = { error: err };
    }
    q.busy = false;
    redraw();
  };

  const redraw = () => {
    const e = q.errors;
    const form = h("form", { class: "stack", novalidate: true, style: "max-width:none", onsubmit: (event) => { event.preventDefault(); ask(); } },
      h("div", { class: "grid" },
        ctx.me.operator
          ? field("q-tenant", "tenant", select([["", "— choose —"], ...choices.tenants.map((t) => [t, t])], v.tenant, set("tenant")), e)
          : null,
        field("q-type", "type", select(TYPES.filter((t) => ctx.me.operator || t !== "internal").map((t) => [t, t]), v.type, set("type")), e),
        field("q-accelerator", "accelerator", select([["", "— any (dedicated site) —"], ...choices.accelerators.map((a) => [a, a])], v.accelerator, set("accelerator")), e),
        field("q-gpus", "gpus", h("input", { type: "text", inputmode: "numeric", value: v.gpus, oninput: set("gpus"), autocomplete: "off" }), e),
        field("q-unit", "unit", select(UNITS, v.unit, set("unit")), e),
        field("q-term", "term", h("span", { style: "display:flex;gap:6px" },
          h("input", { type: "text", inputmode: "numeric", value: v.term, oninput: set("term"), style: "width:6em" }),
          h("select", { "aria-label": "Term unit", name: "term_unit", onchange: set("termUnit") },
            TERMS.map(([u, text]) => h("option", { value: u, selected: u === v.termUnit }, text)))), e),
        field("q-start_after", "start_after", h("input", { type: "date", value: v.start_after, onchange: set("start_after") }), e, "default: the next hour"),
        field("q-start_before", "start_before", h("input", { type: "date", value: v.start_before, onchange: set("start_before") }), e, "default: 90 days later"),
        choices.sites
          ? field("q-site", "site", select([["", "Any site"], ...choices.sites.map((s) => [s, s])], v.site, set("site")), e)
          : field("q-site", "site", h("input", { type: "text", value: v.site, oninput: set("site"), placeholder: "any site" }), e),
        h("label", { for: "q-same_fabric", style: "display:flex;gap:6px;align-items:center" },
          h("input", { id: "q-same_fabric", type: "checkbox", checked: v.same_fabric, onchange: set("same_fabric") }), LABELS.same_fabric)),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: q.busy }, q.busy && !q.quote ? "Quoting…" : "Get quote")));
    const result = [];
    if (q.quote) {
      if (q.quote.options.length) {
        if (ctx.me.permissions.includes("contracts:write")) {
          result.push(h("div", { class: "grid", style: "margin:8px 0" },
            field("q-name", "name", h("input", { type: "text", value: v.name, oninput: set("name"), placeholder: "generated from tenant and type", autocomplete: "off" }), e)));
        } else {
          result.push(h("p", { class: "muted" }, "Your operator's sales team books quotes: tell them the quote number and the option you want."));
        }
        result.push(optionsTable(ctx, q, q.quote, redraw));
      } else if (q.quote.unavailable) {
        result.push(unavailable(q, q.quote, redraw, ask));
      }
    }
    panel.replaceChildren(...[
      h("h2", { id: "quote-title" }, ctx.me.permissions.includes("contracts:write") ? "Quote and book" : "Ask for a quote"),
      form, ...result, outcome(q)].filter(Boolean));
  };
  redraw();
  return panel;
}
