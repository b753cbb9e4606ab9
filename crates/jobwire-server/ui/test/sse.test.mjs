// The SSE parser against the WHATWG rules, with every case fed at every chunk split.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SseParser, parseAll } from "../sse.js";

const encoder = new TextEncoder();

/** Runs `text` through a fresh parser in the given string pieces (then end()). */
function runPieces(pieces, options = {}) {
  const events = [];
  const comments = [];
  const retries = [];
  const parser = new SseParser((e) => events.push(e), {
    onComment: (c) => comments.push(c),
    onRetry: (r) => retries.push(r),
  });
  for (const p of pieces) parser.push(p);
  const beforeEnd = parser.lastEventId;
  if (!options.noEnd) parser.end();
  return { events, comments, retries, lastEventId: parser.lastEventId, beforeEnd, retry: parser.retry };
}

/** Every way to cut `text` into pieces at one or two points, one character at a time, and
 * the same with bytes (every one- and two-byte cut of its UTF-8, and byte by byte). */
function* splits(text) {
  yield { how: "whole", pieces: [text] };
  const n = text.length;
  for (let i = 0; i <= n; i++) yield { how: `split at ${i}`, pieces: [text.slice(0, i), text.slice(i)] };
  if (n <= 80) {
    for (let i = 1; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        yield { how: `split at ${i},${j}`, pieces: [text.slice(0, i), text.slice(i, j), text.slice(j)] };
      }
    }
  }
  yield { how: "UTF-16 unit by unit", pieces: text.split("") };
  const bytes = encoder.encode(text);
  for (let i = 0; i <= bytes.length; i++) yield { how: `bytes split at ${i}`, pieces: [bytes.slice(0, i), bytes.slice(i)] };
  yield { how: "byte by byte", pieces: Array.from(bytes, (b) => Uint8Array.of(b)) };
}

/** Asserts `check(result)` for every split of `text`. */
function everySplit(text, check) {
  let count = 0;
  for (const { how, pieces } of splits(text)) {
    const result = runPieces(pieces);
    try {
      check(result);
    } catch (error) {
      error.message = `${how} of ${JSON.stringify(text)}: ${error.message}`;
      throw error;
    }
    count += 1;
  }
  assert.ok(count > 3);
}

const simple = (events) => events.map((e) => [e.type, e.data, e.lastEventId]);

test("LF line endings", () => {
  everySplit("data: a\n\ndata: b\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "a", ""], ["message", "b", ""]]);
  });
});

test("CRLF line endings", () => {
  everySplit("data: a\r\n\r\ndata: b\r\n\r\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "a", ""], ["message", "b", ""]]);
  });
});

test("CR line endings", () => {
  everySplit("data: a\r\rdata: b\r\r", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "a", ""], ["message", "b", ""]]);
  });
});

test("mixed line endings, a CR then LF split apart is one line end", () => {
  everySplit("data: a\r\ndata: b\rdata: c\n\r\nevent: e\r\rdata: d\n\n", ({ events }) => {
    // "event: e" followed by an empty line (CR CR) dispatches nothing: no data.
    assert.deepEqual(simple(events), [["message", "a\nb\nc", ""], ["message", "d", ""]]);
  });
});

test("CR LF CR is two line ends (the CRLF and a CR)", () => {
  everySplit("data: x\r\n\rdata: y\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "x", ""], ["message", "y", ""]]);
  });
});

test("multi-line data is joined with LF; an empty data line adds an empty line", () => {
  everySplit("data: one\ndata: two\ndata\ndata:three\ndata: \n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "one\ntwo\n\nthree\n", ""]]);
  });
});

test("data: with no value dispatches an empty message", () => {
  everySplit("data\n\ndata:\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "", ""], ["message", "", ""]]);
  });
});

test("only one space after the colon is stripped; colons in the value stay", () => {
  everySplit("data:a\n\ndata:  b\n\ndata: c:d: e\n\n", ({ events }) => {
    assert.deepEqual(events.map((e) => e.data), ["a", " b", "c:d: e"]);
  });
});

test("a BOM at the start is stripped, even split across chunks", () => {
  everySplit("\uFEFFdata: x\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "x", ""]]);
  });
});

test("only the first BOM is stripped: a second one is part of the first field name", () => {
  everySplit("\uFEFF\uFEFFdata: x\n\ndata: y\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "y", ""]]);
  });
});

test("a BOM that is not at the start is data", () => {
  everySplit("data: \uFEFFx\n\n", ({ events }) => {
    assert.deepEqual(events.map((e) => e.data), ["\uFEFFx"]);
  });
});

test("event types apply to one event, then reset to message", () => {
  everySplit("event: status\ndata: 1\n\ndata: 2\n\nevent: x\n\ndata: 3\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["status", "1", ""], ["message", "2", ""], ["message", "3", ""]]);
  });
});

test("the last event id persists across events until changed; an empty id clears it", () => {
  everySplit("id: 1\ndata: a\n\ndata: b\n\nid: 3\nevent: x\ndata: c\n\nid\ndata: d\n\n", ({ events, lastEventId }) => {
    assert.deepEqual(simple(events), [
      ["message", "a", "1"], ["message", "b", "1"], ["x", "c", "3"], ["message", "d", ""],
    ]);
    assert.equal(lastEventId, "");
  });
});

test("an id is committed by a blank line even without data", () => {
  everySplit("id: 7\n\n", ({ events, lastEventId }) => {
    assert.deepEqual(events, []);
    assert.equal(lastEventId, "7");
  });
});

test("an id containing NUL is ignored", () => {
  everySplit("id: 1\n\nid: a\u0000b\ndata: z\n\n", ({ events, lastEventId }) => {
    assert.deepEqual(simple(events), [["message", "z", "1"]]);
    assert.equal(lastEventId, "1");
  });
});

test("retry takes only ASCII digits", () => {
  everySplit("retry: 1500\n\nretry: x\nretry: 12a\nretry:  7\nretry\ndata: a\n\n", ({ events, retries, retry }) => {
    assert.deepEqual(retries, [1500]);
    assert.equal(retry, 1500);
    assert.deepEqual(events.map((e) => e.data), ["a"]);
  });
  everySplit("retry: 1000\n\nretry:250\n", ({ retry }) => {
    assert.equal(retry, 250, "a retry field applies at once, blank line or not");
  });
});

test("comments are ignored (and reported)", () => {
  everySplit(": hello\ndata: a\n: keep-alive\n\n:\n\n", ({ events, comments }) => {
    assert.deepEqual(simple(events), [["message", "a", ""]]);
    assert.deepEqual(comments, [" hello", " keep-alive", ""]);
  });
});

test("unknown fields and lines without a colon are ignored", () => {
  everySplit("foo: bar\ndata: a\nbaz\nDATA: no\nData: no\n data: no\n\n", ({ events }) => {
    assert.deepEqual(simple(events), [["message", "a", ""]]);
  });
});

test("an event not ended by a blank line is never dispatched, and its id is not committed", () => {
  everySplit("id: 1\ndata: a\n\nid: 2\ndata: b\n", ({ events, lastEventId }) => {
    assert.deepEqual(simple(events), [["message", "a", "1"]]);
    assert.equal(lastEventId, "1");
  });
  everySplit("data: a\n\ndata: b", ({ events }) => {
    assert.deepEqual(events.map((e) => e.data), ["a"]);
  });
});

test("multi-byte characters survive any byte split", () => {
  everySplit("data: é€😀\n\n", ({ events }) => {
    assert.deepEqual(events.map((e) => e.data), ["é€😀"]);
  });
});

test("a jobwire stream, as the server writes it", () => {
  const text =
    "retry: 1000\n\n" +
    'id: 41\nevent: status\ndata: {"job_id":"job_1","status":"queued"}\n\n' +
    ": keep-alive\n\n" +
    'id: 43\nevent: progress\ndata: {"fraction":0.5,"job_id":"job_1","message":"step 1 of 2"}\n\n' +
    'id: 50\nevent: done\ndata: {"job_id":"job_1","id":"job_1","status":"succeeded"}\n\n';
  everySplit(text, ({ events, retry, lastEventId }) => {
    assert.equal(retry, 1000);
    assert.deepEqual(events.map((e) => [e.type, e.lastEventId, JSON.parse(e.data).job_id]), [
      ["status", "41", "job_1"], ["progress", "43", "job_1"], ["done", "50", "job_1"],
    ]);
    assert.equal(lastEventId, "50");
  });
});

test("reset() starts a new stream: the last event id and retry persist, partial input does not", () => {
  const events = [];
  const parser = new SseParser((e) => events.push(e));
  parser.push("retry: 300\nid: 9\ndata: a\n\nid: 10\ndata: part");
  parser.end();
  assert.equal(parser.lastEventId, "9");
  parser.push("\uFEFFdata: b\n\n");
  assert.deepEqual(simple(events), [["message", "a", "9"], ["message", "b", "9"]]);
  assert.equal(parser.retry, 300);
});

test("a pending CR is resolved by the next piece, and end() forgets it", () => {
  const events = [];
  const parser = new SseParser((e) => events.push(e));
  parser.push("data: a\r");
  parser.push("\n");
  parser.push("\r");
  assert.deepEqual(events.map((e) => e.data), ["a"]);
  parser.end();
  parser.push("\ndata: b\n\n");
  // After end(), a new stream: its leading LF is a blank line, not the rest of a CRLF.
  assert.deepEqual(events.map((e) => e.data), ["a", "b"]);
});

test("parseAll parses a whole body", () => {
  assert.deepEqual(simple(parseAll("data: x\n\nid: 2\nevent: y\ndata: z\n\n")), [["message", "x", ""], ["y", "z", "2"]]);
  assert.deepEqual(parseAll(""), []);
});
