// graphile-worker in figure 3's closed loop: CLIENTS loops, each adds an `echo` job and
// awaits its `job:success` before adding the next; worker concurrency CONCURRENCY, pool
// POOL. Warms up WARMUP s, then measures SECONDS s and prints one JSON line:
// {"jobs_per_s", "p50_ms", "p99_ms", "jobs", "errors"}.
// Environment: DATABASE_URL (required), SECONDS, WARMUP, CLIENTS, CONCURRENCY, POOL.
"use strict";
const { run, Logger } = require("graphile-worker");

const env = (name, fallback) => Number(process.env[name] ?? fallback);
const seconds = env("SECONDS", 3);
const warmup = env("WARMUP", 1);
const clients = env("CLIENTS", 64);
const concurrency = env("CONCURRENCY", 64);
const pool = env("POOL", 20);

// Errors only: graphile-worker logs every job at info level otherwise.
const logger = new Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

async function main() {
  // A stuck run (a database that stopped answering) fails instead of hanging the suite.
  setTimeout(() => {
    console.error("the closed loop did not finish in time");
    process.exit(1);
  }, (warmup + seconds + 60) * 1000).unref();
  const runner = await run({
    connectionString: process.env.DATABASE_URL,
    concurrency,
    maxPoolSize: pool,
    noHandleSignals: true,
    logger,
    taskList: { echo: async (payload) => payload },
  });
  // Job id -> the waiting client's wake-up; ids that ended before their client waited.
  const waiting = new Map();
  const ended = new Map();
  const end = (job, ok) => {
    const id = String(job.id);
    const wake = waiting.get(id);
    if (wake) {
      waiting.delete(id);
      wake(ok);
    } else {
      ended.set(id, ok);
    }
  };
  runner.events.on("job:success", ({ job }) => end(job, true));
  runner.events.on("job:failed", ({ job }) => end(job, false));

  let errors = 0;
  const loop = async (until, latencies) => {
    while (performance.now() < until) {
      const started = performance.now();
      const job = await runner.addJob("echo", { n: 1 });
      const id = String(job.id);
      let ok;
      if (ended.has(id)) {
        ok = ended.get(id);
        ended.delete(id);
      } else {
        ok = await new Promise((resolve) => waiting.set(id, resolve));
      }
      if (!ok) errors += 1;
      latencies.push(performance.now() - started);
    }
  };
  const phase = async (s) => {
    const latencies = [];
    const started = performance.now();
    const until = started + s * 1000;
    await Promise.all(Array.from({ length: clients }, () => loop(until, latencies)));
    return { latencies, elapsed: (performance.now() - started) / 1000 };
  };
  await phase(warmup);
  errors = 0;
  const { latencies, elapsed } = await phase(seconds);
  latencies.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      jobs_per_s: latencies.length / elapsed,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      jobs: latencies.length,
      errors,
    })
  );
  await runner.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
