// Console shell: hash router (#/map, #/traces, #/trace/<id>, #/analytics), the time-range
// picker, live polling and the collector status light. Views get a small context object and
// never touch the URL or the clock themselves, so every state is a shareable link.

import * as api from "./api.js";
import { el, replaceChildren } from "./dom.js";
import { AnalyticsView } from "./view-analytics.js";
import { MapView } from "./view-map.js";
import { TraceView } from "./view-trace.js";
import { TracesView } from "./view-traces.js";

const VIEWS = { map: MapView, traces: TracesView, trace: TraceView, analytics: AnalyticsView };
const TITLES = { map: "Service map", traces: "Traces", trace: "Trace", analytics: "Analytics" };
const RANGES = [
  { id: "5m", label: "Last 5 minutes", seconds: 300 },
  { id: "15m", label: "Last 15 minutes", seconds: 900 },
  { id: "1h", label: "Last 1 hour", seconds: 3600 },
  { id: "6h", label: "Last 6 hours", seconds: 21600 },
  { id: "24h", label: "Last 24 hours", seconds: 86400 },
  { id: "custom", label: "Custom range…", seconds: 0 },
];
const DEFAULT_RANGE = "15m";
// What every view shares and every link carries: the time range and the X-Ray group
// ("groupName": the traces view's own "group" parameter is its URL/method grouping).
const RANGE_KEYS = ["range", "start", "end", "groupName"];
const POLL_MS = 5000;

const state = {
  name: null,
  view: null,
  params: new URLSearchParams(),
  live: localStorage.getItem("otel-xray-console.live") !== "off",
  polling: false,
};

// Figures for tests and bench/console.py: {name: milliseconds}, and the time each was set.
const marks = {};
globalThis.__xrayConsole = { marks };

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  let name = parts[0] || "map";
  if (!VIEWS[name]) name = "map";
  if (name === "trace" && parts[1]) params.set("id", parts[1]);
  return { name, params };
}

function rangeParams(params) {
  const out = new URLSearchParams();
  for (const key of RANGE_KEYS) if (params.get(key)) out.set(key, params.get(key));
  return out;
}

function buildHash(name, params) {
  const query = new URLSearchParams(params);
  let path = `#/${name}`;
  if (name === "trace" && query.get("id")) {
    path += `/${encodeURIComponent(query.get("id"))}`;
    query.delete("id");
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

const ctx = {
  /** The absolute window [start, end) in epoch seconds for the current range. */
  timeWindow() {
    const range = state.params.get("range") || DEFAULT_RANGE;
    if (range === "custom") {
      const start = Number(state.params.get("start"));
      const end = Number(state.params.get("end"));
      if (start && end && end > start) return { start, end };
    }
    const spec = RANGES.find((r) => r.id === range && r.seconds) || RANGES.find((r) => r.id === DEFAULT_RANGE);
    const end = Math.ceil(Date.now() / 1000) + 1;
    return { start: end - spec.seconds - 1, end };
  },
  /** The X-Ray group picked beside the time range, or null for Default (every trace). */
  groupName() {
    return state.params.get("groupName") || null;
  },
  /** A link to another view, carrying the time range and group of the current URL. */
  href(name, params) {
    const query = rangeParams(parseHash().params);
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") query.set(k, v);
    return buildHash(name, query);
  },
  /**
   * Change parameters of the current view (null removes one); goes through history. Built on
   * the URL, not on the view last applied: the URL changes at once but is applied only when the
   * hashchange handler runs, and a quick second change must neither drop the first nor land on
   * the view being left. Returns the new parameters.
   */
  setParams(changes) {
    const { name, params } = parseHash();
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === "") params.delete(k);
      else params.set(k, v);
    }
    location.hash = buildHash(name, params);
    return params;
  },
  mark(name, ms) {
    marks[name] = { ms, at: performance.now() };
    document.body.dataset[name.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = "1";
  },
};

function route() {
  const { name, params } = parseHash();
  const main = document.getElementById("main");
  const rangeChanged = RANGE_KEYS.some((k) => (params.get(k) || "") !== (state.params.get(k) || ""));
  state.params = params;
  api.setGroup(params.get("groupName"));
  syncRangePicker();
  syncGroupPicker();
  for (const link of document.querySelectorAll(".nav-link")) {
    const active = link.dataset.view === name || (name === "trace" && link.dataset.view === "traces");
    link.setAttribute("aria-current", active ? "page" : "false");
    link.href = ctx.href(link.dataset.view, {});
  }
  document.title = `${TITLES[name]} · otel-xray console`;
  if (state.view && state.name === name) {
    state.view.setParams(params);
    if (rangeChanged) state.view.refresh();
    return;
  }
  if (state.view) state.view.destroy();
  state.name = name;
  state.view = new VIEWS[name](ctx);
  replaceChildren(main);
  state.view.mount(main, params);
}

// ---- time range picker -------------------------------------------------------------------

function toLocalInput(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The range (range|start|end) the picker shows: set by the user's own pick at once, so the late
// hashchange of an earlier pick (or of a group change) does not reset it, e.g. re-hide the custom
// range form the user has opened meanwhile. The picker follows the URL when its range differs.
let pickerRange = null;

function rangeKey(params) {
  return ["range", "start", "end"].map((k) => params.get(k) || "").join("|");
}

function syncRangePicker() {
  const key = rangeKey(state.params);
  if (key === pickerRange) return;
  pickerRange = key;
  const select = document.getElementById("range");
  const range = state.params.get("range") || DEFAULT_RANGE;
  select.value = RANGES.some((r) => r.id === range) ? range : DEFAULT_RANGE;
  const custom = document.getElementById("custom-range");
  custom.hidden = select.value !== "custom";
  if (select.value === "custom") {
    const window = ctx.timeWindow();
    document.getElementById("range-start").value = toLocalInput(window.start);
    document.getElementById("range-end").value = toLocalInput(window.end);
  }
}

function setupRangePicker() {
  const select = document.getElementById("range");
  replaceChildren(select, RANGES.map((r) => el("option", { value: r.id }, r.label)));
  select.addEventListener("change", () => {
    if (select.value === "custom") {
      const window = ctx.timeWindow();
      document.getElementById("custom-range").hidden = false;
      document.getElementById("range-start").value = toLocalInput(window.start);
      document.getElementById("range-end").value = toLocalInput(window.end);
      document.getElementById("range-start").focus();
      pickerRange = rangeKey(parseHash().params);
      return;
    }
    document.getElementById("custom-range").hidden = true;
    pickerRange = rangeKey(ctx.setParams({ range: select.value === DEFAULT_RANGE ? null : select.value, start: null, end: null }));
  });
  document.getElementById("custom-range").addEventListener("submit", (event) => {
    event.preventDefault();
    const start = new Date(document.getElementById("range-start").value).getTime() / 1000;
    const end = new Date(document.getElementById("range-end").value).getTime() / 1000;
    const error = document.getElementById("range-error");
    if (!start || !end || end <= start) {
      error.textContent = "The end must be after the start.";
      error.hidden = false;
      return;
    }
    error.hidden = true;
    ctx.setParams({ range: "custom", start: String(Math.floor(start)), end: String(Math.ceil(end)) });
  });
}

// ---- group picker ------------------------------------------------------------------------

let groupNames = ["Default"];

function syncGroupPicker() {
  const select = document.getElementById("group");
  const current = state.params.get("groupName") || "Default";
  // A group named in the link but unknown (deleted, or not loaded yet) still shows as chosen.
  const names = groupNames.includes(current) ? groupNames : [...groupNames, current];
  if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
    replaceChildren(select, names.map((n) => el("option", { value: n }, n)));
  }
  select.value = current;
}

async function loadGroups() {
  try {
    const groups = await api.getGroups();
    groupNames = ["Default", ...groups.map((g) => g.GroupName).filter((n) => n !== "Default")];
  } catch (_) {
    return; // the status light reports an unreachable collector
  }
  syncGroupPicker();
}

function setupGroupPicker() {
  const select = document.getElementById("group");
  syncGroupPicker();
  select.addEventListener("change", () => {
    ctx.setParams({ groupName: select.value === "Default" ? null : select.value });
  });
  // Groups made with the CLI or boto3 while the console is open appear the next time it opens.
  select.addEventListener("focus", loadGroups);
  select.addEventListener("pointerdown", loadGroups);
  return loadGroups();
}

// ---- live updates and collector status -----------------------------------------------------

function renderLive() {
  const button = document.getElementById("live");
  button.setAttribute("aria-pressed", String(state.live));
  button.querySelector(".live-text").textContent = state.live ? "Live" : "Paused";
  button.title = state.live ? `Updating every ${POLL_MS / 1000} s. Click to pause.` : "Updates paused. Click to resume.";
}

async function checkStatus() {
  const light = document.getElementById("collector-status");
  try {
    const status = await api.getStatus();
    light.dataset.state = "up";
    const bits = Object.entries(status || {}).filter(([, v]) => typeof v !== "object").slice(0, 6).map(([k, v]) => `${k}: ${v}`);
    light.title = `Collector reachable${bits.length ? `\n${bits.join("\n")}` : ""}`;
    light.setAttribute("aria-label", "Collector reachable");
  } catch (_) {
    light.dataset.state = "down";
    light.title = "Collector not reachable";
    light.setAttribute("aria-label", "Collector not reachable");
  }
}

async function poll() {
  if (!state.live || document.hidden || state.polling || !state.view) return;
  state.polling = true;
  try {
    await Promise.all([state.view.refresh(), checkStatus()]);
  } finally {
    state.polling = false;
  }
}

function start() {
  setupRangePicker();
  setupGroupPicker();
  document.getElementById("live").addEventListener("click", () => {
    state.live = !state.live;
    localStorage.setItem("otel-xray-console.live", state.live ? "on" : "off");
    renderLive();
    if (state.live) poll();
  });
  renderLive();
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  setInterval(poll, POLL_MS);
  route();
  checkStatus();
}

start();
