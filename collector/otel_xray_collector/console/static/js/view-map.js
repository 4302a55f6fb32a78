// Service map view: the map, a legend, and a details panel for the selected node or edge
// (status counts, response-time distribution, requests over time, links to its traces).

import * as api from "./api.js";
import { choosePeriod, histogramChart, statusBar, timeSeriesChart } from "./charts.js";
import { el, replaceChildren } from "./dom.js";
import { STATUS_LABEL, STATUS_ORDER, count, duration, healthCounts, quote, rate, typeLabel } from "./format.js";
import { ServiceMap } from "./servicemap.js";

export class MapView {
  constructor(ctx) {
    this.ctx = ctx;
    this.abort = null;
    this.panelRequest = 0;
    this.lastSelectionKey = null;
  }

  mount(root, params) {
    this.params = params;
    this.status = el("p", { class: "view-status", role: "status", "aria-live": "polite" }, "Loading service map…");
    this.canvas = el("div", { class: "map-canvas", "data-testid": "service-map" });
    this.emptyTitle = el("h2", {}, "No services in this time range");
    this.empty = el("div", { class: "map-empty", hidden: true },
      this.emptyTitle,
      el("p", {}, "Send segments to the collector (UDP 2000, OTLP or PutTraceSegments) or widen the time range."));
    this.panel = el("aside", { class: "details-panel", "aria-label": "Selection details", "aria-live": "polite" });
    this.renderPanelHint();
    const legend = el("ul", { class: "legend map-legend", "aria-label": "Health ring colours" },
      STATUS_ORDER.map((k) => el("li", { class: `legend-item status-${k}` }, el("span", { class: "swatch", "aria-hidden": "true" }), STATUS_LABEL[k])));
    const tools = el("div", { class: "map-tools", role: "toolbar", "aria-label": "Map zoom" },
      el("button", { type: "button", class: "icon-button", "aria-label": "Zoom in", title: "Zoom in", onclick: () => this.map.zoomBy(1.3) }, "+"),
      el("button", { type: "button", class: "icon-button", "aria-label": "Zoom out", title: "Zoom out", onclick: () => this.map.zoomBy(1 / 1.3) }, "−"),
      el("button", { type: "button", class: "icon-button wide", "aria-label": "Fit map to view", title: "Fit to view", onclick: () => this.map.fit(true, { whole: true }) }, "Fit"));
    const stage = el("section", { class: "map-stage", "aria-label": "Service map" }, this.canvas, this.empty, tools, legend);
    replaceChildren(root,
      el("div", { class: "view-header" }, el("h1", {}, "Service map"), this.status),
      el("div", { class: "map-layout" }, stage, this.panel));
    this.map = new ServiceMap(this.canvas, {
      onSelect: (selection) => this.renderPanel(selection),
      label: "Service map: services and the calls between them. Use Tab to move between services and calls, arrow keys to follow calls, Enter to select.",
    });
    return this.refresh();
  }

  setParams(params) {
    this.params = params;
    return this.refresh();
  }

  destroy() {
    if (this.abort) this.abort.abort();
    if (this.map) this.map.destroy();
  }

  async refresh() {
    if (this.abort) this.abort.abort();
    const controller = new AbortController();
    this.abort = controller;
    const window = this.ctx.timeWindow();
    const started = performance.now();
    try {
      const graph = await api.getServiceGraph(window, { signal: controller.signal });
      if (controller.signal.aborted) return;
      const services = graph.Services || [];
      this.window = window;
      this.map.update(services, window.end - window.start);
      this.empty.hidden = services.length > 0;
      const group = this.ctx.groupName();
      this.emptyTitle.textContent = group ? `No traces of the group ${group} in this time range` : "No services in this time range";
      this.canvas.hidden = services.length === 0;
      const real = services.filter((s) => s.Type !== "client").length;
      this.status.textContent = `${count(real)} service${real === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}`;
      this.status.dataset.state = "ready";
      this.ctx.mark("map-rendered", performance.now() - started);
      if (this.params.get("service") && !this.map.selected) this.map.selectByName(this.params.get("service"));
    } catch (error) {
      if (error.name === "AbortError") return;
      this.status.textContent = `Could not load the service map: ${error.message}`;
      this.status.dataset.state = "error";
    }
  }

  renderPanelHint() {
    replaceChildren(this.panel,
      el("h2", {}, "Details"),
      el("p", { class: "muted" }, "Select a service or a call on the map to see its response-time distribution, status counts and traces."));
  }

  /**
   * How a filter names a node: `"name"`, or `id(name: ..., type: ...)` when another node of
   * the map has the same name (e.g. a service and the remote node its callers infer).
   */
  target(key) {
    const node = this.map.model.byKey.get(key);
    if (!node) return quote(key);
    const namesakes = this.map.model.nodes.filter((n) => !n.isClient && n.name === node.name);
    if (namesakes.length > 1 && node.type) return `id(name: ${quote(node.name)}, type: ${quote(node.type)})`;
    return quote(node.name);
  }

  renderPanel(selection) {
    if (!selection) {
      this.lastSelectionKey = null;
      this.renderPanelHint();
      return;
    }
    const isNode = selection.kind === "node";
    const item = isNode ? selection.node : selection.edge;
    const window = this.window || this.ctx.timeWindow();
    let title;
    let subtitle;
    let filter;
    let selector;
    let counts;
    let histogram;
    if (isNode && item.isClient) {
      // The client node has no statistics of its own: show its calls into the root service.
      const out = this.map.model.edges.filter((e) => e.source === item.key);
      counts = out.length ? out[0].counts : healthCounts(null);
      histogram = out.length ? out[0].histogram : [];
      title = "Client";
      subtitle = `Requests into ${item.name}`;
      filter = out.length ? `service(${this.target(out[0].target)})` : `service(${quote(item.name)})`;
      selector = filter;
    } else if (isNode) {
      counts = item.counts;
      histogram = item.histogram;
      title = item.name;
      subtitle = typeLabel(item.type) || "Service";
      filter = `service(${this.target(item.key)})`;
      selector = filter;
    } else {
      counts = item.counts;
      histogram = item.histogram;
      title = `${item.fromClient ? "Client" : item.sourceName} → ${item.targetName}`;
      subtitle = "Calls";
      filter = item.fromClient ? `service(${this.target(item.target)})` : `edge(${this.target(item.source)}, ${this.target(item.target)})`;
      selector = filter;
    }
    const avg = counts.total ? counts.responseTime / counts.total : null;
    const minutes = (window.end - window.start) / 60;
    const histogramBox = el("div", { class: "panel-chart" });
    const seriesBox = el("div", { class: "panel-chart" }, el("p", { class: "muted" }, "Loading…"));
    const tracesHref = this.ctx.href("traces", { filter });
    const analyticsHref = this.ctx.href("analytics", { filter });
    replaceChildren(this.panel,
      el("div", { class: "panel-head" },
        el("div", {},
          el("h2", { "data-testid": "panel-title" }, title),
          el("p", { class: "muted" }, subtitle)),
        el("button", { type: "button", class: "icon-button", "aria-label": "Close details", title: "Close", onclick: () => this.map.select(null) }, "×")),
      el("dl", { class: "metrics" },
        el("div", {}, el("dt", {}, "Avg. response"), el("dd", {}, duration(avg))),
        el("div", {}, el("dt", {}, "Requests"), el("dd", {}, count(counts.total))),
        el("div", {}, el("dt", {}, "Rate"), el("dd", {}, rate(minutes ? counts.total / minutes : 0)))),
      el("h3", {}, "Status"),
      statusBar(counts),
      el("h3", {}, "Response time distribution"),
      histogramBox,
      el("h3", {}, "Requests over time"),
      seriesBox,
      el("div", { class: "panel-actions" },
        el("a", { class: "button primary", href: tracesHref, "data-testid": "view-traces" }, "View traces"),
        el("a", { class: "button", href: analyticsHref }, "Analyze")),
      el("p", { class: "filter-hint" }, "Filter: ", el("code", {}, filter)));
    histogramChart(histogramBox, histogram, { height: 150 });
    this.loadSeries(seriesBox, selector, isNode && !item.isClient, window);
  }

  async loadSeries(box, selector, isService, window) {
    const request = ++this.panelRequest;
    const period = Math.max(60, choosePeriod(window.end - window.start));
    try {
      const result = await api.getTimeSeriesServiceStatistics(window, selector, period);
      if (request !== this.panelRequest) return;
      const buckets = (result.TimeSeriesServiceStatistics || []).map((b) => {
        const counts = healthCounts(isService ? b.ServiceSummaryStatistics || b.EdgeSummaryStatistics : b.EdgeSummaryStatistics || b.ServiceSummaryStatistics);
        return { t: b.Timestamp, ...counts };
      });
      timeSeriesChart(box, buckets, { start: Math.floor(window.start / period) * period, end: window.end, period, height: 140 });
    } catch (error) {
      if (request !== this.panelRequest) return;
      replaceChildren(box, el("p", { class: "muted" }, `Time series unavailable: ${error.message}`));
    }
  }
}
