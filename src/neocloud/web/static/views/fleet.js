// Fleet: sites with their power (facility, installed, committed MW, PUE), lifecycle and
// deliveries; drill down #/fleet/<site> → fabrics, #/fleet/<site>/<fabric>[/<block>] →
// blocks and nodes. Counts come from the API's summaries (sites, fabrics, blocks); nodes
// are only ever fetched a page at a time.
import { h, fmt, badge, cards, table, pagedTable, csvLink } from "../lib/ui.js";
import { barChart } from "../lib/charts.js";

export const live = true;

const NODE_STATES = ["burn-in", "available", "allocated", "draining", "failed", "repair", "retired"];
const LIFECYCLE = ["planned", "building", "live", "draining", "retired"];

export async function render(root, ctx) {
  const [site, fabric, block] = ctx.rest;
  if (!site) return overview(root, ctx);
  if (!fabric) return sitePage(root, ctx, site);
  return fabricPage(root, ctx, site, fabric, block);
}

const link = (text, href) => h("a", { href }, text);
const siteHref = (site) => `#/fleet/${encodeURIComponent(site)}`;
const fabricHref = (site, fabric) => `${siteHref(site)}/${encodeURIComponent(fabric)}`;
const sum = (rows, f) => rows.reduce((a, r) => a + Number(f(r) || 0), 0);
const share = (part, whole) => (Number(whole) > 0 ? Number(part) / Number(whole) : null);
const outOfService = (byState) => Number(byState.failed || 0) + Number(byState.repair || 0);

function crumbs(parts) {
  const items = [link("Fleet", "#/fleet")];
  for (const [text, href] of parts) items.push(" › ", href ? link(text, href) : h("span", { "aria-current": "page" }, text));
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, items);
}

function lifecycleText(s) {
  return LIFECYCLE.filter((k) => s[`${k}_on`]).map((k) => `${k} ${s[`${k}_on`]}`).join(" → ") || "—";
}

function deliveryColumns(pue) {
  return [
    { key: "name", label: "Delivery" },
    { key: "site", label: "Site", format: (v) => link(v, siteHref(v)) },
    { key: "fabric", label: "Fabric" },
    { key: "accelerator", label: "Accelerator" },
    { key: "nodes", label: "Nodes", num: true, format: fmt.int },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "mw", label: "Facility MW", num: true, value: (d) => (d.nodes * Number(d.power_kw_per_node) * (pue[d.site] || 1)) / 1000, format: (v) => fmt.num(v, 1) },
    { key: "expected_on", label: "Expected", format: fmt.date },
    { key: "state", label: "State", format: (v) => badge(v) },
    { key: "supplier", label: "Supplier" },
  ];
}

async function overview(root, ctx) {
  const [sites, deliveries] = await Promise.all([ctx.apiAll("sites"), ctx.apiAll("deliveries")]);
  const pue = Object.fromEntries(sites.map((s) => [s.name, Number(s.pue)]));
  const scheduled = deliveries.filter((d) => d.state === "scheduled");
  root.append(
    h("h1", {}, "Fleet"),
    cards([
      ["Sites", `${sites.length} (${sites.filter((s) => s.state === "live").length} live)`],
      ["GPUs in service", fmt.int(sum(sites, (s) => s.gpus))],
      ["Facility power", fmt.mw(sum(sites, (s) => s.power_mw))],
      ["Committed power", fmt.mw(sum(sites, (s) => s.committed_power_mw))],
      ["Installed power", fmt.mw(sum(sites, (s) => s.installed_power_mw))],
      ["GPUs out of service", fmt.int(sum(sites, (s) => outOfService(s.gpus_by_state)))],
      ["GPUs to be delivered", fmt.int(sum(scheduled, (d) => d.gpus))],
    ]),
  );
  const columns = [
    { key: "name", label: "Site", format: (v, s) => h("span", {}, link(v, siteHref(v)), s.display_name ? h("div", { class: "muted" }, s.display_name) : null) },
    { key: "state", label: "State", format: (v) => badge(v) },
    { key: "location", label: "Location" },
    { key: "power_mw", label: "Facility MW", num: true, format: (v) => fmt.num(v, 1) },
    { key: "committed_power_mw", label: "Committed MW", num: true, format: (v) => fmt.num(v, 1) },
    { key: "committed_pct", label: "Committed", num: true, value: (s) => share(s.committed_power_mw, s.power_mw), format: (v) => fmt.pct(v) },
    { key: "installed_power_mw", label: "Installed MW", num: true, format: (v) => fmt.num(v, 1) },
    { key: "headroom_mw", label: "Headroom MW", num: true, format: (v) => fmt.num(v, 1) },
    { key: "pue", label: "PUE", num: true, format: (v) => fmt.num(v, 2) },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "nodes", label: "Nodes", num: true, format: fmt.int },
    { key: "down", label: "GPUs down", num: true, value: (s) => outOfService(s.gpus_by_state), format: fmt.int },
    { key: "scheduled_gpus", label: "GPUs due", num: true, format: fmt.int },
  ];
  root.append(
    h("h2", {}, "Sites"),
    table({ columns, rows: sites, onRow: (s) => ctx.navigate("fleet", [s.name]), state: ctx.state, key: "sites", caption: "Sites, their power and GPUs (select a site for its fabrics)" }),
    csvLink(columns, sites, "sites.csv", "Download sites (CSV)"),
    barChart({
      title: "Power by site (MW)",
      categories: sites.map((s) => s.name),
      series: [
        { name: "Facility", values: sites.map((s) => Number(s.power_mw)) },
        { name: "Installed", values: sites.map((s) => Number(s.installed_power_mw)) },
        { name: "Committed", values: sites.map((s) => Number(s.committed_power_mw)) },
      ],
      format: (v) => fmt.num(v, 0),
      filename: "power-by-site.csv",
    }),
    h("h2", {}, "Lifecycle"),
    table({
      columns: [
        { key: "name", label: "Site", format: (v) => link(v, siteHref(v)) },
        { key: "state", label: "State", format: (v) => badge(v) },
        ...LIFECYCLE.map((k) => ({ key: `${k}_on`, label: k[0].toUpperCase() + k.slice(1), format: fmt.date })),
      ],
      rows: sites,
      caption: "When each site entered each stage",
    }),
    h("h2", {}, "Deliveries"),
    table({ columns: deliveryColumns(pue), rows: deliveries, state: ctx.state, key: "deliveries", caption: "Hardware on order, by expected date", empty: "No deliveries." }),
  );
}

async function sitePage(root, ctx, name) {
  const [site, fabrics, deliveries] = await Promise.all([
    ctx.api(`sites/${encodeURIComponent(name)}`),
    ctx.api(`sites/${encodeURIComponent(name)}/fabrics`),
    ctx.apiAll(`deliveries?site=${encodeURIComponent(name)}`),
  ]);
  document.title = `${name} · Fleet · neocloud`;
  root.append(
    crumbs([[name]]),
    h("h1", {}, site.display_name || site.name, " ", badge(site.state)),
    h("p", { class: "muted" }, `${site.location} · ${lifecycleText(site)}`),
    cards([
      ["Facility power", fmt.mw(site.power_mw)],
      ["Committed power", `${fmt.mw(site.committed_power_mw)} (${fmt.pct(share(site.committed_power_mw, site.power_mw))})`],
      ["Installed power", fmt.mw(site.installed_power_mw)],
      ["IT power", fmt.mw(site.it_power_mw)],
      ["Headroom", fmt.mw(site.headroom_mw)],
      ["PUE", fmt.num(site.pue, 2)],
      ["GPUs in service", fmt.int(site.gpus)],
      ["Nodes", fmt.int(site.nodes)],
      ["Hot spares", `${fmt.num(site.spare_pct, 1)}% of each pool`],
      ["GPUs to be delivered", fmt.int(site.scheduled_gpus)],
    ]),
  );
  const byAcc = Object.entries(site.gpus_by_accelerator).map(([accelerator, gpus]) => ({ accelerator, gpus }));
  const byState = Object.entries(site.gpus_by_state).map(([state, gpus]) => ({ state, gpus }));
  root.append(h("div", { class: "pair" },
    h("div", {}, h("h2", {}, "GPUs by accelerator"), table({ columns: [{ key: "accelerator", label: "Accelerator" }, { key: "gpus", label: "GPUs", num: true, format: fmt.int }], rows: byAcc })),
    h("div", {}, h("h2", {}, "GPUs by state"), table({ columns: [{ key: "state", label: "State", format: (v) => badge(v) }, { key: "gpus", label: "GPUs", num: true, format: fmt.int }], rows: byState }))));
  const states = NODE_STATES.filter((st) => fabrics.some((f) => f.nodes_by_state[st]));
  const columns = [
    { key: "name", label: "Fabric", format: (v) => link(v, fabricHref(name, v)) },
    { key: "accelerators", label: "Accelerators", value: (f) => f.accelerators.join(", ") },
    { key: "blocks", label: "Blocks", num: true, format: fmt.int },
    { key: "nodes", label: "Nodes", num: true, format: fmt.int },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    ...states.map((st) => ({ key: `state:${st}`, label: `${st[0].toUpperCase()}${st.slice(1)} nodes`, num: true, value: (f) => f.nodes_by_state[st] || 0, format: fmt.int })),
  ];
  root.append(
    h("h2", {}, "Fabrics"),
    table({ columns, rows: fabrics, onRow: (f) => ctx.navigate("fleet", [name, f.name]), state: ctx.state, key: "fabrics", caption: `Fabrics of ${name} (select one for its blocks and nodes)`, empty: "No hardware installed yet." }),
    csvLink(columns, fabrics, `${name}-fabrics.csv`, "Download fabrics (CSV)"),
    h("h2", {}, "Deliveries"),
    table({ columns: deliveryColumns({ [name]: Number(site.pue) }), rows: deliveries, caption: `Hardware on order for ${name}`, empty: "No deliveries for this site." }),
  );
}

async function fabricPage(root, ctx, site, fabric, block) {
  const blocks = await ctx.api(`sites/${encodeURIComponent(site)}/fabrics/${encodeURIComponent(fabric)}/blocks`);
  const scope = block ? blocks.filter((b) => b.name === block) : blocks;
  const byState = {};
  for (const b of scope) for (const [st, n] of Object.entries(b.nodes_by_state)) byState[st] = (byState[st] || 0) + n;
  document.title = `${block || fabric} · ${site} · Fleet · neocloud`;
  root.append(
    crumbs(block ? [[site, siteHref(site)], [fabric, fabricHref(site, fabric)], [block]] : [[site, siteHref(site)], [fabric]]),
    h("h1", {}, block ? `Block ${block}` : `Fabric ${fabric}`, h("span", { class: "muted" }, ` · ${site}`)),
    cards([
      ["Blocks", fmt.int(scope.length)],
      ["Nodes", fmt.int(sum(scope, (b) => b.nodes))],
      ["GPUs", fmt.int(sum(scope, (b) => b.gpus))],
      ["GPUs available", fmt.int(sum(scope, (b) => b.gpus_available))],
      ...NODE_STATES.filter((st) => byState[st]).map((st) => [`${st[0].toUpperCase()}${st.slice(1)} nodes`, fmt.int(byState[st])]),
    ]),
  );
  if (!block) {
    const columns = [
      { key: "name", label: "Block", format: (v) => link(v, `${fabricHref(site, fabric)}/${encodeURIComponent(v)}`) },
      { key: "nodes", label: "Nodes", num: true, format: fmt.int },
      { key: "gpus", label: "GPUs", num: true, format: fmt.int },
      { key: "gpus_available", label: "GPUs available", num: true, format: fmt.int },
      { key: "down", label: "Nodes down", num: true, value: (b) => outOfService(b.nodes_by_state), format: fmt.int },
      { key: "states", label: "Nodes by state", value: (b) => Object.entries(b.nodes_by_state).map(([st, n]) => `${st} ${n}`).join(", ") },
    ];
    root.append(
      h("h2", {}, "Blocks"),
      table({ columns, rows: blocks, onRow: (b) => ctx.navigate("fleet", [site, fabric, b.name]), state: ctx.state, key: "blocks", caption: `Blocks of ${fabric} (select one for its nodes)` }),
      csvLink(columns, blocks, `${site}-${fabric}-blocks.csv`, "Download blocks (CSV)"),
    );
  }
  root.append(h("h2", {}, block ? "Nodes" : "Nodes of the fabric"));
  const wanted = ctx.query.get("state") || "";
  const select = h("select", { id: "node-state", onchange: () => ctx.navigate("fleet", ctx.rest, select.value ? { state: select.value } : null) },
    h("option", { value: "" }, "all states"),
    NODE_STATES.map((st) => h("option", { value: st, selected: st === wanted }, st)));
  root.append(h("form", { class: "inline", onsubmit: (e) => e.preventDefault() }, h("label", { for: "node-state" }, "State", select)));
  const params = new URLSearchParams({ site, fabric });
  if (block) params.set("block", block);
  if (wanted) params.set("state", wanted);
  const canWrite = ctx.me.permissions.includes("fleet:write");
  const columns = [
    { key: "name", label: "Node" },
    { key: "block", label: "Block" },
    { key: "accelerator", label: "Accelerator" },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "power_kw", label: "kW", num: true, format: (v) => fmt.num(v, 1) },
    { key: "state", label: "State", format: (v) => badge(v) },
    { key: "updated_at", label: "Changed", format: fmt.time },
  ];
  if (canWrite) columns.push({ key: "action", label: "Action", value: (n) => n, format: (n) => nodeAction(ctx, n) });
  const nodes = pagedTable({ api: ctx.api, path: `nodes?${params}`, columns, caption: "Nodes (a page at a time)", state: ctx.state, key: "nodes", empty: "No nodes in this state." });
  root.append(nodes);
  await nodes.ready;
}

/** Fail or repair a node (operators with fleet:write); placement heals or degrades at once. */
export function nodeAction(ctx, node) {
  const act = async (verb, event) => {
    const button = event.currentTarget;
    if (verb === "fail" && !window.confirm(`Mark ${node.name} failed? What it holds is healed from spares or its contract degraded.`)) return;
    button.disabled = true;
    try {
      await ctx.api(`nodes/${encodeURIComponent(node.name)}/${verb}`, { method: "POST", body: { reason: `from the console by ${ctx.me.name}` } });
    } catch (err) {
      window.alert(err.message);
    }
    await ctx.refresh();
  };
  if (node.state === "failed" || node.state === "repair") {
    return h("button", { type: "button", "aria-label": `Repair ${node.name}`, onclick: (e) => act("repair", e) }, "Repair");
  }
  if (node.state === "retired") return null;
  return h("button", { type: "button", "aria-label": `Mark ${node.name} failed`, onclick: (e) => act("fail", e) }, "Fail");
}
