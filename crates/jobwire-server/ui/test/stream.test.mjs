// The reconnecting event stream client, against scripted answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventStream, backoffDelay } from "../stream.js";
import { ApiError } from "../api.js";

/** A streamed body that sends `pieces`, then ends, or breaks if `fail`. */
function body(pieces, { fail = false } = {}) {
  const enc = new TextEncoder();
  const queue = [...pieces];
  // Pulled one piece at a time: an error() would drop whatever is still queued.
  return new ReadableStream({
    pull(controller) {
      if (queue.length) controller.enqueue(enc.encode(queue.shift()));
      else if (fail) controller.error(new TypeError("network error"));
      else controller.close();
    },
  }, { highWaterMark: 0 });
}

function stream(pieces, options) {
  return new Response(body(pieces, options), { status: 200, headers: { "content-type": "text/event-stream" } });
}

function run(answers, options = {}) {
  const opened = [];
  const events = [];
  const states = [];
  return new Promise((resolve) => {
    const es = new EventStream({
      open: async (lastEventId) => {
        opened.push(lastEventId);
        const next = answers.shift();
        if (!next) return new Promise(() => {}); // hang: the test ends it
        if (next instanceof Error) throw next;
        return next;
      },
      onEvent: (e) => events.push(e),
      onState: (state, info) => {
        states.push(state);
        if (["ended", "failed", "stopped"].includes(state)) resolve({ opened, events, states, info, es });
        if (options.stopWhen?.({ opened, events, states })) es.stop();
      },
      backoff: () => 1,
      ...options.stream,
    });
    es.start();
  });
}

test("resumes after a drop with the last id seen, until the server answers 204", async () => {
  const { opened, events, states } = await run([
    stream(["retry: 1000\n\nid: 1\nevent: status\ndata: {\"job_id\":\"j\",\"status\":\"queued\"}\n\nid: 2\nevent: lo"], { fail: true }),
    stream(["retry: 1000\n\nid: 2\nevent: log\ndata: {\"job_id\":\"j\",\"line\":\"x\"}\n\n"]),
    new Response(null, { status: 204 }),
  ]);
  assert.deepEqual(opened, ["", "1", "2"]);
  assert.deepEqual(events.map((e) => [e.id, e.type]), [["1", "status"], ["2", "log"]]);
  assert.deepEqual(events[1].data, { job_id: "j", line: "x" });
  assert.deepEqual(states, ["connecting", "live", "reconnecting", "live", "reconnecting", "ended"]);
});

test("until() ends the stream after the done event, with no reconnect", async () => {
  const { opened, events, states } = await run([
    stream(["id: 5\nevent: done\ndata: {\"job_id\":\"j\"}\n\n"]),
    stream(["id: 6\nevent: status\ndata: {}\n\n"]),
  ], { stream: { until: (e) => e.type === "done" } });
  assert.deepEqual(opened, [""]);
  assert.deepEqual(events.map((e) => e.type), ["done"]);
  assert.equal(states.at(-1), "ended");
});

test("a 401 fails for good; a 503 or a network error is retried", async () => {
  const unauthorized = new ApiError({ title: "Unauthorized", status: 401, code: "unauthorized" });
  const { opened, states, info } = await run([
    new ApiError({ title: "Service Unavailable", status: 503, code: "unavailable", retryable: true }),
    new ApiError({ title: "Network error", status: 0, code: "network", retryable: true }),
    unauthorized,
  ]);
  assert.equal(opened.length, 3);
  assert.equal(states.at(-1), "failed");
  assert.equal(info, unauthorized);
});

test("a 410 asks where to resume", async () => {
  let asked = 0;
  const { opened } = await run([
    new ApiError({ title: "Gone", status: 410, code: "gone" }),
    new Response(null, { status: 204 }),
  ], { stream: { lastEventId: "7", onGone: () => { asked += 1; return ""; } } });
  assert.equal(asked, 1);
  assert.deepEqual(opened, ["7", ""]);
});

test("a text payload that is not JSON is handed over as text; stop() stops", async () => {
  const { events, states } = await run([stream(["data: hello\n\n"])], {
    stopWhen: ({ events }) => events.length === 1,
  });
  assert.equal(events[0].data, "hello");
  assert.equal(events[0].type, "message");
  assert.equal(states.at(-1), "stopped");
});

test("backoff grows, is jittered and capped", () => {
  assert.equal(backoffDelay(0, { random: () => 0 }), 250);
  assert.equal(backoffDelay(0, { random: () => 1 }), 500);
  assert.equal(backoffDelay(3, { random: () => 1 }), 4000);
  assert.equal(backoffDelay(20, { random: () => 1 }), 15000);
  assert.ok(backoffDelay(20, { random: () => 0 }) >= 7500);
});
