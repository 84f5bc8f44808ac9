// The customer's overview (tenant roles): my contracts and their usable capacity now
// (contracted vs usable GPUs, availability), my recent usage, my invoices and credits.
// Every call is the tenant's own token through the same API and tenant scoping as the CLI,
// so nothing of another tenant can reach this page.
import { h, fmt, badge, cards, table } from "../lib/ui.js";
import { barChart } from "../lib/charts.js";

export const live = true;

const DAY = 86_400_000;
const AVAILABILITY_DAYS = 30;
const USAGE_DAYS = 14;

function hourFloor(ms) {
  return new Date(Math.floor(ms / 3_600_000) * 3_600_000);
}

function iso(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Contracted, allocated and usable GPUs now, and availability over the last 30 days. */
async function capacityOf(ctx, contract) {
  const end = new Date(hourFloor(Date.now()).getTime() + 3_600_000);
  const start = new Date(end.getTime() - AVAILABILITY_DAYS * DAY);
  const [allocation, availability] = await Promise.all([
    ctx.api(`contracts/${encodeURIComponent(contract.name)}/allocation?limit=1`).catch(() => null),
    ctx.api(`contracts/${encodeURIComponent(contract.name)}/availability?start=${iso(start)}&end=${iso(end)}`).catch(() => null),
  ]);
  return { ...contract, allocation, availability: availability ? availability.availability : null };
}

function contractsSection(ctx, rows, upcoming) {
  const columns = [
    { key: "name", label: "Contract" },
    { key: "type", label: "Type" },
    { key: "accelerator", label: "Accelerator", value: (c) => c.accelerator || (c.type === "dedicated-site" ? "whole site" : "—") },
    { key: "site", label: "Site", value: (c) => c.site || (c.sites || []).join(", ") || "any" },
    { key: "term", label: "Term", value: (c) => `${fmt.date(c.start)} – ${fmt.date(c.end)}` },
    { key: "state", label: "State", format: (v, c) => (c.allocation && c.allocation.shortfall_gpus > 0 ? badge("degraded") : badge(v)) },
    { key: "contracted", label: "Contracted GPUs", num: true, value: (c) => (c.allocation ? c.allocation.contracted_gpus : null), format: fmt.int },
    { key: "usable", label: "Usable GPUs now", num: true, value: (c) => (c.allocation ? c.allocation.usable_gpus : null), format: fmt.int },
    { key: "shortfall", label: "Short", num: true, value: (c) => (c.allocation ? c.allocation.shortfall_gpus : null), format: fmt.int },
    { key: "availability", label: `Availability (${AVAILABILITY_DAYS} d)`, num: true, format: (v) => fmt.pct(v, 2) },
  ];
  const held = rows.filter((c) => c.allocation && c.allocation.contracted_gpus > 0);
  return h("section", { "aria-labelledby": "portal-contracts" },
    h("h2", { id: "portal-contracts" }, "My contracts and their capacity now"),
    table({ columns, rows, caption: "Contracts in force", state: ctx.state, key: "contractsPage", empty: "No contract is in force now.",
      onRow: (c) => ctx.navigate("contracts", [c.name]) }),
    held.length
      ? barChart({
        title: "Contracted vs usable GPUs now",
        categories: held.map((c) => c.name),
        series: [
          { name: "contracted", values: held.map((c) => c.allocation.contracted_gpus) },
          { name: "usable", values: held.map((c) => c.allocation.usable_gpus) },
        ],
        filename: "capacity-now.csv",
        width: Math.min(760, 200 + 140 * held.length),
        height: 220,
      })
      : null,
    upcoming.length
      ? table({ columns: columns.slice(0, 6), rows: upcoming, caption: "Starting later", onRow: (c) => ctx.navigate("contracts", [c.name]) })
      : null);
}

function usageSection(rollups) {
  const days = [];
  const today = Math.floor(Date.now() / DAY) * DAY;
  for (let t = today - (USAGE_DAYS - 1) * DAY; t <= today; t += DAY) days.push(new Date(t).toISOString().slice(0, 10));
  const contracts = [...new Set(rollups.map((r) => r.contract))].sort();
  const byKey = new Map();
  let billable = 0;
  let used = 0;
  for (const r of rollups) {
    const key = `${r.start.slice(0, 10)}|${r.contract}`;
    byKey.set(key, (byKey.get(key) || 0) + Number(r.used_gpu_hours));
    used += Number(r.used_gpu_hours);
    billable += Number(r.billable_gpu_hours);
  }
  return h("section", { "aria-labelledby": "portal-usage" },
    h("h2", { id: "portal-usage" }, "My recent usage"),
    cards([
      [`GPU-hours used (${USAGE_DAYS} d)`, fmt.int(used)],
      ["of which billable", fmt.int(billable)],
      ["not billed", fmt.int(used - billable)],
    ]),
    contracts.length
      ? barChart({
        title: `GPU-hours used per day, last ${USAGE_DAYS} days`,
        categories: days.map((d) => d.slice(5)),
        series: contracts.map((c) => ({ name: c, values: days.map((d) => byKey.get(`${d}|${c}`) || 0) })),
        stacked: true,
        filename: "recent-usage.csv",
        height: 220,
      })
      : h("p", { class: "muted" }, "No usage in the last two weeks."),
    h("p", {}, h("a", { href: "#/usage" }, "Usage over time, what was not billed and why, and the export →")));
}

function invoicesSection(ctx, invoices, details) {
  const docs = invoices.filter((d) => d.kind === "invoice" && d.status !== "void");
  const notes = invoices.filter((d) => d.kind === "credit-note" && d.status !== "void");
  const sum = (list, f = (d) => Number(d.total)) => list.reduce((a, d) => a + f(d), 0);
  const open = docs.filter((d) => d.status === "issued");
  const slaCredits = sum(details, (d) => d.items.filter((l) => l.kind === "sla-credit").reduce((a, l) => a + Number(l.amount), 0));
  const currency = (docs[0] || {}).currency || "USD";
  const latest = [...invoices].sort((a, b) => (b.period + b.id).localeCompare(a.period + a.id)).slice(0, 6);
  return h("section", { "aria-labelledby": "portal-invoices" },
    h("h2", { id: "portal-invoices" }, "My invoices and credits"),
    cards([
      ["Invoiced", fmt.cents(sum(docs), currency)],
      ["Open (issued, not paid)", `${fmt.cents(sum(open), currency)} · ${open.length}`],
      ["SLA credits received", fmt.cents(Math.abs(slaCredits), currency)],
      ["Credit notes", `${fmt.cents(Math.abs(sum(notes)), currency)} · ${notes.length}`],
    ]),
    table({
      columns: [
        { key: "number", label: "Number", value: (d) => d.number || `Draft #${d.id}` },
        { key: "kind", label: "Kind" },
        { key: "period", label: "Period" },
        { key: "status", label: "Status", format: (v) => badge(v) },
        { key: "total", label: "Total", num: true, format: (v, d) => fmt.cents(v, d.currency) },
        { key: "due_at", label: "Due", format: fmt.date },
      ],
      rows: latest,
      caption: "Latest documents",
      empty: "No invoices yet.",
      onRow: (d) => ctx.navigate("invoices", [String(d.id)]),
    }),
    h("p", {}, h("a", { href: "#/invoices" }, "All my invoices →")));
}

export async function render(root, ctx) {
  const now = Date.now();
  const usageStart = new Date(Math.floor(now / DAY) * DAY - (USAGE_DAYS - 1) * DAY);
  const [contracts, rollups, invoices] = await Promise.all([
    ctx.apiAll("contracts"),
    ctx.apiAll(`usage/rollups?step=day&start=${iso(usageStart)}`),
    ctx.apiAll("invoices"),
  ]);
  const inForce = contracts.filter((c) => c.state !== "cancelled" && Date.parse(c.start) <= now && now < Date.parse(c.end));
  const upcoming = contracts.filter((c) => c.state !== "cancelled" && Date.parse(c.start) > now);
  const recent = invoices.filter((d) => d.kind === "invoice").slice(-12);
  const [rows, details] = await Promise.all([
    Promise.all(inForce.map((c) => capacityOf(ctx, c))),
    Promise.all(recent.map((d) => ctx.api(`invoices/${d.id}`))),
  ]);
  const contracted = rows.reduce((a, c) => a + (c.allocation ? c.allocation.contracted_gpus : 0), 0);
  const usable = rows.reduce((a, c) => a + (c.allocation ? c.allocation.usable_gpus : 0), 0);
  const weighted = rows.filter((c) => c.availability !== null && c.allocation && c.allocation.contracted_gpus);
  const weight = weighted.reduce((a, c) => a + c.allocation.contracted_gpus, 0);
  const availability = weight ? weighted.reduce((a, c) => a + Number(c.availability) * c.allocation.contracted_gpus, 0) / weight : null;
  root.append(
    h("h1", {}, ctx.me.tenant_display_name || ctx.me.tenant || "Overview"),
    cards([
      ["Contracts in force", fmt.int(inForce.length)],
      ["Contracted GPUs now", fmt.int(contracted)],
      ["Usable GPUs now", fmt.int(usable)],
      [`Availability (${AVAILABILITY_DAYS} d)`, fmt.pct(availability, 2)],
    ]),
    contractsSection(ctx, rows, upcoming),
    usageSection(rollups),
    invoicesSection(ctx, invoices, details),
  );
}
