// Build the trace timeline tree from BatchGetTraces documents. Pure: no DOM.
//
// A trace arrives as segment documents (JSON strings). Subsegments are embedded under
// `subsegments`; independent subsegments (type "subsegment") and downstream segments point at
// their parent with `parent_id`, which may be a subsegment in another document. Inferred
// segments (`inferred: true`) hang under the subsegment that called them.

import { documentStatus } from "./format.js";

function entryFrom(doc, kind, owner, depthHint) {
  return {
    id: doc.id,
    doc,
    kind, // "segment" | "subsegment" | "inferred"
    name: doc.name || "(unnamed)",
    service: owner ? owner.service : doc.name || "(unnamed)",
    origin: doc.origin || (owner ? owner.origin : ""),
    start: typeof doc.start_time === "number" ? doc.start_time : null,
    end: typeof doc.end_time === "number" ? doc.end_time : null,
    inProgress: Boolean(doc.in_progress) || typeof doc.end_time !== "number",
    status: documentStatus(doc),
    children: [],
    parent: null,
    depth: depthHint,
  };
}

/**
 * @param documents parsed segment documents of one trace (any order)
 * @returns {roots, entries (depth-first order), start, end, byId, exceptions[]}
 */
export function buildTimeline(documents) {
  const byId = new Map();
  const pending = [];

  const addEmbedded = (parentEntry, subs) => {
    for (const sub of subs || []) {
      if (!sub || typeof sub !== "object" || byId.has(sub.id)) continue;
      const entry = entryFrom(sub, "subsegment", parentEntry);
      entry.parent = parentEntry;
      parentEntry.children.push(entry);
      if (sub.id) byId.set(sub.id, entry);
      addEmbedded(entry, sub.subsegments);
    }
  };

  const ordered = [...documents].filter((d) => d && typeof d === "object")
    .sort((a, b) => (a.type === "subsegment") - (b.type === "subsegment") || (a.start_time || 0) - (b.start_time || 0));
  for (const doc of ordered) {
    if (doc.id && byId.has(doc.id)) continue;
    const kind = doc.type === "subsegment" ? "subsegment" : doc.inferred ? "inferred" : "segment";
    const entry = entryFrom(doc, kind, null);
    if (doc.id) byId.set(doc.id, entry);
    addEmbedded(entry, doc.subsegments);
    pending.push(entry);
  }

  const roots = [];
  for (const entry of pending) {
    const parent = entry.doc.parent_id && byId.get(entry.doc.parent_id);
    if (parent && parent !== entry) {
      entry.parent = parent;
      parent.children.push(entry);
    } else {
      roots.push(entry);
    }
  }

  // Independent subsegments take their service from the segment above them.
  const fixService = (entry, owner) => {
    if (entry.kind === "subsegment" && owner) {
      entry.service = owner.service;
      if (!entry.doc.origin) entry.origin = owner.origin;
    }
    const nextOwner = entry.kind === "subsegment" ? owner : entry;
    for (const child of entry.children) fixService(child, nextOwner);
  };
  for (const root of roots) fixService(root, root.kind === "subsegment" ? null : root);

  let start = Infinity;
  let end = -Infinity;
  for (const entry of byId.values()) {
    if (entry.start !== null) start = Math.min(start, entry.start);
    if (entry.end !== null) end = Math.max(end, entry.end);
    if (entry.start !== null) end = Math.max(end, entry.start);
  }
  if (!Number.isFinite(start)) start = 0;
  if (!Number.isFinite(end)) end = start;

  const byStart = (a, b) => (a.start ?? Infinity) - (b.start ?? Infinity);
  const entries = [];
  const exceptions = [];
  const walk = (entry, depth) => {
    entry.depth = depth;
    entries.push(entry);
    const cause = entry.doc.cause;
    if (cause && typeof cause === "object") {
      for (const exception of cause.exceptions || []) exceptions.push({ entry, exception });
    }
    entry.children.sort(byStart);
    for (const child of entry.children) walk(child, depth + 1);
  };
  roots.sort(byStart);
  for (const root of roots) walk(root, 0);
  return { roots, entries, start, end, byId, exceptions };
}

/** Find the exception a string `cause` (an exception id) refers to, anywhere in the trace. */
export function findExceptionById(timeline, exceptionId) {
  for (const { entry, exception } of timeline.exceptions) if (exception.id === exceptionId) return { entry, exception };
  return null;
}

/**
 * The entry most worth opening first: the deepest faulted/errored entry carrying an exception
 * (the root cause), else the deepest faulted one, else the first segment.
 */
export function rootCauseEntry(timeline) {
  const withCause = timeline.entries.filter((e) => e.doc.cause && e.status !== "ok");
  const pool = withCause.length ? withCause : timeline.entries.filter((e) => e.status === "fault");
  if (!pool.length) return timeline.entries[0] || null;
  return pool.reduce((best, e) => (e.depth > best.depth ? e : best), pool[0]);
}

// Frames of installed libraries and of the runtime (Python, Node, JVM); the rest is the
// application's own code.
const LIBRARY_PATH = /(^|[\\/])(site-packages|dist-packages|node_modules)([\\/]|$)|[\\/]lib[\\/]python\d|^<frozen |^node:|^internal[\\/]/;
const LIBRARY_LABEL = /^(java|javax|jdk|sun|kotlin|scala|org\.springframework|org\.apache|io\.netty|com\.amazonaws|software\.amazon)\./;

/** Whether a stack frame is the application's own (not a library's or the runtime's). */
export function isAppFrame(frame) {
  if (!frame || typeof frame !== "object") return false;
  const path = typeof frame.path === "string" ? frame.path : "";
  const label = typeof frame.label === "string" ? frame.label : "";
  if (!path && !label) return false;
  return !LIBRARY_PATH.test(path) && !LIBRARY_LABEL.test(label);
}

function hasAppFrames(exception) {
  return Array.isArray(exception && exception.stack) && exception.stack.some(isAppFrame);
}

/**
 * The exception to lead an entry's panel with: the one carrying the application's own frames.
 * An instrumented client records a failed call's exception where it was raised, inside the
 * library (only library frames); the same exception, recorded again as it went up through the
 * application, sits on an ancestor with the app's frames. Returns {entry, exception} (the
 * ancestor's when the entry's own have no app frame) or null when no such exception exists.
 */
export function appFrameException(timeline, entry) {
  const own = entry && entry.doc.cause && typeof entry.doc.cause === "object" ? entry.doc.cause.exceptions || [] : [];
  const mine = own.find(hasAppFrames);
  if (mine) return { entry, exception: mine };
  const types = new Set(own.map((e) => e && e.type).filter(Boolean));
  for (let up = entry && entry.parent; up; up = up.parent) {
    const cause = up.doc.cause;
    if (!cause || typeof cause !== "object") continue;
    const found = (cause.exceptions || []).find((e) => hasAppFrames(e) && (!types.size || types.has(e.type)));
    if (found) return { entry: up, exception: found };
  }
  return null;
}
