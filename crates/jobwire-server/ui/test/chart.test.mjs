// The throughput chart's windowing: per-second buckets over five minutes, the window's
// edges, p50/p99 of submit-to-done time, empty data; and the SVG it draws.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WINDOW_MS, BUCKET_MS, parseTime, percentile, sampleOfJob, windowBuckets, Throughput,
  niceMax, formatMs, formatRate, linePath, renderPaneSvg, chartSummary,
} from "../chart.js";

const T0 = Date.UTC(2026, 0, 31, 12, 0, 0); // a whole second
const iso = (ms) => {
  const whole = Math.floor(ms);
  const micros = Math.round((ms - whole) * 1000);
  const d = new Date(whole).toISOString(); // …sss Z
  return `${d.slice(0, 23)}${String(micros).padStart(3, "0")}Z`;
};
const job = (id, createdMs, finishedMs, status = "succeeded") => ({
  id, status, created_at: iso(createdMs), finished_at: iso(finishedMs),
});

test("parseTime keeps microseconds and accepts other precisions and offsets", () => {
  assert.equal(parseTime("2026-01-31T12:00:00.123456Z"), T0 + 123.456);
  assert.equal(parseTime("2026-01-31T12:00:00Z"), T0);
  assert.equal(parseTime("2026-01-31T12:00:00.5Z"), T0 + 500);
  assert.equal(parseTime("2026-01-31T13:00:00.250+01:00"), T0 + 250);
  assert.ok(Number.isNaN(parseTime("yesterday")));
  assert.ok(Number.isNaN(parseTime(undefined)));
});

test("percentile uses the nearest rank", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile([7], 50), 7);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([1, 2], 50), 1);
  assert.equal(percentile([1, 2], 99), 2);
  assert.equal(percentile([1, 2, 3], 50), 2);
  assert.equal(percentile([1, 2, 3, 4], 50), 2);
  const thousand = Array.from({ length: 1000 }, (_, i) => i);
  assert.equal(percentile(thousand, 99), 989);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("a sample is submit-to-done: finished_at minus created_at", () => {
  const s = sampleOfJob(job("job_a", T0, T0 + 1234.5));
  assert.equal(s.id, "job_a");
  assert.equal(s.at, T0 + 1234.5);
  assert.ok(Math.abs(s.latencyMs - 1234.5) < 1e-6);
  assert.equal(sampleOfJob({ id: "x", created_at: iso(T0) }), null, "no finished_at: no sample");
  assert.equal(sampleOfJob(null), null);
  // A done event carries job_id as well as id.
  assert.equal(sampleOfJob({ job_id: "job_b", created_at: iso(T0), finished_at: iso(T0 + 5) }).id, "job_b");
});

test("the window is 300 one-second buckets ending with the second that holds now", () => {
  const now = T0 + 500; // mid-second
  const m = windowBuckets([], now);
  assert.equal(m.buckets.length, WINDOW_MS / BUCKET_MS);
  assert.equal(m.buckets.length, 300);
  assert.equal(m.end, T0 + 1000);
  assert.equal(m.start, T0 + 1000 - 300_000);
  assert.equal(m.buckets[0].start, m.start);
  assert.equal(m.buckets[299].start, T0);
  for (let i = 1; i < 300; i++) assert.equal(m.buckets[i].start - m.buckets[i - 1].start, 1000);
});

test("window edges: the start is in, the end is out, and so is anything before the start", () => {
  const now = T0 + 500;
  const end = T0 + 1000;
  const start = end - WINDOW_MS;
  const samples = [
    { at: start, latencyMs: 10 }, // first bucket
    { at: start - 0.001, latencyMs: 11 }, // just before: out
    { at: end - 0.001, latencyMs: 12 }, // last bucket
    { at: end, latencyMs: 13 }, // the next second (the future): out
    { at: start + 1000, latencyMs: 14 }, // second bucket, at its start
    { at: start + 999.999, latencyMs: 15 }, // still the first bucket
  ];
  const m = windowBuckets(samples, now);
  assert.equal(m.total, 4);
  assert.equal(m.buckets[0].count, 2);
  assert.equal(m.buckets[1].count, 1);
  assert.equal(m.buckets[299].count, 1);
  assert.equal(m.buckets.reduce((n, b) => n + b.count, 0), 4);
});

test("now on a whole second starts a new bucket", () => {
  const m = windowBuckets([{ at: T0, latencyMs: 1 }, { at: T0 - 1, latencyMs: 1 }], T0);
  assert.equal(m.end, T0 + 1000);
  assert.equal(m.buckets[299].count, 1);
  assert.equal(m.buckets[298].count, 1);
});

test("jobs per second, and p50/p99 per bucket and over the window", () => {
  const now = T0 + 999;
  const samples = [];
  // Bucket 299 (the current second): 100 jobs with latencies 1..100 ms.
  for (let i = 1; i <= 100; i++) samples.push({ at: T0 + i * 5, latencyMs: i });
  // Bucket 290: 3 jobs.
  for (const l of [300, 100, 200]) samples.push({ at: T0 - 9000 + 1, latencyMs: l });
  const m = windowBuckets(samples, now);
  const last = m.buckets[299];
  assert.equal(last.count, 100);
  assert.equal(last.rate, 100);
  assert.equal(last.p50, 50);
  assert.equal(last.p99, 99);
  const b = m.buckets[290];
  assert.equal(b.count, 3);
  assert.equal(b.p50, 200);
  assert.equal(b.p99, 300);
  assert.equal(m.total, 103);
  assert.equal(m.peakRate, 100);
  assert.ok(Math.abs(m.rate - 103 / 300) < 1e-12);
  // Over the window: 103 values, 1..100 and 100, 200, 300.
  assert.equal(m.p50, 52);
  assert.equal(m.p99, 200);
  assert.ok(Number.isNaN(m.buckets[0].p50), "an empty bucket has no percentile");
});

test("other bucket sizes give rates per second", () => {
  const m = windowBuckets([{ at: T0 + 100, latencyMs: 5 }, { at: T0 + 200, latencyMs: 5 }], T0 + 400, { windowMs: 10_000, bucketMs: 500 });
  assert.equal(m.buckets.length, 20);
  assert.equal(m.buckets[19].count, 2);
  assert.equal(m.buckets[19].rate, 4);
});

test("empty data: zero counts, no percentiles", () => {
  const m = windowBuckets([], T0);
  assert.equal(m.total, 0);
  assert.equal(m.rate, 0);
  assert.equal(m.peakRate, 0);
  assert.ok(Number.isNaN(m.p50));
  assert.ok(Number.isNaN(m.p99));
  assert.ok(m.buckets.every((b) => b.count === 0 && b.rate === 0 && Number.isNaN(b.p50)));
});

test("Throughput keeps one sample per job and forgets those out of the window", () => {
  const t = new Throughput();
  assert.equal(t.add(job("job_1", T0 - 2000, T0 - 1000)), true);
  assert.equal(t.add(job("job_1", T0 - 2000, T0 - 1000)), false, "the same job twice counts once");
  assert.equal(t.add(job("job_2", T0 - 400_000, T0 - 399_000)), true);
  assert.equal(t.add(job("job_3", T0 - 400_000, T0 - 399_000), T0), false, "too old for the window at now");
  assert.equal(t.add({ id: "job_4", status: "running", created_at: iso(T0) }), false);
  const m = t.model(T0);
  assert.equal(m.total, 1);
  assert.equal(t.samples.size, 1, "pruned");
  assert.equal(m.buckets[298].count, 1);
  assert.equal(m.buckets[298].p50, 1000);
});

test("niceMax and the formatters", () => {
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(NaN), 1);
  assert.equal(niceMax(1), 1);
  assert.equal(niceMax(3), 5);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(11), 20);
  assert.equal(niceMax(240), 250);
  assert.equal(niceMax(0.3), 0.5);
  assert.equal(formatMs(NaN), "–");
  assert.equal(formatMs(850), "850 ms");
  assert.equal(formatMs(4200), "4.20 s");
  assert.equal(formatMs(42_000), "42.0 s");
  assert.equal(formatMs(180_000), "3.0 min");
  assert.equal(formatRate(0), "0");
  assert.equal(formatRate(0.25), "0.25");
  assert.equal(formatRate(3), "3");
  assert.equal(formatRate(12.4), "12");
  assert.equal(formatRate(1500), "1.5k");
});

test("line paths break where a bucket has no value", () => {
  assert.equal(linePath([{ x: 0, y: 1 }, { x: 1, y: 2 }, null, { x: 3, y: 4 }]), "M0 1L1 2M3 4");
  assert.equal(linePath([null, null]), "");
});

test("the SVG panes: one bar per busy second, lines for p50/p99, no inline style, no NaN", () => {
  const samples = [];
  for (let i = 0; i < 10; i++) samples.push({ at: T0 - 5000 + i * 100, latencyMs: 100 + i }); // one bucket
  for (let i = 0; i < 4; i++) samples.push({ at: T0 - 20_000 + i * 1000, latencyMs: 2000 }); // four buckets
  const m = windowBuckets(samples, T0);
  const rate = renderPaneSvg(m, "rate", { width: 600, height: 170 });
  assert.match(rate, /^<svg [^>]*role="img"/);
  assert.equal((rate.match(/<rect /g) ?? []).length, 5);
  assert.ok(!/style=/.test(rate));
  assert.ok(!/NaN|undefined|Infinity/.test(rate));
  assert.match(rate, />now</);
  const latency = renderPaneSvg(m, "latency", { width: 600, height: 170 });
  assert.match(latency, /class="chart-p50" d="M/);
  assert.match(latency, /class="chart-p99" d="M/);
  assert.ok(!/NaN|undefined|Infinity/.test(latency));
  assert.ok(!/style=/.test(latency));
  // The lone busy second gets a dot per series; the run of four is a line.
  assert.equal((latency.match(/<circle /g) ?? []).length, 2);
  assert.match(latency, /M[\d.]+ [\d.]+L/);
  // Narrow panes get short time labels.
  assert.match(renderPaneSvg(m, "rate", { width: 300 }), />−5m</);

  for (const kind of ["rate", "latency"]) {
    const empty = renderPaneSvg(windowBuckets([], T0), kind, { width: 320, height: 120 });
    assert.ok(!/NaN|undefined|Infinity/.test(empty), kind);
    assert.equal((empty.match(/<rect /g) ?? []).length, 0);
  }
  assert.match(chartSummary(m), /^14 jobs finished in the last 5 minutes/);
});

test("labels in the SVG are escaped", () => {
  const svg = renderPaneSvg(windowBuckets([], T0), "latency");
  assert.ok(svg.includes("Submit → done"));
  assert.ok(!svg.includes("<script"));
});
