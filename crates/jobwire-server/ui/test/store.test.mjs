// What the page knows about jobs: forward-only merges, counts from events, table rows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { JobStore, JobTable, mergeJob, isForward, matchesFilter, compareNewestFirst } from "../store.js";

const job = (n, status = "queued", extra = {}) => ({
  id: `job_${String(n).padStart(4, "0")}`,
  service: "steps",
  service_id: "svc_steps",
  status,
  labels: {},
  input: {},
  created_at: `2026-01-31T12:00:${String(n % 60).padStart(2, "0")}.000000Z`,
  ...extra,
});

test("the lifecycle only goes forward", () => {
  assert.ok(isForward("queued", "running"));
  assert.ok(isForward("queued", "cancelled"));
  assert.ok(isForward("running", "succeeded"));
  assert.ok(!isForward("running", "queued"));
  assert.ok(!isForward("succeeded", "running"));
  assert.ok(!isForward("succeeded", "failed"));
  assert.ok(!isForward("running", "running"));
  assert.ok(!isForward("queued", "exploded"), "unknown statuses are ignored");
});

test("an older read never moves a job back", () => {
  const running = job(1, "running", { progress: { fraction: 0.5, message: "half" } });
  const queuedRead = job(1, "queued");
  assert.equal(mergeJob(running, queuedRead), running);
  const done = mergeJob(running, job(1, "succeeded", { output: 1 }));
  assert.equal(done.status, "succeeded");
  assert.equal(done.output, 1);
  // Same status: the further progress wins.
  const older = job(1, "running", { progress: { fraction: 0.2, message: "early" } });
  assert.equal(mergeJob(running, older).progress.fraction, 0.5);
});

test("counts follow reads and events", () => {
  const store = new JobStore();
  const changes = [];
  store.subscribe((j, prev) => changes.push([j.id, prev?.status ?? null, j.status]));
  store.upsert(job(1, "queued"));
  store.upsert(job(2, "running"));
  store.upsert(job(3, "succeeded"));
  assert.deepEqual(store.counts, { queued: 1, running: 1, succeeded: 1, failed: 0, cancelled: 0 });
  assert.equal(store.apply({ type: "status", data: { job_id: "job_0001", status: "running" } }), "applied");
  assert.equal(store.apply({ type: "progress", data: { job_id: "job_0001", fraction: 0.25, message: "1/4" } }), "applied");
  assert.equal(store.get("job_0001").progress.fraction, 0.25);
  assert.equal(store.apply({ type: "status", data: { job_id: "job_0002", status: "queued" } }), "ignored");
  const doneJob = { ...job(2, "failed"), error: { message: "boom", code: "fail" }, finished_at: "2026-01-31T12:01:00.000000Z" };
  assert.equal(store.apply({ type: "done", data: { ...doneJob, job_id: doneJob.id } }), "applied");
  assert.equal(store.get("job_0002").error.code, "fail");
  assert.ok(!("job_id" in store.get("job_0002")));
  assert.deepEqual(store.counts, { queued: 0, running: 1, succeeded: 1, failed: 1, cancelled: 0 });
  assert.equal(store.apply({ type: "progress", data: { job_id: "job_0002", fraction: 0.9 } }), "ignored", "a terminal job does not progress");
  assert.equal(store.apply({ type: "status", data: { job_id: "job_9999", status: "queued" } }), "unknown");
  assert.equal(store.apply({ type: "progress", data: { job_id: "job_9999", fraction: 0.1 } }), "unknown");
  assert.equal(store.apply({ type: "log", data: { job_id: "job_9999", line: "x" } }), "ignored");
  assert.equal(store.apply({ type: "whatever", data: { job_id: "job_0001" } }), "ignored");
  assert.equal(store.apply({ type: "status", data: "not json" }), "ignored");
  // A done for a job never seen adds it.
  assert.equal(store.apply({ type: "done", data: { ...job(5, "cancelled"), job_id: "job_0005" } }), "applied");
  assert.equal(store.counts.cancelled, 1);
  assert.equal(store.total, 4);
  // Re-reading a job changes nothing and tells nobody.
  const before = changes.length;
  store.upsert(job(3, "succeeded"));
  store.upsert(job(3, "running"));
  assert.equal(store.counts.succeeded, 1);
  assert.ok(changes.length >= before);
});

test("filters: status, service (name or id), every label", () => {
  const j = job(1, "running", { labels: { team: "ml", env: "prod" } });
  assert.ok(matchesFilter(j, {}));
  assert.ok(matchesFilter(j, { status: "running", service: "steps", labels: ["team:ml"] }));
  assert.ok(matchesFilter(j, { service: "svc_steps" }));
  assert.ok(matchesFilter(j, { labels: ["team:ml", "env:prod"] }));
  assert.ok(!matchesFilter(j, { labels: ["team:ml", "env:dev"] }));
  assert.ok(!matchesFilter(j, { status: "queued" }));
  assert.ok(!matchesFilter(j, { service: "echo" }));
  assert.ok(matchesFilter(job(2, "queued", { labels: { url: "a:b" } }), { labels: ["url:a:b"] }), "split at the first colon");
});

test("newest first: by created_at, then id", () => {
  const a = job(1);
  const b = job(2);
  assert.ok(compareNewestFirst(b, a) < 0);
  const c = { ...a, id: "job_zzzz" };
  assert.ok(compareNewestFirst(c, a) < 0);
  assert.equal(compareNewestFirst(a, a), 0);
});

test("the table inserts new matching jobs in order, and skips those of unread pages", () => {
  const store = new JobStore();
  const table = new JobTable({ status: "" }, (id) => store.get(id));
  assert.equal(table.consider(job(50)), null, "nothing before the first page");
  const page = [job(40), job(30), job(20)];
  for (const j of page) store.upsert(j);
  table.addPage({ items: page, next_cursor: "c1" });
  assert.deepEqual(table.ids, ["job_0040", "job_0030", "job_0020"]);
  store.upsert(job(45));
  assert.equal(table.consider(store.get("job_0045")), "insert");
  assert.deepEqual(table.ids, ["job_0045", "job_0040", "job_0030", "job_0020"]);
  store.upsert(job(35));
  assert.equal(table.consider(store.get("job_0035")), "insert");
  assert.deepEqual(table.ids, ["job_0045", "job_0040", "job_0035", "job_0030", "job_0020"]);
  assert.equal(table.before("job_0035"), "job_0040");
  assert.equal(table.before("job_0045"), null);
  store.upsert(job(10));
  assert.equal(table.consider(store.get("job_0010")), null, "older than the pages read: on a later page");
  assert.equal(table.consider(store.get("job_0040")), "update");
  table.addPage({ items: [job(10), job(5)], next_cursor: null });
  store.upsert(job(5));
  assert.deepEqual(table.ids.slice(-2), ["job_0010", "job_0005"]);
  store.upsert(job(1));
  assert.equal(table.consider(store.get("job_0001")), "insert", "no more pages: it is a row");
  assert.equal(table.ids.at(-1), "job_0001");
});

test("a status filter drops rows that move on and takes jobs that arrive", () => {
  const store = new JobStore();
  const table = new JobTable({ status: "running" }, (id) => store.get(id));
  const page = [job(3, "running"), job(2, "running")];
  for (const j of page) store.upsert(j);
  table.addPage({ items: page, next_cursor: null });
  store.apply({ type: "status", data: { job_id: "job_0003", status: "succeeded" } });
  assert.equal(table.consider(store.get("job_0003")), "remove");
  assert.deepEqual(table.ids, ["job_0002"]);
  store.upsert(job(4, "queued"));
  assert.equal(table.consider(store.get("job_0004")), null);
  store.apply({ type: "status", data: { job_id: "job_0004", status: "running" } });
  assert.equal(table.consider(store.get("job_0004")), "insert");
  assert.deepEqual(table.ids, ["job_0004", "job_0002"]);
});
