// My usage over time (tenant roles): GET /v1/usage/rollups by day or hour, per contract;
// billable vs excluded GPU-hours with the reasons; and the usage export (GET
// /v1/usage/export, FOCUS-style CSV or Parquet, by month or range; docs/metering.md).
// Controls live in the URL: #/usage?step=hour&start=2026-12-01&end=2026-12-03&contract=x
import { h, fmt, cards, table, csvLink } from "../lib/ui.js";
import { barChart, lineChart } from "../lib/charts.js";

export const live = true;

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DEFAULT_SPAN = { day: 30 * DAY, hour: 2 * DAY };
const MAX_ROWS = 20_000;
const REASONS = {
  "outside-term": "usage before the contract's start or after its end",
  "node-down": "time on a node the contract did not hold (failed, given back, not yet allocated)",
  maintenance: "planned work the operator recorded",
  "operator-fault": "a fault of the operator's making, recorded by the operator",
};

function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The range asked for: whole days (or hours), `end` exclusive; dates in the URL are days. */
function span(query, step) {
  const unit = step === "hour" ? HOUR : DAY;
  const end = query.get("end") ? Date.parse(`${query.get("end")}T00:00:00Z`) + DAY : Math.floor(Date.now() / unit) * unit + unit;
  const start = query.get("start") ? Date.parse(`${query.get("start")}T00:00:00Z`) : end - DEFAULT_SPAN[step];
  return { start, end, unit };
}

/** A bucket's axis label: the day, or the hour (with its day when the range spans days). */
function label(ms, step, oneDay = false) {
  const s = new Date(ms).toISOString();
  if (step !== "hour") return s.slice(0, 10);
  return oneDay ? `${s.slice(11, 13)}h` : `${s.slice(5, 10)} ${s.slice(11, 13)}h`;
}

function controls(ctx, contracts, step) {
  const q = ctx.query;
  const form = h("form", { class: "inline", "aria-label": "Usage range", onsubmit: (event) => {
    event.preventDefault();
    const data = Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => v));
    ctx.navigate("usage", [], data);
  } },
    h("label", {}, "By", h("select", { name: "step" }, ["day", "hour"].map((s) => h("option", { value: s, selected: s === step }, s)))),
    h("label", {}, "From (day)", h("input", { type: "date", name: "start", value: q.get("start") || "" })),
    h("label", {}, "Until (day, inclusive)", h("input", { type: "date", name: "end", value: q.get("end") || "" })),
    h("label", {}, "Contract", h("select", { name: "contract" },
      h("option", { value: "" }, "all"),
      contracts.map((c) => h("option", { value: c.name, selected: q.get("contract") === c.name }, c.name)))),
    h("label", {}, "Chart", h("select", { name: "chart" }, ["line", "bar"].map((s) => h("option", { value: s, selected: (q.get("chart") || "line") === s }, s)))),
    h("button", { class: "primary", type: "submit" }, "Show"),
    h("button", { type: "button", onclick: () => ctx.navigate("usage") }, "Defaults"));
  return h("div", {}, form, h("p", { class: "muted" }, `Empty dates: the last 30 days by day, the last 48 hours by hour (UTC).`));
}

function exportForm(ctx) {
  const month = new Date().toISOString().slice(0, 7);
  const status = h("p", { class: "muted", role: "status" });
  const form = h("form", { class: "inline", "aria-label": "Usage export", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams({ format: data.get("format"), granularity: data.get("granularity") });
    let name;
    if (data.get("mode") === "range") {
      if (!data.get("from") || !data.get("until")) { status.textContent = "A range needs both days."; return; }
      q.set("start", `${data.get("from")}T00:00:00Z`);
      q.set("end", iso(Date.parse(`${data.get("until")}T00:00:00Z`) + DAY));
      name = `${data.get("from")}-${data.get("until")}`;
    } else {
      q.set("period", data.get("period") || month);
      name = data.get("period") || month;
    }
    status.textContent = "Preparing the file…";
    try {
      await ctx.download(`usage/export?${q}`, `usage-${ctx.me.tenant || "all"}-${name}.${data.get("format")}`);
      status.textContent = "Downloaded.";
    } catch (err) {
      status.textContent = `Could not export: ${err.message}`;
    }
  } },
    h("fieldset", { class: "inline-fieldset" }, h("legend", {}, "Which usage"),
      h("label", { class: "radio" }, h("input", { type: "radio", name: "mode", value: "month", checked: true }), "a month"),
      h("label", {}, "Month", h("input", { type: "month", name: "period", value: month })),
      h("label", { class: "radio" }, h("input", { type: "radio", name: "mode", value: "range" }), "a range"),
      h("label", {}, "From (day)", h("input", { type: "date", name: "from" })),
      h("label", {}, "Until (day, inclusive)", h("input", { type: "date", name: "until" }))),
    h("label", {}, "Rows per", h("select", { name: "granularity" }, h("option", { value: "hour" }, "hour"), h("option", { value: "day" }, "day"))),
    h("label", {}, "Format", h("select", { name: "format" }, h("option", { value: "csv" }, "CSV"), h("option", { value: "parquet" }, "Parquet"))),
    h("button", { class: "primary", type: "submit" }, "Download export"));
  return h("section", { "aria-labelledby": "usage-export" },
    h("h2", { id: "usage-export" }, "Export"),
    h("p", { class: "muted" }, "One row per contract, node, hour (or day) and charge, in the FOCUS columns FinOps tools read: billable GPU-hours, and on their own rows what was not billed and why."),
    form, status);
}

export async function render(root, ctx) {
  const step = ctx.query.get("step") === "hour" ? "hour" : "day";
  const { start, end, unit } = span(ctx.query, step);
  const contract = ctx.query.get("contract");
  const filter = contract ? `&contract=${encodeURIComponent(contract)}` : "";
  const [contracts, rollups] = await Promise.all([
    ctx.apiAll("contracts"),
    ctx.apiAll(`usage/rollups?step=${step}&start=${iso(start)}&end=${iso(end)}${filter}`, MAX_ROWS),
  ]);
  const buckets = [];
  for (let t = start; t < end; t += unit) buckets.push(t);
  const index = new Map(buckets.map((t, i) => [t, i]));
  const names = [...new Set(rollups.map((r) => r.contract))].sort();
  const used = new Map(names.map((n) => [n, buckets.map(() => 0)]));
  const billable = buckets.map(() => 0);
  const excluded = new Map();
  const totals = new Map(names.map((n) => [n, { contract: n, allocated: 0, used: 0, billable: 0, excluded: {} }]));
  for (const r of rollups) {
    const i = index.get(Date.parse(r.start));
    const t = totals.get(r.contract);
    t.allocated += Number(r.allocated_gpu_hours);
    t.used += Number(r.used_gpu_hours);
    t.billable += Number(r.billable_gpu_hours);
    for (const [reason, hours] of Object.entries(r.excluded_gpu_hours)) {
      t.excluded[reason] = (t.excluded[reason] || 0) + Number(hours);
      if (!excluded.has(reason)) excluded.set(reason, buckets.map(() => 0));
      if (i !== undefined) excluded.get(reason)[i] += Number(hours);
    }
    if (i === undefined) continue;
    used.get(r.contract)[i] += Number(r.used_gpu_hours);
    billable[i] += Number(r.billable_gpu_hours);
  }
  const labels = buckets.map((t) => label(t, step, end - start <= DAY));
  const series = names.map((n) => ({ name: n, values: used.get(n) }));
  const title = `GPU-hours used per ${step}, by contract (${label(start, step)} – ${label(end - unit, step)} UTC)`;
  const usedChart = !names.length
    ? h("p", { class: "muted" }, "No usage in this range.")
    : ctx.query.get("chart") === "bar"
      ? barChart({ title, categories: labels, series, stacked: true, filename: `usage-by-contract-${step}.csv` })
      : lineChart({ title, labels, series, filename: `usage-by-contract-${step}.csv` });
  const reasons = [...excluded.keys()].sort();
  const splitChart = names.length
    ? barChart({
      title: `Billable vs excluded GPU-hours per ${step}`,
      categories: labels,
      series: [{ name: "billable", values: billable }, ...reasons.map((r) => ({ name: `excluded: ${r}`, values: excluded.get(r) }))],
      stacked: true,
      filename: `usage-billable-excluded-${step}.csv`,
    })
    : null;
  const rows = [...totals.values()].map((t) => ({ ...t, excludedTotal: Object.values(t.excluded).reduce((a, v) => a + v, 0) }));
  const columns = [
    { key: "contract", label: "Contract" },
    { key: "allocated", label: "Held GPU-h", num: true, format: (v) => fmt.num(v, 2) },
    { key: "used", label: "Used GPU-h", num: true, format: (v) => fmt.num(v, 2) },
    { key: "billable", label: "Billable GPU-h", num: true, format: (v) => fmt.num(v, 2) },
    { key: "excludedTotal", label: "Excluded GPU-h", num: true, format: (v) => fmt.num(v, 2) },
    ...Object.keys(REASONS).filter((r) => reasons.includes(r)).map((r) => ({ key: r, label: `· ${r}`, num: true, value: (t) => t.excluded[r] || 0, format: (v) => fmt.num(v, 2) })),
    { key: "share", label: "Used of held", num: true, value: (t) => (t.allocated ? t.used / t.allocated : null), format: (v) => fmt.pct(v) },
  ];
  const sum = (f) => rows.reduce((a, t) => a + t[f], 0);
  root.append(...[
    h("h1", {}, "Usage"),
    controls(ctx, contracts, step),
    cards([
      ["GPU-hours used", fmt.num(sum("used"), 0)],
      ["Billable", fmt.num(sum("billable"), 0)],
      ["Excluded (not billed)", fmt.num(sum("excludedTotal"), 0)],
      ["Held (allocated)", fmt.num(sum("allocated"), 0)],
    ]),
    usedChart,
    splitChart || "",
    h("h2", {}, "By contract"),
    table({ columns, rows, caption: "Over the range", empty: "No usage in this range." }),
    rows.length ? csvLink(columns, rows, `usage-totals-${step}.csv`) : "",
    h("h2", {}, "Why usage is not billed"),
    reasons.length ? null : h("p", { class: "muted" }, "Nothing was excluded in this range: every GPU-hour used was billable."),
    h("dl", { class: "reasons" }, Object.entries(REASONS).flatMap(([r, why]) => [h("dt", {}, r), h("dd", {}, why)])),
    exportForm(ctx),
  ].filter((c) => c !== null));
}
