// One contract (#/contracts/<name>): its terms (GET /v1/contracts/{c}), the capacity it holds
// now — contracted vs allocated vs usable GPUs and its nodes (GET …/allocation) — hour by
// hour availability (GET …/availability), its claims on the calendar and floors, and every
// revision (GET …/history). A draft (`quoted`) can be booked here (POST …/book).
import { h, fmt, badge, cards, table, pagedTable, errorBox } from "../lib/ui.js";
import { lineChart } from "../lib/charts.js";

const WINDOWS = { 24: "last 24 hours", 168: "last 7 days", 720: "last 30 days" };

/** A price with its unit, as a person reads it. */
export function priceText(c) {
  const per = { "per-gpu-hour": "/ GPU-hour", "monthly-fee": "/ month", "per-mw-month": "/ MW-month" }[c.price_model] || c.price_model;
  return `${fmt.cents(c.price, c.currency)} ${per}`;
}

function iso(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A section whose data failed to load shows its error and leaves the rest of the page. */
function section(id, title, body) {
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), body);
}

function termsCards(c) {
  const sites = c.sites && c.sites.length ? c.sites.join(", ") : c.site || "any site";
  return cards([
    ["Tenant", c.tenant],
    ["Type", c.type],
    ["Accelerator", c.accelerator || "—"],
    [c.mw ? "GPUs / MW" : "GPUs", `${fmt.int(c.gpus)}${c.mw ? ` / ${fmt.mw(c.mw)}` : ""}${c.unit !== "gpu" ? ` (whole ${c.unit}s)` : ""}`],
    ["Where", sites + (c.same_fabric ? " (one fabric)" : "")],
    ["Term", `${fmt.date(c.start)} → ${fmt.date(c.end)}`],
    ["Price", priceText(c)],
    ["Contract value", fmt.money(c.contract_value, c.currency)],
    ["SLA", c.sla_tier],
    ["Take or pay", c.take_or_pay ? "yes" : "no"],
    ["Prepaid", `${fmt.num(c.prepayment_pct, 0)}%`],
    ["Lendable as spot", c.lendable ? "yes" : "no"],
  ]);
}

function allocationSection(ctx, name, alloc) {
  if (alloc instanceof Error) return section("c-alloc", "Capacity now", errorBox(alloc));
  const short = alloc.shortfall_gpus > 0;
  const nodes = pagedTable({
    api: async (path) => {
      const page = await ctx.api(path);
      return { items: page.nodes, next_cursor: page.next_cursor };
    },
    path: `contracts/${encodeURIComponent(name)}/allocation`,
    pageSize: 20,
    state: ctx.state,
    key: "nodesPage",
    empty: "The contract holds no nodes now.",
    columns: [
      { key: "name", label: "Node" },
      { key: "site", label: "Site" },
      { key: "fabric", label: "Fabric" },
      { key: "block", label: "Block" },
      { key: "gpus", label: "GPUs", num: true },
      { key: "state", label: "State", format: (v) => badge(v) },
      { key: "since", label: "Since", format: fmt.time },
      { key: "lent", label: "Lent as spot", format: (v) => (v ? "yes" : "no") },
    ],
  });
  return section("c-alloc", "Capacity now: contracted vs usable",
    h("div", { id: "allocation" },
      cards([
        ["Contracted GPUs", fmt.int(alloc.contracted_gpus)],
        ["Allocated GPUs", fmt.int(alloc.allocated_gpus)],
        ["Usable GPUs", fmt.int(alloc.usable_gpus)],
        ["Short", fmt.int(alloc.shortfall_gpus)],
      ]),
      short
        ? h("p", { class: "error", role: "alert" }, `Degraded${alloc.degraded_since ? ` since ${fmt.time(alloc.degraded_since)}` : ""}: ${fmt.int(alloc.shortfall_gpus)} of ${fmt.int(alloc.contracted_gpus)} contracted GPUs are not usable (failed nodes with nothing left to heal from).`)
        : alloc.contracted_gpus > 0 ? h("p", { class: "muted" }, "Every contracted GPU is usable.") : h("p", { class: "muted" }, "Nothing is contracted at this hour (outside the term, or a type that holds no capacity)."),
      h("details", { open: ctx.state.nodesOpen, ontoggle: (e) => { ctx.state.nodesOpen = e.target.open; } },
        h("summary", {}, `The ${fmt.int(alloc.nodes_total)} nodes it holds`), nodes)));
}

function availabilitySection(ctx, name, avail, hours) {
  const chooser = h("label", { for: "c-window" }, "Window",
    h("select", { id: "c-window", onchange: (e) => { ctx.state.window = Number(e.target.value); ctx.refresh(); } },
      Object.entries(WINDOWS).map(([v, text]) => h("option", { value: v, selected: Number(v) === hours }, text))));
  if (avail instanceof Error) return section("c-avail", "Availability", h("div", {}, chooser, errorBox(avail)));
  const labels = avail.hours.map((x) => (hours > 24 ? x.start.slice(5, 13).replace("T", " ") : x.start.slice(11, 16)));
  const contracted = avail.hours.map((x) => x.contracted_gpus);
  const usable = avail.hours.map((x) => x.contracted_gpus - x.lost_gpu_seconds / 3600);
  return section("c-avail", "Availability",
    h("div", {},
      h("form", { class: "inline", onsubmit: (e) => e.preventDefault() }, chooser),
      cards([[`Availability (${WINDOWS[hours]})`, avail.availability === null ? "— (nothing contracted)" : fmt.pct(avail.availability, 3)]]),
      contracted.some((x) => x > 0)
        ? lineChart({
          title: `Contracted vs usable GPUs by hour, ${WINDOWS[hours]} (UTC)`,
          labels,
          series: [{ name: "contracted", values: contracted }, { name: "usable", values: usable }],
          filename: `${name}-availability.csv`,
        })
        : h("p", { class: "muted" }, "Nothing was contracted in this window: no availability to chart.")));
}

function claimsSection(c) {
  return section("c-claims", "Held on the capacity calendar",
    h("div", {},
      table({
        caption: "Claims",
        columns: [
          { key: "site", label: "Site" },
          { key: "accelerator", label: "Accelerator" },
          { key: "fabric", label: "Fabric" },
          { key: "gpus", label: "GPUs", num: true, format: fmt.int },
          { key: "start", label: "From", format: fmt.time },
          { key: "end", label: "Until", format: fmt.time },
          { key: "exclusive", label: "Whole site", format: (v) => (v ? "yes" : "no") },
        ],
        rows: c.claims,
        empty: c.state === "quoted" ? "A draft holds nothing until it is booked." : "This contract holds no capacity (on-demand and spot run on what is free).",
      }),
      c.floors.length ? table({
        caption: "Internal floors (never sold)",
        columns: [
          { key: "site", label: "Site" },
          { key: "accelerator", label: "Accelerator" },
          { key: "gpus", label: "GPUs", num: true, format: fmt.int },
          { key: "share", label: "Share", num: true, format: (v) => (v === null ? "—" : fmt.pct(v)) },
          { key: "start", label: "From", format: fmt.date },
          { key: "end", label: "Until", format: fmt.date },
        ],
        rows: c.floors,
      }) : null));
}

function historySection(ctx, history) {
  if (history instanceof Error) return section("c-history", "History", errorBox(history));
  const summary = (s) => `${fmt.int(s.gpus)} ${s.accelerator || ""} GPUs at ${(s.sites || [s.site]).filter(Boolean).join(", ") || "any site"}, ${fmt.date(s.start)} → ${fmt.date(s.end)}, ${s.stored_state || s.state}`;
  return section("c-history", "History",
    table({
      columns: [
        { key: "revision", label: "Rev.", num: true },
        { key: "action", label: "What" },
        { key: "at", label: "When", format: fmt.time },
        { key: "actor", label: "Who" },
        { key: "reason", label: "Why" },
        { key: "snapshot", label: "After it", value: (r) => summary(r.snapshot || {}) },
      ],
      rows: history,
      state: ctx.state,
      key: "historyPage",
      pageSize: 10,
    }));
}

function actions(ctx, c, root) {
  if (c.state !== "quoted" || !ctx.me.permissions.includes("contracts:write")) return null;
  const slot = h("div", {});
  const button = h("button", { type: "button", class: "primary", onclick: async () => {
    button.disabled = true;
    slot.replaceChildren();
    try {
      await ctx.api(`contracts/${encodeURIComponent(c.name)}/book`, { method: "POST" });
      ctx.state.notice = `Booked ${c.name}.`;
      await ctx.refresh();
    } catch (err) {
      button.disabled = false;
      slot.replaceChildren(errorBox(err));
    }
  } }, "Book now");
  return h("div", {}, h("div", { class: "actions" }, button, h("span", { class: "muted" }, "A draft holds nothing: booking checks the calendar now and holds the capacity if it fits.")), slot);
}

export async function renderContract(root, ctx, name) {
  const hours = WINDOWS[ctx.state.window] ? ctx.state.window : 24;
  const end = new Date();
  end.setUTCMinutes(0, 0, 0);
  end.setUTCHours(end.getUTCHours() + 1);
  const start = new Date(end.getTime() - hours * 3600 * 1000);
  const enc = encodeURIComponent(name);
  const soft = (p) => p.catch((err) => { if (err.status === 401) throw err; return err; });
  const [c, alloc, avail, history] = await Promise.all([
    ctx.api(`contracts/${enc}`),
    soft(ctx.api(`contracts/${enc}/allocation?limit=1`)),
    soft(ctx.api(`contracts/${enc}/availability?start=${iso(start)}&end=${iso(end)}`)),
    soft(ctx.api(`contracts/${enc}/history`)),
  ]);
  const calendar = new URLSearchParams({ site: c.site || "", accelerator: c.accelerator || "" });
  root.append(...[
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/contracts" }, ctx.me.operator ? "Contracts" : "My contracts"), " › ", c.name),
    h("h1", {}, c.name, " ", badge(c.state)),
    ctx.state.notice ? h("p", { class: "notice", role: "status" }, ctx.state.notice) : null,
    actions(ctx, c, root),
    termsCards(c),
    c.notes ? h("p", { class: "muted" }, c.notes) : null,
    ctx.me.operator && c.claims.length ? h("p", {}, h("a", { href: `#/calendar?${calendar}` }, "See its pools on the capacity calendar")) : null,
    allocationSection(ctx, name, alloc),
    availabilitySection(ctx, name, avail, hours),
    claimsSection(c),
    historySection(ctx, history),
  ].filter(Boolean)); // a notice stays while the page is open (live refreshes keep ctx.state)
}
