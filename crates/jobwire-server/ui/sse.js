// An incremental text/event-stream parser, following the WHATWG HTML rules for
// server-sent events ("Parsing an event stream" and "Interpreting an event stream").
//
// Pure: no DOM, no network. Feed it the body of a response piece by piece — strings, or
// bytes (Uint8Array), which it decodes as UTF-8 itself — and it calls `onEvent` once per
// dispatched event. Pieces may split anything: a line ending (CR | LF | CRLF), a field
// name, a multi-byte character, the byte-order mark.

const BOM = "\uFEFF";

/**
 * @typedef {object} SseEvent
 * @property {string} type         the `event:` field, or "message"
 * @property {string} data         the `data:` lines, joined with "\n"
 * @property {string} lastEventId  the last event id as of this event (ids persist)
 */

export class SseParser {
  /**
   * @param {(event: SseEvent) => void} onEvent called for each dispatched event
   * @param {object} [options]
   * @param {(ms: number) => void} [options.onRetry] a valid `retry:` field was seen
   * @param {(text: string) => void} [options.onComment] a comment line (`:`) was seen
   */
  constructor(onEvent, options = {}) {
    this.onEvent = onEvent;
    this.onRetry = options.onRetry ?? null;
    this.onComment = options.onComment ?? null;
    /** The last event id string: what a reconnect sends as `Last-Event-ID`. */
    this.lastEventId = "";
    /** The reconnection time from the last valid `retry:` field, or null. */
    this.retry = null;
    this.reset();
  }

  /** Starts a new stream (a reconnect): keeps `lastEventId` and `retry`, forgets the rest. */
  reset() {
    this._decoder = null;
    this._line = "";
    this._skipLf = false;
    this._atStart = true;
    this._data = "";
    this._hasData = false;
    this._type = "";
    this._idBuffer = this.lastEventId;
  }

  /** Feeds the next piece of the stream: a string, or bytes to decode as UTF-8. */
  push(chunk) {
    if (typeof chunk !== "string") {
      // ignoreBOM: keep a BOM in the text, so that exactly one leading BOM is stripped
      // below whichever way the stream arrives.
      this._decoder ??= new TextDecoder("utf-8", { ignoreBOM: true });
      chunk = this._decoder.decode(chunk, { stream: true });
    }
    this._feed(chunk);
  }

  /**
   * The stream ended. Whatever was not followed by a blank line is discarded: an
   * incomplete event is never dispatched. Then the parser is ready for a new stream.
   */
  end() {
    if (this._decoder) this._feed(this._decoder.decode());
    this.reset();
  }

  _feed(text) {
    if (text.length === 0) return;
    if (this._atStart) {
      // The BOM, if any, is the stream's first character; wait until one is there.
      this._atStart = false;
      if (text.startsWith(BOM)) text = text.slice(1);
      if (text.length === 0) return;
    }
    let start = 0;
    if (this._skipLf) {
      // The previous piece ended with a CR: an LF here is the rest of that CRLF.
      this._skipLf = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    const n = text.length;
    let i = start;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 10 || c === 13) {
        const line = this._line + text.slice(start, i);
        this._line = "";
        if (c === 13) {
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 10) i += 1;
          } else {
            this._skipLf = true;
          }
        }
        i += 1;
        start = i;
        this._processLine(line);
      } else {
        i += 1;
      }
    }
    if (start < n) this._line += text.slice(start);
  }

  _processLine(line) {
    if (line.length === 0) {
      this._dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      if (this.onComment) this.onComment(line.slice(1));
      return;
    }
    const colon = line.indexOf(":");
    let field;
    let value;
    if (colon === -1) {
      field = line;
      value = "";
    } else {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32 /* space */) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this._type = value;
        break;
      case "data":
        this._data += value + "\n";
        this._hasData = true;
        break;
      case "id":
        if (!value.includes("\u0000")) this._idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) {
          this.retry = Number(value);
          if (this.onRetry) this.onRetry(this.retry);
        }
        break;
      default:
        // Unknown fields are ignored.
        break;
    }
  }

  _dispatch() {
    this.lastEventId = this._idBuffer;
    if (!this._hasData) {
      this._type = "";
      return;
    }
    let data = this._data;
    if (data.endsWith("\n")) data = data.slice(0, -1);
    const event = { type: this._type || "message", data, lastEventId: this.lastEventId };
    this._data = "";
    this._hasData = false;
    this._type = "";
    this.onEvent(event);
  }
}

/** Parses a whole stream at once (for tests and small bodies): the events, in order. */
export function parseAll(text) {
  const events = [];
  const parser = new SseParser((e) => events.push(e));
  parser.push(text);
  parser.end();
  return events;
}
