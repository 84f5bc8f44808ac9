// Usage limits (operators and customers: catalog:read): what GPUs serving a model give each
// plan tier's users, and what a new block of capacity buys them — "what do +300 MW buy our
// users?" (docs/limits.md). The form's fields live in the URL
// (#/limits?today=40000&add_kind=mw&add=300&to=pro,max); each answer is POST /v1/limits.
import { h, fmt, cards, table, csvLink, errorBox } from "../lib/ui.js";
import { barChart } from "../lib/charts.js";

export const live = false; // an answer of arithmetic: nothing in it moves with the system

// The story's question (docs/limits.md, quick start): a lab serving on 40,000 H100 today
// buys 300 MW more.
const DEFAULTS = {
  today_kind: "gpus", today: "40000", today_chip: "H100", today_pue: "1.2",
  add_kind: "mw", add: "300", add_chip: "H100", add_pue: "1.2", add_site: "", to: "",
};
const TIERS = ["free", "pro", "max", "enterprise"]; // the default tiers (docs/limits.md)
const BUILT_IN = ["H100", "H200", "B200", "GB200", "GB300"];

function values(query) {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) if (query.get(key) !== null) out[key] = query.get(key);
  return out;
}

function block(kind, amount, chip, pue, site) {
  if (kind === "site") return { site };
  if (kind === "mw") return { accelerator: chip, mw: Number(amount), pue: Number(pue) };
  return { accelerator: chip, gpus: Number(amount) };
}

function question(v) {
  const body = { capacity: [block(v.today_kind, v.today, v.today_chip, v.today_pue)] };
  if (v.add_kind !== "none") {
    body.add = { capacity: [block(v.add_kind, v.add, v.add_chip, v.add_pue, v.add_site)] };
    const to = v.to.split(",").filter(Boolean);
    if (to.length) body.add.tiers = to;
  }
  return body;
}

const short = (v) => {
  const a = Math.abs(Number(v));
  if (a >= 1e12) return `${(v / 1e12).toFixed(1)}T`;
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return fmt.int(v);
};
const times = (v) => (v === null || v === undefined ? "—" : `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 3 })}×`);

function form(ctx, v, chips, sites) {
  const select = (id, name, label, options, value) =>
    h("label", { for: id }, label, h("select", { id, name }, options.map(([val, text]) => h("option", { value: val, selected: val === value }, text))));
  const number = (id, name, label, value, attrs = {}) =>
    h("label", { for: id }, label, h("input", { id, name, type: "number", value, required: true, ...attrs }));
  const chipOptions = chips.map((c) => [c, c]);
  const addKinds = [["mw", "facility MW"], ["gpus", "GPUs"], ...(sites.length ? [["site", "a site of the fleet"]] : []), ["none", "nothing: today only"]];
  const to = new Set(v.to.split(",").filter(Boolean));
  const f = h("form", { class: "stack", style: "max-width: 900px;", "aria-label": "The usage-limits question", onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(f);
    const out = {};
    for (const key of Object.keys(DEFAULTS)) if (key !== "to" && data.get(key) !== null) out[key] = String(data.get(key));
    out.to = data.getAll("to").join(",");
    ctx.navigate("limits", [], out);
  } },
    h("fieldset", { class: "inline-fieldset" }, h("legend", {}, "Serving today"),
      select("limits-today-kind", "today_kind", "Given as", [["gpus", "GPUs"], ["mw", "facility MW"]], v.today_kind),
      number("limits-today", "today", "How many", v.today, { min: 0.001, step: "any" }),
      select("limits-today-chip", "today_chip", "Chip", chipOptions, v.today_chip),
      number("limits-today-pue", "today_pue", "PUE (with MW)", v.today_pue, { min: 1, max: 3, step: "any" })),
    h("fieldset", { class: "inline-fieldset" }, h("legend", {}, "The new capacity"),
      select("limits-add-kind", "add_kind", "Given as", addKinds, v.add_kind),
      number("limits-add", "add", "How many (MW or GPUs)", v.add, { min: 0.001, step: "any" }),
      select("limits-add-chip", "add_chip", "Chip", chipOptions, v.add_chip),
      number("limits-add-pue", "add_pue", "PUE (with MW)", v.add_pue, { min: 1, max: 3, step: "any" }),
      sites.length ? select("limits-add-site", "add_site", "Site (given as a site: its GPUs in service)", sites.map((s) => [s, s]), v.add_site || sites[0]) : null),
    h("fieldset", { class: "inline-fieldset" }, h("legend", {}, "Who gets the new capacity (none ticked: every tier, by weight)"),
      TIERS.map((t) => h("label", { class: "radio" }, h("input", { type: "checkbox", name: "to", value: t, checked: to.has(t) }), t))),
    h("p", { class: "muted", style: "margin: 0;" },
      "The model is the default DeepSeek-V3-class serving profile on H100 (other chips scale by their compute and memory bandwidth), with the default tiers, load and 20% headroom; `neocloud limits FILE` and POST /v1/limits take your own (docs/limits.md)."),
    h("div", { class: "actions" },
      h("button", { class: "primary", type: "submit" }, "Work out the limits"),
      h("button", { type: "button", onclick: () => ctx.navigate("limits") }, "The story's question")));
  return f;
}

function fleetLine(label, fleet) {
  return `${label}: ${fmt.int(fleet.gpus)} GPUs (${fmt.mw(fleet.it_mw)} IT) — ${short(fleet.tokens_per_min.capacity)} tokens a minute at peak, ${short(fleet.tokens_per_min.served_off_peak)} served off-peak, ${short(fleet.tokens_per_day)} a day`;
}

function answer(res) {
  const before = res.before;
  const after = res.after;
  const change = res.change;
  const byTier = (list) => Object.fromEntries((list || []).map((t) => [t.tier, t]));
  const a = byTier(after && after.tiers);
  const c = byTier(change && change.tiers);
  const rows = before.tiers.map((t) => ({
    tier: t.tier,
    users: t.users,
    tpm: t.tokens_per_min.peak,
    tpm_after: a[t.tier]?.tokens_per_min.peak,
    m5: t.messages_per_5h.peak,
    m5_after: a[t.tier]?.messages_per_5h.peak,
    m5_off: t.messages_per_5h.off_peak,
    m5_off_after: a[t.tier]?.messages_per_5h.off_peak,
    week: t.messages_per_week,
    week_after: a[t.tier]?.messages_per_week,
    multiplier: c[t.tier]?.multiplier,
  }));
  const columns = [
    { key: "tier", label: "Tier" },
    { key: "users", label: "Users", num: true, format: short },
    { key: "tpm", label: "Tokens/min at peak, today", num: true, format: fmt.int },
    ...(after ? [{ key: "tpm_after", label: "… with the new capacity", num: true, format: fmt.int }] : []),
    { key: "m5", label: "Messages / 5 h at peak, today", num: true, format: fmt.int },
    ...(after ? [{ key: "m5_after", label: "… with the new capacity", num: true, format: fmt.int }] : []),
    { key: "m5_off", label: "Messages / 5 h off-peak, today", num: true, format: fmt.int },
    ...(after ? [{ key: "m5_off_after", label: "… with the new capacity", num: true, format: fmt.int }] : []),
    { key: "week", label: "Messages / week, today", num: true, format: fmt.int },
    ...(after ? [{ key: "week_after", label: "… with the new capacity", num: true, format: fmt.int }] : []),
    ...(change ? [{ key: "multiplier", label: "Multiplier", num: true, format: times }] : []),
  ];
  const categories = rows.map((r) => r.tier);
  const out = [
    cards([
      ["Tokens a minute at peak, today", short(before.fleet.tokens_per_min.capacity)],
      after ? ["… with the new capacity", short(after.fleet.tokens_per_min.capacity)] : null,
      change ? ["Capacity multiplier", h("span", { "data-multiplier": change.capacity_multiplier }, times(change.capacity_multiplier))] : null,
      change ? ["GPUs added", fmt.int(change.added_gpus)] : null,
      change && change.added_facility_mw !== null ? ["Facility power added", fmt.mw(change.added_facility_mw)] : null,
      ["Users streamed to at once, today", short(before.fleet.concurrent_streams)],
      after ? ["… with the new capacity", short(after.fleet.concurrent_streams)] : null,
    ].filter(Boolean)),
    h("p", {}, fleetLine("Today", before.fleet)),
    after ? h("p", {}, fleetLine("With the new capacity", after.fleet)) : null,
    h("p", { class: "muted" }, `Model ${res.model}; load: peak ${fmt.num(res.load.peak_to_off_peak, 2)} × off-peak. Limits are per user; off-peak, every user may draw more with the same fleet.`),
    h("h2", { id: "limits-tiers" }, "Per tier: limits today and with the new capacity"),
    h("div", { "data-limits-table": "" }, table({ columns, rows, pageSize: 50 }), csvLink(columns, rows, "usage-limits.csv")),
    barChart({
      title: after ? "Messages per 5 hours at peak, per user: today and with the new capacity" : "Messages per 5 hours at peak, per user",
      categories,
      series: [{ name: "today", values: rows.map((r) => r.m5) }, ...(after ? [{ name: "with the new capacity", values: rows.map((r) => r.m5_after) }] : [])],
      format: short,
      filename: "usage-limits-5h.csv",
    }),
    change ? h("div", { "data-chart": "multiplier" }, barChart({
      title: "How many times each tier's limits grow",
      categories,
      series: [{ name: "multiplier", values: rows.map((r) => r.multiplier) }],
      format: (x) => `${Math.round(x * 10) / 10}×`,
      filename: "usage-limits-multiplier.csv",
      height: 220,
    })) : null,
  ];
  return h("section", { "aria-labelledby": "limits-tiers", "data-limits-answer": "" }, out);
}

export async function render(root, ctx) {
  const v = values(ctx.query);
  const mayReadFleet = ctx.me.permissions.includes("fleet:read");
  const [catalog, sites] = await Promise.all([
    ctx.apiAll("accelerators").catch(() => []),
    mayReadFleet ? ctx.apiAll("sites").catch(() => []) : Promise.resolve([]),
  ]);
  const chips = [...new Set([...BUILT_IN, ...catalog.map((c) => c.name)])];
  root.append(
    h("h1", {}, "Usage limits"),
    h("p", { class: "muted" },
      "What GPUs serving a model give each plan tier's users — tokens a minute, messages per 5 hours and per week — today, and with a new block of capacity: what do +300 MW buy our users?"),
    form(ctx, v, chips, sites.map((s) => s.name)));
  try {
    root.append(answer(await ctx.api("limits", { method: "POST", body: question(v) })));
  } catch (err) {
    if (err.status === 401) return;
    root.append(errorBox(err));
  }
}
