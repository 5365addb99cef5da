-- wrk script: GET <GET_PREFIX><id><GET_SUFFIX>, the id drawn at random from IDS_FILE (one per
-- line); without IDS_FILE it requests the fixed path <GET_PREFIX><GET_SUFFIX>. The project's own,
-- so `make bench` runs from a plain clone. Ends with one line "WRKJSON {...}".
local ids = {}
local prefix = os.getenv("GET_PREFIX") or "/v1/items/"
local suffix = os.getenv("GET_SUFFIX") or ""
local path = os.getenv("IDS_FILE")
if path and #path > 0 then
  for line in io.lines(path) do
    if #line > 0 then ids[#ids + 1] = line end
  end
end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

request = function()
  if #ids == 0 then return wrk.format("GET", prefix .. suffix) end
  return wrk.format("GET", prefix .. ids[math.random(#ids)] .. suffix)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non2xx":%d,"connect_err":%d,"read_err":%d,"write_err":%d,"timeouts":%d,"bytes":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
