// The fetch wrapper: the bearer token, problem+json errors, query strings.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createApi, ApiError, errorFromResponse, problemForStatus, jobsQuery, parseLabelFilter, parseLabelsInput,
} from "../api.js";

function fakeFetch(answer) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init });
    return typeof answer === "function" ? answer(url, init) : answer.clone();
  };
  fn.calls = calls;
  return fn;
}

const problem = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/problem+json", ...headers } });

test("requests carry the bearer token and JSON", async () => {
  const fetch = fakeFetch(() => new Response(JSON.stringify({ id: "job_1" }), { status: 202, headers: { "content-type": "application/json" } }));
  const api = createApi({ token: "t0k", fetch, baseUrl: "http://x" });
  const job = await api.submit("steps", { steps: 1, interval_ms: 0 }, { team: "ml" });
  assert.equal(job.id, "job_1");
  const { url, init } = fetch.calls[0];
  assert.equal(url, "http://x/v1/services/steps/jobs");
  assert.equal(init.method, "POST");
  assert.equal(init.headers.Authorization, "Bearer t0k");
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(init.body), { input: { steps: 1, interval_ms: 0 }, labels: { team: "ml" } });
  await api.submit("echo", null);
  assert.deepEqual(JSON.parse(fetch.calls[1].init.body), { input: null });
  await api.cancelJob("job_1");
  assert.equal(fetch.calls[2].url, "http://x/v1/jobs/job_1/cancel");
  assert.equal(fetch.calls[2].init.body, undefined);
});

test("a problem+json answer becomes an ApiError with its members", async () => {
  const body = {
    type: "https://jobwire.dev/problems/validation_failed", title: "Unprocessable Entity", status: 422,
    detail: "the input does not match the input schema of sleep", code: "validation_failed", retryable: false,
    request_id: "req_1", errors: [{ pointer: "/duration_seconds", message: "must be a number" }],
  };
  const api = createApi({ token: "t", fetch: fakeFetch(problem(422, body)) });
  await assert.rejects(api.submit("sleep", {}), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.name, "ApiError");
    assert.equal(error.status, 422);
    assert.equal(error.title, "Unprocessable Entity");
    assert.equal(error.detail, body.detail);
    assert.equal(error.code, "validation_failed");
    assert.equal(error.requestId, "req_1");
    assert.deepEqual(error.errors, body.errors);
    assert.equal(error.retryable, false);
    return true;
  });
});

test("a 401 keeps the server's title and detail", async () => {
  const api = createApi({
    token: "bad",
    fetch: fakeFetch(problem(401, { title: "Unauthorized", status: 401, detail: "the token is not valid", code: "unauthorized" })),
  });
  await assert.rejects(api.listJobs(), { status: 401, title: "Unauthorized", detail: "the token is not valid", code: "unauthorized" });
});

test("an error answer without a problem body maps by its status", async () => {
  const e1 = await errorFromResponse(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway", headers: { "content-type": "text/html" } }));
  assert.equal(e1.status, 502);
  assert.equal(e1.title, "Bad Gateway");
  assert.equal(e1.code, "internal");
  assert.equal(e1.retryable, true);
  const e2 = await errorFromResponse(new Response("", { status: 418 }));
  assert.equal(e2.code, "bad_request");
  assert.equal(e2.title, "HTTP 418");
  assert.equal(problemForStatus(429).code, "rate_limited");
  assert.equal(problemForStatus(404).title, "Not Found");
});

test("no answer at all is a network ApiError (status 0); an abort stays an abort", async () => {
  const api = createApi({ token: "t", fetch: async () => { throw new TypeError("fetch failed"); } });
  await assert.rejects(api.getJob("job_1"), (e) => e instanceof ApiError && e.status === 0 && e.code === "network");
  const aborting = createApi({ token: "t", fetch: async () => { throw new DOMException("aborted", "AbortError"); } });
  await assert.rejects(aborting.getJob("job_1"), { name: "AbortError" });
});

test("event streams: Last-Event-ID when resuming, 204 passes, errors throw", async () => {
  const fetch = fakeFetch((url, init) => (init.headers["Last-Event-ID"] === "99" ? new Response(null, { status: 204 }) : new Response("retry: 1000\n\n", { status: 200, headers: { "content-type": "text/event-stream" } })));
  const api = createApi({ token: "t", fetch });
  const first = await api.openStream("/v1/jobs/job_1/events");
  assert.equal(first.status, 200);
  assert.ok(!("Last-Event-ID" in fetch.calls[0].init.headers));
  assert.equal(fetch.calls[0].init.headers.Accept, "text/event-stream");
  const again = await api.openStream("/v1/jobs/job_1/events", { lastEventId: "99" });
  assert.equal(again.status, 204);
  const failing = createApi({ token: "t", fetch: fakeFetch(problem(410, { title: "Gone", status: 410, code: "gone" })) });
  await assert.rejects(failing.openStream("/v1/events", { lastEventId: "5" }), { status: 410, code: "gone" });
});

test("job list query strings", () => {
  assert.equal(jobsQuery({}), "");
  assert.equal(
    jobsQuery({ status: "running", service: "steps", labels: ["team:ml", "env:prod"], limit: 50, cursor: "abc" }),
    "?service=steps&status=running&label=team%3Aml&label=env%3Aprod&limit=50&cursor=abc",
  );
  assert.equal(jobsQuery({ status: "", service: "", labels: [], cursor: null, limit: 1000 }), "?limit=1000");
});

test("label filters and label inputs typed by people", () => {
  assert.deepEqual(parseLabelFilter("team:ml, env:prod  url:http://x"), { labels: ["team:ml", "env:prod", "url:http://x"], invalid: [] });
  assert.deepEqual(parseLabelFilter(":x nokey"), { labels: [], invalid: [":x", "nokey"] });
  assert.deepEqual(parseLabelFilter(""), { labels: [], invalid: [] });
  assert.deepEqual(parseLabelsInput("team=ml, env: prod\nnote=a=b"), { labels: { team: "ml", env: "prod", note: "a=b" }, invalid: [] });
  assert.deepEqual(parseLabelsInput("oops, =x"), { labels: {}, invalid: ["oops", "=x"] });
});

test("allServices walks every page", async () => {
  const pages = {
    "": { items: [{ name: "a" }], next_cursor: "c2" },
    c2: { items: [{ name: "b" }], next_cursor: null },
  };
  const fetch = fakeFetch((url) => {
    const cursor = new URL(url, "http://x").searchParams.get("cursor") ?? "";
    return new Response(JSON.stringify(pages[cursor]), { status: 200 });
  });
  const api = createApi({ token: "t", fetch });
  assert.deepEqual((await api.allServices()).map((s) => s.name), ["a", "b"]);
});
