// SVG charts drawn here (no chart library to vendor). Every chart comes with its numbers:
// a <details> table and a CSV download, so a screen reader or a spreadsheet gets the same data.
import { h, clear, table, csvLink, fmt } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const COLORS = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function shortNum(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return `${Math.round(v * 100) / 100}`;
}

function figure(title, svg, columns, rows, filename, legend) {
  return h("figure", { class: "chart", "aria-label": title },
    h("figcaption", {}, h("strong", {}, title)),
    legend,
    svg,
    h("details", {}, h("summary", {}, "Numbers"), table({ columns, rows, pageSize: 50 }), csvLink(columns, rows, filename)));
}

function legendOf(series) {
  return series.length > 1
    ? h("div", { class: "legend" }, series.map((sr, i) => h("span", { style: `--swatch:${sr.color || COLORS[i % COLORS.length]}` }, sr.name)))
    : null;
}

/** Bars per category; several series side by side, or stacked with `stacked: true`.
 *  series: [{name, values: [..per category..]}] */
export function barChart({ title, categories, series, stacked = false, format = shortNum, filename = "chart.csv", width = 760, height = 260 }) {
  const m = { l: 56, r: 10, t: 10, b: 48 };
  const W = width - m.l - m.r;
  const H = height - m.t - m.b;
  const totals = categories.map((_, i) => (stacked ? series.reduce((a, sr) => a + Math.max(0, Number(sr.values[i]) || 0), 0) : Math.max(0, ...series.map((sr) => Number(sr.values[i]) || 0))));
  const max = niceMax(Math.max(0, ...totals));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, width, height });
  const g = s("g", { transform: `translate(${m.l},${m.t})` });
  svg.append(g);
  for (let k = 0; k <= 4; k++) {
    const y = H - (H * k) / 4;
    g.append(s("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#d0d7de" }), s("text", { x: -6, y: y + 4, "text-anchor": "end" }, format((max * k) / 4)));
  }
  const band = W / Math.max(1, categories.length);
  const barW = stacked ? band * 0.7 : (band * 0.8) / Math.max(1, series.length);
  categories.forEach((cat, i) => {
    let base = 0;
    series.forEach((sr, j) => {
      const v = Math.max(0, Number(sr.values[i]) || 0);
      const bh = (H * v) / max;
      const x = stacked ? i * band + band * 0.15 : i * band + band * 0.1 + j * barW;
      const y = H - bh - (stacked ? (H * base) / max : 0);
      g.append(s("rect", { x, y, width: Math.max(1, barW - 1), height: bh, fill: sr.color || COLORS[j % COLORS.length] }, s("title", {}, `${cat} · ${sr.name}: ${format(v)}`)));
      base += v;
    });
    const every = Math.ceil(categories.length / 16);
    if (i % every === 0) g.append(s("text", { x: i * band + band / 2, y: H + 16, "text-anchor": "middle" }, String(cat)));
  });
  const columns = [{ key: "category", label: "" }, ...series.map((sr, j) => ({ key: `s${j}`, label: sr.name, num: true, format: (v) => fmt.num(v, 2) }))];
  const rows = categories.map((cat, i) => Object.fromEntries([["category", cat], ...series.map((sr, j) => [`s${j}`, sr.values[i]])]));
  return figure(title, svg, columns, rows, filename, legendOf(series));
}

/** Lines over an x axis of labels (dates, months). series: [{name, values}] */
export function lineChart({ title, labels, series, format = shortNum, filename = "chart.csv", width = 760, height = 260 }) {
  const m = { l: 56, r: 36, t: 10, b: 40 };
  const W = width - m.l - m.r;
  const H = height - m.t - m.b;
  const max = niceMax(Math.max(0, ...series.flatMap((sr) => sr.values.map((v) => Number(v) || 0))));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, width, height });
  const g = s("g", { transform: `translate(${m.l},${m.t})` });
  svg.append(g);
  for (let k = 0; k <= 4; k++) {
    const y = H - (H * k) / 4;
    g.append(s("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#d0d7de" }), s("text", { x: -6, y: y + 4, "text-anchor": "end" }, format((max * k) / 4)));
  }
  const x = (i) => (labels.length <= 1 ? W / 2 : (W * i) / (labels.length - 1));
  series.forEach((sr, j) => {
    const d = sr.values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${(H - (H * (Number(v) || 0)) / max).toFixed(1)}`).join("");
    g.append(s("path", { d, fill: "none", stroke: sr.color || COLORS[j % COLORS.length], "stroke-width": 2 }));
  });
  const every = Math.ceil(labels.length / 10);
  labels.forEach((label, i) => { if (i % every === 0) g.append(s("text", { x: x(i), y: H + 16, "text-anchor": "middle" }, String(label))); });
  const columns = [{ key: "label", label: "" }, ...series.map((sr, j) => ({ key: `s${j}`, label: sr.name, num: true, format: (v) => fmt.num(v, 2) }))];
  const rows = labels.map((label, i) => Object.fromEntries([["label", label], ...series.map((sr, j) => [`s${j}`, sr.values[i]])]));
  return figure(title, svg, columns, rows, filename, legendOf(series));
}

/** An HSL colour as [r, g, b] (0–255): h in degrees, s and l in [0, 1]. */
function hslRgb(h, sat, l) {
  const k = (n) => (n + h / 30) % 12;
  const a = sat * Math.min(l, 1 - l);
  return [0, 8, 4].map((n) => 255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))));
}

/** White or black, whichever reads at 4.5:1 or better on `rgb` (WCAG relative luminance). */
function markOn(rgb) {
  const [r, g, b] = rgb.map((v) => { const c = v / 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (1.05 / (lum + 0.05) >= (lum + 0.05) / 0.05) ? "#fff" : "#000";
}

/** A heatmap: rows × columns of values in [0, 1] (a share), with marked cells.
 *  cells[r][c] = {value, label, mark} — value colours the cell, label is its tooltip/table text. */
export function heatmap({ title, rowLabels, colLabels, cells, filename = "heatmap.csv", cellW = 18, cellH = 22, legend = null }) {
  const m = { l: 200, r: 10, t: 10, b: 56 };
  const width = m.l + m.r + cellW * colLabels.length;
  const height = m.t + m.b + cellH * rowLabels.length;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, width, height });
  const g = s("g", { transform: `translate(${m.l},${m.t})` });
  svg.append(g);
  rowLabels.forEach((label, r) => {
    g.append(s("text", { x: -6, y: r * cellH + cellH / 2 + 4, "text-anchor": "end" }, label));
    colLabels.forEach((col, c) => {
      const cellData = cells[r][c] || { value: null };
      const v = cellData.value;
      const rgb = v === null || v === undefined ? [246, 248, 250] : v > 1 ? [207, 34, 46] : hslRgb(212, 0.8, (95 - 60 * Math.max(0, Math.min(1, v))) / 100);
      const fill = `rgb(${rgb.map(Math.round).join(", ")})`;
      g.append(s("rect", { x: c * cellW, y: r * cellH, width: cellW - 1, height: cellH - 1, fill, stroke: cellData.mark ? "#cf222e" : null, "stroke-width": cellData.mark ? 2 : null, "data-row": label, "data-col": col },
        s("title", {}, `${label} · ${col}: ${cellData.label ?? "—"}${cellData.mark ? ` (${cellData.mark})` : ""}`)));
      if (cellData.mark) g.append(s("text", { x: c * cellW + cellW / 2, y: r * cellH + cellH / 2 + 4, "text-anchor": "middle", style: `fill:${markOn(rgb)};font-weight:700` }, "!"));
    });
  });
  const every = Math.ceil(colLabels.length / 24);
  colLabels.forEach((col, c) => {
    if (c % every === 0) g.append(s("text", { x: c * cellW + cellW / 2, y: rowLabels.length * cellH + 14, "text-anchor": "end", transform: `rotate(-45 ${c * cellW + cellW / 2} ${rowLabels.length * cellH + 14})` }, col));
  });
  const columns = [{ key: "row", label: "" }, ...colLabels.map((col, c) => ({ key: `c${c}`, label: col }))];
  const rows = rowLabels.map((label, r) => Object.fromEntries([["row", label], ...colLabels.map((_, c) => [`c${c}`, (cells[r][c] || {}).label ?? ""])]));
  const wrap = figure(title, svg, columns, rows, filename, legend);
  wrap.style.overflowX = "auto";
  return wrap;
}

export { clear };
