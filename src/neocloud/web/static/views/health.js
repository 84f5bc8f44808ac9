// Health: contracts short of GPUs (GET /v1/placement/degraded), nodes failed or in repair
// with the contract each was taken from (GET /v1/placement/failed-nodes), GPUs down per site
// (GET /v1/sites), and spot preemptions (GET /v1/placement/preemptions). Operators with
// fleet:write can mark a node failed or repaired here.
import { h, fmt, badge, cards, table, pagedTable, csvLink, errorBox } from "../lib/ui.js";
import { nodeAction } from "./fleet.js";

export const live = true;

const contractLink = (name) => (name ? h("a", { href: `#/contracts/${encodeURIComponent(name)}` }, name) : "—");

export async function render(root, ctx) {
  const [degraded, preemptions, sites] = await Promise.all([
    ctx.api("placement/degraded"),
    ctx.api("placement/preemptions?limit=200"),
    ctx.apiAll("sites"),
  ]);
  const short = new Map(degraded.map((d) => [d.contract, d]));
  const down = (s) => Number(s.gpus_by_state.failed || 0) + Number(s.gpus_by_state.repair || 0);
  const dayAgo = Date.now() - 86400e3;
  root.append(
    h("h1", {}, "Health"),
    cards([
      ["Contracts degraded", fmt.int(degraded.length)],
      ["GPUs short", fmt.int(degraded.reduce((a, d) => a + d.shortfall_gpus, 0))],
      ["GPUs failed or in repair", fmt.int(sites.reduce((a, s) => a + down(s), 0))],
      ["Spot preemptions (24 h)", fmt.int(preemptions.filter((p) => Date.parse(p.ended_at) >= dayAgo).length)],
    ]),
  );

  const degradedColumns = [
    { key: "contract", label: "Contract", format: contractLink },
    { key: "tenant", label: "Tenant" },
    { key: "state", label: "State", value: () => "degraded", format: (v) => badge(v) },
    { key: "usable_gpus", label: "Usable GPUs", num: true, format: fmt.int },
    { key: "contracted_gpus", label: "Contracted GPUs", num: true, format: fmt.int },
    { key: "shortfall_gpus", label: "Short", num: true, format: fmt.int },
    { key: "since", label: "Since", format: fmt.time },
    { key: "reason", label: "Why" },
  ];
  root.append(
    h("h2", { id: "degraded" }, "Degraded contracts"),
    table({ columns: degradedColumns, rows: degraded, state: ctx.state, key: "degraded", caption: "Contracts with fewer usable GPUs than they bought", empty: "Every contract has all the GPUs it bought." }),
    ...(degraded.length ? [csvLink(degradedColumns, degraded, "degraded-contracts.csv")] : []),
  );

  const canWrite = ctx.me.permissions.includes("fleet:write");
  const nodeColumns = [
    { key: "name", label: "Node" },
    { key: "site", label: "Site", format: (v, n) => h("a", { href: `#/fleet/${encodeURIComponent(v)}/${encodeURIComponent(n.fabric)}/${encodeURIComponent(n.block)}` }, `${v} / ${n.fabric} / ${n.block}`) },
    { key: "accelerator", label: "Accelerator" },
    { key: "gpus", label: "GPUs", num: true, format: fmt.int },
    { key: "state", label: "State", format: (v) => badge(v) },
    { key: "since", label: "Since", format: fmt.time },
    { key: "reason", label: "Reason" },
    { key: "contract", label: "Contract hit", format: contractLink },
    { key: "effect", label: "Effect", value: (n) => (!n.contract ? "none" : short.has(n.contract) ? "degraded" : "healed"), format: (v) => (v === "none" ? "—" : badge(v)) },
  ];
  if (canWrite) nodeColumns.push({ key: "action", label: "Action", value: (n) => n, format: (n) => nodeAction(ctx, n) });
  const nodes = pagedTable({ api: ctx.api, path: "placement/failed-nodes", columns: nodeColumns, caption: "Failed and in-repair nodes, and the contract each was taken from", state: ctx.state, key: "failed", empty: "No node is failed or in repair." });
  root.append(h("h2", { id: "failed" }, "Nodes out of service"), nodes);
  if (canWrite) root.append(failForm(ctx));

  const siteColumns = [
    { key: "name", label: "Site", format: (v) => h("a", { href: `#/fleet/${encodeURIComponent(v)}` }, v) },
    { key: "gpus", label: "GPUs in service", num: true, format: fmt.int },
    { key: "failed", label: "GPUs failed", num: true, value: (s) => s.gpus_by_state.failed || 0, format: fmt.int },
    { key: "repair", label: "GPUs in repair", num: true, value: (s) => s.gpus_by_state.repair || 0, format: fmt.int },
    { key: "draining", label: "GPUs draining", num: true, value: (s) => s.gpus_by_state.draining || 0, format: fmt.int },
    { key: "down_pct", label: "Down", num: true, value: (s) => (s.gpus ? down(s) / s.gpus : null), format: (v) => fmt.pct(v, 3) },
  ];
  root.append(h("h2", {}, "By site"), table({ columns: siteColumns, rows: sites.filter((s) => s.gpus > 0), caption: "GPUs out of service per site" }));

  const preemptColumns = [
    { key: "contract", label: "Spot contract", format: contractLink },
    { key: "tenant", label: "Tenant" },
    { key: "node", label: "Node" },
    { key: "started_at", label: "Started", format: fmt.time },
    { key: "notice_at", label: "Notice", format: fmt.time },
    { key: "ended_at", label: "Ended", format: fmt.time },
    { key: "reason", label: "Why" },
    { key: "lent_by", label: "Lent by", format: contractLink },
  ];
  root.append(
    h("h2", { id: "preemptions" }, "Spot preemptions"),
    table({ columns: preemptColumns, rows: preemptions, state: ctx.state, key: "preemptions", caption: "Spot leases ended because their capacity was taken back, newest first", empty: "No spot lease has been preempted." }),
    ...(preemptions.length ? [csvLink(preemptColumns, preemptions, "preemptions.csv")] : []),
  );
  await nodes.ready;
}

/** Mark a node failed by name (what a health check or a technician reports). */
function failForm(ctx) {
  const node = h("input", { id: "fail-node", name: "node", required: true, autocomplete: "off", spellcheck: "false", placeholder: "m1-h100-f01-su01-n01" });
  const reason = h("input", { id: "fail-reason", name: "reason", autocomplete: "off", placeholder: "XID 79: GPU fell off the bus" });
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    out.replaceChildren();
    try {
      const result = await ctx.api(`nodes/${encodeURIComponent(node.value.trim())}/fail`, { method: "POST", body: { reason: reason.value.trim() || null } });
      const hit = result.site.changes.filter((c) => c.node === result.node && c.before && c.before !== "spare").map((c) => c.before);
      const shortNow = result.site.short.map((s) => `${s.contract} short ${fmt.int(s.shortfall_gpus)} GPUs`);
      ctx.state.lastFailure = `${result.node} failed${hit.length ? `; it held ${hit.join(", ")}` : ""}${shortNow.length ? `; ${shortNow.join(", ")}` : "; nothing is short"}.`;
      node.value = "";
      reason.value = "";
      document.activeElement.blur();
      await ctx.refresh();
    } catch (err) {
      out.append(errorBox(err));
    }
  } },
    h("label", { for: "fail-node" }, "Node name", node),
    h("label", { for: "fail-reason" }, "Reason", reason),
    h("button", { type: "submit" }, "Mark failed"));
  return h("section", { class: "panel", "aria-labelledby": "fail-title" },
    h("h3", { id: "fail-title" }, "Mark a node failed"),
    h("p", { class: "muted" }, "Placement heals what the node held from spares or free nodes of its pool, or marks the contract degraded."),
    form, out,
    ctx.state.lastFailure ? h("p", { class: "notice", role: "status" }, ctx.state.lastFailure) : null);
}
