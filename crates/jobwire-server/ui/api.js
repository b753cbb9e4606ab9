// The jobwire HTTP API, as the dashboard uses it: fetch with the bearer token, JSON in
// and out, and RFC 9457 problems turned into errors. No DOM.

const REASONS = {
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Payload Too Large",
  422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
  502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

const CODES = {
  400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
  405: "bad_request", 409: "conflict", 410: "gone", 413: "payload_too_large",
  422: "validation_failed", 429: "rate_limited", 500: "internal", 503: "unavailable",
};

/** A request the server (or the network) refused, with the problem's members. */
export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = "ApiError";
    this.problem = problem;
    this.status = problem.status;
    this.title = problem.title;
    this.detail = problem.detail ?? "";
    this.code = problem.code;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.request_id ?? null;
    this.retryable = Boolean(problem.retryable);
  }
}

/** The problem for an error answer without a problem body (from a proxy, say). */
export function problemForStatus(status, statusText = "", detail = "") {
  const code = CODES[status] ?? (status >= 500 ? "internal" : "bad_request");
  return {
    title: statusText || REASONS[status] || `HTTP ${status}`,
    status,
    detail,
    code,
    retryable: [429, 502, 503, 504].includes(status),
  };
}

/** Reads an error answer into an ApiError (its problem body when it has one). */
export async function errorFromResponse(response) {
  const type = response.headers.get("content-type") ?? "";
  const requestId = response.headers.get("x-request-id");
  let body = null;
  try {
    const text = await response.text();
    if (/json/i.test(type) || text.startsWith("{")) body = JSON.parse(text);
  } catch {
    body = null;
  }
  const fallback = problemForStatus(response.status, response.statusText);
  if (body && typeof body === "object" && !Array.isArray(body)) {
    return new ApiError({
      ...fallback,
      ...body,
      title: typeof body.title === "string" && body.title ? body.title : fallback.title,
      status: Number.isInteger(body.status) ? body.status : response.status,
      code: typeof body.code === "string" ? body.code : fallback.code,
      request_id: body.request_id ?? requestId,
    });
  }
  return new ApiError({ ...fallback, request_id: requestId });
}

/** An ApiError for a request that got no answer at all. */
export function networkError(error) {
  return new ApiError({
    title: "Network error",
    status: 0,
    detail: `the server could not be reached (${error?.message ?? error})`,
    code: "network",
    retryable: true,
  });
}

/** The query string of a job list: `?status=&service=&label=k:v&limit=&cursor=`. */
export function jobsQuery({ status, service, labels, limit, cursor } = {}) {
  const q = new URLSearchParams();
  if (service) q.set("service", service);
  if (status) q.set("status", status);
  for (const label of labels ?? []) if (label) q.append("label", label);
  if (limit) q.set("limit", String(limit));
  if (cursor) q.set("cursor", cursor);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Parses label filters typed by a person: `team:ml, env:prod` or `team:ml env:prod`.
 * Returns the `key:value` pairs and the pieces that are not one (no key, no colon).
 */
export function parseLabelFilter(text) {
  const labels = [];
  const invalid = [];
  for (const piece of String(text ?? "").split(/[\s,]+/)) {
    if (!piece) continue;
    const colon = piece.indexOf(":");
    if (colon <= 0) invalid.push(piece);
    else labels.push(piece);
  }
  return { labels, invalid };
}

/**
 * Parses labels for a submit: `key=value` or `key:value` pairs separated by commas or
 * new lines. Returns `{labels, invalid}`; `labels` is an object.
 */
export function parseLabelsInput(text) {
  const labels = {};
  const invalid = [];
  for (const raw of String(text ?? "").split(/[,\n]+/)) {
    const piece = raw.trim();
    if (!piece) continue;
    const match = /^([^=:]+)[=:](.*)$/.exec(piece);
    if (!match || !match[1].trim()) invalid.push(piece);
    else labels[match[1].trim()] = match[2].trim();
  }
  return { labels, invalid };
}

/**
 * A client of one server for one token.
 * @param {object} options
 * @param {string} options.token the bearer token
 * @param {string} [options.baseUrl] "" for the page's own origin
 * @param {typeof fetch} [options.fetch]
 * @param {(response: Response) => void} [options.onResponse] sees every answer (clock skew)
 */
export function createApi({ token, baseUrl = "", fetch: fetchImpl, onResponse } = {}) {
  const doFetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));

  async function send(method, path, { body, headers = {}, signal } = {}) {
    const init = {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${token}`, ...headers },
      signal,
      cache: "no-store",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await doFetch(baseUrl + path, init);
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw networkError(error);
    }
    if (onResponse) onResponse(response);
    return response;
  }

  async function request(method, path, options) {
    const response = await send(method, path, options);
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  return {
    token,
    request,
    health: () => request("GET", "/v1/health"),
    listServices: ({ limit, cursor } = {}) => {
      const q = new URLSearchParams();
      if (limit) q.set("limit", String(limit));
      if (cursor) q.set("cursor", cursor);
      const s = q.toString();
      return request("GET", `/v1/services${s ? `?${s}` : ""}`);
    },
    /** Every service, walking the pages. */
    async allServices() {
      const all = [];
      let cursor = null;
      do {
        const page = await this.listServices({ limit: 1000, cursor });
        all.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      return all;
    },
    getService: (name) => request("GET", `/v1/services/${encodeURIComponent(name)}`),
    listJobs: (params = {}, options) => request("GET", `/v1/jobs${jobsQuery(params)}`, options),
    getJob: (id, options) => request("GET", `/v1/jobs/${encodeURIComponent(id)}`, options),
    cancelJob: (id) => request("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`),
    submit: (service, input, labels) =>
      request("POST", `/v1/services/${encodeURIComponent(service)}/jobs`, {
        body: labels && Object.keys(labels).length ? { input, labels } : { input },
      }),
    /**
     * Opens an event stream: resolves to the Response (status 200 with a body, or 204
     * when there is nothing more to send); throws an ApiError for any other answer.
     */
    async openStream(path, { lastEventId, signal } = {}) {
      const headers = { Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await send("GET", path, { headers, signal });
      if (response.status === 204) return response;
      if (!response.ok) throw await errorFromResponse(response);
      return response;
    },
  };
}
