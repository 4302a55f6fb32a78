// Traces view: a filter box, the loaded summaries grouped (by URL, status, user, annotation…),
// and a paginated list of traces in the selected group. Summaries load page by page through
// NextToken; the first page renders at once, later pages fill in behind it, up to CAP.

import * as api from "./api.js";
import { statusBar } from "./charts.js";
import { el, keepingScroll, replaceChildren, rovingKeys } from "./dom.js";
import { FilterBar } from "./filterbar.js";
import { STATUS_LABEL, age, count, duration, percent, summaryStatus } from "./format.js";
import { BASE_GROUPINGS, annotationKeys, groupSummaries } from "./grouping.js";

const CAP = 1000;
const ROWS_PER_PAGE = 50;

export class TracesView {
  constructor(ctx) {
    this.ctx = ctx;
    this.abort = null;
    this.summaries = [];
    this.nextToken = null;
    this.processed = 0;
    this.page = 0;
    this.selectedGroup = null;
  }

  mount(root, params) {
    this.params = params;
    this.filter = new FilterBar({ id: "traces-filter", value: params.get("filter") || "", onSubmit: (value) => this.ctx.setParams({ filter: value || null, selected: null }) });
    this.groupSelect = el("select", { id: "group-by", "data-testid": "group-by", onchange: () => this.ctx.setParams({ group: this.groupSelect.value, selected: null }) });
    this.status = el("p", { class: "view-status", role: "status", "aria-live": "polite" }, "Loading traces…");
    this.groupsBody = el("tbody");
    this.groupHeader = el("th", { scope: "col" }, "URL");
    this.groupsTable = el("table", { class: "data-table groups-table", "data-testid": "groups-table", "aria-describedby": "groups-caption" },
      el("caption", { id: "groups-caption", class: "visually-hidden" }, "Trace groups. Select a group to list its traces."),
      el("thead", {}, el("tr", {}, this.groupHeader,
        el("th", { scope: "col", class: "num" }, "Avg. response"),
        el("th", { scope: "col", class: "num hide-narrow" }, "% of traces"),
        el("th", { scope: "col", class: "num" }, "Traces"),
        el("th", { scope: "col", class: "status-col" }, "Status"))),
      this.groupsBody);
    this.tracesBody = el("tbody");
    this.tracesTitle = el("h2", { id: "traces-title" }, "Traces");
    this.pager = el("nav", { class: "pager", "aria-label": "Trace list pages" });
    this.tracesTable = el("table", { class: "data-table traces-table", "data-testid": "traces-table", "aria-labelledby": "traces-title" },
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "ID"),
        el("th", { scope: "col" }, "Age"),
        el("th", { scope: "col", class: "hide-narrow" }, "Method"),
        el("th", { scope: "col" }, "Status"),
        el("th", { scope: "col", class: "num" }, "Response"),
        el("th", { scope: "col", class: "num hide-narrow" }, "Duration"),
        el("th", { scope: "col" }, "URL"))),
      this.tracesBody);
    this.groupsScroller = el("div", { class: "table-scroll" }, this.groupsTable);
    replaceChildren(root,
      el("div", { class: "view-header" }, el("h1", {}, "Traces"), this.status),
      this.filter.node,
      el("section", { class: "card", "aria-labelledby": "groups-title" },
        el("div", { class: "card-head" },
          el("h2", { id: "groups-title" }, "Trace groups"),
          el("label", { class: "inline-field" }, "Group by ", this.groupSelect)),
        this.groupsScroller),
      el("section", { class: "card", "aria-labelledby": "traces-title" },
        el("div", { class: "card-head" }, this.tracesTitle, this.pager),
        el("div", { class: "table-scroll" }, this.tracesTable)));
    this.applyParams(params);
    return this.refresh();
  }

  applyParams(params) {
    this.params = params;
    this.grouping = params.get("group") || "url";
    this.selectedGroup = params.get("selected");
    this.filterExpression = params.get("filter") || "";
    this.filter.value = this.filterExpression;
  }

  setParams(params) {
    const reload = (params.get("filter") || "") !== this.filterExpression;
    this.applyParams(params);
    this.page = 0;
    if (reload) return this.refresh();
    this.render();
    return Promise.resolve();
  }

  destroy() {
    if (this.abort) this.abort.abort();
  }

  async refresh() {
    if (this.abort) this.abort.abort();
    const controller = new AbortController();
    this.abort = controller;
    const window = this.ctx.timeWindow();
    const filter = this.filterExpression;
    const started = performance.now();
    let first = true;
    try {
      await api.loadSummaries(window, filter, {
        cap: CAP,
        signal: controller.signal,
        onPage: ({ summaries, nextToken, processed, done }) => {
          if (controller.signal.aborted) return;
          this.summaries = summaries;
          this.nextToken = nextToken;
          this.processed = processed;
          this.loading = !done;
          this.filter.showError("");
          this.render();
          if (first) {
            first = false;
            this.ctx.mark("traces-rendered", performance.now() - started);
          }
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
        this.status.dataset.state = "error";
      } else {
        this.status.textContent = `Could not load traces: ${error.message}`;
        this.status.dataset.state = "error";
      }
    }
  }

  /** Load the next CAP summaries after the ones already loaded. */
  async loadMore() {
    if (!this.nextToken) return;
    const controller = new AbortController();
    if (this.abort) this.abort.abort();
    this.abort = controller;
    try {
      await api.loadSummaries(this.ctx.timeWindow(), this.filterExpression, {
        cap: this.summaries.length + CAP, signal: controller.signal, nextToken: this.nextToken, loaded: this.summaries,
        onPage: ({ summaries, nextToken, done }) => {
          this.summaries = summaries;
          this.nextToken = nextToken;
          this.loading = !done;
          this.render();
        },
      });
    } catch (error) {
      if (error.name !== "AbortError") this.status.textContent = `Could not load more traces: ${error.message}`;
    }
  }

  groupingOptions() {
    const options = BASE_GROUPINGS.map((g) => ({ value: g.id, label: g.label }));
    for (const key of annotationKeys(this.summaries)) options.push({ value: `annotation.${key}`, label: `Annotation: ${key}` });
    if (!options.some((o) => o.value === this.grouping)) options.push({ value: this.grouping, label: this.grouping });
    return options;
  }

  render() {
    const options = this.groupingOptions();
    replaceChildren(this.groupSelect, options.map((o) => el("option", { value: o.value, selected: o.value === this.grouping }, o.label)));
    this.groupSelect.value = this.grouping;
    const label = options.find((o) => o.value === this.grouping).label;
    this.groupHeader.textContent = label;
    const groups = groupSummaries(this.summaries, this.grouping);
    const selected = groups.find((g) => g.value === this.selectedGroup) || null;

    keepingScroll(this.groupsScroller, () => replaceChildren(this.groupsBody, groups.length
      ? groups.map((g) => this.groupRow(g, selected === g))
      : el("tr", {}, el("td", { colspan: "5", class: "muted" }, this.loading ? "Loading…" : "No traces match in this time range."))));

    const list = selected ? selected.summaries : this.summaries;
    const pages = Math.max(1, Math.ceil(list.length / ROWS_PER_PAGE));
    this.page = Math.min(this.page, pages - 1);
    const rows = list.slice(this.page * ROWS_PER_PAGE, (this.page + 1) * ROWS_PER_PAGE);
    replaceChildren(this.tracesBody, rows.length
      ? rows.map((s) => this.traceRow(s))
      : el("tr", {}, el("td", { colspan: "7", class: "muted" }, this.loading ? "Loading…" : "No traces.")));
    replaceChildren(this.tracesTitle, selected ? ["Traces in ", el("q", {}, selected.value), ` (${count(list.length)})`] : `Traces (${count(list.length)})`);
    this.renderPager(pages, list.length);

    const more = this.nextToken ? ` More traces match: ` : "";
    replaceChildren(this.status,
      `${count(this.summaries.length)} trace${this.summaries.length === 1 ? "" : "s"} loaded`,
      this.loading ? " (loading more…)" : "",
      more,
      this.nextToken && !this.loading ? el("button", { type: "button", class: "link-button", onclick: () => this.loadMore() }, `load ${count(CAP)} more`) : null,
      ` · updated ${new Date().toLocaleTimeString()}`);
    this.status.dataset.state = this.loading ? "loading" : "ready";
  }

  groupRow(group, isSelected) {
    const select = () => this.ctx.setParams({ selected: isSelected ? null : group.value });
    const button = el("button", {
      type: "button", class: "group-button", "aria-pressed": isSelected ? "true" : "false",
      title: isSelected ? "Show all traces" : "Show the traces of this group",
      onclick: select,
      onkeydown: (event) => rovingKeys(event, [...this.groupsBody.querySelectorAll(".group-button")], event.currentTarget),
    }, group.value);
    return el("tr", { class: isSelected ? "selected" : "", "data-group": group.value, "data-count": String(group.count) },
      el("th", { scope: "row", class: "group-cell" }, button),
      el("td", { class: "num" }, duration(group.avgResponse)),
      el("td", { class: "num hide-narrow" }, percent(group.count, this.summaries.length)),
      el("td", { class: "num group-count" }, count(group.count)),
      el("td", { class: "status-col" }, statusBar(group.counts, { compact: true })));
  }

  traceRow(summary) {
    const status = summaryStatus(summary);
    const http = summary.Http || {};
    const href = this.ctx.href("trace", { id: summary.Id });
    const start = summary.StartTime || parseInt(summary.Id.split("-")[1], 16);
    // The whole row opens the trace; the id stays a real link (keyboard, new tab, copy).
    const open = (event) => {
      if (event.type === "auxclick" && event.button !== 1) return; // only the middle button
      if (event.target.closest("a, button, input, select")) return;
      if (String(window.getSelection() || "")) return; // selecting text, not opening
      if (event.ctrlKey || event.metaKey || event.button === 1) window.open(href, "_blank", "noopener");
      else window.location.assign(href);
    };
    return el("tr", { "data-trace-id": summary.Id, class: `status-row-${status}`, onclick: open, onauxclick: open },
      el("td", { class: "mono" }, el("a", { href, class: "trace-link" }, summary.Id)),
      el("td", { title: new Date(start * 1000).toLocaleString() }, age(start)),
      el("td", { class: "hide-narrow" }, http.HttpMethod || "–"),
      el("td", {}, el("span", { class: `badge status-${status}`, title: STATUS_LABEL[status] }, http.HttpStatus ? String(http.HttpStatus) : STATUS_LABEL[status])),
      el("td", { class: "num" }, duration(summary.ResponseTime)),
      el("td", { class: "num hide-narrow" }, duration(summary.Duration)),
      el("td", { class: "url-cell", title: http.HttpURL || "" }, http.HttpURL || "–"));
  }

  renderPager(pages, total) {
    if (pages <= 1) {
      replaceChildren(this.pager);
      return;
    }
    const go = (page) => {
      this.page = page;
      this.render();
    };
    replaceChildren(this.pager,
      el("button", { type: "button", class: "button small", disabled: this.page === 0, onclick: () => go(this.page - 1), "aria-label": "Previous page" }, "‹ Prev"),
      el("span", { class: "pager-text" }, `${count(this.page * ROWS_PER_PAGE + 1)}–${count(Math.min(total, (this.page + 1) * ROWS_PER_PAGE))} of ${count(total)}`),
      el("button", { type: "button", class: "button small", disabled: this.page >= pages - 1, onclick: () => go(this.page + 1), "aria-label": "Next page" }, "Next ›"));
  }
}
