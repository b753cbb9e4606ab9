// Formatting for people, and JSON folding: pure functions, no DOM.

import { parseTime } from "./chart.js";

/** A duration in milliseconds for people: "320 ms", "4.2 s", "3 min 12 s", "2 h 5 min". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** How long ago `then` was, relative to `now` (both ms): "just now", "12 s ago", … */
export function formatAgo(then, now) {
  if (!Number.isFinite(then)) return "–";
  const d = Math.max(0, now - then);
  if (d < 2000) return "just now";
  if (d < 60_000) return `${Math.floor(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)} h ago`;
  return `${Math.floor(d / 86_400_000)} d ago`;
}

/** An RFC 3339 time as local date and time with milliseconds: "2026-01-31 12:00:00.123". */
export function formatTimestamp(text) {
  const ms = parseTime(text);
  if (Number.isNaN(ms)) return text ?? "–";
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A size in bytes (or characters) for people: "812 B", "3.4 kB", "1.2 MB". */
export function formatSize(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

/** A whole number with thousands separators. */
export function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

/** The fraction 0..1 as a percentage: "42 %". */
export function formatPercent(fraction) {
  if (!Number.isFinite(fraction)) return "–";
  return `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)} %`;
}

/** The length of a value's compact JSON (how big it is on the wire). */
export function jsonSize(value) {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Pretty JSON as a tree of pieces, where every value larger than `threshold` characters
 * (compact JSON) is folded: the DOM shows it as a <details>, closed.
 *
 * A piece is a string (text to print as is) or `{fold: {summary, size}, pieces}`.
 * Returned: an array of pieces that, printed in order with folds opened, is exactly
 * `JSON.stringify(value, null, 2)`.
 */
export function foldJson(value, { threshold = 2000, indent = "  " } = {}) {
  const out = [];
  walk(value, "", out, threshold, indent, typeof value !== "string");
  const pieces = mergeText(out);
  // A container that is still long with its large members folded (many small items):
  // fold it whole too.
  const shown = pieces.reduce((n, p) => n + (typeof p === "string" ? p.length : 60), 0);
  if (shown > threshold * 2 && value && typeof value === "object") {
    return [{ fold: { summary: summaryOf(value, jsonSize(value)), size: jsonSize(value) }, pieces }];
  }
  return pieces;
}

function summaryOf(value, size) {
  if (Array.isArray(value)) return `[…] ${value.length} items, ${formatSize(size)}`;
  if (value && typeof value === "object") return `{…} ${Object.keys(value).length} keys, ${formatSize(size)}`;
  if (typeof value === "string") return `"${value.slice(0, 24)}…" ${formatCount(value.length)} characters`;
  return formatSize(size);
}

function walk(value, pad, out, threshold, indent, top) {
  const size = jsonSize(value);
  if (!top && size > threshold) {
    const inner = [];
    walk(value, pad, inner, threshold, indent, true);
    out.push({ fold: { summary: summaryOf(value, size), size }, pieces: mergeText(inner) });
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return void out.push("[]");
    out.push("[\n");
    value.forEach((item, i) => {
      out.push(pad + indent);
      walk(item === undefined ? null : item, pad + indent, out, threshold, indent, false);
      out.push(i < value.length - 1 ? ",\n" : "\n");
    });
    out.push(`${pad}]`);
    return;
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    if (keys.length === 0) return void out.push("{}");
    out.push("{\n");
    keys.forEach((k, i) => {
      out.push(`${pad}${indent}${JSON.stringify(k)}: `);
      walk(value[k], pad + indent, out, threshold, indent, false);
      out.push(i < keys.length - 1 ? ",\n" : "\n");
    });
    out.push(`${pad}}`);
    return;
  }
  out.push(JSON.stringify(value) ?? "null");
}

function mergeText(pieces) {
  const merged = [];
  for (const p of pieces) {
    if (typeof p === "string" && typeof merged[merged.length - 1] === "string") merged[merged.length - 1] += p;
    else merged.push(p);
  }
  return merged;
}

/** The text of folded pieces with every fold opened (for tests and copying). */
export function unfold(pieces) {
  return pieces.map((p) => (typeof p === "string" ? p : unfold(p.pieces))).join("");
}

/**
 * An example input for a JSON Schema, to prefill a submit form: required members with
 * their smallest allowed value (or the first enum value).
 */
export function exampleFor(schema, depth = 0) {
  if (schema === true || schema === undefined || schema === null || depth > 6) return {};
  if (schema === false) return null;
  if ("default" in schema) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      const props = schema.properties ?? {};
      for (const key of schema.required ?? []) out[key] = exampleFor(props[key] ?? {}, depth + 1);
      return out;
    }
    case "array":
      return [];
    case "string":
      return "x".repeat(schema.minLength ?? 0);
    case "integer":
    case "number": {
      if (Number.isFinite(schema.minimum)) return schema.minimum;
      if (Number.isFinite(schema.exclusiveMinimum)) return schema.exclusiveMinimum + 1;
      if (Number.isFinite(schema.maximum) && schema.maximum < 0) return schema.maximum;
      return 0;
    }
    case "boolean":
      return false;
    case "null":
      return null;
    default:
      return Object.keys(schema).length === 0 ? {} : null;
  }
}

/** Friendly example inputs for the built-in services (better than the schema's minimum). */
export const BUILTIN_EXAMPLES = {
  echo: { hello: "world" },
  sleep: { duration_seconds: 2 },
  fail: { message: "something went wrong" },
  steps: { steps: 10, interval_ms: 300 },
  digest: { data: "jobwire", rounds: 100000 },
};
