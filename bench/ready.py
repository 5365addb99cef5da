#!/usr/bin/env python3
"""Start to ready: python3 bench/ready.py URL -- CMD... starts CMD (the server) and polls
URL/readyz every 2 ms; prints READYJSON with the milliseconds until it answered 200 and the
server's RSS then, and leaves the server running (its pid in the line)."""
import json, subprocess, sys, time, urllib.request

url = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1:]
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        if urllib.request.urlopen(url + "/readyz", timeout=1).status == 200:
            break
    except Exception:
        pass
    if time.perf_counter() - start > 30 or proc.poll() is not None:
        sys.exit("the server did not become ready")
    time.sleep(0.002)
ms = (time.perf_counter() - start) * 1000
print("READYJSON " + json.dumps({"ready_ms": round(ms, 1), "pid": proc.pid}))
