-- wrk script: POST an item with realistic field sizes to CREATE_PATH; prints one WRKJSON line.
local path = os.getenv("CREATE_PATH")
local n = 0
local ratings = {"critical", "high", "moderate", "low"}
local sources = {"scan", "assessment", "pen_test", "continuous_monitoring"}
local description = string.rep("The service accepts TLS 1.0 handshakes on its public listener. ", 6)
local plan = string.rep("Disable legacy protocols in the listener policy, redeploy, rescan. ", 4)

request = function()
  n = n + 1
  local body = string.format([[{"title":"Finding %d from the nightly scan","description":"%s","risk_rating":"%s","detected_on":"2026-10-01","scheduled_completion":"2026-12-31","source":{"kind":"%s","detector":"Tenable Nessus","identifier":"plugin %d"},"controls":["SC-8(1)","3.13.8"],"cves":["CVE-2011-3389"],"assets":["host-%d.example.org"],"owner":{"name":"Dana Whitfield","email":"dana@example.org"},"remediation_plan":"%s"}]],
    n, description, ratings[(n % 4) + 1], sources[(n % 4) + 1], 100000 + n, n % 500, plan)
  -- wrk.format replaces wrk.headers (the -H options) when given a table: carry them over.
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
