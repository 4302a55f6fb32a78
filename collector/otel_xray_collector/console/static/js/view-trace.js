// Trace detail: the trace's own map (GetTraceGraph), the timeline of segments and subsegments
// (BatchGetTraces), and a details panel for the selected entry (overview, resources,
// annotations, metadata, SQL, exceptions with stack frames, raw document).

import * as api from "./api.js";
import { el, replaceChildren, rovingKeys } from "./dom.js";
import { STATUS_LABEL, ServiceColors, dateTime, duration, typeLabel } from "./format.js";
import { ServiceMap } from "./servicemap.js";
import { appFrameException, buildTimeline, findExceptionById, isAppFrame, rootCauseEntry } from "./timeline.js";

const TABS = [
  { id: "overview", label: "Overview" },
  { id: "exceptions", label: "Exceptions" },
  { id: "resources", label: "Resources" },
  { id: "annotations", label: "Annotations" },
  { id: "metadata", label: "Metadata" },
  { id: "sql", label: "SQL" },
  { id: "raw", label: "Raw data" },
];

function httpLine(doc) {
  const req = (doc.http && doc.http.request) || {};
  const parts = [req.method, req.url].filter(Boolean);
  return parts.join(" ");
}

function kv(rows) {
  const items = rows.filter(([, v]) => v !== undefined && v !== null && v !== "");
  return el("dl", { class: "kv" }, items.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v instanceof Node ? v : String(v)))));
}

function jsonBlock(value) {
  return el("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

export class TraceView {
  constructor(ctx) {
    this.ctx = ctx;
    this.collapsed = new Set();
    this.selectedId = null;
    this.tab = "overview";
    this.signature = "";
    this.abort = null;
  }

  mount(root, params) {
    this.traceId = params.get("id");
    this.status = el("p", { class: "view-status", role: "status", "aria-live": "polite" }, "Loading trace…");
    this.summary = el("div", { class: "trace-summary" });
    this.banner = el("div", { class: "exception-banner", hidden: true });
    this.mapBox = el("div", { class: "map-canvas small", "data-testid": "trace-map" });
    this.timelineBox = el("div", { class: "timeline", "data-testid": "timeline" });
    this.details = el("section", { class: "card entry-details", "aria-label": "Segment details", "data-testid": "entry-details" });
    replaceChildren(root,
      el("div", { class: "view-header" },
        el("div", {},
          el("a", { href: this.ctx.href("traces", {}), class: "back-link" }, "← Traces"),
          el("h1", {}, "Trace ", el("span", { class: "mono trace-id", "data-testid": "trace-id" }, this.traceId || ""))),
        this.status),
      this.summary,
      this.banner,
      el("details", { class: "card trace-map-card", open: true },
        el("summary", {}, el("h2", {}, "Trace map")),
        this.mapBox),
      el("div", { class: "trace-layout" },
        el("section", { class: "card", "aria-labelledby": "timeline-title" },
          el("h2", { id: "timeline-title" }, "Timeline"),
          this.timelineBox),
        this.details));
    this.map = new ServiceMap(this.mapBox, { showRate: false, maxScale: 0.9, label: "Services in this trace", onSelect: () => {} });
    return this.refresh();
  }

  setParams(params) {
    if (params.get("id") !== this.traceId) {
      this.traceId = params.get("id");
      this.signature = "";
      this.selectedId = null;
      this.collapsed.clear();
    }
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
    try {
      const [traces, graph] = await Promise.all([
        api.batchGetTraces([this.traceId], { signal: controller.signal }),
        api.getTraceGraph([this.traceId], { signal: controller.signal }).catch(() => ({ Services: [] })),
      ]);
      if (controller.signal.aborted) return;
      const trace = (traces.Traces || []).find((t) => t.Id === this.traceId) || (traces.Traces || [])[0];
      if (!trace) {
        this.status.textContent = "This trace was not found. It may not have arrived yet, or it is older than the store keeps.";
        this.status.dataset.state = "error";
        return;
      }
      const documents = (trace.Segments || []).map((s) => s.Document);
      const signature = documents.join("\n");
      if (signature === this.signature) return;
      this.signature = signature;
      this.timeline = buildTimeline(documents.map((d) => {
        try {
          return typeof d === "string" ? JSON.parse(d) : d;
        } catch (_) {
          return null;
        }
      }));
      this.colors = new ServiceColors();
      for (const entry of this.timeline.entries) this.colors.get(entry.service);
      if (!this.selectedId || !this.timeline.byId.has(this.selectedId)) {
        const first = rootCauseEntry(this.timeline);
        this.selectedId = first ? first.id : null;
        this.tab = first && first.doc.cause && first.status !== "ok" ? "exceptions" : "overview";
      }
      this.renderSummary(trace);
      this.renderBanner();
      this.renderTimeline();
      this.renderDetails();
      this.map.update(graph.Services || [], 0);
      this.status.textContent = `${this.timeline.entries.length} entries · updated ${new Date().toLocaleTimeString()}`;
      this.status.dataset.state = "ready";
    } catch (error) {
      if (error.name === "AbortError") return;
      this.status.textContent = `Could not load the trace: ${error.message}`;
      this.status.dataset.state = "error";
    }
  }

  renderSummary(trace) {
    const root = this.timeline.roots.find((r) => r.kind === "segment") || this.timeline.roots[0];
    const doc = root ? root.doc : {};
    const response = (doc.http && doc.http.response) || {};
    const status = root ? root.status : "ok";
    replaceChildren(this.summary, kv([
      ["Started", dateTime(this.timeline.start)],
      ["Duration", duration(trace.Duration ?? this.timeline.end - this.timeline.start)],
      ["Entry", root ? root.name : "–"],
      ["Request", httpLine(doc) || "–"],
      ["Response", el("span", { class: `badge status-${status}` }, response.status ? `${response.status} ${STATUS_LABEL[status]}` : STATUS_LABEL[status])],
      ["Segments", String(this.timeline.entries.filter((e) => e.kind !== "subsegment").length)],
    ]));
  }

  renderBanner() {
    // The same exception can be on a subsegment and on the inferred segment made from it.
    // One line per entry (its outermost exception; the chain is in the details panel).
    const seen = new Set();
    const entries = new Set();
    const items = this.timeline.exceptions.filter(({ entry, exception }) => {
      const key = exception.id || `${exception.type}|${exception.message}`;
      if (entry.status === "ok" || seen.has(key) || entries.has(entry)) return false;
      seen.add(key);
      entries.add(entry);
      return true;
    }).slice(0, 4);
    this.banner.hidden = items.length === 0;
    if (!items.length) return;
    replaceChildren(this.banner,
      el("h2", {}, "Exceptions in this trace"),
      el("ul", {}, items.map(({ entry, exception }) => el("li", {},
        el("button", { type: "button", class: "link-button", onclick: () => this.select(entry.id, "exceptions") },
          entry.service === entry.name ? entry.name : `${entry.service} › ${entry.name}`),
        ": ", el("strong", {}, exception.type || "Exception"), " ", exception.message || ""))));
  }

  visibleEntries() {
    const visible = [];
    const walk = (entry) => {
      visible.push(entry);
      if (!this.collapsed.has(entry.id)) entry.children.forEach(walk);
    };
    this.timeline.roots.forEach(walk);
    return visible;
  }

  renderTimeline() {
    const { start, end } = this.timeline;
    const span = Math.max(end - start, 1e-6);
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    const header = el("div", { class: "tl-row tl-header", role: "row" },
      el("div", { class: "tl-name", role: "columnheader" }, "Name"),
      el("div", { class: "tl-res", role: "columnheader" }, "Res."),
      el("div", { class: "tl-dur", role: "columnheader" }, "Duration"),
      el("div", { class: "tl-status", role: "columnheader" }, "Status"),
      el("div", { class: "tl-bar tl-axis", role: "columnheader", "aria-label": "Timeline" },
        ticks.map((t) => el("span", { class: "tick", style: { left: `${t * 100}%` } }, duration(span * t)))));
    const rows = this.visibleEntries().map((entry) => this.timelineRow(entry, start, span));
    const grid = el("div", { class: "tl-grid", role: "treegrid", "aria-label": "Trace timeline", "aria-readonly": "true" },
      el("div", { role: "rowgroup" }, header), el("div", { role: "rowgroup", class: "tl-body" }, rows));
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.entryId;
    const scroller = this.timelineBox;
    const top = scroller.scrollTop;
    replaceChildren(this.timelineBox, grid);
    scroller.scrollTop = top;
    // Names show whole; one that does not fit its column is cut with an ellipsis and gets
    // its full text as a tooltip.
    for (const title of grid.querySelectorAll(".tl-title")) {
      if (title.scrollWidth > title.clientWidth) title.title = title.textContent;
    }
    if (focused) {
      const again = this.timelineBox.querySelector(`[data-entry-id="${CSS.escape(focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  timelineRow(entry, start, span) {
    const doc = entry.doc;
    const color = this.colors.get(entry.service);
    const hasChildren = entry.children.length > 0;
    const expanded = hasChildren && !this.collapsed.has(entry.id);
    const response = doc.http && doc.http.response && doc.http.response.status;
    const left = entry.start !== null ? ((entry.start - start) / span) * 100 : 0;
    const endTime = entry.end !== null ? entry.end : this.timeline.end;
    const width = entry.start !== null ? Math.max(0.3, ((endTime - entry.start) / span) * 100) : 0;
    const selected = entry.id === this.selectedId;
    const http = httpLine(doc);
    const hasException = Boolean(doc.cause);
    const label = `${entry.name}${entry.kind === "segment" ? " segment" : entry.kind === "inferred" ? " inferred segment" : ""}, ` +
      `${entry.inProgress ? "in progress" : duration(entry.end - entry.start)}, ${STATUS_LABEL[entry.status]}${response ? ` ${response}` : ""}` +
      `${hasException ? ", has exception" : ""}`;
    const row = el("div", {
      class: `tl-row kind-${entry.kind} status-row-${entry.status}${selected ? " selected" : ""}`,
      role: "row", tabindex: selected ? "0" : "-1", "aria-level": String(entry.depth + 1),
      "aria-expanded": hasChildren ? String(expanded) : null, "aria-selected": String(selected), "aria-label": label,
      "data-entry-id": entry.id, "data-name": entry.name, "data-status": entry.status,
      onclick: () => this.select(entry.id),
      onkeydown: (event) => this.rowKeys(event, entry),
    },
    el("div", { class: "tl-name", role: "gridcell", style: { paddingLeft: `${8 + entry.depth * 16}px` } },
      hasChildren
        ? el("button", {
          type: "button", class: "tl-toggle", tabindex: "-1", "aria-label": expanded ? "Collapse" : "Expand",
          onclick: (event) => {
            event.stopPropagation();
            this.toggle(entry);
          },
        }, expanded ? "▾" : "▸")
        : el("span", { class: "tl-toggle-spacer", "aria-hidden": "true" }),
      el("span", { class: "service-dot", style: { background: color }, "aria-hidden": "true" }),
      el("span", { class: "tl-label" },
        el("span", { class: "tl-title" }, entry.name),
        entry.kind === "inferred" ? el("span", { class: "tag" }, typeLabel(entry.origin) || "inferred") : null,
        hasException ? el("span", { class: "exc-mark", title: "Has an exception", "aria-hidden": "true" }, "⚠") : null,
        http ? el("span", { class: "tl-http", title: http }, http) : null)),
    el("div", { class: "tl-res", role: "gridcell" }, response ? String(response) : "–"),
    el("div", { class: "tl-dur", role: "gridcell" }, entry.inProgress ? "…" : duration(entry.end - entry.start)),
    el("div", { class: "tl-status", role: "gridcell" }, el("span", { class: `status-icon status-${entry.status}`, title: STATUS_LABEL[entry.status] }, entry.status === "ok" ? "✓" : "!"),
      el("span", { class: "visually-hidden" }, STATUS_LABEL[entry.status])),
    el("div", { class: "tl-bar", role: "gridcell" },
      el("span", {
        class: `bar status-${entry.status}${entry.inProgress ? " in-progress" : ""}`,
        style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%`, background: entry.status === "ok" ? color : null, "--service": color },
        title: `${entry.name}: ${entry.inProgress ? "in progress" : duration(entry.end - entry.start)} (+${duration((entry.start ?? start) - start)})`,
      })));
    return row;
  }

  rowKeys(event, entry) {
    const rows = [...this.timelineBox.querySelectorAll(".tl-body .tl-row")];
    if (rovingKeys(event, rows, event.currentTarget)) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.select(entry.id);
    } else if (event.key === "ArrowRight" && entry.children.length && this.collapsed.has(entry.id)) {
      event.preventDefault();
      this.toggle(entry);
    } else if (event.key === "ArrowLeft") {
      event.preventDefault();
      if (entry.children.length && !this.collapsed.has(entry.id)) this.toggle(entry);
      else if (entry.parent) this.focusEntry(entry.parent.id);
    }
  }

  focusEntry(id) {
    const row = this.timelineBox.querySelector(`[data-entry-id="${CSS.escape(id)}"]`);
    if (row) row.focus();
  }

  toggle(entry) {
    if (this.collapsed.has(entry.id)) this.collapsed.delete(entry.id);
    else this.collapsed.add(entry.id);
    this.renderTimeline();
    this.focusEntry(entry.id);
  }

  select(id, tab) {
    this.selectedId = id;
    if (tab) this.tab = tab;
    // Make sure the selected entry is visible (expand its ancestors).
    let entry = this.timeline.byId.get(id);
    for (let p = entry && entry.parent; p; p = p.parent) this.collapsed.delete(p.id);
    this.renderTimeline();
    this.renderDetails();
    this.focusEntry(id);
  }

  renderDetails() {
    const entry = this.selectedId && this.timeline.byId.get(this.selectedId);
    if (!entry) {
      replaceChildren(this.details, el("h2", {}, "Details"), el("p", { class: "muted" }, "Select an entry in the timeline."));
      return;
    }
    const doc = entry.doc;
    const available = {
      overview: true,
      exceptions: Boolean(doc.cause),
      resources: Boolean(doc.aws || doc.resource_arn || doc.service),
      annotations: Boolean(doc.annotations && Object.keys(doc.annotations).length),
      metadata: Boolean(doc.metadata && Object.keys(doc.metadata).length),
      sql: Boolean(doc.sql),
      raw: true,
    };
    if (!available[this.tab]) this.tab = "overview";
    const tabs = TABS.filter((t) => available[t.id]);
    const tabButtons = tabs.map((t) => el("button", {
      type: "button", role: "tab", id: `tab-${t.id}`, class: "tab", "aria-selected": String(t.id === this.tab),
      "aria-controls": "entry-tabpanel", tabindex: t.id === this.tab ? "0" : "-1", "data-tab": t.id,
      onclick: () => {
        this.tab = t.id;
        this.renderDetails();
        this.details.querySelector(`#tab-${t.id}`).focus();
      },
      onkeydown: (event) => {
        const all = [...this.details.querySelectorAll('[role="tab"]')];
        if (rovingKeys(event, all, event.currentTarget, { vertical: false })) document.activeElement.click();
      },
    }, t.label));
    replaceChildren(this.details,
      el("div", { class: "panel-head" },
        el("div", {},
          el("h2", {}, el("span", { class: "service-dot", style: { background: this.colors.get(entry.service) }, "aria-hidden": "true" }), entry.name),
          el("p", { class: "muted" }, entry.kind === "segment" ? `Segment · ${typeLabel(entry.origin) || "service"}` : entry.kind === "inferred" ? `Inferred segment · ${typeLabel(entry.origin)}` : `Subsegment of ${entry.service}`))),
      el("div", { role: "tablist", class: "tabs", "aria-label": "Entry details" }, tabButtons),
      el("div", { role: "tabpanel", id: "entry-tabpanel", class: "tabpanel", "aria-labelledby": `tab-${this.tab}`, tabindex: "0" }, this.tabContent(entry)));
  }

  tabContent(entry) {
    const doc = entry.doc;
    switch (this.tab) {
      case "exceptions":
        return this.exceptionsContent(doc.cause, entry);
      case "resources":
        return [doc.resource_arn ? kv([["Resource ARN", doc.resource_arn]]) : null, doc.service ? kv([["Service version", doc.service.version]]) : null, doc.aws ? jsonBlock(doc.aws) : null];
      case "annotations":
        return el("table", { class: "data-table compact" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Key"), el("th", { scope: "col" }, "Value"))),
          el("tbody", {}, Object.entries(doc.annotations).map(([k, v]) => el("tr", {}, el("th", { scope: "row", class: "mono" }, k), el("td", { class: "mono" }, JSON.stringify(v))))));
      case "metadata":
        return Object.entries(doc.metadata).map(([ns, value]) => [el("h3", {}, ns), jsonBlock(value)]);
      case "sql":
        return [kv([["Database", doc.sql.database_type], ["Version", doc.sql.database_version], ["URL", doc.sql.url], ["Connection", doc.sql.connection_string], ["User", doc.sql.user], ["Driver", doc.sql.driver_version]]),
          doc.sql.sanitized_query ? [el("h3", {}, "Query"), el("pre", { class: "json" }, doc.sql.sanitized_query)] : null];
      case "raw":
        return jsonBlock(doc);
      default: {
        const req = (doc.http && doc.http.request) || {};
        const res = (doc.http && doc.http.response) || {};
        const flags = ["fault", "error", "throttle"].filter((f) => doc[f]);
        return kv([
          ["Name", entry.name],
          ["ID", el("span", { class: "mono" }, doc.id || "–")],
          ["Parent ID", doc.parent_id ? el("span", { class: "mono" }, doc.parent_id) : null],
          ["Service", entry.service],
          ["Origin", entry.origin],
          ["Namespace", doc.namespace],
          ["Start", dateTime(entry.start)],
          ["End", entry.inProgress ? "in progress" : dateTime(entry.end)],
          ["Duration", entry.inProgress ? "in progress" : duration(entry.end - entry.start)],
          ["Status", el("span", { class: `badge status-${entry.status}` }, STATUS_LABEL[entry.status])],
          ["Flags", flags.join(", ")],
          ["HTTP method", req.method],
          ["URL", req.url],
          ["Response", res.status],
          ["Content length", res.content_length],
          ["Client IP", req.client_ip],
          ["User agent", req.user_agent],
          ["User", doc.user],
          ["Traced", doc.traced === undefined ? null : String(doc.traced)],
        ]);
      }
    }
  }

  exceptionsContent(cause, entry) {
    if (typeof cause === "string") {
      const found = findExceptionById(this.timeline, cause);
      if (!found) return el("p", {}, "Caused by exception ", el("code", {}, cause), " (recorded in another entry that is not in this trace).");
      return [el("p", {}, "Caused by an exception recorded in ",
        el("button", { type: "button", class: "link-button", onclick: () => this.select(found.entry.id, "exceptions") }, found.entry.name), ":"),
      this.exceptionCard(found.exception)];
    }
    // Lead with the exception that shows where the application's own code was: this entry's
    // (first in the list), or the same exception recorded on an ancestor (a failed call's
    // client span only has the library's frames).
    const exceptions = [...(cause.exceptions || [])];
    const lead = appFrameException(this.timeline, entry);
    let fromAncestor = null;
    if (lead && lead.entry === entry) {
      exceptions.splice(exceptions.indexOf(lead.exception), 1);
      exceptions.unshift(lead.exception);
    } else if (lead) {
      fromAncestor = [
        el("p", { class: "exc-origin" }, "Raised in your code, as recorded on ",
          el("button", { type: "button", class: "link-button", onclick: () => this.select(lead.entry.id, "exceptions") }, lead.entry.name), ":"),
        this.exceptionCard(lead.exception),
        el("p", { class: "exc-origin" }, `Recorded on ${entry.name}:`),
      ];
    }
    return [
      cause.working_directory ? kv([["Working directory", cause.working_directory]]) : null,
      fromAncestor,
      exceptions.map((ex) => this.exceptionCard(ex)),
      exceptions.length ? null : el("p", { class: "muted" }, "The cause block has no exceptions."),
    ];
  }

  exceptionCard(ex) {
    const stack = ex.stack || [];
    return el("article", { class: "exception", "data-testid": "exception" },
      el("h3", {}, el("span", { class: "exc-type" }, ex.type || "Exception"), ex.remote ? el("span", { class: "tag" }, "remote") : null),
      el("p", { class: "exc-message" }, ex.message || ""),
      kv([["Exception ID", ex.id], ["Caused by", ex.cause], ["Truncated frames", ex.truncated], ["Skipped", ex.skipped]]),
      stack.length ? el("ol", { class: "stack", "aria-label": "Stack frames" }, stack.map((f) => {
        const own = isAppFrame(f);
        return el("li", { class: own ? "frame-app" : "frame-lib", title: own ? "Your code" : null },
          el("span", { class: "frame-label" }, f.label || "(anonymous)"), " ",
          el("span", { class: "frame-path" }, `${f.path || "?"}${f.line ? `:${f.line}` : ""}`));
      })) : null);
  }
}
