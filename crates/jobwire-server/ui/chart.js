// The throughput chart: jobs finished per second over the last five minutes, and the
// p50/p99 of submit-to-done time (finished_at - created_at) per second. The windowing
// is pure and tested under node; the renderer returns SVG markup (no library, no inline
// styles: colours come from classes in style.css, so dark mode follows).

export const WINDOW_MS = 5 * 60 * 1000;
export const BUCKET_MS = 1000;

/** Milliseconds since the epoch of an RFC 3339 time, keeping microseconds; NaN if bad. */
export function parseTime(text) {
  if (typeof text !== "string") return NaN;
  const m = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return NaN;
  const whole = Date.parse(`${m[1].replace(/[t ]/, "T")}${m[3].toUpperCase()}`);
  if (Number.isNaN(whole)) return NaN;
  const fraction = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + fraction;
}

/**
 * The value at percentile `p` (0..100) of ascending `sorted` values, by the
 * nearest-rank method: the smallest value with at least p% of the values at or below
 * it. NaN for no values.
 */
export function percentile(sorted, p) {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1];
}

/** A sample of a finished job, or null when it lacks the times. */
export function sampleOfJob(job) {
  if (!job) return null;
  const finished = parseTime(job.finished_at);
  const created = parseTime(job.created_at);
  if (Number.isNaN(finished) || Number.isNaN(created)) return null;
  return { id: job.id ?? job.job_id ?? null, at: finished, latencyMs: Math.max(0, finished - created), status: job.status };
}

/**
 * Buckets samples by second over the window that ends with the second `now` falls in.
 * Bucket i covers [start + i*bucketMs, start + (i+1)*bucketMs); the last one holds `now`.
 * Samples outside [start, end) are left out.
 *
 * @returns {{start: number, end: number, bucketMs: number, buckets: Array<{start: number,
 *   count: number, rate: number, p50: number, p99: number}>, total: number, rate: number,
 *   peakRate: number, p50: number, p99: number}}
 */
export function windowBuckets(samples, now, { windowMs = WINDOW_MS, bucketMs = BUCKET_MS } = {}) {
  const n = Math.max(1, Math.round(windowMs / bucketMs));
  const end = Math.floor(now / bucketMs) * bucketMs + bucketMs;
  const start = end - n * bucketMs;
  const lists = Array.from({ length: n }, () => []);
  const all = [];
  for (const s of samples) {
    if (!(s.at >= start && s.at < end)) continue;
    const i = Math.floor((s.at - start) / bucketMs);
    lists[i].push(s.latencyMs);
    all.push(s.latencyMs);
  }
  const perSecond = 1000 / bucketMs;
  let peakRate = 0;
  const buckets = lists.map((values, i) => {
    values.sort((a, b) => a - b);
    const rate = values.length * perSecond;
    if (rate > peakRate) peakRate = rate;
    return {
      start: start + i * bucketMs,
      count: values.length,
      rate,
      p50: percentile(values, 50),
      p99: percentile(values, 99),
    };
  });
  all.sort((a, b) => a - b);
  return {
    start,
    end,
    bucketMs,
    buckets,
    total: all.length,
    rate: all.length / ((n * bucketMs) / 1000),
    peakRate,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
  };
}

/** The finished jobs the chart shows: one sample per job, older ones pruned. */
export class Throughput {
  constructor({ windowMs = WINDOW_MS } = {}) {
    this.windowMs = windowMs;
    /** @type {Map<string, {at: number, latencyMs: number}>} */
    this.samples = new Map();
  }

  /**
   * Records a finished job (a `done` event's job); returns whether it was new. With
   * `now`, a job that finished before the window is left out.
   */
  add(job, now) {
    const sample = sampleOfJob(job);
    if (!sample) return false;
    if (now !== undefined && sample.at < now - this.windowMs - BUCKET_MS) return false;
    const key = sample.id ?? `${sample.at}:${this.samples.size}`;
    if (this.samples.has(key)) return false;
    this.samples.set(key, sample);
    return true;
  }

  /** Forgets samples that fell out of the window ending at `now`. */
  prune(now) {
    const floor = now - this.windowMs - BUCKET_MS;
    for (const [key, s] of this.samples) if (s.at < floor) this.samples.delete(key);
  }

  model(now, options) {
    this.prune(now);
    return windowBuckets(this.samples.values(), now, { windowMs: this.windowMs, ...options });
  }
}

/** A "nice" axis maximum at or above `value` (1, 2, 2.5, 5 times a power of ten). */
export function niceMax(value) {
  if (!(value > 0) || !Number.isFinite(value)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** A latency for people: "850 ms", "4.2 s", "3.1 min". */
export function formatMs(ms) {
  if (!Number.isFinite(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** A rate for people: "0", "0.4", "12", "1.2k". */
export function formatRate(rate) {
  if (!Number.isFinite(rate) || rate === 0) return "0";
  if (rate < 10) return rate.toFixed(rate < 1 ? 2 : 1).replace(/\.0+$/, "");
  if (rate < 1000) return String(Math.round(rate));
  return `${(rate / 1000).toFixed(1)}k`;
}

const escapeXml = (s) =>
  String(s).replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]);

const num = (x) => (Math.round(x * 10) / 10).toString();

/** The SVG path of a series, broken where a bucket has no value. */
export function linePath(points) {
  let d = "";
  let pen = false;
  for (const p of points) {
    if (p === null || !Number.isFinite(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${num(p.x)} ${num(p.y)}`;
    pen = true;
  }
  return d;
}

/** The chart's one-line summary, for people and screen readers. */
export function chartSummary(model) {
  const minutes = Math.round((model.end - model.start) / 60000);
  return `${model.total} ${model.total === 1 ? "job" : "jobs"} finished in the last ${minutes} minutes, ` +
    `peak ${formatRate(model.peakRate)} per second; submit to done p50 ${formatMs(model.p50)}, p99 ${formatMs(model.p99)}.`;
}

/**
 * One pane of the chart as SVG markup, over the window's time axis: `"rate"` draws
 * finished jobs per second (bars), `"latency"` the p50 (line) and p99 (dashed line) of
 * submit-to-done time per second.
 * @param {ReturnType<typeof windowBuckets>} model
 * @param {"rate"|"latency"} kind
 * @param {{width?: number, height?: number}} [options]
 */
export function renderPaneSvg(model, kind, { width = 560, height = 170 } = {}) {
  width = Math.max(200, Math.round(width));
  height = Math.max(90, Math.round(height));
  const padL = 46;
  const padR = 8;
  const padT = 26;
  const axisH = 20;
  const plotW = width - padL - padR;
  const plotH = height - padT - axisH;
  const top = padT;
  const bottom = top + plotH;
  const n = model.buckets.length;
  const bw = plotW / n;
  const span = model.end - model.start;

  let max;
  if (kind === "rate") max = niceMax(model.peakRate);
  else {
    let m = 0;
    for (const b of model.buckets) if (Number.isFinite(b.p99) && b.p99 > m) m = b.p99;
    max = niceMax(m);
  }
  const label = kind === "rate" ? "Finished per second" : "Submit → done, p50 and p99";
  const aria = kind === "rate"
    ? `Jobs finished per second over the last ${Math.round(span / 60000)} minutes: ${model.total} in all, peak ${formatRate(model.peakRate)} per second.`
    : `Submit to done time per second over the last ${Math.round(span / 60000)} minutes: p50 ${formatMs(model.p50)}, p99 ${formatMs(model.p99)}.`;

  const parts = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-${kind}" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(aria)}">`,
  );
  parts.push(`<title>${escapeXml(aria)}</title>`);
  parts.push(`<text class="chart-label" x="0" y="12">${escapeXml(label)}</text>`);
  const fmt = kind === "rate" ? (v) => formatRate(v) : (v) => (v === 0 ? "0" : formatMs(v));
  for (const f of [0, 0.5, 1]) {
    const y = bottom - f * plotH;
    parts.push(`<line class="chart-grid" x1="${padL}" x2="${padL + plotW}" y1="${num(y)}" y2="${num(y)}"/>`);
    parts.push(`<text class="chart-tick" x="${padL - 6}" y="${num(y + 4)}" text-anchor="end">${escapeXml(fmt(max * f))}</text>`);
  }

  if (kind === "rate") {
    parts.push(`<g class="chart-bars">`);
    model.buckets.forEach((b, i) => {
      if (b.count === 0) return;
      const h = Math.max(1.5, (b.rate / max) * plotH);
      const x = padL + i * bw;
      parts.push(`<rect x="${num(x)}" y="${num(bottom - h)}" width="${num(Math.max(1, bw - (bw > 3 ? 1 : 0)))}" height="${num(h)}"/>`);
    });
    parts.push(`</g>`);
  } else {
    const series = (key) =>
      model.buckets.map((b, i) =>
        Number.isFinite(b[key]) ? { x: padL + (i + 0.5) * bw, y: bottom - (b[key] / max) * plotH } : null,
      );
    for (const [key, cls] of [["p99", "chart-p99"], ["p50", "chart-p50"]]) {
      const points = series(key);
      parts.push(`<path class="${cls}" d="${linePath(points)}"/>`);
      // A value with no neighbour draws no line: mark each one that stands alone.
      points.forEach((p, i) => {
        if (p && !points[i - 1] && !points[i + 1]) {
          parts.push(`<circle class="chart-dot-${key}" cx="${num(p.x)}" cy="${num(p.y)}" r="2"/>`);
        }
      });
    }
  }

  // Time axis: whole minutes before now; short labels when narrow.
  const minutes = Math.round(span / 60000);
  const short = plotW < 420;
  for (let m = minutes; m >= 0; m -= 1) {
    const x = padL + plotW - (m * 60000 * plotW) / span;
    const anchor = m === minutes ? "start" : m === 0 ? "end" : "middle";
    parts.push(`<line class="chart-axis" x1="${num(x)}" x2="${num(x)}" y1="${bottom}" y2="${bottom + 4}"/>`);
    const text = m === 0 ? "now" : short ? `−${m}m` : `−${m} min`;
    parts.push(`<text class="chart-tick" x="${num(x)}" y="${bottom + 16}" text-anchor="${anchor}">${text}</text>`);
  }
  parts.push(`<line class="chart-axis" x1="${padL}" x2="${padL + plotW}" y1="${bottom}" y2="${bottom}"/>`);
  parts.push(`</svg>`);
  return parts.join("");
}
