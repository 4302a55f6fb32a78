// Pure formatting and classification helpers shared by every view.

export const STATUS_ORDER = ["ok", "error", "throttle", "fault"];
export const STATUS_LABEL = {
  ok: "OK",
  error: "Error (4xx)",
  throttle: "Throttle (429)",
  fault: "Fault (5xx)",
};

/** Seconds -> "850 µs", "12 ms", "1.24 s", "3 min 2 s". */
export function duration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s === 0) return "0";
  if (s < 0.0009995) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${s < 0.01 ? (s * 1000).toFixed(1) : Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(s / 60);
  return `${minutes} min ${Math.round(s - minutes * 60)} s`;
}

export function count(n) {
  return (n || 0).toLocaleString("en-US");
}

export function percent(part, whole) {
  if (!whole) return "0%";
  const p = (100 * part) / whole;
  if (p > 0 && p < 0.1) return "<0.1%";
  return `${p < 10 && p % 1 ? p.toFixed(1) : Math.round(p)}%`;
}

export function rate(perMinute) {
  if (!perMinute) return "0 t/min";
  if (perMinute < 0.1) return "<0.1 t/min";
  return `${perMinute < 10 ? perMinute.toFixed(1) : Math.round(perMinute).toLocaleString("en-US")} t/min`;
}

export function clock(epochSeconds) {
  if (!epochSeconds) return "–";
  const d = new Date(epochSeconds * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(epochSeconds) {
  if (!epochSeconds) return "–";
  const d = new Date(epochSeconds * 1000);
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" })} ${d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })}.${ms}`;
}

export function age(epochSeconds, now = Date.now() / 1000) {
  const s = Math.max(0, now - epochSeconds);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Split X-Ray ServiceStatistics / EdgeStatistics into the four health buckets. */
export function healthCounts(stats) {
  if (!stats) return { ok: 0, error: 0, throttle: 0, fault: 0, total: 0, responseTime: 0 };
  const errors = stats.ErrorStatistics || {};
  const faults = stats.FaultStatistics || {};
  const throttle = errors.ThrottleCount || 0;
  const errorTotal = errors.TotalCount ?? (errors.OtherCount || 0) + throttle;
  const result = {
    ok: stats.OkCount || 0,
    error: Math.max(0, errorTotal - throttle),
    throttle,
    fault: faults.TotalCount ?? faults.OtherCount ?? 0,
    total: stats.TotalCount || 0,
    responseTime: stats.TotalResponseTime || 0,
  };
  if (!result.total) result.total = result.ok + result.error + result.throttle + result.fault;
  return result;
}

/** The worst bucket that has any requests: what a node's colour and aria text lead with. */
export function worstStatus(counts) {
  if (counts.fault) return "fault";
  if (counts.throttle) return "throttle";
  if (counts.error) return "error";
  return "ok";
}

/** A trace summary's status, as the X-Ray console shows it. */
export function summaryStatus(summary) {
  if (summary.HasFault) return "fault";
  if (summary.HasThrottle) return "throttle";
  if (summary.HasError) return "error";
  return "ok";
}

/** A segment/subsegment document's status: flags win, else the HTTP status. */
export function documentStatus(doc) {
  const status = doc.http && doc.http.response && doc.http.response.status;
  if (doc.fault || (status >= 500 && status < 600)) return "fault";
  if (doc.throttle || status === 429) return "throttle";
  if (doc.error || (status >= 400 && status < 500)) return "error";
  return "ok";
}

/** "AWS::DynamoDB::Table" -> "DynamoDB Table"; null -> "". */
export function typeLabel(type) {
  if (!type) return "";
  if (type === "client") return "Client";
  if (type === "remote") return "Remote";
  return type.replace(/^AWS::/, "").split("::").join(" ");
}

const PALETTE = [
  "#2f6fde", "#0f8a7e", "#a35200", "#7b4bb7", "#b8336a",
  "#3b7d23", "#00749e", "#8a6d00", "#5c5fd6", "#c0392b",
];

/** A stable colour per service name within one view (first come, first served). */
export class ServiceColors {
  constructor() {
    this.assigned = new Map();
  }

  get(name) {
    if (!this.assigned.has(name)) this.assigned.set(name, PALETTE[this.assigned.size % PALETTE.length]);
    return this.assigned.get(name);
  }
}

/** Quote a string for a filter expression (X-Ray uses double-quoted strings). */
export function quote(value) {
  return JSON.stringify(String(value));
}

/** AND a new term onto an existing filter expression. */
export function andFilter(existing, term) {
  const base = (existing || "").trim();
  if (!base) return term;
  return `(${base}) AND ${term}`;
}

/** Percentile (0..1) of a weighted histogram [{Value, Count}] (seconds). */
export function histogramPercentile(entries, q) {
  const sorted = [...(entries || [])].sort((a, b) => a.Value - b.Value);
  const total = sorted.reduce((sum, e) => sum + (e.Count || 0), 0);
  if (!total) return null;
  let seen = 0;
  const target = q * total;
  for (const entry of sorted) {
    seen += entry.Count || 0;
    if (seen >= target) return entry.Value;
  }
  return sorted[sorted.length - 1].Value;
}
