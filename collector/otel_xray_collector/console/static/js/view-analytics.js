// Analytics: for the traces matching a filter, the response-time distribution and requests /
// errors / faults over time, and a breakdown by HTTP status, URL, user or annotation. Selecting
// a group overlays it on both charts and offers its traces.

import * as api from "./api.js";
import { choosePeriod, histogramChart, statusBar, timeSeriesChart } from "./charts.js";
import { el, replaceChildren, rovingKeys } from "./dom.js";
import { FilterBar } from "./filterbar.js";
import { andFilter, count, duration, percent } from "./format.js";
import { BASE_GROUPINGS, annotationKeys, groupSummaries, responseHistogram, timeBuckets } from "./grouping.js";

const CAP = 2000;

export class AnalyticsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.summaries = [];
    this.abort = null;
  }

  mount(root, params) {
    this.filter = new FilterBar({ id: "analytics-filter", value: params.get("filter") || "", onSubmit: (value) => this.ctx.setParams({ filter: value || null, selected: null }) });
    this.status = el("p", { class: "view-status", role: "status", "aria-live": "polite" }, "Loading…");
    this.groupSelect = el("select", { id: "analytics-group", onchange: () => this.ctx.setParams({ group: this.groupSelect.value, selected: null }) });
    this.histogramBox = el("div", { class: "chart-box", "data-testid": "analytics-histogram" });
    this.seriesBox = el("div", { class: "chart-box", "data-testid": "analytics-series" });
    this.groupsBody = el("tbody");
    this.groupHeader = el("th", { scope: "col" }, "Value");
    this.selection = el("div", { class: "analytics-selection", "aria-live": "polite" });
    replaceChildren(root,
      el("div", { class: "view-header" }, el("h1", {}, "Analytics"), this.status),
      this.filter.node,
      el("div", { class: "analytics-charts" },
        el("section", { class: "card", "aria-labelledby": "rt-title" }, el("h2", { id: "rt-title" }, "Response time distribution"), this.histogramBox),
        el("section", { class: "card", "aria-labelledby": "ts-title" }, el("h2", { id: "ts-title" }, "Time series activity"), this.seriesBox)),
      el("section", { class: "card", "aria-labelledby": "breakdown-title" },
        el("div", { class: "card-head" },
          el("h2", { id: "breakdown-title" }, "Breakdown"),
          el("label", { class: "inline-field" }, "Group by ", this.groupSelect)),
        this.selection,
        el("div", { class: "table-scroll" }, el("table", { class: "data-table", "data-testid": "analytics-groups" },
          el("thead", {}, el("tr", {}, this.groupHeader,
            el("th", { scope: "col", class: "num" }, "Traces"),
            el("th", { scope: "col", class: "num" }, "%"),
            el("th", { scope: "col", class: "num" }, "Avg. response"),
            el("th", { scope: "col", class: "status-col" }, "Status"))),
          this.groupsBody))));
    this.applyParams(params);
    this.resizeObserver = new ResizeObserver(() => this.renderCharts());
    this.resizeObserver.observe(this.histogramBox);
    return this.refresh();
  }

  applyParams(params) {
    this.grouping = params.get("group") || "status";
    this.selected = params.get("selected");
    this.filterExpression = params.get("filter") || "";
    this.filter.value = this.filterExpression;
  }

  setParams(params) {
    const reload = (params.get("filter") || "") !== this.filterExpression;
    this.applyParams(params);
    if (reload) return this.refresh();
    this.render();
    return Promise.resolve();
  }

  destroy() {
    if (this.abort) this.abort.abort();
    if (this.resizeObserver) this.resizeObserver.disconnect();
  }

  async refresh() {
    if (this.abort) this.abort.abort();
    const controller = new AbortController();
    this.abort = controller;
    const window = this.ctx.timeWindow();
    const filter = this.filterExpression;
    try {
      await api.loadSummaries(window, filter, {
        cap: CAP,
        signal: controller.signal,
        onPage: ({ summaries, nextToken, done }) => {
          if (controller.signal.aborted) return;
          this.window = window;
          this.summaries = summaries;
          this.truncated = Boolean(nextToken);
          this.loading = !done;
          this.filter.showError("");
          this.render();
        },
      });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.isInvalidRequest && filter) {
        this.filter.showError(error.message || "The filter expression is not valid.");
        this.summaries = [];
        this.nextToken = null;
        this.loading = false;
        this.render();
        this.status.textContent = "The filter expression was not accepted.";
      } else {
        this.status.textContent = `Could not load traces: ${error.message}`;
      }
      this.status.dataset.state = "error";
    }
  }

  render() {
    const options = BASE_GROUPINGS.map((g) => ({ value: g.id, label: g.label }))
      .concat(annotationKeys(this.summaries).map((k) => ({ value: `annotation.${k}`, label: `Annotation: ${k}` })));
    if (!options.some((o) => o.value === this.grouping)) options.push({ value: this.grouping, label: this.grouping });
    replaceChildren(this.groupSelect, options.map((o) => el("option", { value: o.value, selected: o.value === this.grouping }, o.label)));
    this.groupSelect.value = this.grouping;
    this.groupHeader.textContent = options.find((o) => o.value === this.grouping).label;
    this.groups = groupSummaries(this.summaries, this.grouping);
    const selected = this.groups.find((g) => g.value === this.selected) || null;
    replaceChildren(this.groupsBody, this.groups.length ? this.groups.map((g) => {
      const isSelected = g === selected;
      return el("tr", { class: isSelected ? "selected" : "", "data-group": g.value },
        el("th", { scope: "row", class: "group-cell" }, el("button", {
          type: "button", class: "group-button", "aria-pressed": String(isSelected),
          onclick: () => this.ctx.setParams({ selected: isSelected ? null : g.value }),
          onkeydown: (event) => rovingKeys(event, [...this.groupsBody.querySelectorAll(".group-button")], event.currentTarget),
        }, g.value)),
        el("td", { class: "num" }, count(g.count)),
        el("td", { class: "num" }, percent(g.count, this.summaries.length)),
        el("td", { class: "num" }, duration(g.avgResponse)),
        el("td", { class: "status-col" }, statusBar(g.counts, { compact: true })));
    }) : el("tr", {}, el("td", { colspan: "5", class: "muted" }, this.loading ? "Loading…" : "No traces match in this time range.")));
    if (selected) {
      const term = selected.term;
      replaceChildren(this.selection,
        el("p", {}, el("strong", {}, selected.value), ` — ${count(selected.count)} traces (${percent(selected.count, this.summaries.length)}), highlighted on the charts. `,
          term ? el("a", { href: this.ctx.href("traces", { filter: andFilter(this.filterExpression, term) }) }, "View these traces") : null),
        statusBar(selected.counts));
    } else {
      replaceChildren(this.selection, el("p", { class: "muted" }, "Select a row to highlight it on the charts."));
    }
    this.selectedGroup = selected;
    this.renderCharts();
    replaceChildren(this.status,
      `Based on ${count(this.summaries.length)} trace${this.summaries.length === 1 ? "" : "s"}`,
      this.truncated ? ` (the newest ${count(CAP)}; narrow the filter or time range to see all)` : "",
      this.loading ? " · loading…" : "",
      ` · updated ${new Date().toLocaleTimeString()}`);
    this.status.dataset.state = this.loading ? "loading" : "ready";
  }

  renderCharts() {
    if (!this.window) return;
    const selected = this.selectedGroup;
    histogramChart(this.histogramBox, responseHistogram(this.summaries), {
      height: 200, highlight: selected ? responseHistogram(selected.summaries) : null,
    });
    const span = this.window.end - this.window.start;
    const period = choosePeriod(span);
    const source = selected ? selected.summaries : this.summaries;
    timeSeriesChart(this.seriesBox, timeBuckets(source, this.window.start, this.window.end, period), {
      start: Math.floor(this.window.start / period) * period, end: this.window.end, period, height: 200,
      title: selected ? `Requests over time for ${selected.value}` : "Requests over time",
    });
  }
}
