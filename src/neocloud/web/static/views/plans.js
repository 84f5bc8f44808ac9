// Planner (operators: plans:read, plans:write). Which deals to take, where to put them, how
// much to keep for our own work — and the story's question, sell memphis-1 to the lab or keep
// it — asked of the planner of docs/planning.md through the API:
//   #/plans       past runs (newest first), and a form to run a plan: a built-in scenario
//                 (GET /v1/plans/examples gives their YAML text) or one pasted or uploaded,
//                 sent as text to POST /v1/plans; a 422 is shown at its textarea, with its line
//   #/plans/<id>  a run: its progress (GET /v1/plans/{id} every second) until it ends, then
//                 its report — headline figures, deals taken and turned away (with why),
//                 quarters, the Monte Carlo's P10/P50/P90 drawn here, the server's PNG charts.
import { h, clear, fmt, badge, cards, table, csvLink, errorBox } from "../lib/ui.js";
import { barChart, lineChart } from "../lib/charts.js";

// Not re-rendered on every change of the system: the form keeps what is typed, and a run's
// page follows its own progress.
export const live = false;

const POLL_MS = 1000;
// What the form holds, kept while the console is open (leaving the view loses nothing).
const draft = { source: null, scenario: "", compare: "", runs: 1000, seed: 0 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- formatting -------------------------------------------------------------------------

const MINUS = "\u2212";

/** $14.51B, $578.6M, $12k; `signed` puts + before a positive amount (a difference). */
export function money(v, signed = false) {
  if (v === null || v === undefined) return "—";
  const n = Number(v);
  const a = Math.abs(n);
  const sign = n < 0 ? MINUS : signed && n > 0 ? "+" : "";
  if (a >= 1e9) return `${sign}$${(a / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${sign}$${(a / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${sign}$${(a / 1e3).toFixed(0)}k`;
  return `${sign}$${a.toFixed(0)}`;
}

/** A share as a percentage; `signed`: a difference in points. */
function share(v, signed = false) {
  if (v === null || v === undefined) return "—";
  const n = Number(v) * 100;
  if (!signed) return `${n.toFixed(1)}%`;
  return `${n < 0 ? MINUS : n > 0 ? "+" : ""}${Math.abs(n).toFixed(1)} points`;
}

/** A card's value: the short figure, the exact one on hover. */
function exact(short, full) {
  return h("span", { title: full }, short);
}

const axisMoney = (v) => money(v);
const axisPct = (v) => `${Math.round(v)}%`;

// --- the list and the form --------------------------------------------------------------

function runColumns() {
  return [
    { key: "id", label: "Run", num: true },
    { key: "name", label: "Scenario" },
    { key: "status", label: "Status", format: (v) => badge(v) },
    { key: "message", label: "Progress", format: (v, r) => (r.status === "running" ? `${fmt.pct(r.progress, 0)} · ${v}` : v) },
    { key: "runs", label: "Monte Carlo runs", num: true, format: fmt.int },
    { key: "seed", label: "Seed", num: true },
    { key: "created_by", label: "Asked by" },
    { key: "created_at", label: "Asked", format: fmt.time },
    { key: "finished_at", label: "Finished", format: fmt.time },
  ];
}

/** Where a line starts and ends in a text (1-based line numbers). */
function lineRange(text, line) {
  const lines = text.split("\n");
  const n = Math.max(1, Math.min(line, lines.length));
  const start = lines.slice(0, n - 1).reduce((a, l) => a + l.length + 1, 0);
  return [start, start + lines[n - 1].length];
}

/** Select a line of a textarea and scroll it into view. */
function showLine(area, line) {
  const [start, end] = lineRange(area.value, line);
  area.focus();
  area.setSelectionRange(start, end);
  const height = parseFloat(getComputedStyle(area).lineHeight) || 18;
  area.scrollTop = Math.max(0, (line - 3) * height);
}

function scenarioField(id, label, help, rows) {
  const area = h("textarea", {
    id, name: id, rows, spellcheck: "false", autocomplete: "off", "aria-describedby": `${id}-help ${id}-error`,
    style: "width: 100%; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;",
  });
  const upload = h("input", { id: `${id}-file`, type: "file", accept: ".yaml,.yml,.json,text/yaml,application/json" });
  const error = h("div", { id: `${id}-error`, class: "field-error", "aria-live": "polite" });
  const wrap = h("div", { class: "stack", style: "display: grid; gap: 4px;" },
    h("label", { for: id }, label),
    h("p", { id: `${id}-help`, class: "muted", style: "margin: 0;" }, help),
    area,
    h("label", { for: `${id}-file`, style: "font-weight: 400;" }, `Upload a file into “${label}”`, upload),
    error);
  return { wrap, area, upload, error };
}

function planForm(ctx, examples) {
  const byFile = Object.fromEntries(examples.scenarios.map((s) => [s.file, s]));
  const options = [
    ...examples.comparisons.map((c, i) => ({ value: `story:${i}`, label: `The story: ${c.name} (${c.scenario} compared with ${c.compare})`, description: c.description })),
    ...examples.scenarios.map((s) => ({ value: `file:${s.file}`, label: `${s.file} alone`, description: s.description })),
    { value: "own", label: "My own scenario (paste or upload YAML)", description: "Write or paste a scenario file (docs/planning.md), or upload one; a second one in “Compare with” is planned the same way and the report adds their difference. Through the API a scenario names no file on the server but the built-in ones: give its fleet inline (sites:) or take it from the database (fleet: {from: database})." },
  ];
  const fill = (value) => {
    if (value.startsWith("story:")) {
      const c = examples.comparisons[Number(value.slice(6))];
      scenario.area.value = byFile[c.scenario]?.text || "";
      compare.area.value = byFile[c.compare]?.text || "";
    } else if (value.startsWith("file:")) {
      scenario.area.value = byFile[value.slice(5)]?.text || "";
      compare.area.value = "";
    }
  };
  const describe = (value) => (options.find((o) => o.value === value) || options[0]).description;
  const source = h("select", { id: "plan-source", name: "source", "aria-describedby": "plan-source-help" },
    options.map((o) => h("option", { value: o.value }, o.label)));
  const sourceHelp = h("p", { id: "plan-source-help", class: "muted", style: "margin: 0;" });
  const scenario = scenarioField("plan-scenario", "Scenario (YAML)", "The scenario planned. A built-in one may be edited here before it runs.", 12);
  const compare = scenarioField("plan-compare", "Compare with (YAML, optional)", "Left empty: the scenario alone.", 6);
  const runs = h("input", { id: "plan-runs", name: "runs", type: "number", min: 0, max: 10000, step: 1, required: true, "aria-describedby": "plan-runs-error" });
  const seed = h("input", { id: "plan-seed", name: "seed", type: "number", min: 0, max: 4294967295, step: 1, required: true, "aria-describedby": "plan-seed-error" });
  const runsError = h("div", { id: "plan-runs-error", class: "field-error", "aria-live": "polite" });
  const seedError = h("div", { id: "plan-seed-error", class: "field-error", "aria-live": "polite" });
  const general = h("div", { "aria-live": "polite" });
  const submit = h("button", { class: "primary", type: "submit" }, "Run the plan");

  // What was there when the view was last left (or the story, the first time).
  source.value = draft.source && options.some((o) => o.value === draft.source) ? draft.source : options[0].value;
  if (draft.source === null) fill(source.value);
  else { scenario.area.value = draft.scenario; compare.area.value = draft.compare; }
  runs.value = String(draft.runs);
  seed.value = String(draft.seed);
  sourceHelp.textContent = describe(source.value);
  const keep = () => Object.assign(draft, { source: source.value, scenario: scenario.area.value, compare: compare.area.value, runs: runs.value, seed: seed.value });
  keep();

  source.addEventListener("change", () => { fill(source.value); sourceHelp.textContent = describe(source.value); clearErrors(); keep(); });
  for (const field of [scenario, compare]) {
    field.area.addEventListener("input", () => {
      if (source.value !== "own") { source.value = "own"; sourceHelp.textContent = describe("own"); }
      keep();
    });
    field.upload.addEventListener("change", async () => {
      const file = field.upload.files[0];
      if (!file) return;
      field.area.value = await file.text();
      source.value = "own";
      sourceHelp.textContent = describe("own");
      clearErrors();
      keep();
    });
  }
  runs.addEventListener("input", keep);
  seed.addEventListener("input", keep);

  const slots = { scenario, compare, runs: { error: runsError, area: runs }, seed: { error: seedError, area: seed } };
  function clearErrors() {
    for (const slot of Object.values(slots)) {
      clear(slot.error);
      slot.area.removeAttribute("aria-invalid");
    }
    clear(general);
  }
  function showError(problem, err) {
    const errors = problem.errors || [];
    let placed = false;
    for (const e of errors) {
      const loc = e.loc || [];
      const field = loc[0] === "body" ? loc[1] : loc[0];
      const slot = slots[field];
      if (!slot) continue;
      placed = true;
      slot.area.setAttribute("aria-invalid", "true");
      // "scenario:12: deals[0].site: no site 'site-9'" → "Line 12: deals[0].site: …"
      const msg = String(e.msg || problem.detail || "").replace(new RegExp(`^${field}:\\d+:\\s*`), "");
      const where = e.line ? `Line ${e.line}: ` : loc.length > 2 && !e.line ? `${loc.slice(2).join(".")}: ` : "";
      slot.error.append(h("p", { class: "error", role: "alert", "data-line": e.line || null, style: "margin: 4px 0;" },
        `${where}${msg}`,
        e.line && slot.area.tagName === "TEXTAREA"
          ? [" ", h("button", { type: "button", onclick: () => showLine(slot.area, e.line) }, `Show line ${e.line}`)]
          : null));
      if (e.line && slot.area.tagName === "TEXTAREA") showLine(slot.area, e.line);
    }
    if (!placed) general.append(errorBox(err));
  }

  const form = h("form", { class: "stack", style: "max-width: 900px;", "aria-labelledby": "plan-form-title", onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    keep();
    const body = { scenario: scenario.area.value, runs: Number(runs.value), seed: Number(seed.value) };
    if (compare.area.value.trim()) body.compare = compare.area.value;
    if (!body.scenario.trim()) {
      scenario.area.setAttribute("aria-invalid", "true");
      scenario.error.append(h("p", { class: "error", role: "alert", style: "margin: 4px 0;" }, "Give a scenario: pick a built-in one, paste one or upload a file."));
      scenario.area.focus();
      return;
    }
    submit.disabled = true;
    try {
      const run = await ctx.api("plans", { method: "POST", body });
      ctx.navigate("plans", [String(run.id)]);
    } catch (err) {
      if (err.status === 401) return;
      showError(err.problem || {}, err);
    } finally {
      submit.disabled = false;
    }
  } },
    h("label", { for: "plan-source" }, "Start from", source),
    sourceHelp,
    scenario.wrap,
    compare.wrap,
    h("div", { style: "display: flex; gap: 16px; flex-wrap: wrap; align-items: start;" },
      h("div", {}, h("label", { for: "plan-runs" }, "Monte Carlo runs (0–10,000)", runs), runsError),
      h("div", {}, h("label", { for: "plan-seed" }, "Seed (the same seed, the same simulation)", seed), seedError)),
    general,
    h("div", {}, submit));
  return form;
}

async function renderList(root, ctx) {
  const rows = (await ctx.apiAll("plans")).reverse();
  root.append(
    h("h1", {}, "Planner"),
    h("p", { class: "muted" },
      "Which deals of the pipeline to take, where to put them and how much to keep for our own work — under late deliveries and deals that may not close — and the story's question: sell memphis-1 to the AI lab, or keep it? Each run solves the plan (HiGHS) and simulates it; see docs/planning.md."),
    h("section", { "aria-labelledby": "plan-runs-title" },
      h("h2", { id: "plan-runs-title" }, "Past runs"),
      table({ columns: runColumns(), rows, caption: "Newest first", pageSize: 10, state: ctx.state, key: "runsPage",
        onRow: (r) => ctx.navigate("plans", [String(r.id)]), empty: "No plan has been run yet." })));
  if (!ctx.me.permissions.includes("plans:write")) return;
  const examples = await ctx.api("plans/examples");
  root.append(h("section", { "aria-labelledby": "plan-form-title" },
    h("h2", { id: "plan-form-title" }, "Run a plan"),
    planForm(ctx, examples)));
}

// --- a run ------------------------------------------------------------------------------

function progressPanel(run) {
  return h("section", { class: "panel", "aria-labelledby": "plan-progress-label", "data-plan-progress": run.id },
    h("label", { id: "plan-progress-label", for: "plan-progress" }, "Progress"),
    h("progress", { id: "plan-progress", max: 1, value: run.progress, "aria-describedby": "plan-progress-message", style: "width: 100%; max-width: 640px; height: 18px;" }),
    h("p", { id: "plan-progress-message", "aria-live": "polite" }, `${fmt.pct(run.progress, 0)} · ${run.message}`));
}

/** Poll the run every second while it works; when it ends, draw the page again. */
async function follow(root, ctx, run) {
  for (;;) {
    await sleep(POLL_MS);
    if (!root.isConnected) return; // the user moved on
    let now;
    try {
      now = await ctx.api(`plans/${run.id}`);
    } catch (err) {
      if (err.status === 401 || err.status === 404) return;
      continue; // the next poll tries again
    }
    if (!root.isConnected) return;
    if (now.status !== "queued" && now.status !== "running") {
      ctx.refresh();
      return;
    }
    const bar = root.querySelector("#plan-progress");
    const message = root.querySelector("#plan-progress-message");
    const status = root.querySelector("[data-run-status]");
    if (bar) bar.value = now.progress;
    if (message) message.textContent = `${fmt.pct(now.progress, 0)} · ${now.message}`;
    if (status && status.textContent !== now.status) status.replaceChildren(badge(now.status));
  }
}

function headline(plan) {
  if (plan.status === "infeasible") return [["Status", "cannot be planned"], ["Why", `${(plan.infeasible || []).length} constraints cannot be met`]];
  const t = plan.totals;
  return [
    ["Revenue (plan)", exact(money(t.revenue), fmt.cents(t.revenue))],
    ["Contract margin", exact(money(t.margin), fmt.cents(t.margin))],
    ["Backlog at the end", exact(money(t.backlog_at_end), fmt.cents(t.backlog_at_end))],
    ["Internal coverage (mean)", share(t.mean_internal_coverage)],
    ["Net (margin − internal − shortfall)", exact(money(t.net), fmt.cents(t.net))],
  ];
}

function differenceCards(d) {
  return [
    ["Revenue", exact(money(d.revenue, true), fmt.cents(d.revenue))],
    ["Contract margin", exact(money(d.margin, true), fmt.cents(d.margin))],
    ["Backlog at the end", exact(money(d.backlog_at_end, true), fmt.cents(d.backlog_at_end))],
    ["Internal coverage (P50)", share(d.internal_coverage_p50, true)],
    ["Net", exact(money(d.net, true), fmt.cents(d.net))],
  ];
}

function cardsOf(title, items, attrs) {
  return h("div", attrs, h("h3", {}, title), cards(items));
}

/** a − b of two shares (the API's difference holds amounts and the simulations' medians). */
const minus = (x, y) => (x === null || x === undefined || y === null || y === undefined ? null : Math.round((Number(x) - Number(y)) * 1e4) / 1e4);

/** The figures of both plans side by side, and their difference (a table and its CSV). */
function comparisonTable(a, b, d) {
  const t = (p, k) => (p.status === "infeasible" ? null : p.totals[k]);
  const p50 = (p, k) => (p.montecarlo ? p.montecarlo.totals[k].p50 : null);
  const rows = [
    ["Revenue (plan)", t(a, "revenue"), t(b, "revenue"), d.revenue, "money"],
    ["Contract margin", t(a, "margin"), t(b, "margin"), d.margin, "money"],
    ["Internal capacity cost", t(a, "internal_cost"), t(b, "internal_cost"), d.internal_cost, "money"],
    ["Internal shortfall cost", t(a, "shortfall_cost"), t(b, "shortfall_cost"), d.shortfall_cost, "money"],
    ["Net", t(a, "net"), t(b, "net"), d.net, "money"],
    ["Backlog at the end", t(a, "backlog_at_end"), t(b, "backlog_at_end"), d.backlog_at_end, "money"],
    ["Mean utilization", t(a, "mean_utilization"), t(b, "mean_utilization"), minus(t(a, "mean_utilization"), t(b, "mean_utilization")), "share"],
    ["Mean internal coverage", t(a, "mean_internal_coverage"), t(b, "mean_internal_coverage"), minus(t(a, "mean_internal_coverage"), t(b, "mean_internal_coverage")), "share"],
    ["Monte Carlo revenue P50", p50(a, "revenue"), p50(b, "revenue"), d.revenue_p50, "money"],
    ["Monte Carlo net P50", p50(a, "net"), p50(b, "net"), d.net_p50, "money"],
    ["Monte Carlo utilization P50", p50(a, "utilization"), p50(b, "utilization"), d.utilization_p50, "share"],
    ["Monte Carlo internal coverage P50", p50(a, "internal_coverage"), p50(b, "internal_coverage"), d.internal_coverage_p50, "share"],
  ].map(([figure, x, y, diff, kind]) => ({ figure, a: x, b: y, diff, kind }));
  const show = (v, row, signed) => (row.kind === "money" ? (v === null || v === undefined ? "—" : exact(money(v, signed), fmt.cents(v))) : share(v, signed));
  const columns = [
    { key: "figure", label: "Figure (over the horizon)" },
    { key: "a", label: a.scenario.name, num: true, format: (v, r) => show(v, r, false) },
    { key: "b", label: b.scenario.name, num: true, format: (v, r) => show(v, r, false) },
    { key: "diff", label: `${a.scenario.name} − ${b.scenario.name}`, num: true, format: (v, r) => show(v, r, true) },
  ];
  return h("div", { "data-comparison-table": "" },
    h("h3", {}, "Side by side, with the Monte Carlo's medians"),
    table({ columns, rows, pageSize: 50 }),
    csvLink(columns, rows, "plan-comparison.csv"));
}

function comparisonCharts(a, b) {
  const planned = [a, b].filter((p) => p.status !== "infeasible");
  const out = [];
  if (planned.length === 2) {
    const figures = [["Revenue", "revenue"], ["Contract margin", "margin"], ["Internal capacity cost", "internal_cost"], ["Internal shortfall cost", "shortfall_cost"], ["Backlog at the end", "backlog_at_end"]];
    out.push(barChart({
      title: `Totals over the horizon: ${a.scenario.name} and ${b.scenario.name}`,
      categories: figures.map(([label]) => label),
      series: planned.map((p) => ({ name: p.scenario.name, values: figures.map(([, k]) => p.totals[k]) })),
      format: axisMoney,
      filename: "plan-totals.csv",
    }));
  }
  const simulated = planned.filter((p) => p.montecarlo);
  if (simulated.length === 2) {
    out.push(h("div", { "data-chart": "mc-revenue-p50-both" }, lineChart({
      title: "Monte Carlo revenue per quarter, P50 of both",
      labels: a.montecarlo.quarters.map((q) => q.quarter),
      series: simulated.map((p) => ({ name: `${p.scenario.name} P50`, values: p.montecarlo.quarters.map((q) => q.revenue.p50) })),
      format: axisMoney,
      filename: "plan-revenue-p50.csv",
    })));
  }
  return out;
}

function dealsTables(plan, slug) {
  const price = (r) => (r.price_per_gpu_hour !== null && r.price_per_gpu_hour !== undefined
    ? `${fmt.cents(r.price_per_gpu_hour)} per GPU-hour`
    : r.price_per_mw_month !== null && r.price_per_mw_month !== undefined ? `${money(r.price_per_mw_month)} per MW-month` : "—");
  const accepted = [
    { key: "deal", label: "Deal" },
    { key: "customer", label: "Customer" },
    { key: "site", label: "Site" },
    { key: "accelerator", label: "Chip", value: (r) => (r.whole_site ? "whole site" : r.accelerator) },
    { key: "gpus", label: "GPUs held", num: true, format: fmt.int },
    { key: "start", label: "Start" },
    { key: "end", label: "Last quarter" },
    { key: "price", label: "Price", value: price },
    { key: "probability", label: "Closes", num: true, format: (v) => fmt.pct(v, 0) },
    { key: "revenue", label: "Revenue (horizon)", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "margin", label: "Margin", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "expected_margin", label: "Expected margin", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "backlog_after_horizon", label: "Backlog after", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "decided", label: "Chosen by" },
  ];
  const rejected = [
    { key: "deal", label: "Deal" },
    { key: "customer", label: "Customer" },
    { key: "kind", label: "Why (kind)" },
    { key: "reason", label: "Reason" },
    { key: "margin_delta", label: "Taking it changes the expected margin by", num: true, format: (v) => (v === null || v === undefined ? "—" : exact(money(v, true), fmt.cents(v))) },
  ];
  return [
    h("h3", {}, `Deals taken and where (${plan.accepted.length})`),
    h("div", { "data-deals": "accepted" }, table({ columns: accepted, rows: plan.accepted, pageSize: 50, empty: "No deal taken." }), csvLink(accepted, plan.accepted, `${slug}-accepted.csv`)),
    h("h3", {}, `Deals turned away, and why (${plan.rejected.length})`),
    h("div", { "data-deals": "rejected" }, table({ columns: rejected, rows: plan.rejected, pageSize: 50, empty: "None turned away." }), csvLink(rejected, plan.rejected, `${slug}-rejected.csv`)),
  ];
}

function quartersSection(plan, slug) {
  const qs = plan.quarters;
  const labels = qs.map((q) => q.quarter);
  const columns = [
    { key: "quarter", label: "Quarter" },
    { key: "supply_gpus", label: "Supply GPUs", num: true, format: fmt.int },
    { key: "sold_gpus", label: "Sold", num: true, format: fmt.int },
    { key: "internal_gpus", label: "Internal", num: true, format: fmt.int },
    { key: "utilization", label: "Utilization", num: true, format: (v) => share(v) },
    { key: "revenue", label: "Revenue", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "margin", label: "Margin", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "net", label: "Net", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "backlog", label: "Backlog after", num: true, format: (v) => exact(money(v), fmt.cents(v)) },
    { key: "internal_demand_gpus", label: "Internal demand", num: true, format: fmt.int },
    { key: "internal_covered_gpus", label: "Covered", num: true, format: fmt.int },
    { key: "internal_coverage", label: "Coverage", num: true, format: (v) => share(v) },
  ];
  return [
    h("h3", {}, "Per quarter (the plan)"),
    h("div", { "data-quarters": "" }, table({ columns, rows: qs, pageSize: 40 }), csvLink(columns, qs, `${slug}-quarters.csv`)),
    h("div", { "data-chart": "plan-revenue" }, barChart({
      title: `Revenue and contract margin per quarter: ${plan.scenario.name}`,
      categories: labels,
      series: [{ name: "revenue", values: qs.map((q) => q.revenue) }, { name: "margin", values: qs.map((q) => Math.max(0, q.margin)) }],
      format: axisMoney,
      filename: `${slug}-revenue.csv`,
    })),
    h("div", { "data-chart": "plan-shares" }, lineChart({
      title: `Utilization and internal coverage per quarter, %: ${plan.scenario.name}`,
      labels,
      series: [{ name: "utilization %", values: qs.map((q) => q.utilization * 100) }, { name: "internal coverage %", values: qs.map((q) => q.internal_coverage * 100) }],
      format: axisPct,
      filename: `${slug}-shares.csv`,
    })),
  ];
}

/** A fan: the Monte Carlo's P10, P50 and P90 of a figure per quarter, as three bars side by
 *  side (lines would hide one another where two percentiles meet). */
function fan(plan, field, title, scale, format, slug) {
  const qs = plan.montecarlo.quarters;
  return h("div", { "data-chart": `mc-${field}`, "data-plan": plan.scenario.name }, barChart({
    title: `${title}: ${plan.scenario.name}, P10 / P50 / P90 of ${fmt.int(plan.montecarlo.runs)} runs`,
    categories: qs.map((q) => q.quarter),
    series: [
      { name: "P10", values: qs.map((q) => q[field].p10 * scale), color: "var(--c3)" },
      { name: "P50", values: qs.map((q) => q[field].p50 * scale), color: "var(--c1)" },
      { name: "P90", values: qs.map((q) => q[field].p90 * scale), color: "var(--c2)" },
    ],
    format,
    filename: `${slug}-montecarlo-${field}.csv`,
  }));
}

function monteCarloSection(plan, slug) {
  const mc = plan.montecarlo;
  if (!mc || !mc.runs) return [h("p", { class: "muted" }, "No Monte Carlo runs were asked for.")];
  const totals = ["revenue", "margin", "net", "utilization", "internal_coverage"].map((k) => ({ figure: k.replace("_", " "), kind: k, ...mc.totals[k] }));
  const show = (v, r) => (["utilization", "internal_coverage"].includes(r.kind) ? share(v) : exact(money(v), fmt.cents(v)));
  const totalColumns = [
    { key: "figure", label: "Over the horizon" },
    { key: "p10", label: "P10", num: true, format: show },
    { key: "p50", label: "P50", num: true, format: show },
    { key: "p90", label: "P90", num: true, format: show },
  ];
  const dealColumns = [
    { key: "deal", label: "Deal" },
    { key: "probability", label: "Probability", num: true, format: (v) => fmt.pct(v, 0) },
    { key: "closed_share", label: "Closed in the runs", num: true, format: (v) => fmt.pct(v, 1) },
  ];
  return [
    h("h3", {}, `Monte Carlo: ${fmt.int(mc.runs)} runs, seed ${mc.seed}`),
    h("p", { class: "muted" }, "Each run draws every delivery's delay and whether each deal taken closes; the bars are the 10th, 50th and 90th percentiles per quarter."),
    fan(plan, "revenue", "Revenue per quarter", 1, axisMoney, slug),
    fan(plan, "utilization", "Utilization per quarter, %", 100, axisPct, slug),
    fan(plan, "internal_coverage", "Internal demand covered per quarter, %", 100, axisPct, slug),
    h("div", { "data-mc-totals": "" }, table({ columns: totalColumns, rows: totals, pageSize: 10 }), csvLink(totalColumns, totals, `${slug}-montecarlo-totals.csv`)),
    mc.deals.length ? h("div", {}, table({ columns: dealColumns, rows: mc.deals, pageSize: 50, caption: "How often each deal taken closed" })) : null,
  ];
}

function sitesTable(plan, slug) {
  const rows = plan.sites.map((s) => {
    const n = Math.max(1, s.quarters.length);
    const mean = (k) => s.quarters.reduce((a, q) => a + Number(q[k] || 0), 0) / n;
    return {
      site: s.site,
      power_mw: s.power_mw,
      peak_mw: Math.max(0, ...s.quarters.map((q) => Number(q.power_mw || 0))),
      supply: mean("supply_gpus"),
      sold: mean("sold_gpus"),
      internal: mean("internal_gpus"),
    };
  });
  const columns = [
    { key: "site", label: "Site" },
    { key: "power_mw", label: "Facility", num: true, format: fmt.mw },
    { key: "peak_mw", label: "Most drawn in a quarter", num: true, format: fmt.mw },
    { key: "supply", label: "GPUs (mean per quarter)", num: true, format: fmt.int },
    { key: "sold", label: "Sold (mean)", num: true, format: fmt.int },
    { key: "internal", label: "Kept internal (mean)", num: true, format: fmt.int },
  ];
  return [h("h3", {}, "Sites"), h("div", { "data-sites": "" }, table({ columns, rows, pageSize: 50 }), csvLink(columns, rows, `${slug}-sites.csv`))];
}

/** GPUs as a whole number, MW with a decimal. */
const amount = (v) => (v === null || v === undefined ? "—" : Number.isInteger(Number(v)) ? fmt.int(v) : fmt.num(v, 1));

function infeasibleSection(plan) {
  const columns = [
    { key: "constraint", label: "Constraint" },
    { key: "site", label: "Site" },
    { key: "accelerator", label: "Chip" },
    { key: "quarter", label: "Quarter" },
    { key: "needed", label: "Needs", num: true, format: amount },
    { key: "available", label: "Has", num: true, format: amount },
    { key: "message", label: "What binds" },
  ];
  const rows = plan.infeasible || [];
  return h("div", { class: "panel", "data-infeasible": "" },
    h("p", { class: "error", role: "alert" }, plan.message || "This scenario cannot be planned."),
    h("p", {}, "The constraints that cannot be met, the most specific first:"),
    table({ columns, rows, pageSize: 25 }),
    csvLink(columns, rows, `${plan.scenario.name}-infeasible.csv`));
}

function planSection(plan, result) {
  const name = plan.scenario.name;
  const slug = name.replace(/[^A-Za-z0-9._-]+/g, "-");
  const id = `plan-${slug}`;
  const s = plan.scenario;
  const parts = [
    h("h2", { id }, `${name} `, badge(plan.status)),
    h("p", { class: "muted" },
      `${s.horizon} quarters, ${s.quarters[0]}–${s.quarters[s.quarters.length - 1]}; fleet: ${s.fleet}; ${s.sites.length} sites, ${s.deals} deals, ${s.deliveries} deliveries.`,
      s.description ? ` ${s.description}` : ""),
  ];
  if (plan.status === "infeasible") {
    parts.push(infeasibleSection(plan));
  } else {
    const g = plan.greedy;
    parts.push(
      h("p", {}, `Solver: ${plan.solver.status}, gap ${(Number(plan.solver.gap) * 100).toFixed(2)}%. `,
        g ? `The greedy baseline takes ${g.accepted.length} deals; the optimizer's plan is worth ${money(g.optimizer_gain, true)} more (${fmt.num(g.optimizer_gain_pct, 1)}%).` : ""),
      ...dealsTables(plan, slug),
      ...quartersSection(plan, slug),
      ...monteCarloSection(plan, slug),
      ...sitesTable(plan, slug),
    );
  }
  return h("section", { "aria-labelledby": id, "data-plan-section": name }, parts);
}

function chartLinks(ctx, run) {
  if (!run.charts.length) return null;
  const label = { revenue: "Revenue fan", utilization: "Utilization fan", coverage: "Coverage fan", comparison: "Totals bars" };
  return h("div", { class: "actions", "data-png-charts": "" },
    run.charts.map((url) => {
      const name = url.split("/").pop().replace(/\.png$/, "");
      return h("button", { type: "button", onclick: () => ctx.openDocument(url) }, `${label[name] || name} (PNG)`);
    }),
    h("button", { type: "button", onclick: () => ctx.download(`plans/${run.id}`, `plan-${run.id}.json`) }, "The report (JSON)"));
}

function resultSections(ctx, run) {
  const result = run.result;
  const plans = [result.plan, result.compare].filter(Boolean);
  const planned = plans.some((p) => p.status !== "infeasible");
  const out = [];
  const head = h("section", { "aria-labelledby": "plan-headline", "data-plan-result": run.id },
    h("h2", { id: "plan-headline" }, result.compare ? `${result.plan.scenario.name} compared with ${result.compare.scenario.name}` : "Headline"),
    plans.map((p) => cardsOf(p.scenario.name, headline(p), { "data-cards": p.scenario.name })),
    result.difference
      ? cardsOf(`Difference: ${result.difference.plan} − ${result.difference.compare}`, differenceCards(result.difference), { "data-cards": "difference" })
      : null,
    result.compare ? comparisonTable(result.plan, result.compare, result.difference || {}) : null,
    result.compare ? comparisonCharts(result.plan, result.compare) : null,
    planned ? h("h3", {}, "The server's charts") : null,
    planned ? chartLinks(ctx, run) : null);
  out.push(head);
  for (const p of plans) out.push(planSection(p, result));
  return out;
}

async function renderRun(root, ctx, id) {
  const run = await ctx.api(`plans/${encodeURIComponent(id)}`);
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/plans" }, "Planner"), ` › run ${run.id}`),
    h("h1", {}, `Plan run ${run.id}: ${run.name || "—"}`),
    h("p", { class: "muted" },
      h("span", { "data-run-status": "" }, badge(run.status)),
      ` · ${fmt.int(run.runs)} Monte Carlo runs, seed ${run.seed} · asked by ${run.created_by} at ${fmt.time(run.created_at)}`,
      run.finished_at ? ` · finished ${fmt.time(run.finished_at)}` : ""));
  if (run.status === "queued" || run.status === "running") {
    root.append(progressPanel(run));
    follow(root, ctx, run);
    return;
  }
  if (run.status === "failed") {
    root.append(h("div", { class: "error", role: "alert", "data-run-error": "" }, `The run failed: ${run.error || run.message}`));
    return;
  }
  root.append(...resultSections(ctx, run));
}

export async function render(root, ctx) {
  if (!ctx.me.permissions.includes("plans:read")) {
    root.append(h("h1", {}, "Planner"), h("p", { class: "notice" }, `The planner is for operators; a ${ctx.me.role} token cannot read plans.`));
    return;
  }
  if (ctx.rest.length) await renderRun(root, ctx, ctx.rest[0]);
  else await renderList(root, ctx);
}
