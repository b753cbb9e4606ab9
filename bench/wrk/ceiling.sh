#!/usr/bin/env bash
# The server's ceiling, side by side in one run: GET /v1/health req/s against `echo` jobs
# submitted with `Prefer: wait` (jobs/s), 64 connections, on each store.
#
#   bench/wrk/ceiling.sh [SERVER_BINARY] [SECONDS]
#
# SERVER_BINARY defaults to target/release/jobwire-server (build it with
# `cargo build --release -p jobwire-server`); wrk comes from Debian's package `wrk`.
# Extra stores: JOBWIRE_BENCH_DATABASE_URL=postgres://… adds a PostgreSQL run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-$here/../../target/release/jobwire-server}"
seconds="${2:-10}"
token="bench-token"
port=17878
data="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT

run() { # label, then server flags
  local label="$1"; shift
  "$server" --addr "127.0.0.1:$port" --token "$token" "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local health submit
  health="$(wrk -t2 -c64 -d"${seconds}s" -s "$here/health.lua" "http://127.0.0.1:$port")"
  submit="$(JOBWIRE_TOKEN=$token wrk -t2 -c64 -d"${seconds}s" -s "$here/submit_wait.lua" "http://127.0.0.1:$port")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local h s
  h="$(awk '/Requests\/sec/ {print $2}' <<<"$health")"
  s="$(awk '/Requests\/sec/ {print $2}' <<<"$submit")"
  printf '%-10s health %10s req/s (%s)  echo+wait %10s jobs/s (%s)  ratio %s\n' \
    "$label" "$h" "$(tail -1 <<<"$health")" "$s" "$(tail -1 <<<"$submit")" \
    "$(awk -v a="$s" -v b="$h" 'BEGIN {printf "%.3f", a / b}')"
}

run memory --memory
run sqlite --data-dir "$data/sqlite"
if [ -n "${JOBWIRE_BENCH_DATABASE_URL:-}" ]; then
  run postgres --database-url "$JOBWIRE_BENCH_DATABASE_URL"
fi
