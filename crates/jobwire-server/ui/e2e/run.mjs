// Browser end-to-end tests of the jobwire dashboard (/ui), driving Debian's Chromium.
//
//   node crates/jobwire-server/ui/e2e/run.mjs            (after `npm ci` in this folder)
//
// Environment:
//   JOBWIRE_SERVER_BIN   the server binary (default target/debug/jobwire-server; a
//                        relative path is taken from the repository root)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//   JOBWIRE_UI_SHOTS     where screenshots go (default target/ui-screenshots)
//   JOBWIRE_UI_FROM_DISK=1  serve the dashboard's files from this folder (through
//                        e2e/ui-proxy.mjs, server started with --no-ui) instead of the
//                        copies compiled into the binary: for working on the files
//                        without rebuilding. Without it the compiled-in copies are tested.
//
// Starts its own servers on free loopback ports (in-memory stores), one of them with a
// fault that cuts the /v1/events stream after some bytes, and stops them at the end.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { EventSource } from "eventsource";
import { SseParser } from "../sse.js";
import { startUiProxy } from "./ui-proxy.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../../../..");
const BIN = path.resolve(REPO, process.env.JOBWIRE_SERVER_BIN || "target/debug/jobwire-server");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.resolve(REPO, process.env.JOBWIRE_UI_SHOTS || "target/ui-screenshots");
const TOKEN = "e2e-token-0123456789";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const servers = [];
let browser;
let main; // { api, ui, ... }
let logDir;

// ------------------------------------------------------------------------- helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function serverHasUiFlag() {
  const r = spawnSync(BIN, ["--help"], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run the server binary ${BIN}: ${r.error.message} (set JOBWIRE_SERVER_BIN)`);
  return /--ui\b/.test(`${r.stdout}${r.stderr}`);
}

/** Starts a server (in memory, own port) and, with JOBWIRE_UI_FROM_DISK=1, the UI proxy. */
const FROM_DISK = process.env.JOBWIRE_UI_FROM_DISK === "1";

async function startServer(name, extraArgs = []) {
  const port = await freePort();
  if (!serverHasUiFlag()) throw new Error(`${BIN} has no --ui: rebuild it`);
  const hasUi = !FROM_DISK;
  const args = ["--memory", "--addr", `127.0.0.1:${port}`, "--token", TOKEN, "--grace", "1", ...extraArgs];
  args.push(hasUi ? "--ui" : "--no-ui");
  const logFile = path.join(logDir, `${name}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, JOBWIRE_LOG: "warn" } });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const api = `http://127.0.0.1:${port}`;
  const server = { name, child, api, ui: api, logFile, proxy: null, viaProxy: !hasUi };
  servers.push(server);
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server ${name} exited with ${child.exitCode}; see ${logFile}`);
    try {
      const r = await fetch(`${api}/v1/health`);
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`server ${name} did not answer /v1/health; see ${logFile}`);
    await sleep(50);
  }
  if (!hasUi) {
    server.proxy = await startUiProxy({ upstream: api });
    server.ui = `http://127.0.0.1:${server.proxy.address().port}`;
  }
  return server;
}

async function stopServer(server) {
  server.proxy?.closeAllConnections?.();
  server.proxy?.close();
  if (server.child.exitCode !== null) return;
  const exited = new Promise((r) => server.child.once("exit", r));
  server.child.kill("SIGTERM");
  const t = setTimeout(() => server.child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(t);
}

/** A call to the API from node (not through the browser). */
async function call(server, method, pathname, body, headers = {}) {
  const r = await fetch(server.api + pathname, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${pathname}: ${r.status} ${text}`);
  return json;
}

const submit = (server, service, input, labels, headers) =>
  call(server, "POST", `/v1/services/${service}/jobs`, labels ? { input, labels } : { input }, headers);

async function waitFor(fn, { timeout = 15000, interval = 100, message = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(interval);
  }
}

/** A page whose console errors, page errors and CSP violations are collected. */
async function newPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const text = m.text();
    // Failed requests are part of some tests (a 401, a cut stream); the page handles them.
    if (/Failed to load resource|net::ERR_/.test(text)) return;
    page.problems.push(`console ${m.type()}: ${text}`);
  });
  return page;
}

function assertNoProblems(page) {
  assert.deepEqual(page.problems, [], "the page logged errors or CSP violations");
}

async function context(options = {}) {
  return browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, ...options });
}

/** A page already signed in (the token in sessionStorage, as the sign-in form leaves it). */
async function signedIn(server, options = {}) {
  const ctx = await context(options);
  await ctx.addInitScript((token) => {
    if (!sessionStorage.getItem("jobwire.token") && !sessionStorage.getItem("e2e.signedOut")) {
      sessionStorage.setItem("jobwire.token", token);
    }
  }, TOKEN);
  const page = await newPage(ctx);
  return { ctx, page };
}

async function open(page, server, hash = "#/jobs") {
  await page.goto(`${server.ui}/ui${hash}`);
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
}

const countOf = (page, status) =>
  page.$eval(`.count-${status} .count-value`, (el) => Number(el.textContent.replace(/[^0-9]/g, "")));

async function rowStatuses(page, ids) {
  return page.evaluate((ids) => ids.map((id) => document.querySelector(`tr[data-job-id="${id}"]`)?.dataset.status ?? null), ids);
}

// --------------------------------------------------------------------------- setup

before(async () => {
  logDir = await mkdtemp(path.join(os.tmpdir(), "jobwire-ui-e2e-"));
  await mkdir(SHOTS, { recursive: true });
  main = await startServer("main");
  if (main.viaProxy) {
    console.log(FROM_DISK
      ? "# note: JOBWIRE_UI_FROM_DISK=1: the dashboard's files are served from disk by e2e/ui-proxy.mjs"
      : `# note: ${BIN} has no --ui flag: the dashboard's files are served by e2e/ui-proxy.mjs in front of it`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  // A few jobs so the first table is not empty.
  await submit(main, "echo", { hello: "world" }, { team: "web" });
  await submit(main, "echo", { n: 2 }, { team: "web" });
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map(stopServer));
  await rm(logDir, { recursive: true, force: true }).catch(() => {});
  console.log(`# e2e took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

// --------------------------------------------------------------------------- tests

test("the /ui route serves the assets with the Content-Security-Policy", async () => {
  const index = await fetch(`${main.ui}/ui`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /^text\/html/);
  const csp = index.headers.get("content-security-policy") ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.match(await index.text(), /<script type="module" src="\/ui\/app\.js">/);
  for (const [file, type] of [["app.js", /javascript/], ["sse.js", /javascript/], ["style.css", /^text\/css/]]) {
    const r = await fetch(`${main.ui}/ui/${file}`);
    assert.equal(r.status, 200, file);
    assert.match(r.headers.get("content-type") ?? "", type, file);
  }
  const missing = await fetch(`${main.ui}/ui/nope.js`);
  assert.equal(missing.status, 404);
});

test("sign in with the token and see the jobs table; sign out forgets it", async () => {
  const ctx = await context();
  const page = await newPage(ctx);
  await page.goto(`${main.ui}/ui`);
  await page.getByLabel("API token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector(".jobs-table tbody tr", { timeout: 10000 });
  await page.waitForSelector('#conn[data-state="live"]');
  assert.equal(await page.locator(".jobs-table tbody tr").count(), 2);
  assert.equal(await page.locator("#conn").innerText(), "Live");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("jobwire.token")), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing in localStorage");
  assert.equal(await countOf(page, "succeeded"), 2);
  // After signing in, focus is on the page's heading.
  assert.equal(await page.evaluate(() => document.activeElement.tagName), "H1");
  // Keyboard: on a fresh load, the skip link is the first stop and moves focus to the heading.
  await page.reload();
  await page.waitForSelector(".jobs-table tbody tr");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "skip-link");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Jobs");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForSelector("#token");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("jobwire.token")), null);
  assertNoProblems(page);
  await ctx.close();
});

test("a wrong token shows the problem's title and detail, not a blank page", async () => {
  const ctx = await context();
  const page = await newPage(ctx);
  await page.goto(`${main.ui}/ui`);
  await page.getByLabel("API token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor({ timeout: 10000 });
  const text = await alert.innerText();
  assert.match(text, /Unauthorized/);
  assert.match(text, /the token is not valid/);
  assert.match(text, /unauthorized/, "the problem code");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("jobwire.token")), null);
  assert.equal(await page.getByLabel("API token").getAttribute("aria-invalid"), "true");
  // A stale token kept in the tab is refused the same way on load.
  await page.evaluate(() => sessionStorage.setItem("jobwire.token", "stale"));
  await page.reload();
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /Unauthorized/);
  assert.ok((await page.locator("main").innerText()).trim().length > 0);
  assertNoProblems(page);
  await ctx.close();
});

test("50 steps jobs submitted through the API move to succeeded, live", async () => {
  const { ctx, page } = await signedIn(main);
  await open(page, main);
  await page.waitForSelector(".jobs-table tbody tr");
  await page.evaluate(() => (window.__sameDocument = true));
  const before = await countOf(page, "succeeded");
  const jobs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    submit(main, "steps", { steps: 4, interval_ms: 250 }, { batch: "fifty", n: String(i) })));
  const ids = jobs.map((j) => j.id);
  // Rows appear without a reload, and move through running.
  let sawRunning = 0;
  await waitFor(async () => {
    const statuses = await rowStatuses(page, ids);
    sawRunning = Math.max(sawRunning, await countOf(page, "running"));
    return statuses.every((s) => s !== null);
  }, { message: "the 50 new rows", timeout: 10000, interval: 50 });
  await waitFor(async () => {
    sawRunning = Math.max(sawRunning, await countOf(page, "running"));
    const statuses = await rowStatuses(page, ids);
    return statuses.every((s) => s === "succeeded") && (await countOf(page, "succeeded")) === before + 50;
  }, { message: "50 succeeded rows and counts", timeout: 20000, interval: 100 });
  assert.ok(sawRunning > 0, "the running count moved while the jobs ran");
  assert.equal(await countOf(page, "running"), 0);
  assert.equal(await countOf(page, "queued"), 0);
  assert.ok(await page.evaluate(() => window.__sameDocument === true), "no reload happened");
  // The rows' progress bars are full, and the newest job is the first row.
  const first = await page.$eval(".jobs-table tbody tr", (tr) => tr.dataset.jobId);
  assert.ok(ids.includes(first));
  assert.equal(await page.locator('tr[data-status="succeeded"] [role="progressbar"][aria-valuenow="100"]').count() >= 50, true);
  // The chart counted them.
  await waitFor(async () => Number((await page.locator(".stat-value").first().innerText()).replace(/\D/g, "")) >= 50,
    { message: "the chart's finished count" });
  assertNoProblems(page);
  await ctx.close();
});

test("filters (status, service, label) and paging with next_cursor", async () => {
  const { ctx, page } = await signedIn(main);
  await open(page, main);
  await page.waitForSelector(".jobs-table tbody tr");
  const rows = () => page.locator(".jobs-table tbody tr").count();
  const total = (await call(main, "GET", "/v1/jobs?limit=1000")).items.length;
  assert.ok(total > 50);
  // The first page is the API's: 50 rows, and a next page.
  assert.equal(await rows(), 50);
  await page.getByRole("button", { name: "Load 50 more" }).click();
  await waitFor(async () => (await rows()) === total, { message: `all ${total} rows after loading more` });
  assert.equal(await page.getByRole("button", { name: "Load 50 more" }).isVisible(), false);
  // A label filter, typed in the form.
  await page.getByRole("textbox", { name: "Labels" }).fill("batch:fifty n:7");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForFunction(() => location.hash === "#/jobs?label=batch%3Afifty&label=n%3A7");
  await waitFor(async () => (await rows()) === 1, { message: "one row for batch:fifty n:7" });
  // A bad label is refused in the form, with no request.
  await page.getByRole("textbox", { name: "Labels" }).fill("nocolon");
  await page.getByRole("button", { name: "Apply" }).click();
  assert.match(await page.locator("#f-label-error").innerText(), /Not a key:value label: nocolon/);
  // Service and status, with a live change: a new echo job appears at the top.
  await page.evaluate(() => (location.hash = "#/jobs?status=succeeded&service=echo"));
  await waitFor(async () => (await rows()) === 2, { message: "the two echo jobs" });
  assert.equal(await page.locator('#f-service').inputValue(), "echo");
  assert.equal(await page.locator('.count[aria-current="true"] .count-label').innerText(), "Succeeded");
  const echo = await submit(main, "echo", { live: true });
  await waitFor(async () => (await page.$eval(".jobs-table tbody tr", (tr) => tr.dataset.jobId)) === echo.id, { message: "the new echo job first" });
  assert.equal(await rows(), 3);
  assertNoProblems(page);
  await ctx.close();
});

test("a running job's page shows its progress bar advance and its log lines appear", async () => {
  const job = await submit(main, "steps", { steps: 16, interval_ms: 250 }, { case: "watch" });
  const { ctx, page } = await signedIn(main);
  await open(page, main, `#/jobs/${job.id}`);
  await page.waitForSelector(".head-status .badge");
  const progress = () => page.$eval('.progress-card [role="progressbar"]', (el) => Number(el.getAttribute("aria-valuenow") ?? "0"));
  const lines = () => page.locator(".log li").count();
  const p1 = await waitFor(async () => { const p = await progress(); return p > 0 && p < 100 ? p : 0; }, { message: "some progress" });
  const n1 = await lines();
  await sleep(800);
  const p2 = await progress();
  const n2 = await lines();
  assert.ok(p2 > p1, `progress advanced: ${p1} -> ${p2}`);
  assert.ok(n2 > n1, `log lines appeared: ${n1} -> ${n2}`);
  assert.equal(await page.locator(".head-status .badge").innerText(), "running");
  await page.waitForFunction(() => document.querySelector(".head-status .badge")?.textContent === "succeeded", null, { timeout: 10000 });
  await waitFor(async () => (await lines()) === 16, { message: "16 log lines" });
  assert.equal(await page.locator(".log li").first().innerText(), "finished step 1 of 16");
  const done = await call(main, "GET", `/v1/jobs/${job.id}`);
  await waitFor(async () => (await page.locator(".chunks").innerText()) === done.output.text, { message: "the output chunks" });
  assert.equal(await progress(), 100);
  assert.match(await page.locator(".stream-state").innerText(), /every event was received/);
  assert.equal(await page.getByRole("button", { name: "Cancel job" }).isVisible(), false);
  assertNoProblems(page);
  await ctx.close();
});

test("cancel a job from its page, after confirming", async () => {
  const job = await submit(main, "sleep", { duration_seconds: 60 }, { case: "cancel" });
  const { ctx, page } = await signedIn(main);
  await open(page, main, `#/jobs/${job.id}`);
  const cancel = page.getByRole("button", { name: "Cancel job" });
  await cancel.waitFor();
  // Declining changes nothing.
  await cancel.click();
  const dialog = page.getByRole("dialog", { name: "Cancel this job?" });
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Keep it" }).click();
  await dialog.waitFor({ state: "hidden" });
  assert.equal((await call(main, "GET", `/v1/jobs/${job.id}`)).status, "running");
  // Confirming cancels it.
  await cancel.click();
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Cancel job" }).click();
  await page.waitForFunction(() => document.querySelector(".head-status .badge")?.textContent === "cancelled", null, { timeout: 10000 });
  assert.match(await page.locator(".alert-slot .alert").innerText(), /Job cancelled/);
  assert.equal((await call(main, "GET", `/v1/jobs/${job.id}`)).status, "cancelled");
  assert.equal(await cancel.isVisible(), false);
  assertNoProblems(page);
  await ctx.close();
});

test("submit a job from a service's form and land on its page", async () => {
  const { ctx, page } = await signedIn(main);
  await open(page, main, "#/services");
  const card = page.locator("#service-steps");
  await card.waitFor();
  assert.match(await card.locator("pre.json").innerText(), /"interval_ms"/, "the input schema is shown");
  const input = card.getByLabel("Input (JSON)");
  const send = card.getByRole("button", { name: "Submit job" });
  // Not JSON: refused before any request.
  await input.fill("{steps: 3");
  await send.click();
  await card.getByRole("alert").waitFor();
  assert.match(await card.getByRole("alert").innerText(), /not valid JSON/);
  // JSON the schema refuses: the server's 422 with each field error.
  await input.fill('{"steps": 0, "interval_ms": -1, "extra": true}');
  await send.click();
  await page.waitForFunction(() => /Unprocessable Entity/.test(document.querySelector("#service-steps .alert")?.textContent ?? ""));
  const problem = await card.getByRole("alert").innerText();
  assert.match(problem, /the input does not match the input schema of steps/);
  for (const pointer of ["/steps", "/interval_ms", "/extra"]) assert.ok(problem.includes(pointer), `${pointer} in ${problem}`);
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  // A good one: the job's page opens.
  await input.fill('{"steps": 3, "interval_ms": 50}');
  await card.getByLabel("Labels (optional)").fill("origin=form, team=ui");
  await send.click();
  await page.waitForFunction(() => /^#\/jobs\/job_/.test(location.hash), null, { timeout: 10000 });
  const id = decodeURIComponent((await page.evaluate(() => location.hash)).slice("#/jobs/".length));
  assert.equal(await page.locator("h1").innerText(), id);
  await page.waitForFunction(() => document.querySelector(".head-status .badge")?.textContent === "succeeded", null, { timeout: 10000 });
  const job = await call(main, "GET", `/v1/jobs/${id}`);
  assert.deepEqual(job.labels, { origin: "form", team: "ui" });
  assert.deepEqual(job.input, { steps: 3, interval_ms: 50 });
  assertNoProblems(page);
  await ctx.close();
});

test("the event stream is cut, and the table still catches up", async () => {
  const faulty = await startServer("faulty", ["--fault", "cut-body=1500:1:GET:/v1/events"]);
  const { ctx, page } = await signedIn(faulty);
  const streams = [];
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/v1/events") streams.push(r.headers()["last-event-id"] ?? "");
  });
  const states = [];
  await page.exposeFunction("__connState", (s) => states.push(s));
  await page.addInitScript(() => {
    new MutationObserver(() => window.__connState(document.querySelector("#conn")?.dataset.state)).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  });
  await open(page, faulty);
  await page.waitForSelector(".empty:not([hidden])");
  const first = await Promise.all(Array.from({ length: 5 }, () => submit(faulty, "steps", { steps: 3, interval_ms: 100 })));
  await waitFor(() => streams.length >= 2, { message: "the stream to be cut and reopened", timeout: 10000 });
  // Submitted after the cut.
  const second = await Promise.all(Array.from({ length: 5 }, () => submit(faulty, "steps", { steps: 3, interval_ms: 100 })));
  const ids = [...first, ...second].map((j) => j.id);
  await waitFor(async () => (await rowStatuses(page, ids)).every((s) => s === "succeeded") && (await countOf(page, "succeeded")) === 10,
    { message: "all 10 jobs succeeded in the table", timeout: 30000, interval: 100 });
  assert.ok(streams.length >= 2, `reconnected (${streams.length} connections)`);
  assert.ok(streams.slice(1).every((id) => /^\d+$/.test(id)), `every reconnect resumed with Last-Event-ID: ${JSON.stringify(streams)}`);
  assert.ok(states.includes("reconnecting"), `the indicator showed the reconnect: ${states.join(",")}`);
  assertNoProblems(page);
  await ctx.close();
  await stopServer(faulty);
});

test("screenshots: jobs, a job and the services, at 1280×800 and 390×844, light and dark", async () => {
  // Something to look at: running and failed jobs beside the succeeded ones.
  const watched = await submit(main, "steps", { steps: 400, interval_ms: 200 }, { team: "ml", env: "dev" });
  await submit(main, "sleep", { duration_seconds: 120 }, { team: "ml" });
  await submit(main, "fail", { message: "the model file is missing" }, { team: "ml" });
  await submit(main, "digest", { data: "jobwire", rounds: 2000 }, {});
  await sleep(1500);
  const written = [];
  for (const colorScheme of ["light", "dark"]) {
    for (const [width, height] of [[1280, 800], [390, 844]]) {
      const { ctx, page } = await signedIn(main, { viewport: { width, height }, colorScheme });
      const size = `${width}x${height}`;
      const shot = async (name) => {
        for (const full of [false, true]) {
          const file = path.join(SHOTS, `${name}-${size}-${colorScheme}${full ? "-full" : ""}.png`);
          await page.screenshot({ path: file, fullPage: full, animations: "disabled" });
          written.push(path.basename(file));
        }
      };
      await open(page, main, "#/jobs");
      await page.waitForSelector(".jobs-table tbody tr");
      await page.waitForSelector(".chart-pane svg");
      await page.waitForFunction(() => !/Counting/.test(document.querySelector(".counts-note")?.textContent ?? "Counting"));
      await page.waitForFunction(() => Number(document.querySelector(".stat-value")?.textContent.replace(/\D/g, "")) > 0);
      await sleep(300);
      await shot("jobs");
      await page.evaluate((id) => (location.hash = `#/jobs/${id}`), watched.id);
      await page.waitForFunction(() => document.querySelectorAll(".log li").length > 3, null, { timeout: 10000 });
      await sleep(300);
      await shot("job");
      await page.evaluate(() => (location.hash = "#/services"));
      await page.waitForSelector("#service-steps");
      await sleep(200);
      await shot("services");
      // The layout holds: nothing wider than the viewport.
      for (const hash of ["#/jobs", "#/services", `#/jobs/${watched.id}`]) {
        await page.evaluate((h) => (location.hash = h), hash);
        await sleep(400);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${hash} at ${size} is ${overflow}px wider than the viewport`);
      }
      assertNoProblems(page);
      await ctx.close();
    }
  }
  await writeFile(path.join(SHOTS, "index.txt"), `${written.join("\n")}\n`);
  console.log(`# screenshots in ${SHOTS}: ${written.filter((f) => !f.includes("-full")).join(", ")} (and -full variants)`);
});

test("a real EventSource on a finished job's stream sees every event once, then stops (204)", async () => {
  const job = await submit(main, "steps", { steps: 3, interval_ms: 20 }, { case: "eventsource" }, { Prefer: "wait=10" });
  assert.equal(job.status, "succeeded");
  // What the stream holds, read once with a plain fetch.
  const expected = [];
  const raw = await fetch(`${main.api}/v1/jobs/${job.id}/events`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const parser = new SseParser((e) => expected.push({ type: e.type, id: e.lastEventId, data: e.data }));
  parser.push(await raw.text());
  parser.end();
  assert.equal(expected.length, 13, "queued, running, 3 × (progress, log, output), succeeded, done");
  assert.equal(expected.at(-1).type, "done");

  const connections = [];
  const seen = [];
  const es = new EventSource(`${main.api}/v1/jobs/${job.id}/events`, {
    fetch: async (input, init) => {
      const record = { lastEventId: init.headers["Last-Event-ID"] ?? null, status: null };
      connections.push(record);
      const response = await fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } });
      record.status = response.status;
      return response;
    },
  });
  for (const type of ["status", "progress", "log", "output", "done", "message"]) {
    es.addEventListener(type, (e) => seen.push({ type, id: e.lastEventId, data: e.data }));
  }
  const errors = [];
  es.addEventListener("error", (e) => errors.push(e.code ?? e.message));
  try {
    // Every event, then the reconnect (the stream ended after done) answered 204.
    await waitFor(() => seen.length >= expected.length && connections.length >= 2 && connections[1].status !== null,
      { message: "the events and the reconnect", timeout: 8000, interval: 50 });
    // Long enough for more reconnects (the server asks for 1 s between them).
    await sleep(2500);
    assert.deepEqual(seen, expected, "every event exactly once, in order");
    assert.equal(new Set(seen.map((e) => e.id)).size, seen.length);
    assert.equal(connections[1].lastEventId, expected.at(-1).id, "the reconnect resumed after the done");
    assert.equal(connections[1].status, 204, `the reconnect after done is answered 204 No Content (got ${connections[1].status}; ${connections.length} connections)`);
    assert.equal(connections.length, 2, `no connection after the 204 (${connections.length} in all)`);
    assert.equal(es.readyState, EventSource.CLOSED);
  } finally {
    es.close();
  }
});
