// Small DOM helpers shared by the views: element builder, formatting, tables with paging.

/** h("a", {href: "#"}, "text", child, ...) → an element. Attributes null/false are skipped;
 *  "on…" attributes bind listeners; children may be strings, nodes, arrays or null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function errorBox(err) {
  const problem = err.problem || {};
  const where = problem.errors ? problem.errors.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ") : "";
  return h("div", { class: "error", role: "alert" }, err.message || String(err), where ? h("div", {}, where) : null);
}

const nf = new Intl.NumberFormat("en-US");
export const fmt = {
  int: (v) => (v === null || v === undefined ? "—" : nf.format(Math.round(Number(v)))),
  num: (v, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })),
  pct: (v, digits = 1) => (v === null || v === undefined ? "—" : `${(Number(v) * 100).toFixed(digits)}%`),
  money: (v, currency = "USD") => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US", { style: "currency", currency, maximumFractionDigits: 0 })),
  cents: (v, currency = "USD") => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US", { style: "currency", currency })),
  date: (v) => (v ? String(v).slice(0, 10) : "—"),
  time: (v) => (v ? String(v).replace("T", " ").slice(0, 16) + " UTC" : "—"),
  mw: (v) => (v === null || v === undefined ? "—" : `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 1 })} MW`),
};

const STATE_CLASS = {
  active: "ok", ready: "ok", running: "ok", healthy: "ok", paid: "ok", live: "ok", allocated: "ok", issued: "info",
  booked: "info", draft: "info", quoted: "info", pending: "info", planned: "info", free: "info",
  degraded: "warn", draining: "warn", preempted: "warn", late: "warn", maintenance: "warn", lent: "warn",
  failed: "bad", down: "bad", void: "bad", cancelled: "bad", missing: "bad",
};

/** A coloured state badge with the state as its text (colour is never the only cue). */
export function badge(state) {
  const cls = STATE_CLASS[String(state).toLowerCase()] || "info";
  return h("span", { class: `badge ${cls}` }, String(state));
}

export function cards(items) {
  return h("div", { class: "grid" }, items.map(([label, value]) =>
    h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value))));
}

function cell(column, row) {
  const value = typeof column.value === "function" ? column.value(row) : row[column.key];
  const shown = column.format ? column.format(value, row) : value;
  return h("td", { class: column.num ? "num" : null }, shown === null || shown === undefined ? "—" : shown);
}

function header(columns) {
  return h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label))));
}

function bodyRows(columns, rows, onRow) {
  return h("tbody", {}, rows.map((row) => {
    const tr = h("tr", onRow ? { class: "clickable", tabindex: "0", role: "link" } : {}, columns.map((c) => cell(c, row)));
    if (onRow) {
      tr.addEventListener("click", () => onRow(row));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") onRow(row); });
    }
    return tr;
  }));
}

/** A table over rows already loaded, paginated in the browser (`state` keeps the page). */
export function table({ columns, rows, caption, pageSize = 25, onRow, state = {}, key = "page", empty = "Nothing here." }) {
  const wrap = h("div", { class: "table" });
  const pages = Math.max(1, Math.ceil(rows.length / pageSize));
  const draw = () => {
    const page = Math.min(state[key] || 0, pages - 1);
    clear(wrap);
    const slice = rows.slice(page * pageSize, (page + 1) * pageSize);
    wrap.append(h("table", {}, caption ? h("caption", {}, caption) : null, header(columns), bodyRows(columns, slice, onRow)));
    if (!rows.length) wrap.append(h("p", { class: "muted" }, empty));
    if (pages > 1) {
      wrap.append(h("div", { class: "pager" },
        h("button", { type: "button", disabled: page === 0, onclick: () => { state[key] = page - 1; draw(); } }, "← Previous"),
        h("span", {}, `Page ${page + 1} of ${pages} · ${fmt.int(rows.length)} rows`),
        h("button", { type: "button", disabled: page >= pages - 1, onclick: () => { state[key] = page + 1; draw(); } }, "Next →")));
    }
  };
  draw();
  return wrap;
}

/** A table over a cursor-paginated API list: `path` like "contracts?state=active".
 *  `state` (optional, e.g. ctx.state) keeps the page across live re-renders of the same list. */
export function pagedTable({ api, path, columns, caption, pageSize = 25, onRow, empty = "Nothing here.", state = null, key = "paged" }) {
  const wrap = h("div", { class: "table" });
  const kept = state && state[key] && state[key].path === path ? state[key] : { path, cursors: [null], page: 0 };
  if (state) state[key] = kept;
  const cursors = kept.cursors;
  let page = kept.page;
  const draw = async () => {
    kept.page = page;
    const sep = path.includes("?") ? "&" : "?";
    const cursor = cursors[page];
    const result = await api(`${path}${sep}limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    cursors[page + 1] = result.next_cursor;
    clear(wrap);
    wrap.append(h("table", {}, caption ? h("caption", {}, caption) : null, header(columns), bodyRows(columns, result.items, onRow)));
    if (!result.items.length) wrap.append(h("p", { class: "muted" }, empty));
    if (page > 0 || result.next_cursor) {
      wrap.append(h("div", { class: "pager" },
        h("button", { type: "button", disabled: page === 0, onclick: () => { page -= 1; draw(); } }, "← Previous"),
        h("span", {}, `Page ${page + 1}`),
        h("button", { type: "button", disabled: !result.next_cursor, onclick: () => { page += 1; draw(); } }, "Next →")));
    }
  };
  wrap.ready = draw();
  return wrap;
}

/** Rows as CSV text (for "download the numbers"). */
export function toCsv(columns, rows) {
  const quote = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map((c) => quote(c.label)).join(","), ...rows.map((r) => columns.map((c) => quote(typeof c.value === "function" ? c.value(r) : r[c.key])).join(","))].join("\n");
}

export function csvLink(columns, rows, filename, label = "Download CSV") {
  const url = URL.createObjectURL(new Blob([toCsv(columns, rows)], { type: "text/csv" }));
  return h("a", { class: "button", href: url, download: filename }, label);
}
