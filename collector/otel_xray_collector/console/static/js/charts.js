// Small SVG charts drawn with d3 scales and axes: a response-time distribution and a stacked
// time series. Both are role="img" with a text summary, because a screen reader cannot read bars.

import { el, svg } from "./dom.js";
import { STATUS_LABEL, STATUS_ORDER, count, duration, histogramPercentile, percent } from "./format.js";

const d3 = globalThis.d3;
const MARGIN = { top: 10, right: 22, bottom: 30, left: 44 };

function frame(container, height, label) {
  const width = Math.max(240, container.clientWidth || 480);
  const root = svg("svg", {
    class: "chart",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
  });
  return { root, width, height, inner: { w: width - MARGIN.left - MARGIN.right, h: height - MARGIN.top - MARGIN.bottom } };
}

function axes(root, x, y, inner, xFormat, yFormat) {
  const gx = d3.select(root).append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},${MARGIN.top + inner.h})`);
  gx.call(d3.axisBottom(x).ticks(Math.max(2, Math.floor(inner.w / 80))).tickFormat(xFormat).tickSizeOuter(0));
  const gy = d3.select(root).append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},${MARGIN.top})`);
  gy.call(d3.axisLeft(y).ticks(Math.max(2, Math.floor(inner.h / 28))).tickFormat(yFormat).tickSizeOuter(0));
  gy.selectAll(".tick line").clone().attr("x2", inner.w).attr("class", "gridline");
}

/** Re-bin weighted [{Value, Count}] entries (seconds) into ~`bins` equal-width bars. */
export function binHistogram(entries, bins = 30) {
  const values = (entries || []).filter((e) => e.Count > 0);
  if (!values.length) return { bars: [], max: 0 };
  const maxValue = d3.max(values, (e) => e.Value) || 0.001;
  const x = d3.scaleLinear().domain([0, maxValue]).nice(bins);
  const thresholds = x.ticks(bins);
  const step = thresholds.length > 1 ? thresholds[1] - thresholds[0] : maxValue || 0.001;
  const top = x.domain()[1];
  const bars = [];
  for (let lo = 0; lo < top - step / 2 || bars.length === 0; lo += step) bars.push({ x0: lo, x1: lo + step, count: 0, extra: 0 });
  for (const e of values) {
    const index = Math.min(bars.length - 1, Math.floor(e.Value / step));
    bars[index].count += e.Count;
  }
  return { bars, max: top };
}

/**
 * Response-time distribution. `entries` are X-Ray HistogramEntry values; `highlight` (optional)
 * a second set drawn on top (e.g. the selected group in Analytics).
 */
export function histogramChart(container, entries, { height = 170, highlight = null, title = "Response time distribution" } = {}) {
  const all = [...(entries || []), ...(highlight || [])];
  const total = (entries || []).reduce((s, e) => s + (e.Count || 0), 0);
  const p50 = histogramPercentile(entries, 0.5);
  const p90 = histogramPercentile(entries, 0.9);
  const p99 = histogramPercentile(entries, 0.99);
  const summary = total
    ? `${title}: ${count(total)} requests, p50 ${duration(p50)}, p90 ${duration(p90)}, p99 ${duration(p99)}`
    : `${title}: no requests in this time range`;
  const { root, inner } = frame(container, height, summary);
  const wrapper = el("figure", { class: "chart-figure" }, root,
    el("figcaption", { class: "chart-caption" }, total
      ? [el("span", {}, `p50 ${duration(p50)}`), el("span", {}, `p90 ${duration(p90)}`), el("span", {}, `p99 ${duration(p99)}`), el("span", {}, `${count(total)} requests`)]
      : "No requests in this time range"));
  if (!total) {
    container.replaceChildren(wrapper);
    return wrapper;
  }
  const binned = binHistogram(all, 30);
  const step = binned.bars.length ? binned.bars[0].x1 - binned.bars[0].x0 : 1;
  const fill = (list) => {
    const bars = binned.bars.map((b) => ({ ...b, count: 0 }));
    for (const e of list || []) {
      if (!e.Count) continue;
      bars[Math.min(bars.length - 1, Math.floor(e.Value / step))].count += e.Count;
    }
    return bars;
  };
  const base = fill(entries);
  const over = highlight ? fill(highlight) : null;
  const x = d3.scaleLinear().domain([0, binned.max]).range([0, inner.w]);
  const y = d3.scaleLinear().domain([0, d3.max(base, (b) => b.count) || 1]).nice().range([inner.h, 0]);
  axes(root, x, y, inner, (v) => (v ? duration(v) : "0"), (v) => (Number.isInteger(v) ? count(v) : ""));
  const plot = d3.select(root).append("g").attr("transform", `translate(${MARGIN.left},${MARGIN.top})`);
  const draw = (bars, cls) => plot.append("g").attr("class", cls).selectAll("rect").data(bars.filter((b) => b.count)).join("rect")
    .attr("x", (b) => x(b.x0) + 1)
    .attr("width", (b) => Math.max(1, x(b.x1) - x(b.x0) - 2))
    .attr("y", (b) => y(b.count))
    .attr("height", (b) => inner.h - y(b.count))
    .append("title").text((b) => `${duration(b.x0)} – ${duration(b.x1)}: ${count(b.count)}`);
  draw(base, over ? "bars bars-muted" : "bars");
  if (over) draw(over, "bars bars-highlight");
  container.replaceChildren(wrapper);
  return wrapper;
}

/**
 * Stacked bars over time: `buckets` = [{t (epoch s), ok, error, throttle, fault}], `period` seconds.
 */
export function timeSeriesChart(container, buckets, { start, end, period, height = 170, title = "Requests over time" } = {}) {
  const totals = { ok: 0, error: 0, throttle: 0, fault: 0 };
  for (const b of buckets) for (const k of STATUS_ORDER) totals[k] += b[k] || 0;
  const all = STATUS_ORDER.reduce((s, k) => s + totals[k], 0);
  const summary = `${title}: ${count(all)} requests, ${count(totals.fault)} faults, ${count(totals.error)} errors, ${count(totals.throttle)} throttled`;
  const { root, inner } = frame(container, height, summary);
  const x = d3.scaleTime().domain([new Date(start * 1000), new Date(end * 1000)]).range([0, inner.w]);
  const stack = d3.stack().keys(STATUS_ORDER).value((b, k) => b[k] || 0)(buckets);
  const yMax = d3.max(buckets, (b) => STATUS_ORDER.reduce((s, k) => s + (b[k] || 0), 0)) || 1;
  const y = d3.scaleLinear().domain([0, yMax]).nice().range([inner.h, 0]);
  axes(root, x, y, inner, d3.timeFormat(end - start > 2 * 86400 ? "%b %d" : "%H:%M"), (v) => (Number.isInteger(v) ? count(v) : ""));
  const plot = d3.select(root).append("g").attr("transform", `translate(${MARGIN.left},${MARGIN.top})`);
  const barWidth = Math.max(1, x(new Date((start + period) * 1000)) - x(new Date(start * 1000)) - 1);
  plot.selectAll("g.layer").data(stack).join("g").attr("class", (layer) => `layer status-${layer.key}`)
    .selectAll("rect").data((layer) => layer.map((d) => ({ d, key: layer.key }))).join("rect")
    .attr("x", ({ d }) => x(new Date(d.data.t * 1000)))
    .attr("width", barWidth)
    .attr("y", ({ d }) => y(d[1]))
    .attr("height", ({ d }) => Math.max(0, y(d[0]) - y(d[1])))
    .append("title").text(({ d, key }) => `${d3.timeFormat("%H:%M:%S")(new Date(d.data.t * 1000))} ${STATUS_LABEL[key]}: ${count(d.data[key])}`);
  const legend = el("figcaption", { class: "chart-caption legend" },
    STATUS_ORDER.map((k) => el("span", { class: `legend-item status-${k}` }, el("span", { class: "swatch", "aria-hidden": "true" }), `${STATUS_LABEL[k]} ${count(totals[k])}`)));
  const wrapper = el("figure", { class: "chart-figure" }, root, legend);
  container.replaceChildren(wrapper);
  return wrapper;
}

/** A horizontal stacked bar of status shares with counts, used in panels and tables. */
export function statusBar(counts, { compact = false } = {}) {
  const total = counts.total || STATUS_ORDER.reduce((s, k) => s + (counts[k] || 0), 0);
  const label = STATUS_ORDER.map((k) => `${STATUS_LABEL[k]} ${percent(counts[k] || 0, total)}`).join(", ");
  const bar = el("div", { class: "status-bar", role: "img", "aria-label": label, title: label },
    STATUS_ORDER.filter((k) => counts[k]).map((k) => el("span", { class: `status-${k}`, style: { flexGrow: String(counts[k]) } })));
  if (compact) return bar;
  const list = el("dl", { class: "status-counts" },
    STATUS_ORDER.map((k) => el("div", { class: `status-count status-${k}` },
      el("dt", {}, el("span", { class: "swatch", "aria-hidden": "true" }), STATUS_LABEL[k]),
      el("dd", {}, `${count(counts[k] || 0)} `, el("small", {}, percent(counts[k] || 0, total))))));
  return el("div", { class: "status-block" }, bar, list);
}

/** Pick a bucket period (seconds) giving roughly 20–60 buckets over the window. */
export function choosePeriod(seconds) {
  const options = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 10800, 21600, 86400];
  for (const p of options) if (seconds / p <= 60) return p;
  return 86400;
}
