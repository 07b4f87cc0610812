-- POST one OIP v2 inference body per request, cycling through the bodies in $WRK_BODIES
-- (one JSON body per line, written by bench/server_vs_mlserver.py), and print the run's
-- figures as one JSON line prefixed "WRK_RESULT " from done().

local bodies = {}
local index = 0

function init(args)
  local path = os.getenv("WRK_BODIES")
  if path == nil then
    error("WRK_BODIES is not set: the file of request bodies, one per line")
  end
  for line in io.lines(path) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("no request bodies in " .. path)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
