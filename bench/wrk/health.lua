-- wrk script: GET /v1/health, the server's HTTP ceiling (no auth, no store).
wrk.path = "/v1/health"
done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d non2xx=%d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
