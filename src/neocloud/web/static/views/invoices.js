// Invoices (operators and tenants; the API scopes a tenant to its own): a paged list with
// filters in the URL (#/invoices?status=issued&period=2026-09), and a document's detail at
// #/invoices/<id> — its lines, SLA credits and credit notes, totals, and the HTML, PDF and
// CSV documents (GET /v1/invoices/{id}/document?format=…).
import { h, fmt, badge, cards, table, pagedTable, csvLink } from "../lib/ui.js";

export const live = true;

const STATUSES = ["draft", "issued", "paid", "void"];
const KINDS = ["invoice", "credit-note", "showback"];

/** Children for Element.append, without the nulls of optional parts. */
function kept(...children) {
  return children.filter((c) => c !== null && c !== undefined && c !== false);
}

function docName(inv) {
  return inv.number || `Draft #${inv.id}`;
}

function money(v, inv) {
  return fmt.cents(v, inv.currency || "USD");
}

async function filters(ctx) {
  const q = ctx.query;
  const tenants = ctx.me.operator ? await ctx.apiAll("tenants").catch(() => []) : [];
  const select = (name, label, options) =>
    h("label", {}, label, h("select", { name },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o.value ?? o, selected: q.get(name) === (o.value ?? o) }, o.label ?? o))));
  const form = h("form", { class: "inline", "aria-label": "Filter invoices", onsubmit: (event) => {
    event.preventDefault();
    const data = Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => v));
    ctx.navigate("invoices", [], data);
  } },
    select("status", "Status", STATUSES),
    select("kind", "Kind", KINDS),
    h("label", {}, "Period", h("input", { name: "period", type: "month", value: q.get("period") || "" })),
    ctx.me.operator ? select("tenant", "Tenant", tenants.map((t) => ({ value: t.name, label: t.display_name || t.name }))) : null,
    h("button", { class: "primary", type: "submit" }, "Filter"),
    h("button", { type: "button", onclick: () => ctx.navigate("invoices") }, "Clear"));
  return form;
}

async function renderList(root, ctx) {
  const q = new URLSearchParams();
  for (const name of ["status", "kind", "period", "tenant"]) {
    const value = ctx.query.get(name);
    if (value && (name !== "tenant" || ctx.me.operator)) q.set(name, value);
  }
  const path = `invoices${q.toString() ? `?${q}` : ""}`;
  const columns = [
    { key: "number", label: "Number", value: docName },
    ctx.me.operator ? { key: "tenant", label: "Tenant" } : null,
    { key: "kind", label: "Kind" },
    { key: "status", label: "Status", format: (v) => badge(v) },
    { key: "period", label: "Period" },
    { key: "lines", label: "Lines", num: true, format: fmt.int },
    { key: "total", label: "Total", num: true, format: (v, row) => money(v, row) },
    { key: "issued_at", label: "Issued", format: fmt.date },
    { key: "due_at", label: "Due", format: fmt.date },
    { key: "paid_at", label: "Paid", format: fmt.date },
  ].filter(Boolean);
  const list = pagedTable({
    api: ctx.api, path, columns, state: ctx.state, caption: "Invoices, credit notes and showback statements, oldest first",
    onRow: (row) => ctx.navigate("invoices", [String(row.id)]),
    empty: "No documents match these filters.",
  });
  root.append(...kept(
    h("h1", {}, "Invoices"),
    ctx.me.operator ? null : h("p", { class: "muted" }, "Your invoices and credit notes. Open one for its lines and its PDF."),
    await filters(ctx),
    list));
  await list.ready;
}

/** Credit notes against this invoice, and (for a credit note) the invoice it credits. */
async function related(ctx, inv) {
  const tenant = ctx.me.operator ? `&tenant=${encodeURIComponent(inv.tenant)}` : "";
  if (inv.kind === "credit-note") {
    const all = await ctx.apiAll(`invoices?kind=invoice${tenant}`);
    return { credited: all.find((d) => d.number === inv.credits_invoice) || null, notes: [] };
  }
  if (!inv.number) return { credited: null, notes: [] };
  const notes = await ctx.apiAll(`invoices?kind=credit-note${tenant}`);
  return { credited: null, notes: notes.filter((d) => d.credits_invoice === inv.number) };
}

function documentButtons(ctx, inv) {
  const base = `invoices/${inv.id}/document`;
  const file = (ext) => `${docName(inv).replace(/[^A-Za-z0-9-]+/g, "-")}.${ext}`;
  return h("div", { class: "actions", role: "group", "aria-label": "Documents" },
    h("button", { type: "button", onclick: () => ctx.openDocument(`${base}?format=html`) }, "Open HTML"),
    h("button", { type: "button", onclick: () => ctx.download(`${base}?format=pdf`, file("pdf")) }, "Download PDF"),
    h("button", { type: "button", onclick: () => ctx.download(`${base}?format=csv`, file("csv")) }, "Download CSV"));
}

function source(line) {
  if (!line.source || !Object.keys(line.source).length) return "—";
  return h("details", {}, h("summary", {}, "source"), h("pre", { class: "source" }, JSON.stringify(line.source, null, 2)));
}

async function renderDetail(root, ctx, id) {
  const inv = await ctx.api(`invoices/${encodeURIComponent(id)}`);
  const rel = await related(ctx, inv);
  const credits = inv.items.filter((l) => l.kind === "sla-credit");
  const slaCredit = credits.reduce((a, l) => a + Number(l.amount), 0);
  const balance = Number(inv.total) - Number(inv.credited || 0);
  const lineColumns = [
    { key: "position", label: "#", num: true },
    { key: "contract", label: "Contract" },
    { key: "kind", label: "Kind" },
    { key: "for_period", label: "For" },
    { key: "description", label: "Description" },
    { key: "quantity", label: "Quantity", num: true, format: (v) => (v === "" ? "" : fmt.num(v, 2)) },
    { key: "unit", label: "Unit" },
    { key: "unit_price", label: "Unit price", num: true, format: (v) => (v === "" ? "" : fmt.num(v, 4)) },
    { key: "amount", label: "Amount", num: true, format: (v) => money(v, inv) },
  ];
  const totalRow = { position: "", contract: "", kind: "", for_period: "", description: "Total", quantity: "", unit: "", unit_price: "", amount: inv.total, total: true };
  const noteColumns = [
    { key: "number", label: "Credit note", value: docName },
    { key: "status", label: "Status", format: (v) => badge(v) },
    { key: "issued_at", label: "Issued", format: fmt.date },
    { key: "total", label: "Amount", num: true, format: (v, row) => money(v, row) },
  ];
  root.append(...kept(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/invoices" }, "Invoices"), " › ", docName(inv)),
    h("h1", {}, `${inv.kind === "credit-note" ? "Credit note" : inv.kind === "showback" ? "Showback statement" : "Invoice"} ${docName(inv)} `, badge(inv.status)),
    cards([
      ["Tenant", inv.tenant],
      ["Period", `${inv.period} (${fmt.date(inv.period_start)} – ${fmt.date(inv.period_end)})`],
      ["Total", money(inv.total, inv)],
      ["SLA credits on it", money(slaCredit, inv)],
      ["Credited by credit notes", money(inv.credited, inv)],
      ["Balance", money(balance, inv)],
      ["Issued", fmt.date(inv.issued_at)],
      [inv.paid_at ? "Paid" : "Due", fmt.date(inv.paid_at || inv.due_at)],
    ]),
    inv.reason ? h("p", {}, h("strong", {}, "Reason: "), inv.reason) : null,
    rel.credited ? h("p", {}, "Credits invoice ", h("a", { href: `#/invoices/${rel.credited.id}` }, rel.credited.number), ".") : null,
    documentButtons(ctx, inv),
    h("h2", {}, "Lines"),
    table({ columns: [...lineColumns, { key: "source", label: "Traced to", value: (l) => l, format: (l) => (l.total ? "" : source(l)) }], rows: [...inv.items, totalRow], pageSize: 100, caption: `${inv.items.length} ${inv.items.length === 1 ? "line" : "lines"}` }),
    csvLink(lineColumns, inv.items, `${docName(inv)}-lines.csv`),
    h("h2", {}, "Credits"),
    credits.length
      ? table({ columns: lineColumns, rows: credits, caption: "SLA credits on this document" })
      : h("p", { class: "muted" }, "No SLA credits on this document."),
    inv.kind === "credit-note" ? null
      : rel.notes.length
        ? table({ columns: noteColumns, rows: rel.notes, caption: "Credit notes against this invoice", onRow: (row) => ctx.navigate("invoices", [String(row.id)]) })
        : h("p", { class: "muted" }, "No credit notes against this invoice.")));
}

export async function render(root, ctx) {
  if (ctx.rest.length) await renderDetail(root, ctx, ctx.rest[0]);
  else await renderList(root, ctx);
}
