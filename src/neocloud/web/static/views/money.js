// Money (operator): utilization, revenue by site/customer/type, backlog by quarter and
// customer concentration: the reports of GET /v1/reports/{report} (docs/reports.md), the five
// from one call, GET /v1/console/money. The period controls live in the URL
// (#/money?start=2026-01&end=2027-01&step=quarter) so a view can be shared; an empty field is
// the report's own default. Every chart carries its numbers.
import { h, fmt, cards, table, csvLink } from "../lib/ui.js";
import { barChart, lineChart } from "../lib/charts.js";

export const live = true;

const MONEY_STEPS = ["month", "quarter", "year"];
const UTIL_STEPS = ["day", "week", "month"];
const TOP = 6; // series drawn per chart; the rest are summed as "others"

/** "2026-01" (a month input) or "2026-01-15" → an ISO instant, UTC. */
function instant(value) {
  if (!value) return null;
  return value.length === 7 ? `${value}-01T00:00:00Z` : `${value}T00:00:00Z`;
}

function params(pairs) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(pairs)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Per-period amounts keyed by name → chart series: the largest `TOP`, then "others". */
function seriesOf(periods, field, totals) {
  const names = Object.entries(totals).sort((a, b) => Number(b[1]) - Number(a[1])).map(([k]) => k);
  const shown = names.slice(0, TOP);
  const rest = names.slice(TOP);
  const series = shown.map((name) => ({ name, values: periods.map((p) => Number(p[field][name] || 0)) }));
  if (rest.length) {
    series.push({ name: "others", values: periods.map((p) => rest.reduce((a, k) => a + Number(p[field][k] || 0), 0)) });
  }
  return series;
}

/** Axis labels: $1.2B, $350M, $12k. */
function shortMoney(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `$${(v / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `$${(v / 1e6).toFixed(a >= 1e8 ? 0 : 1)}M`;
  if (a >= 1e3) return `$${(v / 1e3).toFixed(0)}k`;
  return `$${Math.round(v)}`;
}

function range(report) {
  return `${fmt.date(report.start)} – ${fmt.date(report.end)}, by ${report.step}`;
}

/** A table of totals by key with their share, ending in the total (the numbers behind a
 *  "by site / customer / type" chart, over the whole range). */
function totalsTable(title, amounts, total, filename) {
  const rows = Object.entries(amounts)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map(([name, amount]) => ({ name, amount, share: Number(total) ? Number(amount) / Number(total) : null }));
  const columns = [
    { key: "name", label: title },
    { key: "amount", label: "Recognized", num: true, format: (v) => fmt.cents(v) },
    { key: "share", label: "Share", num: true, format: (v) => fmt.pct(v) },
  ];
  const all = [...rows, { name: "Total", amount: total, share: rows.length ? 1 : null }];
  return h("div", { class: "totals" }, table({ columns, rows: all, pageSize: 50 }), csvLink(columns, all, filename));
}

function controls(ctx) {
  const q = ctx.query;
  const field = (name, label, type, help) =>
    h("label", {}, label, h("input", { name, type, value: q.get(name) || "", "aria-describedby": "money-help" }), help ? h("span", { class: "muted" }, help) : null);
  const select = (name, label, options, fallback) =>
    h("label", {}, label, h("select", { name }, options.map((o) => h("option", { value: o, selected: (q.get(name) || fallback) === o }, o))));
  const form = h("form", { class: "inline", "aria-label": "Report period", onsubmit: (event) => {
    event.preventDefault();
    const data = Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => v));
    ctx.navigate("money", [], data);
  } },
    field("start", "From (month)", "month"),
    field("end", "Until (month, exclusive)", "month"),
    select("step", "Revenue by", MONEY_STEPS, "month"),
    select("backlog_step", "Backlog by", MONEY_STEPS, "quarter"),
    select("util_step", "Utilization by", UTIL_STEPS, "day"),
    field("as_of", "As of (day)", "date"),
    h("button", { class: "primary", type: "submit" }, "Show"),
    h("button", { type: "button", onclick: () => ctx.navigate("money") }, "Defaults"));
  return h("div", {}, form, h("p", { id: "money-help", class: "muted" },
    "Empty fields take each report's default: revenue and concentration the 12 months up to now, utilization the last 30 days, backlog from now to the end of the last contract. Money is recognized before ‘as of’."));
}

function utilizationSection(report) {
  const labels = report.periods.map((p) => p.period);
  const chart = lineChart({
    title: `GPU utilization (${range(report)})`,
    labels,
    series: [
      { name: "allocated share %", values: report.periods.map((p) => Number(p.allocated_share ?? 0) * 100) },
      { name: "used share %", values: report.periods.map((p) => Number(p.used_share ?? 0) * 100) },
    ],
    format: (v) => `${Math.round(v)}%`,
    filename: "utilization.csv",
  });
  const siteColumns = [
    { key: "site", label: "Site" },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "allocated_share", label: "Allocated", num: true, format: (v) => fmt.pct(v) },
    { key: "used_share", label: "Used", num: true, format: (v) => fmt.pct(v) },
  ];
  return h("section", { "aria-labelledby": "util-title" },
    h("h2", { id: "util-title" }, "Utilization"),
    cards([
      ["GPUs", fmt.int(report.gpus)],
      ["Allocated share", fmt.pct(report.allocated_share)],
      ["Used share", fmt.pct(report.used_share)],
    ]),
    chart,
    table({ columns: siteColumns, rows: report.sites, caption: "By site, over the range" }));
}

function revenueSection(report, perMw) {
  const labels = report.periods.map((p) => p.period);
  const by = (field, title, file) => barChart({
    title: `${title} (${range(report)})`,
    categories: labels,
    series: seriesOf(report.periods, field, report[field]),
    stacked: true,
    format: shortMoney,
    filename: file,
  });
  return h("section", { "aria-labelledby": "revenue-title" },
    h("h2", { id: "revenue-title" }, "Revenue"),
    cards([
      ["Recognized", fmt.money(report.recognized, report.currency)],
      ["Ratable", fmt.money(report.ratable, report.currency)],
      ["On consumption", fmt.money(report.consumption, report.currency)],
      ["Internal showback (not revenue)", fmt.money(report.showback, report.currency)],
      perMw ? ["Per active MW-year", fmt.money(perMw.revenue_per_mw_year, report.currency)] : null,
    ].filter(Boolean)),
    h("div", { class: "money-charts", "data-report": "revenue", "data-total": report.recognized },
      [["by_site", "site", "Site"], ["by_customer", "customer", "Customer"], ["by_type", "contract type", "Contract type"]].map(([field, what, label]) =>
        h("div", { class: "pair", "data-by": field },
          by(field, `Revenue by ${what}`, `revenue-by-${field.slice(3)}.csv`),
          totalsTable(label, report[field], report.recognized, `revenue-by-${field.slice(3)}-totals.csv`)))));
}

function backlogSection(report, ctx) {
  const labels = report.periods.map((p) => p.period);
  const chart = barChart({
    title: `Backlog by ${report.step} and customer (from ${fmt.date(report.as_of)})`,
    categories: labels,
    series: seriesOf(report.periods, "by_customer", report.by_customer),
    stacked: true,
    format: shortMoney,
    filename: "backlog.csv",
    width: Math.max(760, 70 * labels.length),
  });
  const columns = [
    { key: "contract", label: "Contract" },
    { key: "tenant", label: "Customer" },
    { key: "type", label: "Type" },
    { key: "value", label: "Value", num: true, format: (v) => fmt.money(v, report.currency) },
    { key: "recognized", label: "Recognized", num: true, format: (v) => fmt.money(v, report.currency) },
    { key: "remaining", label: "Remaining", num: true, format: (v) => fmt.money(v, report.currency) },
  ];
  return h("section", { "aria-labelledby": "backlog-title" },
    h("h2", { id: "backlog-title" }, "Backlog"),
    cards([
      ["Remaining obligations", fmt.money(report.total, report.currency)],
      ["After the last period", fmt.money(report.later, report.currency)],
      ["Internal showback to come", fmt.money(report.internal, report.currency)],
    ]),
    chart,
    table({ columns, rows: report.contracts, caption: "By contract", state: ctx.state, key: "backlogPage", pageSize: 10,
      onRow: (row) => ctx.navigate("contracts", [row.contract]) }),
    csvLink(columns, report.contracts, "backlog-contracts.csv"));
}

function concentrationSection(report) {
  const top = report.top_five;
  const rest = Number(report.recognized) - top.reduce((a, c) => a + Number(c.recognized), 0);
  const categories = [...top.map((c) => c.customer), ...(rest > 0.005 ? ["others"] : [])];
  const shares = [...top.map((c) => Number(c.share) * 100), ...(rest > 0.005 ? [(rest / Number(report.recognized)) * 100] : [])];
  const chart = barChart({
    title: `Share of revenue by customer (${range(report)})`,
    categories,
    series: [{ name: "share %", values: shares }],
    format: (v) => `${Math.round(v)}%`,
    filename: "concentration.csv",
    height: 220,
  });
  const trend = lineChart({
    title: "Largest customer's and top five's share per period",
    labels: report.periods.map((p) => p.period),
    series: [
      { name: "largest %", values: report.periods.map((p) => Number(p.largest_share ?? 0) * 100) },
      { name: "top five %", values: report.periods.map((p) => Number(p.top_five_share ?? 0) * 100) },
    ],
    format: (v) => `${Math.round(v)}%`,
    filename: "concentration-periods.csv",
  });
  return h("section", { "aria-labelledby": "conc-title" },
    h("h2", { id: "conc-title" }, "Customer concentration"),
    cards([
      ["Largest customer", report.largest_customer ? `${report.largest_customer} · ${fmt.pct(report.largest_share)}` : "—"],
      ["Top five", fmt.pct(report.top_five_share)],
      ["Customers", fmt.int(report.customers)],
      ["HHI (0–10,000)", fmt.int(report.hhi)],
    ]),
    chart,
    trend);
}

export async function render(root, ctx) {
  if (!ctx.me.permissions.includes("reports:read")) {
    root.append(h("h1", {}, "Money"), h("p", { class: "notice" }, `The reports are for admins, finance and sales; a ${ctx.me.role} token cannot read them.`));
    return;
  }
  const q = ctx.query;
  // The five reports in one call (GET /v1/console/money): the server works out the
  // recognized revenue once for revenue, revenue per MW and concentration.
  const reports = await ctx.api(`console/money${params({
    start: instant(q.get("start")),
    end: instant(q.get("end")),
    step: q.get("step") || "month",
    backlog_step: q.get("backlog_step") || "quarter",
    util_step: q.get("util_step"),
    as_of: instant(q.get("as_of")),
  })}`);
  const { utilization, revenue, revenue_per_mw: perMw, backlog: backlogReport, concentration } = reports;
  root.append(
    h("h1", {}, "Money"),
    controls(ctx),
    revenueSection(revenue, perMw),
    backlogSection(backlogReport, ctx),
    utilizationSection(utilization),
    concentrationSection(concentration),
  );
}
