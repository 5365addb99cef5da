#!/usr/bin/env python3
"""Hostile scenarios for `make bench`, each while wrk measures ordinary reads (GET by id):

  python3 bench/hostile.py stalled BASE SYSTEM_ID TOKEN PID IDS_FILE DURATION CONNS [READERS]
      READERS (default 8) clients start a JSON export each and read it at 1 KB/s for the whole
      run; /readyz is probed every 250 ms.
  python3 bench/hostile.py burst BASE SYSTEM_ID TOKEN PID IDS_FILE DURATION CONNS [REQUESTS] [MB]
      REQUESTS (default 4) concurrent OSCAL imports of about MB (default 30) MB each, sent at
      once; the server's RSS is read again 10 s after the last answer.

The server's RSS is sampled every 20 ms. Prints one HOSTILEJSON line: wrk's rate and latency
during the scenario, the answers the hostile clients got, /readyz's answers, peak RSS, RSS after.
"""
import json, os, socket, subprocess, sys, threading, time, urllib.parse, urllib.request, uuid

mode, base, sid, token, pid, ids, duration, conns = sys.argv[1:9]
extra = sys.argv[9:]
url = urllib.parse.urlparse(base)


def rss():
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


stop = threading.Event()
peak = [rss()]
start_rss = peak[0]


def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.02)


def wrk():
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{duration}", "-H", f"Authorization: Bearer {token}",
         "-s", "bench/get.lua", base],
        env={**os.environ, "IDS_FILE": ids, "GET_PREFIX": "/v1/items/", "GET_SUFFIX": ""},
        capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line.split(" ", 1)[1])
    return {"error": out.stdout[-300:] + out.stderr[-300:]}


answers, lock = [], threading.Lock()


def slow_reader():
    """One export read at 1 KB/s until the scenario ends."""
    s = socket.create_connection((url.hostname, url.port), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall((f"GET /v1/systems/{sid}/export?format=json HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode())
    # The answer starts once the export's snapshot is spooled: at a million items that takes
    # longer than a scenario, and such a reader is counted as "spooling", not lost.
    s.settimeout(1)
    first = None
    while first is None and not stop.is_set():
        try:
            first = s.recv(1024)
        except socket.timeout:
            continue
        except OSError:
            first = b""
    if first is None:
        status = "spooling"
    else:
        status = first.split(b" ", 2)[1].decode() if first.startswith(b"HTTP/") else "closed"
    with lock:
        answers.append(status)
    s.settimeout(60)
    while not stop.is_set():
        try:
            if not s.recv(1024):
                break
        except OSError:
            break
        time.sleep(1)
    s.close()


readyz = []


def probe_ready():
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                readyz.append(r.status)
        except urllib.error.HTTPError as e:
            readyz.append(e.code)
        except OSError:
            readyz.append(0)
        time.sleep(0.25)


def oscal_document(mb):
    """An OSCAL 1.1.2 POA&M of about `mb` MB: items with their observations and risks."""
    pad = "The listener negotiates legacy TLS; the plan replaces its policy and rescans. " * 12
    items, observations, risks, size, n = [], [], [], 0, 0
    while size < mb * 1_000_000:
        o, r = str(uuid.uuid4()), str(uuid.uuid4())
        observations.append({"uuid": o, "description": pad, "methods": ["TEST"],
                             "collected": "2026-10-01T00:00:00Z"})
        risks.append({"uuid": r, "title": f"Legacy TLS {n}", "description": pad, "statement": pad,
                      "status": "open", "deadline": "2027-03-31T00:00:00Z",
                      "characterizations": [{"origin": {"actors": [{"type": "party", "actor-uuid": o}]},
                                             "facets": [{"name": "risk", "system": "https://fedramp.gov",
                                                         "value": "moderate"}]}]})
        items.append({"uuid": str(uuid.uuid4()), "title": f"Legacy TLS on listener {n}",
                      "description": pad, "related-observations": [{"observation-uuid": o}],
                      "related-risks": [{"risk-uuid": r}]})
        size += 4 * len(pad) + 400
        n += 1
    return json.dumps({"plan-of-action-and-milestones": {
        "uuid": str(uuid.uuid4()),
        "metadata": {"title": "Burst", "last-modified": "2026-10-01T00:00:00Z", "version": "1",
                     "oscal-version": "1.1.2"},
        "observations": observations, "risks": risks, "poam-items": items}}).encode()


def importer(body):
    req = urllib.request.Request(f"{base}/v1/systems/{sid}/imports/oscal", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = 0
    with lock:
        answers.append(str(status))


threads = [threading.Thread(target=sample)]
if mode == "stalled":
    threads += [threading.Thread(target=slow_reader) for _ in range(int(extra[0]) if extra else 8)]
    threads.append(threading.Thread(target=probe_ready))
elif mode == "burst":
    n = int(extra[0]) if extra else 4
    body = oscal_document(int(extra[1]) if len(extra) > 1 else 30)
    threads += [threading.Thread(target=importer, args=(body,)) for _ in range(n)]
else:
    sys.exit(f"unknown scenario {mode}")
for t in threads:
    t.start()
time.sleep(1)
result = wrk()
if mode == "burst":
    for t in threads[1:]:
        t.join()
    settled = time.time()
    time.sleep(10)
stop.set()
for t in threads:
    t.join()
summary = {
    "get": {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "non2xx", "timeouts")},
    "hostile_answers": {a: answers.count(a) for a in sorted(set(answers))},
    "rss_before_mib": round(start_rss, 1), "peak_rss_mib": round(peak[0], 1),
    "rss_after_mib": round(rss(), 1),
}
if mode == "stalled":
    summary["readyz"] = {str(a): readyz.count(a) for a in sorted(set(readyz))}
if mode == "burst":
    summary["body_mb"] = round(len(body) / 1e6, 1)
print("HOSTILEJSON " + json.dumps(summary))
