// The console's only data source: the collector's X-Ray-shaped REST API (the same operations
// boto3 calls). Paths are relative so the console also works behind a path-prefix proxy.

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message || type || `HTTP ${status}`);
    this.status = status;
    this.type = type || "";
  }

  /** True when the request itself was wrong (e.g. a bad filter expression), not the server. */
  get isInvalidRequest() {
    return this.status === 400 || this.type === "InvalidRequestException";
  }
}

async function call(operation, body, { signal } = {}) {
  let response;
  try {
    response = await fetch(operation, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NetworkError", "The collector is not reachable.");
  }
  const text = await response.text();
  let data = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = { message: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    const type = response.headers.get("x-amzn-ErrorType") || data.__type || data.code || data.Code || "";
    throw new ApiError(response.status, type.split(":")[0], data.message || data.Message || "");
  }
  return data;
}

/** An absolute window in epoch seconds: what every time-ranged operation takes. */
export function windowBody(window) {
  return { StartTime: window.start, EndTime: window.end };
}

// The group picked beside the time range (null: the Default group, every trace). It scopes
// every time-ranged call: GroupName on the graph and time series, `group.name = "..."` ANDed
// onto trace-summary filters (GetTraceSummaries has no GroupName parameter in X-Ray).
let group = null;

export function setGroup(name) {
  group = name && name !== "Default" ? name : null;
}

function scoped(body) {
  if (group) body.GroupName = group;
  return body;
}

/** Every group (Default first), following NextToken. */
export async function getGroups(options) {
  const groups = [];
  let token = null;
  do {
    const page = await call("Groups", token ? { NextToken: token } : {}, options);
    groups.push(...(page.Groups || []));
    token = page.NextToken || null;
  } while (token);
  return groups;
}

export function getServiceGraph(window, options) {
  return call("ServiceGraph", scoped(windowBody(window)), options);
}

export function getTraceGraph(traceIds, options) {
  return call("TraceGraph", { TraceIds: traceIds }, options);
}

export async function getTraceSummaries(window, filterExpression, nextToken, options) {
  const body = windowBody(window);
  const filter = filterExpression && filterExpression.trim();
  if (filter) body.FilterExpression = filter;
  if (nextToken) body.NextToken = nextToken;
  if (!group) return call("TraceSummaries", body, options);
  const prefix = `group.name = ${JSON.stringify(group)}`;
  const shift = prefix.length + " AND (".length;
  body.FilterExpression = filter ? `${prefix} AND (${filter})` : prefix;
  try {
    return await call("TraceSummaries", body, options);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // Positions in errors about the user's filter are given in the user's own text.
    const message = error.message.replace(/at position (\d+)/, (whole, n) =>
      Number(n) >= shift ? `at position ${Number(n) - shift}` : whole);
    throw new ApiError(error.status, error.type, message);
  }
}

export function batchGetTraces(traceIds, options) {
  return call("Traces", { TraceIds: traceIds }, options);
}

export function getTimeSeriesServiceStatistics(window, entitySelector, period, options) {
  const body = windowBody(window);
  if (entitySelector) body.EntitySelectorExpression = entitySelector;
  if (period) body.Period = period;
  return call("TimeSeriesServiceStatistics", scoped(body), options);
}

export async function getStatus(options) {
  const response = await fetch("status", { signal: options && options.signal, cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, "", `status ${response.status}`);
  return response.json().catch(() => ({}));
}

/**
 * Load trace summaries page by page (newest first) until `cap` are loaded or there are no more,
 * calling `onPage` after each page so the view can render the first page at once.
 */
export async function loadSummaries(window, filterExpression, { cap, signal, onPage, nextToken = null, loaded = [] }) {
  const summaries = loaded.slice();
  let token = nextToken;
  let processed = 0;
  do {
    const page = await getTraceSummaries(window, filterExpression, token, { signal });
    summaries.push(...(page.TraceSummaries || []));
    processed += page.TracesProcessedCount || 0;
    token = page.NextToken || null;
    if (onPage) onPage({ summaries, nextToken: token, processed, done: !token || summaries.length >= cap });
  } while (token && summaries.length < cap);
  return { summaries, nextToken: token, processed };
}
