// What the page knows about jobs: every job it has read or heard of, the status counts,
// and the rows of the jobs table under its filters. Pure: no DOM, no network.

export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

/** Whether a job may move from status `from` to `to` (the lifecycle only goes forward). */
export function isForward(from, to) {
  if (!(to in RANK)) return false;
  if (!(from in RANK)) return true;
  return RANK[to] > RANK[from];
}

/** Newest first: by `created_at`, then by id (both sort as text). */
export function compareNewestFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  if (a.id !== b.id) return a.id < b.id ? 1 : -1;
  return 0;
}

/**
 * Merges what is known of a job with a newer read of it (an API answer or a `done`).
 * The lifecycle only goes forward, so an answer made before an event already applied
 * cannot move a job back.
 */
export function mergeJob(known, incoming) {
  if (!known) return { ...incoming };
  if (isForward(known.status, incoming.status)) return { ...known, ...incoming };
  if (known.status !== incoming.status) return known;
  const merged = { ...known, ...incoming };
  // Same status: keep the further progress of the two.
  const a = known.progress;
  const b = incoming.progress;
  if (a && (!b || (a.fraction ?? 0) > (b.fraction ?? 0))) merged.progress = a;
  return merged;
}

/** Whether a job passes the table's filters. */
export function matchesFilter(job, filter = {}) {
  if (filter.status && job.status !== filter.status) return false;
  if (filter.service && job.service !== filter.service && job.service_id !== filter.service) {
    return false;
  }
  for (const label of filter.labels ?? []) {
    const colon = label.indexOf(":");
    const key = label.slice(0, colon);
    const value = label.slice(colon + 1);
    if (!job.labels || job.labels[key] !== value) return false;
  }
  return true;
}

export class JobStore {
  constructor() {
    /** @type {Map<string, object>} */
    this.jobs = new Map();
    this.counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    this._listeners = new Set();
  }

  /** Calls `fn(job, previous)` after every change; returns the unsubscribe function. */
  subscribe(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  get(id) {
    return this.jobs.get(id);
  }

  has(id) {
    return this.jobs.has(id);
  }

  get total() {
    return this.jobs.size;
  }

  _count(status, delta) {
    if (status in this.counts) this.counts[status] += delta;
  }

  _set(job, previous) {
    this.jobs.set(job.id, job);
    if (!previous) this._count(job.status, 1);
    else if (previous.status !== job.status) {
      this._count(previous.status, -1);
      this._count(job.status, 1);
    }
    if (previous !== job) for (const fn of this._listeners) fn(job, previous);
  }

  /** Adds or merges a job read from the API (or a `done` event's job). */
  upsert(job) {
    if (!job || typeof job.id !== "string") return null;
    const previous = this.jobs.get(job.id);
    const merged = mergeJob(previous, job);
    if (merged !== previous) this._set(merged, previous);
    return merged;
  }

  /**
   * Applies one event of `/v1/events`. Returns "unknown" when it concerns a job this
   * store does not know (the caller reads it), else "applied" or "ignored".
   */
  apply(event) {
    const data = event.data;
    if (!data || typeof data !== "object") return "ignored";
    const id = data.job_id ?? data.id;
    if (typeof id !== "string") return "ignored";
    if (event.type === "done") {
      const { job_id: _omit, ...job } = data;
      this.upsert({ ...job, id });
      return "applied";
    }
    const known = this.jobs.get(id);
    if (!known) return event.type === "status" || event.type === "progress" ? "unknown" : "ignored";
    if (event.type === "status") {
      if (!isForward(known.status, data.status)) return "ignored";
      const now = event.at ?? null;
      const next = { ...known, status: data.status };
      if (data.status === "running" && !next.started_at && now) next.started_at = now;
      this._set(next, known);
      return "applied";
    }
    if (event.type === "progress") {
      if (TERMINAL.has(known.status)) return "ignored";
      const next = { ...known, progress: { fraction: data.fraction, message: data.message ?? null } };
      this._set(next, known);
      return "applied";
    }
    return "ignored";
  }
}

/**
 * The rows of the jobs table: the pages read so far under one filter, newest first,
 * plus the jobs that appeared since and match the filter. `lookup(id)` gives a row's
 * job (the store's).
 */
export class JobTable {
  constructor(filter = {}, lookup = () => undefined) {
    this.filter = filter;
    this.lookup = lookup;
    /** Row ids, newest first. */
    this.ids = [];
    this._set = new Set();
    this.nextCursor = null;
    /** The oldest job of the pages read: older jobs are on pages not read yet. */
    this._oldest = null;
    this.loaded = false;
  }

  /** Adds one page of the list (the API's order: newest first). */
  addPage(page) {
    for (const job of page.items) this._insert(job);
    const last = page.items[page.items.length - 1];
    if (last && (!this._oldest || compareNewestFirst(last, this._oldest) > 0)) this._oldest = last;
    this.nextCursor = page.next_cursor ?? null;
    this.loaded = true;
  }

  /** Where `job` goes among the rows: after every row newer than it. */
  _position(job) {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const row = this.lookup(this.ids[mid]);
      if (row && compareNewestFirst(row, job) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  _insert(job) {
    if (this._set.has(job.id)) return -1;
    const at = this._position(job);
    this.ids.splice(at, 0, job.id);
    this._set.add(job.id);
    return at;
  }

  has(id) {
    return this._set.has(id);
  }

  /** The row after which the row of `id` stands (null: it is first). */
  before(id) {
    const i = this.ids.indexOf(id);
    return i > 0 ? this.ids[i - 1] : null;
  }

  /**
   * A job changed or appeared. Returns "insert" (a new row), "remove" (a row that no
   * longer matches the filter), "update" (a row to redraw) or null (not a row).
   */
  consider(job) {
    const matches = matchesFilter(job, this.filter);
    if (this._set.has(job.id)) {
      if (matches) return "update";
      this.ids.splice(this.ids.indexOf(job.id), 1);
      this._set.delete(job.id);
      return "remove";
    }
    if (!matches || !this.loaded) return null;
    // Older than every row while more pages remain: it belongs to a page not read yet.
    if (this.nextCursor && this._oldest && compareNewestFirst(job, this._oldest) > 0) return null;
    this._insert(job);
    return "insert";
  }
}
