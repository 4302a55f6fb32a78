// Grouping of loaded trace summaries (by URL, HTTP status, method, user or an annotation),
// and the filter-expression term that selects each group server-side.

import { quote, summaryStatus } from "./format.js";

export const BASE_GROUPINGS = [
  { id: "url", label: "URL" },
  { id: "status", label: "HTTP status" },
  { id: "method", label: "HTTP method" },
  { id: "user", label: "User" },
  { id: "service", label: "Entry service" },
];

const NONE = "(none)";

function annotationValue(value) {
  if (!value) return undefined;
  if ("StringValue" in value) return { text: value.StringValue, term: quote(value.StringValue) };
  if ("NumberValue" in value) return { text: String(value.NumberValue), term: String(value.NumberValue) };
  if ("BooleanValue" in value) return { text: String(value.BooleanValue), term: String(value.BooleanValue) };
  return undefined;
}

/** Every annotation key seen in the loaded summaries, sorted: offered as "group by" choices. */
export function annotationKeys(summaries) {
  const keys = new Set();
  for (const s of summaries) for (const key of Object.keys(s.Annotations || {})) keys.add(key);
  return [...keys].sort();
}

/** [{value (display), term (filter expression or null)}] a summary belongs to under `grouping`. */
export function groupValues(summary, grouping) {
  const http = summary.Http || {};
  if (grouping === "url") return [http.HttpURL ? { value: http.HttpURL, term: `http.url = ${quote(http.HttpURL)}` } : { value: NONE, term: "!http.url" }];
  if (grouping === "status") return [http.HttpStatus ? { value: String(http.HttpStatus), term: `http.status = ${http.HttpStatus}` } : { value: NONE, term: "!http.status" }];
  if (grouping === "method") return [http.HttpMethod ? { value: http.HttpMethod, term: `http.method = ${quote(http.HttpMethod)}` } : { value: NONE, term: "!http.method" }];
  if (grouping === "user") {
    const users = (summary.Users || []).map((u) => u.UserName).filter(Boolean);
    return users.length ? users.map((u) => ({ value: u, term: `user = ${quote(u)}` })) : [{ value: NONE, term: "!user" }];
  }
  if (grouping === "service") {
    const entry = summary.EntryPoint && summary.EntryPoint.Name;
    // No plain filter keyword means "entered through this service", so the group has no term.
    return [{ value: entry || NONE, term: null }];
  }
  if (grouping.startsWith("annotation.")) {
    const key = grouping.slice("annotation.".length);
    const entries = (summary.Annotations || {})[key] || [];
    const values = entries.map((e) => annotationValue(e.AnnotationValue)).filter(Boolean);
    return values.length
      ? values.map((v) => ({ value: v.text, term: `annotation.${key} = ${v.term}` }))
      : [{ value: NONE, term: `!annotation.${key}` }];
  }
  return [{ value: "All traces", term: null }];
}

/**
 * Group summaries; each group: {value, term, count, share, avgResponse, counts{ok,error,throttle,fault},
 * summaries[]}. Sorted by count, then value.
 */
export function groupSummaries(summaries, grouping) {
  const groups = new Map();
  for (const s of summaries) {
    for (const g of groupValues(s, grouping)) {
      let group = groups.get(g.value);
      if (!group) {
        group = { value: g.value, term: g.term, count: 0, responseTotal: 0, responseCount: 0, counts: { ok: 0, error: 0, throttle: 0, fault: 0, total: 0 }, summaries: [] };
        groups.set(g.value, group);
      }
      group.count += 1;
      if (typeof s.ResponseTime === "number") {
        group.responseTotal += s.ResponseTime;
        group.responseCount += 1;
      }
      group.counts[summaryStatus(s)] += 1;
      group.counts.total += 1;
      group.summaries.push(s);
    }
  }
  const total = summaries.length;
  return [...groups.values()]
    .map((g) => ({ ...g, share: total ? g.count / total : 0, avgResponse: g.responseCount ? g.responseTotal / g.responseCount : null }))
    .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
}

/** Response times of summaries as weighted histogram entries (ms resolution, like the API). */
export function responseHistogram(summaries) {
  const counts = new Map();
  for (const s of summaries) {
    if (typeof s.ResponseTime !== "number") continue;
    const v = Math.round(s.ResponseTime * 1000) / 1000;
    counts.set(v, (counts.get(v) || 0) + 1);
  }
  return [...counts.entries()].map(([Value, Count]) => ({ Value, Count }));
}

/** Bucket summaries by start time into [{t, ok, error, throttle, fault}]. */
export function timeBuckets(summaries, start, end, period) {
  const first = Math.floor(start / period) * period;
  const buckets = [];
  for (let t = first; t < end; t += period) buckets.push({ t, ok: 0, error: 0, throttle: 0, fault: 0 });
  for (const s of summaries) {
    const time = s.StartTime || (s.Id && parseInt(s.Id.split("-")[1], 16));
    if (!time) continue;
    const index = Math.floor((time - first) / period);
    if (index >= 0 && index < buckets.length) buckets[index][summaryStatus(s)] += 1;
  }
  return buckets;
}
