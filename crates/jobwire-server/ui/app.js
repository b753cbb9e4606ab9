// The jobwire dashboard: sign-in, the jobs table, one job, the services. Entry module of
// /ui; the pure logic lives in api.js, sse.js, stream.js, store.js, chart.js, format.js.

import { createApi, parseLabelFilter, parseLabelsInput } from "./api.js";
import { EventStream } from "./stream.js";
import { JobStore, JobTable, STATUSES, TERMINAL } from "./store.js";
import { Throughput, renderPaneSvg, chartSummary, formatMs, formatRate, parseTime } from "./chart.js";
import { formatDuration, formatCount, exampleFor, BUILTIN_EXAMPLES } from "./format.js";
import {
  h, replaceChildren, badge, setBadge, progressBar, setProgress, timeAgo, timeExact,
  refreshTimes, jsonBlock, labelChips, problemAlert, notice,
} from "./views.js";

const TOKEN_KEY = "jobwire.token";
const PAGE_SIZE = 50;
const COUNT_PAGE = 1000;
/** At most this many pages of 1000 are read to count jobs (the in-memory store's cap). */
const MAX_COUNT_PAGES = 100;
const FOLD_OVER = 2000;

const $ = (selector, root = document) => root.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The signed-in state: null when signed out. */
let session = null;
/** The view on screen: {title, onJob?, onEvent?, tick?, resize?, destroy?}. */
let view = null;
let clockSkew = 0;
let ticks = 0;

// ---------------------------------------------------------------------------- shell

function boot() {
  $("#skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const main = $("#main");
    const heading = $("h1", main);
    (heading ?? main).focus();
  });
  $("#signout").addEventListener("click", () => signOut(null, { byUser: true }));
  window.addEventListener("hashchange", () => route({ focus: true }));
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => view?.resize?.(), 100);
  });
  setInterval(tick, 1000);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token, { restoring: true });
  else showSignIn();
}

function tick() {
  ticks += 1;
  const now = Date.now();
  view?.tick?.(now);
  if (ticks % 5 === 0) refreshTimes($("#main"), now);
}

/** The server's clock, roughly, from the Date header: the chart's "now" follows it. */
function noteClock(response) {
  const date = response.headers.get("date");
  if (!date) return;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return;
  const skew = server - Date.now();
  // Date has whole seconds: only a clearly different clock is worth following.
  clockSkew = Math.abs(skew) > 2000 ? skew : 0;
}

const serverNow = () => Date.now() + clockSkew;

const CONN_TEXT = {
  offline: "Offline",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  failed: "Disconnected",
  stopped: "Offline",
  ended: "Offline",
};

function setConn(state) {
  const el = $("#conn");
  if (el.dataset.state === state) return;
  el.dataset.state = state;
  $(".conn-text", el).textContent = CONN_TEXT[state] ?? state;
  el.title = state === "live" ? "Following the event stream" : CONN_TEXT[state] ?? state;
}

/** Shows a message in the page-wide alert region; it goes away after `ms` (0: stays). */
function flash(node, ms = 6000) {
  const region = $("#alerts");
  const item = h("div", { class: "alerts-item" }, node,
    h("button", { class: "btn btn-ghost btn-small alerts-close", type: "button", "aria-label": "Dismiss", on: { click: () => item.remove() } }, "×"));
  region.append(item);
  if (ms) setTimeout(() => item.remove(), ms);
  return item;
}

/** Handles a failed request of a view: a 401 signs out; else the problem is shown in `slot`. */
function showError(error, slot, options) {
  if (error?.status === 401) {
    signOut(error);
    return;
  }
  if (error?.name === "AbortError") return;
  if (slot) replaceChildren(slot, problemAlert(error, options));
  else flash(problemAlert(error, options), 10000);
}

// ------------------------------------------------------------------------- sign-in

function showSignIn(error = null) {
  stopView();
  document.body.dataset.auth = "out";
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  setConn("offline");
  document.title = "Sign in · jobwire";
  const slot = h("div", { class: "alert-slot", id: "signin-alert" }, error ? problemAlert(error) : null);
  const input = h("input", {
    id: "token", name: "token", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "token-help",
  });
  const button = h("button", { class: "btn btn-primary", type: "submit" }, "Sign in");
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "signin-title" },
    h("div", { class: "field" },
      h("label", { for: "token" }, "API token"),
      input,
      h("p", { class: "hint", id: "token-help" },
        "Sent as ", h("code", {}, "Authorization: Bearer …"),
        ". Kept in this browser tab only, until you sign out or close the tab.")),
    h("div", { class: "form-actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      replaceChildren(slot, problemAlert({ title: "A token is needed", detail: "Enter one of the server's API tokens." }));
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    const ok = await signIn(token, { slot });
    if (!ok) {
      button.disabled = false;
      button.textContent = "Sign in";
      input.setAttribute("aria-invalid", "true");
      input.select();
      input.focus();
    }
  });
  replaceChildren($("#main"),
    h("section", { class: "signin" },
      h("div", { class: "card signin-card" },
        h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"),
        h("p", { class: "lead" }, "Watch and run the jobs of this jobwire server."),
        slot,
        form)));
  input.focus();
}

/** Checks the token with a cheap request, then starts the session. */
async function signIn(token, { restoring = false, slot = null } = {}) {
  const api = createApi({ token, onResponse: noteClock });
  try {
    await api.listServices({ limit: 1 });
  } catch (error) {
    if (restoring) {
      if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(error);
    } else if (slot) {
      replaceChildren(slot, problemAlert(error));
    }
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  startSession(api, { focus: !restoring });
  return true;
}

function signOut(error = null, { byUser = false } = {}) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (session) {
    session.closed = true;
    session.stream?.stop();
  }
  session = null;
  showSignIn(error);
  if (byUser) flash(notice("Signed out. The token was forgotten.", "info"), 4000);
}

// ------------------------------------------------------------------------- session

function startSession(api, { focus = false } = {}) {
  let streamUp;
  const s = {
    api,
    store: new JobStore(),
    throughput: new Throughput(),
    services: null,
    servicesPromise: null,
    streamReady: new Promise((resolve) => (streamUp = resolve)),
    ready: false,
    queue: [],
    unknown: new Set(),
    pending: new Map(),
    fetching: false,
    counting: true,
    countsTruncated: false,
    stream: null,
    closed: false,
  };
  session = s;
  document.body.dataset.auth = "in";
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  s.store.subscribe((job, previous) => view?.onJob?.(job, previous));
  s.servicesPromise = api.allServices().then((list) => (s.services = list)).catch(() => (s.services = []));

  let resumeFromNothing = false;
  s.stream = new EventStream({
    open: (lastEventId, signal) => {
      resumeFromNothing = s.stream && s.stream.connections > 1 && !lastEventId;
      return api.openStream("/v1/events", { lastEventId, signal });
    },
    onEvent: (event) => onStreamEvent(s, event),
    onState: (state, info) => {
      if (s.closed) return;
      setConn(state);
      if (state === "live") {
        streamUp();
        // A reconnect with no id to resume from may have missed events: re-read.
        if (resumeFromNothing) resync(s);
      }
      if (state === "failed") {
        if (info?.status === 401) signOut(info);
        else flash(problemAlert(info, { title: `Event stream stopped: ${info?.title ?? "error"}` }), 0);
      }
    },
    onGone: () => {
      // The resume point was pruned: re-read what the page shows, follow from now.
      resync(s);
      return "";
    },
  });
  s.stream.start();
  loadCounts(s);
  route({ focus });
}

/** Waits for the stream to be up (so no event falls between a read and the stream). */
function streamReady(s) {
  return Promise.race([s.streamReady, sleep(3000)]);
}

function onStreamEvent(s, event) {
  if (s.closed) return;
  if (!s.ready) {
    s.queue.push(event);
    return;
  }
  applyEvent(s, event);
}

function applyEvent(s, event) {
  const id = event.data?.job_id;
  if (event.type === "done") s.throughput.add(event.data, serverNow());
  const pending = id && s.pending.get(id);
  if (pending && !s.store.has(id)) {
    // Being read: apply once the job is known.
    pending.push(event);
    return;
  }
  const result = s.store.apply(event);
  if (result === "unknown") {
    s.unknown.add(id);
    s.pending.set(id, [event]);
    scheduleUnknown(s);
  }
  view?.onEvent?.(event);
}

let unknownTimer = 0;
function scheduleUnknown(s) {
  if (unknownTimer) return;
  unknownTimer = setTimeout(() => {
    unknownTimer = 0;
    fetchUnknown(s);
  }, 40);
}

/** Reads the jobs that events named but the page did not know: new jobs, mostly. */
async function fetchUnknown(s) {
  if (s.fetching) return;
  s.fetching = true;
  try {
    while (s.unknown.size && !s.closed) {
      const ids = [...s.unknown];
      s.unknown.clear();
      let missing = ids.filter((id) => !s.store.has(id));
      if (missing.length >= 3) {
        // A burst of new jobs: one read of the newest page brings them all.
        try {
          const page = await s.api.listJobs({ limit: Math.min(1000, missing.length * 2 + 20) });
          for (const job of page.items) s.store.upsert(job);
        } catch (error) {
          if (error.status === 401) return signOut(error);
        }
        missing = missing.filter((id) => !s.store.has(id));
      }
      await pool(missing, 4, async (id) => {
        try {
          s.store.upsert(await s.api.getJob(id));
        } catch (error) {
          if (error.status === 401) signOut(error);
        }
      });
      for (const id of ids) {
        const events = s.pending.get(id) ?? [];
        s.pending.delete(id);
        if (s.store.has(id)) for (const event of events) s.store.apply(event);
      }
    }
  } finally {
    s.fetching = false;
  }
}

async function pool(items, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** Reads every job, newest first, for the counts (the API has no count endpoint). */
async function loadCounts(s) {
  await streamReady(s);
  let cursor = null;
  let pages = 0;
  try {
    do {
      const page = await s.api.listJobs({ limit: COUNT_PAGE, cursor });
      if (s.closed) return;
      const now = serverNow();
      for (const job of page.items) {
        s.store.upsert(job);
        if (TERMINAL.has(job.status)) s.throughput.add(job, now);
      }
      cursor = page.next_cursor;
      pages += 1;
      if (!s.ready) markReady(s);
      view?.onCounts?.();
    } while (cursor && pages < MAX_COUNT_PAGES);
    s.countsTruncated = Boolean(cursor);
  } catch (error) {
    if (!s.ready) markReady(s);
    showError(error, null, { title: `Could not count the jobs: ${error.title ?? "error"}` });
  } finally {
    s.counting = false;
    view?.onCounts?.();
  }
}

function markReady(s) {
  s.ready = true;
  const queued = s.queue;
  s.queue = [];
  for (const event of queued) applyEvent(s, event);
}

/** After a gap in the stream: re-read the newest jobs (the older ones are terminal). */
async function resync(s) {
  try {
    const page = await s.api.listJobs({ limit: COUNT_PAGE });
    for (const job of page.items) s.store.upsert(job);
    const running = [...s.store.jobs.values()].filter((j) => !TERMINAL.has(j.status));
    await pool(running, 4, async (job) => {
      try {
        s.store.upsert(await s.api.getJob(job.id));
      } catch {
        // Gone or unreachable: leave it.
      }
    });
  } catch (error) {
    if (error.status === 401) signOut(error);
  }
}

// --------------------------------------------------------------------------- router

function stopView() {
  if (view?.destroy) view.destroy();
  view = null;
}

let routedPath = null;

function route({ focus = true } = {}) {
  if (!session) return;
  const hash = location.hash || "#/jobs";
  if (!hash.startsWith("#/")) return;
  const [path, query = ""] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  // The same view with other filters: keep the focus where it was (the Apply button, a
  // count), rather than moving it to the heading.
  const samePath = routedPath === path;
  const focusedId = samePath ? document.activeElement?.id : null;
  routedPath = path;
  stopView();
  let section = "jobs";
  if (parts[0] === "jobs" && parts[1]) view = jobView(parts[1]);
  else if (parts[0] === "services") {
    section = "services";
    view = servicesView(parts[1] ?? null);
  } else view = jobsView(params);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view.title} · jobwire`;
  if (!focus) return;
  const again = focusedId && document.getElementById(focusedId);
  if (again) {
    again.focus({ preventScroll: true });
    return;
  }
  const heading = $("#main h1");
  if (heading) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function pageHead(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, title), ...extra);
}

// ------------------------------------------------------------------------ jobs view

const STATUS_LABELS = {
  queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
};

function jobsHash(filter) {
  const q = new URLSearchParams();
  if (filter.status) q.set("status", filter.status);
  if (filter.service) q.set("service", filter.service);
  for (const label of filter.labels ?? []) q.append("label", label);
  const s = q.toString();
  return `#/jobs${s ? `?${s}` : ""}`;
}

/** Submit-to-done time of a job, or the time so far. */
function jobDuration(job, now) {
  const created = parseTime(job.created_at);
  const end = job.finished_at ? parseTime(job.finished_at) : now;
  return end - created;
}

function jobsView(params) {
  const s = session;
  const filter = {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    service: params.get("service") ?? "",
    labels: params.getAll("label").filter(Boolean),
  };
  const filtered = Boolean(filter.status || filter.service || filter.labels.length);
  const table = new JobTable(filter, (id) => s.store.get(id));
  const rows = new Map();
  const dirty = new Set();
  let frame = 0;
  let destroyed = false;
  let chartDirty = false;

  // Counts.
  const countEls = {};
  const countsList = h("ul", { class: "counts", "aria-label": "Jobs by status" },
    STATUSES.map((status) => {
      const value = h("span", { class: "count-value num" }, "–");
      countEls[status] = value;
      const active = filter.status === status;
      return h("li", {},
        h("a", {
          id: `count-${status}`,
          class: `count count-${status}`,
          href: jobsHash({ ...filter, status: active ? "" : status }),
          "aria-current": active ? "true" : null,
          title: active ? "Show every status" : `Show only ${status} jobs`,
        },
        h("span", { class: "count-label" }, h("span", { class: `count-dot dot-${status}`, "aria-hidden": "true" }), STATUS_LABELS[status]),
        value));
    }));
  const countsNote = h("p", { class: "counts-note muted", "aria-live": "polite" });

  // Chart.
  const ratePane = h("div", { class: "chart-pane" });
  const latencyPane = h("div", { class: "chart-pane" });
  const chartSummaryText = h("p", { class: "visually-hidden" });
  const chartBox = h("div", { class: "chart-box" }, ratePane, latencyPane);
  const stat = (label) => {
    const value = h("span", { class: "stat-value num" }, "–");
    return [h("div", { class: "stat" }, h("span", { class: "stat-label" }, label), value), value];
  };
  const [statTotal, statTotalV] = stat("Finished");
  const [statRate, statRateV] = stat("Now");
  const [statP50, statP50V] = stat("p50");
  const [statP99, statP99V] = stat("p99");
  const chartCard = h("section", { class: "card chart-card", "aria-labelledby": "chart-title" },
    h("div", { class: "card-head" },
      h("h2", { id: "chart-title" }, "Throughput ", h("span", { class: "muted small" }, "last 5 minutes")),
      h("ul", { class: "legend", "aria-label": "Legend" },
        h("li", {}, h("span", { class: "key key-bar", "aria-hidden": "true" }), "finished per second"),
        h("li", {}, h("span", { class: "key key-p50", "aria-hidden": "true" }), "p50 submit → done"),
        h("li", {}, h("span", { class: "key key-p99", "aria-hidden": "true" }), "p99"))),
    h("div", { class: "stats" }, statTotal, statRate, statP50, statP99),
    chartBox,
    chartSummaryText);

  // Filters.
  const statusSelect = h("select", { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((st) => h("option", { value: st, selected: filter.status === st }, STATUS_LABELS[st])));
  const serviceSelect = h("select", { id: "f-service", name: "service" },
    h("option", { value: "" }, "Any service"),
    filter.service ? h("option", { value: filter.service, selected: true }, filter.service) : null);
  s.servicesPromise.then((list) => {
    if (destroyed) return;
    for (const svc of list ?? []) {
      if (svc.name === filter.service || svc.id === filter.service) continue;
      serviceSelect.append(h("option", { value: svc.name }, svc.name));
    }
  });
  const labelInput = h("input", {
    id: "f-label", name: "label", type: "text", placeholder: "team:ml env:prod", autocomplete: "off",
    spellcheck: "false", value: filter.labels.join(" "), "aria-describedby": "f-label-help",
  });
  const filterError = h("p", { class: "field-error", id: "f-label-error", hidden: true });
  const filterForm = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "f-status" }, "Status"), statusSelect),
    h("div", { class: "field" }, h("label", { for: "f-service" }, "Service"), serviceSelect),
    h("div", { class: "field field-grow" }, h("label", { for: "f-label" }, "Labels"), labelInput,
      h("p", { class: "hint", id: "f-label-help" }, "key:value, several separated by spaces; all must match"),
      filterError),
    h("div", { class: "filters-actions" },
      h("button", { class: "btn btn-primary", type: "submit", id: "f-apply" }, "Apply"),
      filtered ? h("a", { class: "btn", href: "#/jobs", id: "f-clear" }, "Clear") : null));
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const { labels, invalid } = parseLabelFilter(labelInput.value);
    if (invalid.length) {
      filterError.hidden = false;
      filterError.textContent = `Not a key:value label: ${invalid.join(", ")}`;
      labelInput.setAttribute("aria-invalid", "true");
      labelInput.setAttribute("aria-describedby", "f-label-help f-label-error");
      labelInput.focus();
      return;
    }
    location.hash = jobsHash({ status: statusSelect.value, service: serviceSelect.value, labels });
  });

  // Table.
  const tbody = h("tbody", {});
  const tableSlot = h("div", { class: "alert-slot" });
  const emptyRow = h("p", { class: "empty", hidden: true });
  const shownText = h("p", { class: "muted table-count", "aria-live": "polite" }, "Loading jobs…");
  const moreButton = h("button", { class: "btn", type: "button", hidden: true }, `Load ${PAGE_SIZE} more`);
  const tableEl = h("table", { class: "jobs-table" },
    h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
    h("thead", {}, h("tr", {},
      ["Job", "Service", "Status", "Progress", "Labels", "Created", "Duration"].map((c, i) =>
        h("th", { scope: "col", class: i === 6 ? "col-num" : null }, c)))),
    tbody);

  function makeRow(job) {
    const now = Date.now();
    const statusBadge = badge(job.status);
    const bar = progressBar(`Progress of ${job.id}`);
    const pct = h("span", { class: "pct num" });
    const duration = h("td", { class: "col-num num", "data-label": "Duration" });
    const tr = h("tr", { dataset: { jobId: job.id, status: job.status } },
      h("td", { class: "col-id", "data-label": "Job" }, h("a", { class: "mono job-link", href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
      h("td", { "data-label": "Service" }, h("span", { class: "service-name" }, job.service)),
      h("td", { class: "col-status", "data-label": "Status" }, statusBadge),
      h("td", { class: "col-progress", "data-label": "Progress" }, h("span", { class: "progress-cell" }, bar, pct)),
      h("td", { "data-label": "Labels" }, labelChips(job.labels)),
      h("td", { class: "col-time", "data-label": "Created" }, timeAgo(job.created_at, now)),
      duration);
    tr._parts = { statusBadge, bar, pct, duration };
    fillRow(tr, job, now);
    return tr;
  }

  function fillRow(tr, job, now = Date.now()) {
    const { statusBadge, bar, pct, duration } = tr._parts;
    if (tr.dataset.status !== job.status) {
      tr.dataset.status = job.status;
      setBadge(statusBadge, job.status);
    }
    const fraction = job.status === "succeeded" ? 1 : job.progress?.fraction;
    setProgress(bar, fraction ?? null, job.status, job.progress?.message);
    pct.textContent = Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : "";
    duration.textContent = formatDuration(jobDuration(job, now));
    duration.classList.toggle("muted", !TERMINAL.has(job.status));
  }

  function placeRow(id) {
    const job = s.store.get(id);
    if (!job) return;
    const tr = makeRow(job);
    rows.set(id, tr);
    const i = table.ids.indexOf(id);
    const next = i >= 0 && i + 1 < table.ids.length ? rows.get(table.ids[i + 1]) : null;
    tbody.insertBefore(tr, next ?? null);
    return tr;
  }

  function renderFoot() {
    const n = table.ids.length;
    emptyRow.hidden = n > 0 || !table.loaded;
    emptyRow.replaceChildren(filtered ? "No jobs match these filters." : "No jobs yet. ",
      filtered ? "" : h("a", { href: "#/services" }, "Submit one from a service."));
    tableEl.hidden = n === 0 && table.loaded;
    moreButton.hidden = !table.nextCursor;
    if (table.loaded) {
      shownText.textContent = `${formatCount(n)} ${n === 1 ? "job" : "jobs"} shown${table.nextCursor ? ", more to load" : ""}`;
    }
  }

  function renderCounts() {
    for (const status of STATUSES) countEls[status].textContent = formatCount(s.store.counts[status]);
    const total = s.store.total;
    countsNote.textContent = s.counting
      ? `Counting… ${formatCount(total)} jobs read so far`
      : s.countsTruncated
        ? `Counts cover the newest ${formatCount(total)} jobs`
        : `${formatCount(total)} ${total === 1 ? "job" : "jobs"} in all`;
  }

  function flush() {
    frame = 0;
    if (destroyed) return;
    const now = Date.now();
    for (const id of dirty) {
      const job = s.store.get(id);
      if (!job) continue;
      const change = table.consider(job);
      if (change === "update") {
        const tr = rows.get(id);
        if (tr) fillRow(tr, job, now);
        else placeRow(id);
      } else if (change === "insert") {
        placeRow(id)?.classList.add("row-new");
      } else if (change === "remove") {
        rows.get(id)?.remove();
        rows.delete(id);
      }
    }
    dirty.clear();
    renderCounts();
    renderFoot();
    if (chartDirty) {
      chartDirty = false;
      renderChart();
    }
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  const lastChart = { rate: "", latency: "" };
  function renderChart() {
    // The panes are grid cells: CSS decides their width, the SVG follows it.
    const width = ratePane.clientWidth || 560;
    const sideBySide = ratePane.offsetTop === latencyPane.offsetTop;
    const height = sideBySide ? 170 : 130;
    const model = s.throughput.model(serverNow());
    for (const [kind, pane] of [["rate", ratePane], ["latency", latencyPane]]) {
      const svg = renderPaneSvg(model, kind, { width, height });
      if (svg !== lastChart[kind]) {
        pane.innerHTML = svg;
        lastChart[kind] = svg;
      }
    }
    chartSummaryText.textContent = chartSummary(model);
    statTotalV.textContent = formatCount(model.total);
    // "Now": the rate over the last 10 full seconds.
    const recent = model.buckets.slice(-11, -1).reduce((n, b) => n + b.count, 0) / 10;
    statRateV.textContent = `${formatRate(recent)}/s`;
    statP50V.textContent = formatMs(model.p50);
    statP99V.textContent = formatMs(model.p99);
  }

  async function loadPage() {
    moreButton.disabled = true;
    moreButton.textContent = "Loading…";
    try {
      const page = await s.api.listJobs({ ...filter, limit: PAGE_SIZE, cursor: table.nextCursor });
      if (destroyed) return;
      for (const job of page.items) s.store.upsert(job);
      const before = new Set(table.ids);
      table.addPage(page);
      for (const id of table.ids) if (!before.has(id) && !rows.has(id)) placeRow(id);
      // Jobs the page heard of while the page was read (newer than it) are rows too.
      for (const job of s.store.jobs.values()) {
        if (!table.has(job.id) && table.consider(job) === "insert") placeRow(job.id);
      }
      replaceChildren(tableSlot);
    } catch (error) {
      if (destroyed) return;
      showError(error, tableSlot, { title: `Could not list the jobs: ${error.title ?? "error"}` });
      table.loaded = true;
    } finally {
      moreButton.disabled = false;
      moreButton.textContent = `Load ${PAGE_SIZE} more`;
      renderFoot();
    }
  }
  moreButton.addEventListener("click", () => loadPage());

  const title = filtered ? "Jobs (filtered)" : "Jobs";
  replaceChildren($("#main"),
    h("section", { class: "view view-jobs" },
      pageHead("Jobs", h("a", { class: "btn btn-primary", href: "#/services" }, "Submit a job")),
      h("section", { class: "counts-wrap", "aria-label": "Status counts" }, countsList, countsNote),
      chartCard,
      h("section", { class: "card table-card", "aria-labelledby": "table-title" },
        h("h2", { id: "table-title", class: "visually-hidden" }, "Job list"),
        filterForm,
        tableSlot,
        h("div", { class: "table-wrap" }, tableEl),
        emptyRow,
        h("div", { class: "table-foot" }, shownText, moreButton))));
  renderCounts();
  renderChart();
  streamReady(s).then(() => !destroyed && loadPage());

  return {
    title,
    onJob(job) {
      dirty.add(job.id);
      schedule();
    },
    onCounts() {
      chartDirty = true;
      schedule();
    },
    onEvent(event) {
      if (event.type === "done") {
        chartDirty = true;
        schedule();
      }
    },
    tick(now) {
      renderChart();
      for (const [id, tr] of rows) {
        const job = s.store.get(id);
        if (job && !TERMINAL.has(job.status)) tr._parts.duration.textContent = formatDuration(jobDuration(job, now));
      }
    },
    resize: renderChart,
    destroy() {
      destroyed = true;
      if (frame) cancelAnimationFrame(frame);
    },
  };
}

// ------------------------------------------------------------------------- job view

function confirmDialog(text) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    const yes = $("#confirm-yes");
    const no = $("#confirm-no");
    const done = (value) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    const onClose = () => done(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    no.focus();
  });
}

function jobView(id) {
  const s = session;
  let destroyed = false;
  let stream = null;
  let job = s.store.get(id) ?? null;

  const slot = h("div", { class: "alert-slot" });
  const statusSlot = h("span", { class: "head-status" });
  const cancelButton = h("button", { class: "btn btn-danger", type: "button", hidden: true }, "Cancel job");
  const bar = progressBar("Job progress", { large: true });
  const progressPct = h("span", { class: "progress-pct num" }, "–");
  const progressMsg = h("span", { class: "progress-msg muted" });
  const progressCard = h("section", { class: "card progress-card", "aria-label": "Progress" },
    h("div", { class: "progress-top" }, progressPct, progressMsg),
    bar);
  const facts = h("dl", { class: "facts" });
  const waited = h("span", { class: "num" });
  const ran = h("span", { class: "num" });
  const errorSlot = h("div", {});
  const inputSlot = h("div", { class: "json-slot" }, h("p", { class: "muted" }, "Loading…"));
  const outputSlot = h("div", { class: "json-slot" }, h("p", { class: "muted" }, "Loading…"));
  const logList = h("ol", { class: "log", tabindex: "0", "aria-label": "Log lines" });
  const logCount = h("span", { class: "muted small num" }, "0 lines");
  const chunkText = h("pre", { class: "chunks", tabindex: "0", "aria-label": "Output chunks" });
  const chunkCount = h("span", { class: "muted small num" }, "0 chunks");
  const streamState = h("p", { class: "stream-state muted small", role: "status" }, "Connecting to the job's events…");
  let logs = 0;
  let chunks = 0;
  let pendingLogs = [];
  let pendingChunks = "";
  let frame = 0;
  let streamEnded = false;

  cancelButton.addEventListener("click", async () => {
    const ok = await confirmDialog(`Job ${id} (${job?.service ?? "?"}) will be stopped and end as cancelled. This cannot be undone.`);
    if (!ok || destroyed) {
      cancelButton.focus();
      return;
    }
    cancelButton.disabled = true;
    cancelButton.textContent = "Cancelling…";
    try {
      const result = await s.api.cancelJob(id);
      s.store.upsert(result);
      render();
      replaceChildren(slot, result.status === "cancelled"
        ? notice(`Job cancelled.`, "success")
        : notice(`The job had already ended: ${result.status}. Nothing was cancelled.`, "info"));
      $(".alert", slot)?.setAttribute("tabindex", "-1");
      $(".alert", slot)?.focus();
    } catch (error) {
      showError(error, slot, { title: `Could not cancel: ${error.title ?? "error"}` });
    } finally {
      cancelButton.disabled = false;
      cancelButton.textContent = "Cancel job";
    }
  });

  function fact(label, ...value) {
    return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, ...value));
  }
  function timeFact(label, text, now) {
    return h("div", { class: "fact fact-time" }, h("dt", {}, label), h("dd", {}, timeExact(text, now)));
  }

  let shownStatus = null;
  function render() {
    job = s.store.get(id) ?? job;
    if (!job || destroyed) return;
    const now = Date.now();
    const terminal = TERMINAL.has(job.status);
    if (shownStatus !== job.status) {
      replaceChildren(statusSlot, badge(job.status));
      shownStatus = job.status;
    }
    cancelButton.hidden = terminal;
    const fraction = job.status === "succeeded" ? 1 : job.progress?.fraction;
    const hasFraction = Number.isFinite(fraction);
    setProgress(bar, fraction ?? null, job.status, job.progress?.message);
    // A job that ended without ever reporting progress has no progress to show.
    progressCard.hidden = terminal && !hasFraction;
    progressPct.hidden = !hasFraction;
    progressPct.textContent = hasFraction ? `${Math.round(fraction * 100)}%` : "";
    progressMsg.textContent = job.progress?.message ??
      (job.status === "queued" ? "Waiting to start…" : job.status === "running" ? "Running; no progress reported yet" : "");
    const created = parseTime(job.created_at);
    const started = parseTime(job.started_at);
    const finished = parseTime(job.finished_at);
    // The facts are rebuilt only when they change (not on every tick), so that focus
    // on the service link stays where it is; the running times tick in place.
    const key = [job.status, job.started_at, job.finished_at, JSON.stringify(job.labels)].join("|");
    if (facts.dataset.key !== key) {
      facts.dataset.key = key;
      replaceChildren(facts,
        fact("Service", h("a", { href: `#/services/${encodeURIComponent(job.service)}` }, job.service), " ", h("span", { class: "muted mono small" }, job.service_id)),
        fact("Labels", labelChips(job.labels)),
        timeFact("Created", job.created_at, now),
        timeFact("Started", job.started_at, now),
        timeFact("Finished", job.finished_at, now),
        fact("Waited", waited),
        fact("Ran", ran),
        fact("Submit → done", h("span", { class: "num" }, job.finished_at ? formatDuration(finished - created) : "–")));
    }
    waited.textContent = job.started_at ? formatDuration(started - created) : job.status === "queued" ? formatDuration(now - created) : "–";
    ran.textContent = job.started_at ? formatDuration((job.finished_at ? finished : now) - started) : "–";
    if (job.status === "failed" && job.error) {
      if (!errorSlot.firstChild) {
        replaceChildren(errorSlot, h("section", { class: "card error-card", "aria-labelledby": "error-title" },
          h("h2", { id: "error-title" }, "Error"),
          h("dl", { class: "facts facts-tight" },
            fact("Code", job.error.code ? h("code", {}, job.error.code) : h("span", { class: "muted" }, "none")),
            fact("Message", h("span", { class: "error-message" }, job.error.message ?? "")))));
      }
    } else errorSlot.replaceChildren();
    if (!inputSlot.dataset.done) {
      inputSlot.dataset.done = "1";
      replaceChildren(inputSlot, jsonBlock(job.input, { threshold: FOLD_OVER, label: "Input JSON" }));
    }
    if ("output" in job && outputSlot.dataset.done !== "output") {
      outputSlot.dataset.done = "output";
      replaceChildren(outputSlot, jsonBlock(job.output, { threshold: FOLD_OVER, label: "Output JSON" }));
    } else if (!("output" in job)) {
      outputSlot.dataset.done = "";
      replaceChildren(outputSlot, h("p", { class: "muted" },
        job.status === "failed" ? "No output: the job failed." :
          job.status === "cancelled" ? "No output: the job was cancelled." : "No output yet."));
    }
  }

  function flushLive() {
    frame = 0;
    if (destroyed) return;
    if (pendingLogs.length) {
      const nearBottom = logList.scrollHeight - logList.scrollTop - logList.clientHeight < 40;
      const frag = document.createDocumentFragment();
      for (const line of pendingLogs) frag.append(h("li", {}, line));
      logList.append(frag);
      pendingLogs = [];
      if (nearBottom) logList.scrollTop = logList.scrollHeight;
    }
    if (pendingChunks) {
      chunkText.append(pendingChunks);
      pendingChunks = "";
      chunkText.scrollTop = chunkText.scrollHeight;
    }
    logCount.textContent = `${formatCount(logs)} ${logs === 1 ? "line" : "lines"}`;
    chunkCount.textContent = `${formatCount(chunks)} ${chunks === 1 ? "chunk" : "chunks"}`;
    logList.classList.toggle("is-empty", logs === 0);
    chunkText.classList.toggle("is-empty", chunks === 0);
    const over = streamEnded;
    logList.dataset.empty = over ? "No log lines." : "Nothing yet.";
    chunkText.dataset.empty = over ? "No output chunks." : "Nothing yet.";
  }

  function onJobEvent(event) {
    const data = event.data ?? {};
    if (event.type === "log") {
      logs += 1;
      pendingLogs.push(String(data.line ?? ""));
    } else if (event.type === "output") {
      chunks += 1;
      pendingChunks += typeof data.chunk === "string" ? data.chunk : JSON.stringify(data.chunk);
    } else if (event.type === "status" || event.type === "progress" || event.type === "done") {
      s.store.apply(event);
    }
    if (!frame) frame = requestAnimationFrame(flushLive);
  }

  function follow() {
    stream = new EventStream({
      open: (lastEventId, signal) => s.api.openStream(`/v1/jobs/${encodeURIComponent(id)}/events`, { lastEventId, signal }),
      onEvent: onJobEvent,
      until: (event) => event.type === "done",
      onState: (state, info) => {
        if (destroyed) return;
        if (state === "live") streamState.textContent = "Following the job's events live.";
        else if (state === "reconnecting") streamState.textContent = "The job's event stream dropped; reconnecting…";
        else if (state === "ended") {
          streamEnded = true;
          streamState.textContent = "The job ended: every event was received.";
          flushLive();
        } else if (state === "failed") {
          if (info?.status === 401) return signOut(info);
          streamEnded = true;
          flushLive();
          streamState.textContent = info?.status === 410
            ? "The events of this job were removed after the retention window: no log lines or output chunks to show."
            : `The job's event stream stopped: ${info?.title ?? "error"}.`;
        }
      },
    });
    stream.start();
  }

  replaceChildren($("#main"),
    h("section", { class: "view view-job" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("ol", {}, h("li", {}, h("a", { href: "#/jobs" }, "Jobs")), h("li", { "aria-current": "page" }, h("span", { class: "mono" }, id)))),
      h("div", { class: "page-head" },
        h("h1", { tabindex: "-1", class: "mono job-title" }, id),
        statusSlot,
        h("div", { class: "page-head-actions" }, cancelButton)),
      slot,
      progressCard,
      h("section", { class: "card", "aria-labelledby": "facts-title" },
        h("h2", { id: "facts-title", class: "visually-hidden" }, "Details"),
        facts),
      errorSlot,
      h("div", { class: "grid-2" },
        h("section", { class: "card", "aria-labelledby": "input-title" }, h("h2", { id: "input-title" }, "Input"), inputSlot),
        h("section", { class: "card", "aria-labelledby": "output-title" }, h("h2", { id: "output-title" }, "Output"), outputSlot)),
      h("div", { class: "grid-2" },
        h("section", { class: "card", "aria-labelledby": "log-title" },
          h("div", { class: "card-head" }, h("h2", { id: "log-title" }, "Log"), logCount), logList),
        h("section", { class: "card", "aria-labelledby": "chunks-title" },
          h("div", { class: "card-head" }, h("h2", { id: "chunks-title" }, "Output stream"), chunkCount), chunkText)),
      streamState));
  flushLive();
  if (job) render();

  s.api.getJob(id).then((fresh) => {
    if (destroyed) return;
    s.store.upsert(fresh);
    render();
    follow();
  }, (error) => {
    if (destroyed) return;
    streamState.textContent = "";
    showError(error, slot, { title: error.status === 404 ? "No such job" : `Could not read the job: ${error.title ?? "error"}` });
  });

  return {
    title: `Job ${id}`,
    onJob(changed) {
      if (changed.id === id) render();
    },
    tick() {
      if (job && !TERMINAL.has(job.status)) render();
    },
    destroy() {
      destroyed = true;
      stream?.stop();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}

// -------------------------------------------------------------------- services view

/** Text with `backtick` spans shown as code (service descriptions use them). */
function withCode(text) {
  return String(text).split(/(`[^`]+`)/).map((part) =>
    part.length > 2 && part.startsWith("`") && part.endsWith("`") ? h("code", {}, part.slice(1, -1)) : part);
}

function servicesView(selected) {
  const s = session;
  let destroyed = false;
  const list = h("div", { class: "services" }, h("p", { class: "muted" }, "Loading services…"));
  const slot = h("div", { class: "alert-slot" });
  const index = h("nav", { class: "service-index", "aria-label": "Services" });

  function serviceCard(svc) {
    const key = svc.name.replace(/[^a-z0-9_-]/gi, "_");
    const example = BUILTIN_EXAMPLES[svc.name] && svc.kind === "builtin" ? BUILTIN_EXAMPLES[svc.name] : exampleFor(svc.input_schema);
    const textarea = h("textarea", {
      id: `input-${key}`, name: "input", rows: "5", spellcheck: "false", autocomplete: "off",
      class: "mono", "aria-describedby": `input-${key}-help`,
    });
    textarea.value = JSON.stringify(example, null, 2);
    const labelsInput = h("input", {
      id: `labels-${key}`, name: "labels", type: "text", autocomplete: "off", spellcheck: "false",
      placeholder: "team=ml, env=dev", "aria-describedby": `labels-${key}-help`,
    });
    const errors = h("div", { class: "alert-slot", id: `errors-${key}` });
    const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Submit job");
    const form = h("form", { class: "form submit-form", novalidate: true, "aria-label": `Submit a ${svc.name} job` },
      h("div", { class: "field" },
        h("label", { for: `input-${key}` }, "Input ", h("span", { class: "muted" }, "(JSON)")),
        textarea,
        h("p", { class: "hint", id: `input-${key}-help` }, "Checked against the input schema by the server.")),
      h("div", { class: "field" },
        h("label", { for: `labels-${key}` }, "Labels ", h("span", { class: "muted" }, "(optional)")),
        labelsInput,
        h("p", { class: "hint", id: `labels-${key}-help` }, "key=value pairs, separated by commas")),
      errors,
      h("div", { class: "form-actions" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      textarea.removeAttribute("aria-invalid");
      labelsInput.removeAttribute("aria-invalid");
      let input;
      try {
        input = JSON.parse(textarea.value);
      } catch (error) {
        textarea.setAttribute("aria-invalid", "true");
        replaceChildren(errors, problemAlert({ title: "The input is not valid JSON", detail: error.message }));
        textarea.focus();
        return;
      }
      const { labels, invalid } = parseLabelsInput(labelsInput.value);
      if (invalid.length) {
        labelsInput.setAttribute("aria-invalid", "true");
        replaceChildren(errors, problemAlert({ title: "Labels need a key and a value", detail: `Not key=value: ${invalid.join(", ")}` }));
        labelsInput.focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = "Submitting…";
      replaceChildren(errors);
      try {
        const job = await s.api.submit(svc.name, input, labels);
        s.store.upsert(job);
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
      } catch (error) {
        if (destroyed) return;
        if (error.status === 422 && error.errors.length) textarea.setAttribute("aria-invalid", "true");
        showError(error, errors);
        $(".alert", errors)?.setAttribute("tabindex", "-1");
        $(".alert", errors)?.focus();
      } finally {
        submit.disabled = false;
        submit.textContent = "Submit job";
      }
    });
    return h("article", { class: ["card", "service", selected === svc.name ? "is-selected" : ""], id: `service-${key}`, "aria-labelledby": `svc-${key}-title` },
      h("header", { class: "service-head" },
        h("h2", { id: `svc-${key}-title`, tabindex: "-1" }, svc.name),
        h("span", { class: `kind kind-${svc.kind}` }, svc.kind),
        h("a", { class: "small service-jobs", href: jobsHash({ service: svc.name }), "aria-label": `Jobs of ${svc.name}` }, "View jobs")),
      svc.description ? h("p", { class: "service-desc" }, withCode(svc.description)) : null,
      h("div", { class: "service-body" },
        h("section", { class: "schema", "aria-label": `Input schema of ${svc.name}` },
          h("h3", { class: "schema-title" }, "Input schema"),
          jsonBlock(svc.input_schema, { threshold: FOLD_OVER, label: `Input schema of ${svc.name}` }),
          svc.input_schema === true || (svc.input_schema && typeof svc.input_schema === "object" && Object.keys(svc.input_schema).length === 0)
            ? h("p", { class: "hint schema-note" }, "Any JSON value is accepted.")
            : null),
        form));
  }

  async function load() {
    try {
      const services = await s.api.allServices();
      if (destroyed) return;
      s.services = services;
      replaceChildren(list, services.length ? services.map(serviceCard) : h("p", { class: "empty" }, "No services."));
      replaceChildren(index, services.length > 1
        ? h("ul", {}, services.map((svc) => h("li", {}, h("a", { href: `#/services/${encodeURIComponent(svc.name)}`, "aria-current": selected === svc.name ? "true" : null }, svc.name))))
        : null);
      if (selected) {
        const card = document.getElementById(`service-${selected.replace(/[^a-z0-9_-]/gi, "_")}`);
        if (card) {
          card.scrollIntoView({ block: "start" });
          $("h2", card).focus({ preventScroll: true });
        } else {
          replaceChildren(slot, problemAlert({ title: "No such service", detail: `There is no service named ${JSON.stringify(selected)}.` }));
        }
      }
    } catch (error) {
      if (destroyed) return;
      replaceChildren(list);
      showError(error, slot, { title: `Could not list the services: ${error.title ?? "error"}` });
    }
  }

  replaceChildren($("#main"),
    h("section", { class: "view view-services" },
      pageHead("Services"),
      h("p", { class: "lead" }, "Each service runs jobs on inputs that match its schema. Submit a job to open its page and follow it live."),
      index,
      slot,
      list));
  load();
  return {
    title: selected ? `Service ${selected}` : "Services",
    destroy() {
      destroyed = true;
    },
  };
}

if (typeof document !== "undefined" && typeof window !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
}
