// The console's shell: sign-in, navigation by URL hash, the API helper, live refresh.
// Each view is an ES module under views/ (see docs/console.md for the contract).
import { h, clear, errorBox } from "./lib/ui.js";

const TOKEN_KEY = "neocloud.token";

// Views in menu order. `who`: "operator", "tenant" or "any" (who sees it in the menu).
// A customer lands on its overview (the first view it sees).
export const VIEWS = [
  { path: "portal", label: "Overview", who: "tenant", module: "./views/portal.js" },
  { path: "fleet", label: "Fleet", who: "operator", module: "./views/fleet.js" },
  { path: "calendar", label: "Capacity", who: "operator", module: "./views/calendar.js" },
  { path: "contracts", label: "Contracts", who: "any", module: "./views/contracts.js" },
  { path: "health", label: "Health", who: "operator", module: "./views/health.js" },
  { path: "money", label: "Money", who: "operator", module: "./views/money.js" },
  { path: "usage", label: "Usage", who: "tenant", module: "./views/usage.js" },
  { path: "invoices", label: "Invoices", who: "any", module: "./views/invoices.js" },
  { path: "plans", label: "Planner", who: "operator", module: "./views/plans.js" },
  { path: "limits", label: "Limits", who: "any", module: "./views/limits.js" },
];

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Call the API as the signed-in user. Returns parsed JSON (or the Response for raw). */
export async function api(path, { method = "GET", body, raw = false, headers = {} } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token()}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path.startsWith("/") ? path : `/v1/${path}`, init);
  if (response.status === 401) {
    const message = "That token was not accepted (unknown, expired or revoked); sign in with a valid token.";
    signOut(message);
    throw new ApiError(401, { detail: message });
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { problem = { detail: response.statusText }; }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Every page of a cursor-paginated list, up to `max` items. */
export async function apiAll(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** Download a document (PDF, CSV, Parquet) with the token, as the browser's download. */
export async function download(path, filename) {
  const response = await api(path, { raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Open a document (HTML or PDF) fetched with the token in a new tab. */
export async function openDocument(path) {
  const response = await api(path, { raw: true });
  const blob = await response.blob();
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

let me = null;
let current = null; // { view, params, module, state }
let liveVersion = null;

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  renderSignIn(message);
}

function visibleViews() {
  if (!me) return [];
  return VIEWS.filter((v) => v.who === "any" || (v.who === "operator") === me.operator);
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, query = ""] = raw.split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { path: parts[0] || "", rest: parts.slice(1), query: new URLSearchParams(query) };
}

/** Go to a view: navigate("contracts", ["acme-1"]) → #/contracts/acme-1 */
export function navigate(path, rest = [], query = null) {
  const q = query ? `?${new URLSearchParams(query)}` : "";
  location.hash = `#/${[path, ...rest].map(encodeURIComponent).join("/")}${q}`;
}

function renderNav() {
  const nav = document.getElementById("nav");
  clear(nav);
  const { path } = parseHash();
  for (const view of visibleViews()) {
    nav.append(h("a", { href: `#/${view.path}`, "aria-current": view.path === path ? "page" : null }, view.label));
  }
  const who = document.getElementById("who");
  clear(who);
  if (me) {
    who.append(
      h("span", {}, `${me.name} · ${me.role}${me.tenant ? ` · ${me.tenant}` : ""}`),
      h("button", { type: "button", onclick: () => signOut("Signed out.") }, "Sign out"),
    );
  }
}

function renderSignIn(message) {
  renderNav();
  const main = document.getElementById("main");
  clear(main);
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "stack", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await start();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      renderSignIn(err.message);
    }
  } },
    h("label", { for: "token" }, "API token", input),
    h("p", { class: "muted" }, "Operators and tenants sign in with the token they were given (`neocloud tokens create`). The demo prints an admin and a customer token."),
    h("div", {}, h("button", { class: "primary", type: "submit" }, "Sign in")),
  );
  main.append(h("section", { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to neocloud"),
    message ? h("p", { class: message.startsWith("Signed out") ? "notice" : "error", role: "alert" }, message) : null,
    form));
  input.focus();
}

async function route() {
  if (!me) return;
  const { path, rest, query } = parseHash();
  const views = visibleViews();
  const view = views.find((v) => v.path === path);
  if (!view) {
    navigate(views[0].path);
    return;
  }
  renderNav();
  const main = document.getElementById("main");
  const state = current && current.view === view && current.rest.join("/") === rest.join("/") ? current.state : {};
  current = { view, rest, query, state, module: null };
  document.title = `${view.label} · neocloud`;
  clear(main);
  main.append(h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await import(view.module);
    current.module = module;
    await renderCurrent(true);
  } catch (err) {
    clear(main);
    main.append(errorBox(err));
  }
}

function ctx() {
  return { api, apiAll, download, openDocument, navigate, me, rest: current.rest, query: current.query, state: current.state, refresh: () => renderCurrent(false) };
}

/** Render the current view into a fresh container, then swap it in (no flicker on refresh). */
async function renderCurrent(focus) {
  if (!current || !current.module) return;
  const main = document.getElementById("main");
  const root = h("div", { class: "view" });
  const mine = current;
  try {
    await mine.module.render(root, ctx());
  } catch (err) {
    if (err.status === 401) return;
    clear(root);
    root.append(errorBox(err));
  }
  if (current !== mine) return; // the user moved on while this rendered
  if (!focus) {
    // A live re-render keeps what the reader opened (the "Numbers" under each chart).
    const open = [...main.querySelectorAll("details")].map((d) => d.open);
    root.querySelectorAll("details").forEach((d, i) => { if (open[i]) d.open = true; });
  }
  const scroll = window.scrollY;
  clear(main);
  main.append(root);
  if (focus) main.focus({ preventScroll: true });
  else window.scrollTo(0, scroll);
}

/** Live updates: ask the server for its state version; re-render the view when it moves. */
async function poll() {
  if (me && current && current.module && !document.hidden) {
    try {
      const { version } = await api("console/version");
      if (liveVersion !== null && version !== liveVersion && !(current.module.live === false)) {
        if (!document.querySelector("main form :focus")) {
          await renderCurrent(false);
          document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
        }
      }
      liveVersion = version;
    } catch {
      /* the next poll tries again */
    }
  }
  setTimeout(poll, 3000);
}

async function start() {
  me = await api("me");
  document.body.dataset.role = me.operator ? "operator" : "tenant";
  // The version the first render reflects: a change made before the first poll must still
  // re-render (the poll would otherwise take the changed version as its starting point).
  try { liveVersion = (await api("console/version")).version; } catch { liveVersion = null; }
  await route();
}

window.addEventListener("hashchange", () => route());
// "Skip to content" moves the focus to the view. Followed as a link, its #main would become
// the hash, which the router reads as a view's name (and goes to the first view instead).
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
window.addEventListener("DOMContentLoaded", async () => {
  if (!token()) {
    renderSignIn();
  } else {
    try {
      await start();
    } catch (err) {
      renderSignIn(err.message);
    }
  }
  setTimeout(poll, 3000);
});
