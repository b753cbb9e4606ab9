// Small DOM helpers shared by the views. Nothing here runs at import time, so the module
// imports under node; the functions need a `document` only when called.

import { foldJson, formatPercent, formatAgo, formatTimestamp } from "./format.js";
import { parseTime } from "./chart.js";

/**
 * Creates an element: h("a", {href: "#/jobs", class: "link"}, "Jobs", child, …).
 * Attributes: `class`, `text`, `dataset`, `on` (event handlers), `hidden`/boolean ones,
 * anything else as an attribute. Never parses HTML: user data stays text.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Removes every child of `el`, then appends `children`. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A status badge: a coloured pill with a dot and the status word. */
export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, h("span", { class: "badge-dot", "aria-hidden": "true" }), status);
}

/** Sets a badge made by `badge()` to another status, in place. */
export function setBadge(el, status) {
  el.className = `badge badge-${status}`;
  el.lastChild.textContent = status;
}

/**
 * A progress bar (a div with role=progressbar, so it styles the same everywhere).
 * Update it with `setProgress`.
 */
export function progressBar(label, { large = false } = {}) {
  const fill = h("span", { class: "bar-fill" });
  const bar = h("span", {
    class: large ? "bar bar-large" : "bar",
    role: "progressbar",
    "aria-label": label,
    "aria-valuemin": "0",
    "aria-valuemax": "100",
  }, fill);
  return bar;
}

/** Shows `fraction` (0..1, or null for none yet) and a terminal status on a bar. */
export function setProgress(bar, fraction, status, message) {
  const fill = bar.firstChild;
  let value = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : null;
  if (status === "succeeded") value = 1;
  bar.dataset.status = status ?? "";
  bar.classList.toggle("bar-indeterminate", value === null && status === "running");
  if (value === null) {
    bar.removeAttribute("aria-valuenow");
    bar.setAttribute("aria-valuetext", message || (status === "queued" ? "waiting" : "no progress reported"));
    fill.style.width = "0%";
    bar.classList.add("bar-empty");
    return;
  }
  bar.classList.remove("bar-empty");
  const pct = Math.round(value * 1000) / 10;
  bar.setAttribute("aria-valuenow", String(pct));
  bar.setAttribute("aria-valuetext", message ? `${formatPercent(value)}, ${message}` : formatPercent(value));
  fill.style.width = `${pct}%`;
}

/** A <time> showing "12 s ago" (kept fresh by `refreshTimes`), the exact time as title. */
export function timeAgo(text, now = Date.now()) {
  if (!text) return h("span", { class: "muted" }, "–");
  return h("time", { datetime: text, title: formatTimestamp(text), dataset: { ago: "" } }, formatAgo(parseTime(text), now));
}

/** A <time> with the exact local time, and the relative one after it. */
export function timeExact(text, now = Date.now()) {
  if (!text) return h("span", { class: "muted" }, "–");
  return h("span", { class: "time-exact" },
    h("time", { datetime: text, class: "num" }, formatTimestamp(text)),
    " ",
    h("span", { class: "muted" }, "(", h("time", { datetime: text, dataset: { ago: "" } }, formatAgo(parseTime(text), now)), ")"));
}

/** Updates every relative time under `root`. */
export function refreshTimes(root, now = Date.now()) {
  for (const el of root.querySelectorAll("time[data-ago]")) {
    el.textContent = formatAgo(parseTime(el.getAttribute("datetime")), now);
  }
}

/** Pretty JSON with its large values folded into closed <details>. */
export function jsonBlock(value, { threshold = 2000, label } = {}) {
  const pre = h("pre", { class: "json", tabindex: "0", "aria-label": label ?? null });
  const build = (parent, pieces) => {
    for (const p of pieces) {
      if (typeof p === "string") parent.append(p);
      else {
        const body = h("span", { class: "fold-body" });
        build(body, p.pieces);
        parent.append(h("details", { class: "fold" }, h("summary", {}, p.fold.summary), body));
      }
    }
  };
  build(pre, foldJson(value, { threshold }));
  return pre;
}

/** Labels as small chips. */
export function labelChips(labels) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return h("span", { class: "muted" }, "–");
  return h("ul", { class: "chips", "aria-label": "labels" },
    entries.map(([k, v]) => h("li", { class: "chip" }, h("span", { class: "chip-key" }, k), h("span", { class: "chip-value" }, v))));
}

/**
 * An alert for a problem (an ApiError, or anything with title/detail): the title in
 * bold, the detail, the field errors, and the request id to quote.
 */
export function problemAlert(error, { tone = "error", title } = {}) {
  const p = error?.problem ?? error ?? {};
  const errors = Array.isArray(p.errors) ? p.errors : [];
  return h("div", { class: `alert alert-${tone}`, role: "alert" },
    h("p", { class: "alert-title" }, title ?? p.title ?? "Error", p.status ? h("span", { class: "alert-status" }, ` ${p.status}`) : null),
    p.detail ? h("p", { class: "alert-detail" }, p.detail) : null,
    errors.length
      ? h("ul", { class: "alert-errors" }, errors.map((e) => h("li", {}, h("code", {}, e.pointer || "/"), " ", e.message ?? "")))
      : null,
    p.code || p.request_id
      ? h("p", { class: "alert-meta" },
          p.code ? h("span", {}, "code ", h("code", {}, p.code)) : null,
          p.code && p.request_id ? " · " : null,
          p.request_id ? h("span", {}, "request ", h("code", {}, p.request_id)) : null)
      : null);
}

/** A notice (success or information) for an alert region. */
export function notice(text, tone = "info") {
  return h("div", { class: `alert alert-${tone}`, role: "status" }, h("p", { class: "alert-title" }, text));
}
