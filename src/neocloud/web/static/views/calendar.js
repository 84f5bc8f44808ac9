// Capacity calendar: supply vs committed vs free per site × accelerator (or per pool) over
// the coming months or weeks, as a heatmap with conflicts marked. Numbers come from
// GET /v1/capacity (group=accelerator sums each site's fabrics hour by hour on the server)
// and GET /v1/capacity/conflicts; the controls live in the URL (#/calendar?site=…&years=3).
import { h, fmt, cards, table, errorBox } from "../lib/ui.js";
import { heatmap } from "../lib/charts.js";

export const live = true;

const HORIZONS = [1, 2, 3, 5];
const STEPS = { month: "Months", week: "Weeks" };
const ROWS = { accelerator: "Site × accelerator", pool: "Pool (site × accelerator × fabric)" };

/** The controls as the URL holds them, with defaults filled in. */
function settings(query) {
  const years = Number(query.get("years"));
  return {
    site: query.get("site") || "",
    accelerator: query.get("accelerator") || "",
    years: HORIZONS.includes(years) ? years : 3,
    step: query.get("step") in STEPS ? query.get("step") : "month",
    group: query.get("group") in ROWS ? query.get("group") : "accelerator",
    show: query.get("show") === "free" ? "free" : "committed",
  };
}

function toQuery(s) {
  const q = {};
  for (const [k, v] of Object.entries(s)) if (v !== "" && v !== null && v !== undefined) q[k] = String(v);
  return q;
}

/** The first instant of the current UTC month: the calendar starts there. */
function monthStart(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

function iso(d) {
  return d.toISOString().replace(".000Z", "Z");
}

function columnLabel(bucket, step) {
  return step === "month" ? bucket.start.slice(0, 7) : bucket.start.slice(0, 10);
}

function rowLabel(pool, group) {
  return group === "pool" ? `${pool.site} · ${pool.accelerator} · ${pool.fabric}` : `${pool.site} · ${pool.accelerator}`;
}

/** Conflicts that touch a row during a bucket (power and dedicated-site conflicts have no
 *  accelerator: they mark every row of their site). */
function conflictsIn(conflicts, pool, bucket, group) {
  return conflicts.filter((c) =>
    c.site === pool.site &&
    (!c.accelerator || c.accelerator === pool.accelerator) &&
    (group !== "pool" || !c.fabric || c.fabric === pool.fabric) &&
    c.start < bucket.end && c.end > bucket.start);
}

function cellOf(pool, bucket, found, show) {
  const { supply, committed, free } = bucket;
  let value = null;
  if (supply > 0) value = show === "free" ? Math.max(0, free) / supply : committed / supply;
  else if (committed > 0) value = 2; // committed with nothing to supply it: drawn red
  const kinds = [...new Set(found.map((c) => c.kind))];
  if (!kinds.length && committed > supply) kinds.push("oversold");
  return {
    value,
    label: `supply ${fmt.int(supply)} · committed ${fmt.int(committed)} · free ${fmt.int(free)}`,
    mark: kinds.length ? kinds.join(", ") : null,
  };
}

function controls(ctx, s, sites, accelerators) {
  const go = (change) => ctx.navigate("calendar", [], toQuery({ ...s, ...change }));
  const select = (id, label, value, options, key) =>
    h("label", { for: id }, label,
      h("select", { id, name: key, onchange: (e) => go({ [key]: e.target.value }) },
        options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text))));
  return h("form", { class: "inline", style: "margin-bottom:12px", "aria-label": "Calendar controls", onsubmit: (e) => e.preventDefault() },
    select("cal-site", "Site", s.site, [["", "All sites"], ...sites.map((x) => [x, x])], "site"),
    select("cal-accelerator", "Accelerator", s.accelerator, [["", "All accelerators"], ...accelerators.map((x) => [x, x])], "accelerator"),
    select("cal-years", "Horizon", s.years, HORIZONS.map((y) => [y, y === 1 ? "1 year" : `${y} years`]), "years"),
    select("cal-step", "Granularity", s.step, Object.entries(STEPS), "step"),
    select("cal-group", "Rows", s.group, Object.entries(ROWS), "group"),
    h("label", { for: "cal-free", style: "display:flex;gap:6px;align-items:center;padding-bottom:6px" },
      h("input", { id: "cal-free", type: "checkbox", checked: s.show === "free", onchange: (e) => go({ show: e.target.checked ? "free" : "committed" }) }),
      "Show free capacity"));
}

function legend(show) {
  const swatch = (color, text) => h("span", { style: `--swatch:${color}` }, text);
  return h("div", { class: "legend" },
    swatch("hsl(212, 80%, 95%)", show === "free" ? "little free" : "little committed"),
    swatch("hsl(212, 80%, 35%)", show === "free" ? "all free" : "fully committed"),
    swatch("#cf222e", "committed beyond supply"),
    swatch("#f6f8fa", "no supply"),
    h("span", {}, "! conflict (red outline)"));
}

function conflictTable(ctx, conflicts) {
  if (!conflicts.length) return h("p", { class: "notice" }, "No conflicts: supply covers every commitment over the horizon.");
  return table({
    caption: "Conflicts (supply no longer covers commitments)",
    columns: [
      { key: "kind", label: "Kind" },
      { key: "site", label: "Site" },
      { key: "accelerator", label: "Accelerator" },
      { key: "fabric", label: "Fabric" },
      { key: "start", label: "From", format: fmt.date },
      { key: "end", label: "Until", format: fmt.date },
      { key: "amount", label: "Short", num: true, format: (v, r) => `${fmt.num(v, r.unit === "mw" ? 1 : 0)} ${{ gpus: "GPUs", mw: "MW" }[r.unit] || r.unit}` },
      { key: "detail", label: "What" },
      { key: "contracts", label: "Contracts short", format: (v) => (v.length ? v.map((c, i) => [i ? ", " : "", h("a", { href: `#/contracts/${encodeURIComponent(c.contract)}` }, c.contract), ` (${fmt.int(c.short_gpus)})`]) : "—") },
    ],
    rows: conflicts,
    state: ctx.state,
    key: "conflictPage",
    pageSize: 10,
  });
}

/** What one cell holds, shown when a cell is clicked (the table under the chart has all). */
function cellPanel(ctx, info) {
  const { pool, bucket, found } = info;
  const canQuote = ctx.me.permissions.includes("quotes:write");
  const quote = { quote: "1", q_site: pool.site, q_accelerator: pool.accelerator, q_start_after: bucket.start.slice(0, 10) };
  return h("section", { class: "panel", "aria-live": "polite", id: "cal-cell" },
    h("h2", {}, `${rowLabel(pool, "pool").replace(" · *", "")} · ${bucket.start.slice(0, 10)} → ${bucket.end.slice(0, 10)}`),
    cards([
      ["Supply (least in the period)", fmt.int(bucket.supply)],
      ["Committed (most in the period)", fmt.int(bucket.committed)],
      ["Free (least in the period)", fmt.int(bucket.free)],
      ["Committed share", bucket.supply ? fmt.pct(bucket.committed / bucket.supply) : "—"],
    ]),
    found.length ? h("ul", {}, found.map((c) => h("li", { class: "error" }, `${c.kind}: ${c.detail}`))) : null,
    canQuote ? h("p", {}, h("a", { href: `#/contracts?${new URLSearchParams(quote)}` }, `Quote ${pool.accelerator} at ${pool.site} from ${bucket.start.slice(0, 10)}…`)) : null);
}

export async function render(root, ctx) {
  const s = settings(ctx.query);
  const start = monthStart();
  const end = new Date(Date.UTC(start.getUTCFullYear() + s.years, start.getUTCMonth(), 1));
  const params = new URLSearchParams({ start: iso(start), end: iso(end), step: s.step, group: s.group });
  if (s.site) params.set("site", s.site);
  if (s.accelerator) params.set("accelerator", s.accelerator);
  if (!ctx.state.choices) {
    const [sites, accs] = await Promise.all([ctx.apiAll("sites"), ctx.apiAll("accelerators")]);
    ctx.state.choices = { sites: sites.map((x) => x.name), accelerators: accs.map((x) => x.name) };
  }
  const [report, conflicts] = await Promise.all([
    ctx.api(`capacity?${params}`),
    ctx.api(`capacity/conflicts?${new URLSearchParams({ end: iso(end) })}`), // from now on
  ]);
  const pools = report.pools;
  const buckets = pools.length ? pools[0].series : [];
  const rowLabels = pools.map((p) => rowLabel(p, s.group));
  const colLabels = buckets.map((b) => columnLabel(b, s.step));
  const found = pools.map((p) => p.series.map((b) => conflictsIn(conflicts, p, b, s.group)));
  const cells = pools.map((p, r) => p.series.map((b, c) => cellOf(p, b, found[r][c], s.show)));

  const now = buckets.length ? pools.map((p) => p.series[0]) : [];
  const sum = (key) => now.reduce((a, b) => a + b[key], 0);
  const title = `${s.show === "free" ? "Free" : "Committed"} share of supply by ${s.step}, ${fmt.date(iso(start))} → ${fmt.date(iso(end))}`;

  root.append(
    h("h1", {}, "Capacity calendar"),
    h("p", { class: "muted" }, "Each cell is a site's accelerator (or one pool) over a month or week: its colour is the committed (or free) share of supply; hover a cell or open Numbers for supply, committed and free GPUs. Per period: the least supply, the most committed and the least free."),
    controls(ctx, s, ctx.state.choices.sites, ctx.state.choices.accelerators),
    cards([
      [`Supply (${colLabels[0] || "now"})`, fmt.int(sum("supply"))],
      ["Committed", fmt.int(sum("committed"))],
      ["Free", fmt.int(sum("free"))],
      ["Conflicts over the horizon", fmt.int(conflicts.length)],
    ]),
  );
  if (!pools.length) {
    root.append(h("p", { class: "muted" }, "No capacity pools match these filters."));
  } else {
    const chart = heatmap({
      title,
      rowLabels,
      colLabels,
      cells,
      filename: `capacity-${s.step}.csv`,
      cellW: s.step === "month" ? 26 : 12,
      legend: legend(s.show),
    });
    chart.querySelector("svg").style.maxWidth = "none"; // scroll sideways rather than shrink the labels
    const slot = h("div", {});
    if (ctx.state.cell) {
      const { r, c } = ctx.state.cell;
      if (pools[r] && pools[r].series[c]) slot.append(cellPanel(ctx, { pool: pools[r], bucket: pools[r].series[c], found: found[r][c] }));
    }
    chart.addEventListener("click", (event) => {
      const rect = event.target.closest("rect[data-row]");
      if (!rect) return;
      const r = rowLabels.indexOf(rect.dataset.row);
      const c = colLabels.indexOf(rect.dataset.col);
      if (r < 0 || c < 0) return;
      ctx.state.cell = { r, c };
      slot.replaceChildren(cellPanel(ctx, { pool: pools[r], bucket: pools[r].series[c], found: found[r][c] }));
    });
    const csvParams = new URLSearchParams(params);
    csvParams.set("format", "csv");
    root.append(chart, slot,
      h("p", {}, h("button", { type: "button", onclick: () => ctx.download(`capacity?${csvParams}`, `capacity-${s.step}s.csv`).catch((err) => root.prepend(errorBox(err))) },
        "Download supply, committed and free (CSV, a row per pool and period)")));
  }
  root.append(h("h2", {}, "Conflicts"), conflictTable(ctx, conflicts));
}
