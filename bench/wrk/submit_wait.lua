-- wrk script: submit an `echo` job and wait for its result in the same request
-- (`Prefer: wait=30`). The token comes from the environment: JOBWIRE_TOKEN.
wrk.method = "POST"
wrk.path = "/v1/services/echo/jobs"
wrk.body = '{"input": {"n": 1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "wait=30"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("JOBWIRE_TOKEN")

-- Only 200 (finished within the wait) counts as a job done.
local not_done = 0
function response(status, headers, body)
  if status ~= 200 then not_done = not_done + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d non2xx=%d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
