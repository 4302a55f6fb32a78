// The service map: GetServiceGraph (or GetTraceGraph) services laid out left to right by dagre,
// drawn as SVG so every node and edge is a focusable, labelled DOM element (keyboard, screen
// readers and browser tests can all reach it), with pan/zoom from d3-zoom.

import dagre from "../vendor/dagre/dagre.esm.js";
import { svg } from "./dom.js";
import { STATUS_LABEL, STATUS_ORDER, duration, healthCounts, percent, rate, typeLabel, worstStatus } from "./format.js";

const d3 = globalThis.d3;
const RADIUS = 30;
const RING = 6;
const NODE_W = 150;
const NODE_H = 2 * RADIUS + 2 * RING + 38;
const MIN_FIT_SCALE = 0.6;

/** Stable identity of a node across refreshes (ReferenceIds are per response). */
export function nodeKey(service) {
  return service.Type === "client" ? `client|${service.Name}` : `${service.Name}|${service.Type || ""}`;
}

export function edgeKey(sourceKey, targetKey) {
  return `${sourceKey}->${targetKey}`;
}

/** Turn a Services[] response into nodes and edges keyed by stable keys. */
export function graphModel(services, windowSeconds) {
  const byRef = new Map(services.map((s) => [s.ReferenceId, s]));
  const minutes = windowSeconds ? windowSeconds / 60 : 0;
  const nodes = services.map((s) => {
    const counts = healthCounts(s.SummaryStatistics);
    const isClient = s.Type === "client";
    let inbound = counts;
    return {
      key: nodeKey(s),
      service: s,
      name: s.Name || "(unnamed)",
      type: s.Type || "",
      isClient,
      inferred: !isClient && s.State && s.State !== "active",
      counts: isClient ? null : inbound,
      avg: counts.total ? counts.responseTime / counts.total : null,
      perMinute: minutes && counts.total ? counts.total / minutes : null,
      histogram: s.ResponseTimeHistogram || [],
    };
  });
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const edges = [];
  for (const s of services) {
    for (const e of s.Edges || []) {
      const target = byRef.get(e.ReferenceId);
      if (!target) continue;
      const counts = healthCounts(e.SummaryStatistics);
      const source = nodeKey(s);
      const targetKey = nodeKey(target);
      edges.push({
        key: edgeKey(source, targetKey),
        source,
        target: targetKey,
        sourceName: s.Name,
        targetName: target.Name,
        fromClient: s.Type === "client",
        counts,
        avg: counts.total ? counts.responseTime / counts.total : null,
        perMinute: minutes && counts.total ? counts.total / minutes : null,
        histogram: e.ResponseTimeHistogram || [],
        edge: e,
      });
    }
  }
  return { nodes, edges, byKey, edgesByKey: new Map(edges.map((e) => [e.key, e])) };
}

function nodeAriaLabel(node, showRate) {
  if (node.isClient) return `Clients of ${node.name}`;
  const parts = [node.name, typeLabel(node.type) || "service"];
  if (node.avg !== null) parts.push(`average ${duration(node.avg)}`);
  if (showRate && node.perMinute !== null) parts.push(rate(node.perMinute).replace("t/min", "traces per minute"));
  const c = node.counts;
  if (c && c.total) parts.push(STATUS_ORDER.filter((k) => c[k]).map((k) => `${percent(c[k], c.total)} ${STATUS_LABEL[k]}`).join(", "));
  else parts.push("no completed requests");
  return parts.join(", ");
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export class ServiceMap {
  /**
   * @param container element to draw into (sized by CSS)
   * @param options {onSelect(selection|null), showRate, label}
   */
  constructor(container, { onSelect = () => {}, showRate = true, label = "Service map", maxScale = 1.4 } = {}) {
    this.maxScale = maxScale;
    this.container = container;
    this.onSelect = onSelect;
    this.showRate = showRate;
    this.model = { nodes: [], edges: [], byKey: new Map(), edgesByKey: new Map() };
    this.selected = null; // {kind: "node"|"edge", key}
    this.layoutSignature = "";
    this.userMoved = false;
    this.root = svg("svg", { class: "service-map", role: "group", "aria-label": label });
    this.defs = svg("defs", {},
      STATUS_ORDER.concat(["idle", "selected"]).map((k) => svg("marker", {
        id: `arrow-${k}-${ServiceMap.counter}`, viewBox: "0 0 10 10", refX: "9", refY: "5",
        markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse", class: `arrow arrow-${k}`,
      }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z" }))));
    this.markerSuffix = ServiceMap.counter++;
    this.nodeEls = new Map();
    this.edgeEls = new Map();
    this.lastServices = "";
    this.viewport = svg("g", { class: "viewport" });
    this.edgeLayer = svg("g", { class: "edges" });
    this.nodeLayer = svg("g", { class: "nodes" });
    this.viewport.append(this.edgeLayer, this.nodeLayer);
    this.root.append(this.defs, this.viewport);
    this.root.addEventListener("click", (event) => {
      if (event.target === this.root) this.select(null);
    });
    container.append(this.root);
    this.zoom = d3.zoom().scaleExtent([0.15, 3]).on("zoom", (event) => {
      this.viewport.setAttribute("transform", event.transform.toString());
      if (event.sourceEvent) this.userMoved = true;
    });
    d3.select(this.root).call(this.zoom).on("dblclick.zoom", null);
    this.resizeObserver = new ResizeObserver(() => {
      if (!this.userMoved) this.fit(false);
    });
    this.resizeObserver.observe(container);
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.root.remove();
  }

  /** Draw (or redraw) the graph; keeps the selection, zoom and node positions when possible. */
  update(services, windowSeconds) {
    const text = JSON.stringify([services, windowSeconds]);
    if (text === this.lastServices) return;
    this.lastServices = text;
    this.model = graphModel(services || [], windowSeconds);
    const signature = this.model.nodes.map((n) => n.key).sort().join("\n") + "\n--\n" + this.model.edges.map((e) => e.key).sort().join("\n");
    const relayout = signature !== this.layoutSignature;
    if (relayout) {
      this.layoutSignature = signature;
      this.layout();
    }
    this.draw();
    if (relayout && !this.userMoved) this.fit(false);
    if (this.selected) {
      const exists = this.selected.kind === "node" ? this.model.byKey.has(this.selected.key) : this.model.edgesByKey.has(this.selected.key);
      if (!exists) this.select(null);
      else this.onSelect(this.selection());
    }
  }

  layout() {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 90, edgesep: 12, marginx: 24, marginy: 24, ranker: "network-simplex" });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of this.model.nodes) g.setNode(n.key, { width: n.isClient ? 90 : NODE_W, height: n.isClient ? 84 : NODE_H });
    for (const e of this.model.edges) if (e.source !== e.target) g.setEdge(e.source, e.target);
    dagre.layout(g);
    this.positions = new Map(g.nodes().map((k) => [k, g.node(k)]));
    // dagre routes edges to the nodes' bounding boxes; end them on the drawn circles instead.
    const circle = (key) => {
      const node = this.model.byKey.get(key);
      const p = g.node(key);
      return node && node.isClient ? { x: p.x, y: p.y - 10, r: 25 } : { x: p.x, y: p.y - 16, r: RADIUS + RING + 3 };
    };
    const onCircle = (c, toward) => {
      const dx = toward.x - c.x;
      const dy = toward.y - c.y;
      const length = Math.hypot(dx, dy) || 1;
      return { x: c.x + (dx / length) * c.r, y: c.y + (dy / length) * c.r };
    };
    this.edgePoints = new Map(g.edges().map((ge) => {
      const points = g.edge(ge).points.slice();
      const from = circle(ge.v);
      const to = circle(ge.w);
      const inner = points.slice(1, -1).filter((pt) => Math.hypot(pt.x - from.x, pt.y - from.y) > from.r && Math.hypot(pt.x - to.x, pt.y - to.y) > to.r);
      const first = onCircle(from, inner[0] || to);
      const last = onCircle(to, inner[inner.length - 1] || from);
      return [edgeKey(ge.v, ge.w), [first, ...inner, last]];
    }));
    this.graphSize = { width: g.graph().width || 1, height: g.graph().height || 1 };
  }

  draw() {
    const line = d3.line().x((p) => p.x).y((p) => p.y).curve(d3.curveBasis);
    const edgeNodes = this.model.edges.map((e) => {
      const points = this.edgePoints.get(e.key) || [];
      const status = e.counts.total ? worstStatus(e.counts) : "idle";
      const selected = this.selected && this.selected.kind === "edge" && this.selected.key === e.key;
      const label = `Calls from ${e.fromClient ? "clients" : e.sourceName} to ${e.targetName}` +
        (e.avg !== null ? `, average ${duration(e.avg)}` : "") +
        (e.counts.total ? `, ${STATUS_ORDER.filter((k) => e.counts[k]).map((k) => `${percent(e.counts[k], e.counts.total)} ${STATUS_LABEL[k]}`).join(", ")}` : "");
      const d = points.length ? line(points) : "";
      const mid = points[Math.floor(points.length / 2)] || { x: 0, y: 0 };
      const group = svg("g", {
        class: `edge status-${status}${selected ? " selected" : ""}`,
        tabindex: "0", role: "button", "aria-label": label, "aria-pressed": selected ? "true" : "false",
        "data-key": e.key, "data-source": e.sourceName, "data-target": e.targetName,
      },
      svg("path", { class: "edge-hit", d }),
      svg("path", { class: "edge-line", d, "marker-end": `url(#arrow-${selected ? "selected" : status}-${this.markerSuffix})` }),
      e.avg !== null ? svg("text", { class: "edge-label", x: mid.x, y: mid.y - 6, "text-anchor": "middle" }, duration(e.avg)) : null,
      svg("title", {}, label));
      return group;
    });
    this.reconcile(this.edgeLayer, this.edgeEls, edgeNodes, (group) => this.bindActivation(group, { kind: "edge", key: group.dataset.key }));

    const arc = d3.arc().innerRadius(RADIUS).outerRadius(RADIUS + RING);
    const pie = d3.pie().sort(null).value((d) => d.value);
    const nodeNodes = this.model.nodes.map((n) => {
      const p = this.positions.get(n.key) || { x: 0, y: 0 };
      const selected = this.selected && this.selected.kind === "node" && this.selected.key === n.key;
      const status = n.counts && n.counts.total ? worstStatus(n.counts) : "idle";
      const group = svg("g", {
        class: `node${n.isClient ? " client" : ""}${n.inferred ? " inferred" : ""} status-${status}${selected ? " selected" : ""}`,
        transform: `translate(${p.x},${p.y - (n.isClient ? 10 : 16)})`,
        tabindex: "0", role: "button", "aria-pressed": selected ? "true" : "false",
        "aria-label": nodeAriaLabel(n, this.showRate), "data-key": n.key, "data-name": n.name, "data-type": n.type,
        "data-health": status,
      });
      if (n.isClient) {
        group.append(
          svg("circle", { class: "node-body", r: 22 }),
          svg("circle", { class: "client-head", cy: -6, r: 6 }),
          svg("path", { class: "client-body", d: "M -11 12 a 11 9 0 0 1 22 0 z" }),
          svg("text", { class: "node-name", y: 40, "text-anchor": "middle" }, "Client"));
      } else {
        const slices = n.counts && n.counts.total
          ? pie(STATUS_ORDER.map((k) => ({ key: k, value: n.counts[k] })).filter((d) => d.value > 0))
          : [];
        group.append(
          svg("circle", { class: "halo", r: RADIUS + RING + 5 }),
          svg("circle", { class: "node-body", r: RADIUS }),
          slices.length
            ? svg("g", { class: "ring" }, slices.map((s) => svg("path", { class: `ring-${s.data.key}`, d: arc(s) })))
            : svg("circle", { class: "ring-idle", r: RADIUS + RING / 2, "stroke-width": RING }),
          svg("text", { class: "node-metric", y: this.showRate ? -3 : 4, "text-anchor": "middle" }, n.avg !== null ? duration(n.avg) : "–"),
          this.showRate ? svg("text", { class: "node-rate", y: 12, "text-anchor": "middle" }, n.perMinute !== null ? rate(n.perMinute) : "") : null,
          svg("text", { class: "node-name", y: RADIUS + RING + 16, "text-anchor": "middle" }, truncate(n.name, 22)),
          svg("text", { class: "node-type", y: RADIUS + RING + 30, "text-anchor": "middle" }, truncate(typeLabel(n.type), 26)),
          svg("title", {}, `${n.name}${n.type ? ` (${n.type})` : ""}`));
      }
      return group;
    });
    this.reconcile(this.nodeLayer, this.nodeEls, nodeNodes, (group) => {
      const key = group.dataset.key;
      this.bindActivation(group, { kind: "node", key });
      group.addEventListener("keydown", (event) => this.arrowNavigate(event, key));
      group.addEventListener("focus", () => this.reveal(group));
    });
  }

  /**
   * Update drawn elements in place, keyed by data-key, instead of replacing them: a refresh
   * every few seconds must not steal keyboard focus or hover, or detach what a user (or a
   * test) is about to click.
   */
  reconcile(layer, cache, fresh, bind) {
    const keep = new Set();
    for (const node of fresh) {
      const key = node.dataset.key;
      keep.add(key);
      const existing = cache.get(key);
      if (!existing) {
        bind(node);
        cache.set(key, node);
        layer.append(node);
        continue;
      }
      for (const attr of [...existing.attributes]) if (!node.hasAttribute(attr.name)) existing.removeAttribute(attr.name);
      for (const attr of [...node.attributes]) if (existing.getAttribute(attr.name) !== attr.value) existing.setAttribute(attr.name, attr.value);
      existing.replaceChildren(...node.childNodes);
    }
    for (const [key, node] of cache) {
      if (!keep.has(key)) {
        node.remove();
        cache.delete(key);
      }
    }
  }

  /** Pan so a keyboard-focused node is on screen. */
  reveal(group) {
    const box = group.getBoundingClientRect();
    const frame = this.root.getBoundingClientRect();
    const margin = 40;
    if (box.left >= frame.left + margin && box.right <= frame.right - margin && box.top >= frame.top + margin && box.bottom <= frame.bottom - margin) return;
    const p = this.positions.get(group.dataset.key);
    if (p) d3.select(this.root).transition().duration(200).call(this.zoom.translateTo, p.x, p.y);
  }

  bindActivation(group, target) {
    group.addEventListener("click", (event) => {
      event.stopPropagation();
      this.select(target);
    });
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.select(target);
      } else if (event.key === "Escape") {
        this.select(null);
      }
    });
  }

  /** Arrow keys walk the graph: right/left follow edges, up/down move within the column. */
  arrowNavigate(event, key) {
    if (!["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown"].includes(event.key)) return;
    event.preventDefault();
    const here = this.positions.get(key);
    let candidates;
    if (event.key === "ArrowRight") candidates = this.model.edges.filter((e) => e.source === key).map((e) => e.target);
    else if (event.key === "ArrowLeft") candidates = this.model.edges.filter((e) => e.target === key).map((e) => e.source);
    else {
      const dir = event.key === "ArrowDown" ? 1 : -1;
      candidates = this.model.nodes.map((n) => n.key).filter((k) => {
        const p = this.positions.get(k);
        return p && Math.abs(p.x - here.x) < 1 && (p.y - here.y) * dir > 0;
      });
    }
    if (!candidates.length) return;
    candidates.sort((a, b) => Math.abs(this.positions.get(a).y - here.y) - Math.abs(this.positions.get(b).y - here.y));
    const target = this.root.querySelector(`g.node[data-key="${CSS.escape(candidates[0])}"]`);
    if (target) target.focus();
  }

  select(target) {
    this.selected = target;
    this.draw();
    this.onSelect(this.selection());
  }

  /** Select a node by service name (used when a URL names one). */
  selectByName(name) {
    const node = this.model.nodes.find((n) => !n.isClient && n.name === name);
    if (node) this.select({ kind: "node", key: node.key });
  }

  selection() {
    if (!this.selected) return null;
    if (this.selected.kind === "node") {
      const node = this.model.byKey.get(this.selected.key);
      return node ? { kind: "node", node, edgesIn: this.model.edges.filter((e) => e.target === node.key) } : null;
    }
    const edge = this.model.edgesByKey.get(this.selected.key);
    return edge ? { kind: "edge", edge } : null;
  }

  /** Fit the graph in view. Automatic fits keep a legible minimum scale; the Fit button doesn't. */
  fit(animate = true, { whole = false } = {}) {
    if (!this.graphSize) return;
    const width = this.container.clientWidth || 600;
    const height = this.container.clientHeight || 400;
    // Fit the whole graph, but never below a legible scale: a big map is then panned or
    // zoomed out by the user, starting from its entry (left) side.
    const fitScale = 0.95 * Math.min(width / this.graphSize.width, height / this.graphSize.height);
    const scale = Math.min(this.maxScale, whole ? fitScale : Math.max(MIN_FIT_SCALE, fitScale));
    const tx = Math.max(8, (width - this.graphSize.width * scale) / 2);
    const ty = (height - this.graphSize.height * scale) / 2;
    const transform = d3.zoomIdentity.translate(tx, ty).scale(scale);
    const selection = d3.select(this.root);
    (animate ? selection.transition().duration(250) : selection).call(this.zoom.transform, transform);
    if (animate) this.userMoved = false;
  }

  zoomBy(factor) {
    this.userMoved = true;
    d3.select(this.root).transition().duration(200).call(this.zoom.scaleBy, factor);
  }
}
ServiceMap.counter = 0;
