"""Many `echo` jobs through a Python HTTP client, for comparison with the Rust SDK.

    python many_jobs.py --client aiohttp|httpx --url URL --token TOKEN --jobs N --concurrency C

Runs N jobs of the built-in `echo` service, at most C in flight (a pool of C worker
tasks on one asyncio event loop, sharing one client: an `aiohttp.ClientSession` on a
`TCPConnector(limit=C)`, or an `httpx.AsyncClient` with `max_connections=C`). Each job
is done the way the Rust SDK's `client.run("echo", input)` does it over long polls
(docs/api.md): `POST /v1/services/echo/jobs` with `Prefer: wait=10` and the body
`{"input": {"i": i}}`; a 200 is the finished job, a 202 is followed by
`GET /v1/jobs/{id}` with `Prefer: wait=10` until the job's status is terminal.

A job is an error when any of its requests fails (an exception or an unexpected
status), its final status is not `succeeded`, or its output is not its input.

Measured, after as many warm-up jobs as are in flight (at least 50), not counted:

- makespan_s: wall-clock seconds for all N jobs;
- cpu_us_per_job: user + system CPU time of this process over the run
  (`getrusage(RUSAGE_SELF)`), divided by N, in microseconds;
- p50_ms, p99_ms: per-job latency from the start of the submit to the result, of the jobs
  that succeeded, nearest-rank percentiles (null when none succeeded);
- errors: how many of the N jobs were errors;
- peak_rss_kib: the process's peak resident set size (`ru_maxrss`, KiB on Linux).

Prints exactly one JSON line on stdout. Exits 0 whatever the number of errors; 2 for bad
arguments, 1 when the server cannot be reached at all.
"""

import argparse
import asyncio
import itertools
import json
import math
import resource
import sys
import time

# Warm-up jobs at least; as many as are in flight, so that every connection is open.
WARMUP_JOBS = 50
WAIT_SECONDS = 10
# Longer than the server-side wait, so a long poll is never cut short by the client.
REQUEST_TIMEOUT_SECONDS = WAIT_SECONDS + 30
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
SUBMIT_PATH = "/v1/services/echo/jobs"
SUBMIT_HEADERS = {"Content-Type": "application/json", "Prefer": f"wait={WAIT_SECONDS}"}
POLL_HEADERS = {"Prefer": f"wait={WAIT_SECONDS}"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, choices=["aiohttp", "httpx"])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:7878")
    parser.add_argument("--token", required=True, help="the bearer token")
    parser.add_argument("--jobs", required=True, type=int, help="jobs to run (N)")
    parser.add_argument("--concurrency", required=True, type=int, help="jobs in flight at most (C)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    args.url = args.url.rstrip("/")
    return args


class AiohttpClient:
    """One `aiohttp.ClientSession` for the whole run, at most `concurrency` connections."""

    def __init__(self, url, token, concurrency):
        import aiohttp

        self.name = "aiohttp"
        self.version = aiohttp.__version__
        self._url = url
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        )

    async def request(self, method, path, headers, body=None):
        """Sends one request; answers (status, body bytes)."""
        async with self._session.request(method, self._url + path, headers=headers, data=body) as resp:
            return resp.status, await resp.read()

    async def close(self):
        await self._session.close()


class HttpxClient:
    """One `httpx.AsyncClient` for the whole run, at most `concurrency` connections."""

    def __init__(self, url, token, concurrency):
        import httpx

        self.name = "httpx"
        self.version = httpx.__version__
        self._url = url
        # Keep every connection alive: httpx keeps only 20 idle ones by default, and
        # would otherwise open a new connection for most requests above 20 in flight.
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
        )

    async def request(self, method, path, headers, body=None):
        """Sends one request; answers (status, body bytes)."""
        resp = await self._client.request(method, self._url + path, headers=headers, content=body)
        return resp.status_code, resp.content

    async def close(self):
        await self._client.aclose()


CLIENTS = {"aiohttp": AiohttpClient, "httpx": HttpxClient}


async def check_reachable(client):
    """Raises when the server does not answer `GET /v1/health` at all."""
    status, _ = await client.request("GET", "/v1/health", {})
    if status != 200:
        raise ConnectionError(f"GET /v1/health answered {status}")


async def run_job(client, i):
    """Runs one echo job as `client.run("echo", {"i": i})` does; True when it succeeded."""
    expected = {"i": i}
    body = json.dumps({"input": expected}).encode()
    status, data = await client.request("POST", SUBMIT_PATH, SUBMIT_HEADERS, body)
    if status not in (200, 202):
        return False
    job = json.loads(data)
    while job["status"] not in TERMINAL:
        status, data = await client.request("GET", f"/v1/jobs/{job['id']}", POLL_HEADERS)
        if status != 200:
            return False
        job = json.loads(data)
    return job["status"] == "succeeded" and job.get("output") == expected


async def run_jobs(client, first, count, concurrency):
    """Runs jobs first..first+count, at most `concurrency` at once, on a pool of worker
    tasks. Answers (the latencies in seconds of the jobs that succeeded, the errors)."""
    indices = iter(range(first, first + count))
    latencies = []
    errors = 0

    async def worker():
        nonlocal errors
        for i in indices:  # shared by the workers: each index is taken once
            start = time.perf_counter()
            try:
                ok = await run_job(client, i)
            except Exception:  # a failed request is an error of this job, not of the run
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return latencies, errors


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list; None for an empty one."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 3)


async def benchmark(args):
    """Warms up, runs the measured jobs; answers the result as a dict, or None when the
    server cannot be reached."""
    client = CLIENTS[args.client](args.url, args.token, args.concurrency)
    try:
        try:
            await check_reachable(client)
        except Exception as e:
            print(f"many_jobs.py: cannot reach {args.url}: {e!r}", file=sys.stderr)
            return None
        warmup = max(WARMUP_JOBS, args.concurrency)
        await run_jobs(client, 0, warmup, args.concurrency)

        cpu_before = cpu_seconds()
        wall_before = time.perf_counter()
        latencies, errors = await run_jobs(client, warmup, args.jobs, args.concurrency)
        makespan = time.perf_counter() - wall_before
        cpu = cpu_seconds() - cpu_before
    finally:
        await client.close()

    latencies.sort()
    return {
        "client": client.name,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "makespan_s": round(makespan, 4),
        "cpu_us_per_job": round(cpu / args.jobs * 1e6, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "errors": errors,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "version": client.version,
    }


def main(argv=None):
    args = parse_args(argv)
    result = asyncio.run(benchmark(args))
    if result is None:
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
