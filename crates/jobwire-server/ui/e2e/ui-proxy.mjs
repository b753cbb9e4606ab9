// A stand-in for the server's own `/ui` route, for a server binary built before `--ui`:
// serves GET /ui (index.html) and GET /ui/{file} from the ui folder with the same
// Content-Security-Policy, and passes every other request through to the API server,
// breaking the connection when the API server breaks its own (so a cut event stream
// stays a cut stream).
//
//   node ui-proxy.mjs --upstream http://127.0.0.1:7979 --port 7980

import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

async function serveAsset(req, res) {
  const url = new URL(req.url, "http://x");
  const name = url.pathname === "/ui" || url.pathname === "/ui/" ? "index.html" : url.pathname.slice(4);
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) return notFound(res);
  const type = TYPES[path.extname(name)];
  if (!type) return notFound(res);
  let body;
  try {
    body = await readFile(path.join(UI_DIR, name));
  } catch {
    return notFound(res);
  }
  res.writeHead(200, {
    "content-type": type,
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
    "content-length": body.length,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function notFound(res) {
  const body = JSON.stringify({ type: "https://jobwire.dev/problems/not_found", title: "Not Found", status: 404, code: "not_found" });
  res.writeHead(404, { "content-type": "application/problem+json" });
  res.end(body);
}

function pass(req, res, upstream) {
  const target = new URL(req.url, upstream);
  const headers = { ...req.headers, host: target.host };
  const out = http.request(target, { method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.statusMessage, answer.headers);
    res.flushHeaders();
    answer.on("data", (chunk) => res.write(chunk));
    answer.on("end", () => res.end());
    answer.on("aborted", () => res.destroy());
    answer.on("error", () => res.destroy());
  });
  out.on("error", () => res.destroy());
  req.on("aborted", () => out.destroy());
  res.on("close", () => out.destroy());
  req.pipe(out);
}

/** Starts the proxy; resolves to the http.Server once it listens. */
export function startUiProxy({ upstream, port = 0, host = "127.0.0.1" }) {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, "http://x").pathname;
    if ((req.method === "GET" || req.method === "HEAD") && (p === "/ui" || p.startsWith("/ui/"))) {
      serveAsset(req, res);
    } else {
      pass(req, res, upstream);
    }
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const upstream = arg("--upstream", "http://127.0.0.1:7979");
  const port = Number(arg("--port", "7980"));
  startUiProxy({ upstream, port }).then(() => console.log(`ui on http://127.0.0.1:${port}/ui, API from ${upstream}`));
}
