-- wrk script for scripts/bench-vhsmd.sh: one fixed Vault API request per connection, sent over and over on
-- keep-alive connections. Configured through the environment (wrk passes no arguments to a static request):
--   BENCH_METHOD     GET or POST
--   BENCH_TOKEN      the X-Vault-Token value
--   BENCH_BODY_FILE  a file holding the JSON body (POST only; optional)
--   BENCH_SPREAD     N > 0: request number n goes to the URL's path with "-<n mod N>" appended (N KV secrets)
-- At the end it prints one machine-readable line that the shell script parses:
--   BENCH requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N status_errors=N connect_errors=N
--         read_errors=N write_errors=N timeouts=N
-- wrk counts a response with status > 399 as a status error, so a server that refuses the request shows up there.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN") or ""

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local spread = tonumber(os.getenv("BENCH_SPREAD") or "0") or 0
if spread > 0 then
  local sent = 0
  request = function()
    sent = sent + 1
    return wrk.format(nil, wrk.path .. "-" .. (sent % spread))
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
