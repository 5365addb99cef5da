-- wrk script (two threads: -t2): PATCH a random item (from IDS_FILE) with If-Match set to the version this thread
-- last saw for it (1 at first); each response's id and version (the body's first "id" and its
-- "version") update the table, so a 412 only happens when two connections race on one item.
-- Each wrk thread keeps its own table, so the threads patch disjoint halves of the ids (a
-- thread's table would be stale for items the other one changed).
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local ids, versions = {}, {}
init = function(args)
  local n = 0
  for line in io.lines(os.getenv("IDS_FILE")) do
    if #line > 0 then
      if n % 2 == (tid or 0) then ids[#ids + 1] = line; versions[line] = 1 end
      n = n + 1
    end
  end
end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local n = 0

request = function()
  n = n + 1
  local id = ids[math.random(#ids)]
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/merge-patch+json"
  headers["If-Match"] = '"' .. versions[id] .. '"'
  local body = string.format('{"comments":"Reviewed in the weekly sync, pass %d.","interim_mitigation":"WAF rule %d blocks the vector."}', n, n % 97)
  return wrk.format("PATCH", "/v1/items/" .. id, headers, body)
end

response = function(status, headers, body)
  local id = string.match(body, '"id":"([0-9a-f%-]+)"')
  local version = string.match(body, '"version":(%d+)')
  if id and version and versions[id] then versions[id] = tonumber(version) end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
