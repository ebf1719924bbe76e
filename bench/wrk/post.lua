-- wrk script of the serving benchmark: POST the body in the file $WRK_BODY_FILE (JSON) to the URL
-- on every connection, and print one JSON object when done: requests, errors by kind, the run's
-- duration and the latency distribution (microseconds).
--   WRK_BODY_FILE=body.json wrk -t1 -c8 -d10s --timeout 10s -s bench/wrk/post.lua URL
local path = os.getenv("WRK_BODY_FILE")
if not path then error("set WRK_BODY_FILE to the file holding the request body") end
local fh = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = fh:read("*a")
fh:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  local out = {
    string.format('"requests": %d', summary.requests),
    string.format('"duration_us": %d', summary.duration),
    string.format('"bytes": %d', summary.bytes),
    string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
                  e.connect, e.read, e.write, e.status, e.timeout),
  }
  local pct = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(pct, string.format('"p%s": %d', tostring(p), latency:percentile(p)))
  end
  table.insert(pct, string.format('"mean": %.1f', latency.mean))
  table.insert(pct, string.format('"max": %d', latency.max))
  table.insert(out, '"latency_us": {' .. table.concat(pct, ", ") .. '}')
  io.write("{" .. table.concat(out, ", ") .. "}\n")
end
