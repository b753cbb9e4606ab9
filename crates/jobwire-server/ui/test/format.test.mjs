// Formatting and JSON folding.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  foldJson, unfold, formatDuration, formatAgo, formatSize, formatPercent, exampleFor, jsonSize,
} from "../format.js";

test("folded JSON prints exactly JSON.stringify(v, null, 2) when unfolded", () => {
  const values = [
    null, 1, "x", true, [], {}, [1, [2, [3]]], { a: { b: { c: [1, 2, { d: "e" }] } }, f: null },
    { big: "y".repeat(5000), small: 1, list: Array.from({ length: 400 }, (_, i) => ({ i })) },
    "z".repeat(10_000), Array.from({ length: 3000 }, (_, i) => i),
  ];
  for (const v of values) {
    assert.equal(unfold(foldJson(v, { threshold: 200 })), JSON.stringify(v, null, 2));
  }
});

test("values over the threshold are folded with a summary; small ones are not", () => {
  const pieces = foldJson({ data: "q".repeat(3000), rounds: 5 }, { threshold: 2000 });
  const folds = pieces.filter((p) => typeof p !== "string");
  assert.equal(folds.length, 1);
  assert.match(folds[0].fold.summary, /^"q{24}…" 3,000 characters$/);
  assert.ok(pieces.some((p) => typeof p === "string" && p.includes('"rounds": 5')), "the small member stays in view");
  const small = foldJson({ a: 1, b: [1, 2] }, { threshold: 2000 });
  assert.deepEqual(small, [JSON.stringify({ a: 1, b: [1, 2] }, null, 2)]);
  const nested = foldJson({ outer: { inner: Array.from({ length: 500 }, (_, i) => i) } }, { threshold: 1000 });
  assert.match(nested.find((p) => typeof p !== "string").fold.summary, /^\{…\} 1 keys/);
  const many = foldJson(Array.from({ length: 3000 }, (_, i) => i), { threshold: 1000 });
  assert.equal(many.length, 1, "a long container of small items is folded whole");
  assert.match(many[0].fold.summary, /^\[…\] 3000 items/);
});

test("durations, ages, sizes, percentages", () => {
  assert.equal(formatDuration(0), "0 ms");
  assert.equal(formatDuration(320.4), "320 ms");
  assert.equal(formatDuration(4200), "4.2 s");
  assert.equal(formatDuration(42_000), "42 s");
  assert.equal(formatDuration(192_000), "3 min 12 s");
  assert.equal(formatDuration(7_500_000), "2 h 5 min");
  assert.equal(formatDuration(NaN), "–");
  assert.equal(formatDuration(-5), "–");
  assert.equal(formatAgo(1000, 1500), "just now");
  assert.equal(formatAgo(0, 12_000), "12 s ago");
  assert.equal(formatAgo(0, 3 * 60_000), "3 min ago");
  assert.equal(formatAgo(0, 5 * 3_600_000), "5 h ago");
  assert.equal(formatSize(812), "812 B");
  assert.equal(formatSize(3400), "3.4 kB");
  assert.equal(formatPercent(0.421), "42 %");
  assert.equal(formatPercent(2), "100 %");
  assert.equal(jsonSize({ a: 1 }), 7);
});

test("example inputs from schemas", () => {
  const steps = {
    type: "object", additionalProperties: false, required: ["steps", "interval_ms"],
    properties: { steps: { type: "integer", minimum: 1, maximum: 1000 }, interval_ms: { type: "integer", minimum: 0 } },
  };
  assert.deepEqual(exampleFor(steps), { steps: 1, interval_ms: 0 });
  assert.deepEqual(exampleFor({}), {});
  assert.deepEqual(exampleFor(true), {});
  assert.equal(exampleFor({ enum: ["a", "b"] }), "a");
  assert.equal(exampleFor({ type: "string", minLength: 2 }), "xx");
  assert.deepEqual(exampleFor({ type: "object", properties: { n: { type: "number" } }, required: ["n", "m"] }), { n: 0, m: {} });
  assert.equal(exampleFor({ type: ["null", "string"] }), null);
});
