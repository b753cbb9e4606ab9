// A server-sent events client over fetch (EventSource cannot send Authorization): reads
// the streamed body with the SSE parser, and reconnects after a drop with Last-Event-ID
// set to the last id seen. No DOM; `open` is injected, so it runs under node too.

import { SseParser } from "./sse.js";

/** How long to wait before reconnect attempt `n` (0 = the first after a drop). */
export function backoffDelay(attempt, { base = 500, max = 15000, random = Math.random } = {}) {
  const exp = Math.min(max, base * 2 ** Math.max(0, attempt));
  // Full jitter on the upper half: never 0, never the same for every client.
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * States: "connecting", "live", "reconnecting", "ended" (the server said there is no
 * more: a 204, or `until` matched), "stopped" (by `stop()`), "failed" (an answer that
 * retrying will not fix, like 401 or 404).
 */
export class EventStream {
  /**
   * @param {object} options
   * @param {(lastEventId: string, signal: AbortSignal) => Promise<Response>} options.open
   *   opens the stream; throws an ApiError for an error answer
   * @param {(event: {type: string, data: any, id: string}) => void} options.onEvent
   *   data is the parsed JSON (or the raw text when it is not JSON)
   * @param {(state: string, info?: any) => void} [options.onState]
   * @param {(event) => boolean} [options.until] ends the stream after this event
   * @param {(error) => string|null} [options.onGone] a 410: return the id to resume
   *   from ("" for none), or null to fail
   * @param {string} [options.lastEventId] where to start
   * @param {number} [options.idleMs] no byte for this long means dead (three heartbeats)
   */
  constructor({ open, onEvent, onState, until, onGone, lastEventId = "", idleMs = 45000,
    backoff = backoffDelay, setTimer = (fn, ms) => setTimeout(fn, ms), clearTimer = (t) => clearTimeout(t) }) {
    this.open = open;
    this.onEvent = onEvent;
    this.onStateChange = onState ?? (() => {});
    this.until = until ?? null;
    this.onGone = onGone ?? null;
    this.idleMs = idleMs;
    this.backoff = backoff;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.state = "idle";
    this.connections = 0;
    this.failures = 0;
    this.parser = new SseParser((e) => this._event(e));
    this.parser.lastEventId = lastEventId;
    this._controller = null;
    this._timer = null;
    this._done = false;
  }

  get lastEventId() {
    return this.parser.lastEventId;
  }

  start() {
    if (this.state !== "idle") return this;
    this._connect();
    return this;
  }

  stop() {
    this._finish("stopped");
  }

  _setState(state, info) {
    if (this.state === state && info === undefined) return;
    this.state = state;
    this.onStateChange(state, info);
  }

  _finish(state, info) {
    if (this._done) return;
    this._done = true;
    if (this._timer) this.clearTimer(this._timer);
    this._timer = null;
    if (this._controller) this._controller.abort();
    this._setState(state, info);
  }

  _event(raw) {
    if (this._done) return;
    let data = raw.data;
    try {
      data = JSON.parse(raw.data);
    } catch {
      // Not JSON: hand over the text.
    }
    const event = { type: raw.type, data, id: raw.lastEventId };
    this.onEvent(event);
    if (this.until && this.until(event)) this._finish("ended");
  }

  _schedule() {
    if (this._done) return;
    this._setState("reconnecting", { attempt: this.failures });
    const delay = this.backoff(this.failures);
    this.failures += 1;
    this._timer = this.setTimer(() => {
      this._timer = null;
      this._connect();
    }, delay);
  }

  async _connect() {
    if (this._done) return;
    if (this.state !== "reconnecting") this._setState("connecting");
    const controller = new AbortController();
    this._controller = controller;
    let idle = null;
    const touch = () => {
      if (idle) this.clearTimer(idle);
      idle = this.setTimer(() => controller.abort(new Error("idle")), this.idleMs);
    };
    let gotBytes = false;
    try {
      this.connections += 1;
      touch();
      const response = await this.open(this.parser.lastEventId, controller.signal);
      if (this._done) return;
      if (response.status === 204) {
        this._finish("ended");
        return;
      }
      this._setState("live");
      this.parser.reset();
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this._done) break;
        touch();
        if (value && value.length) {
          if (!gotBytes) {
            gotBytes = true;
            this.failures = 0;
          }
          this.parser.push(value);
        }
      }
      this.parser.end();
    } catch (error) {
      this.parser.end();
      if (this._done) return;
      if (error && error.name === "ApiError") {
        if (error.status === 410 && this.onGone) {
          const resume = this.onGone(error);
          if (resume !== null && resume !== undefined) {
            this.parser.lastEventId = resume;
            this.parser.reset();
            this._schedule();
            return;
          }
        }
        if (!error.retryable && error.status !== 0) {
          this._finish("failed", error);
          return;
        }
      }
    } finally {
      if (idle) this.clearTimer(idle);
      if (this._controller === controller) this._controller = null;
    }
    // The stream ended or broke: resume where it stopped.
    this._schedule();
  }
}
