#!/usr/bin/env python3
"""Bulk-upserts scanner findings: python3 bench/bulk.py BASE SYSTEM_ID TOKEN FIRST COUNT [BATCH]
sends COUNT findings numbered from FIRST in batches of BATCH (default 1000), realistic field sizes,
one asset each; prints one BULKJSON line with per-batch wall times (ms) and items per second."""
import json, sys, time, urllib.request

base, sid, token, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
batch = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
ratings = ["critical", "high", "moderate", "low"]
desc = "The service accepts TLS 1.0 handshakes on its public listener. " * 6
plan = "Disable legacy protocols in the listener policy, redeploy, rescan. " * 4

def finding(n):
    return {
        "title": f"Finding {n} from the nightly scan",
        "description": desc,
        "risk_rating": ratings[n % 4],
        "detected_on": "2026-10-01",
        "scheduled_completion": "2026-12-31",
        "source": {"kind": "scan", "detector": "Tenable Nessus", "identifier": f"plugin {100000 + n}"},
        "controls": ["SC-8(1)", "3.13.8"],
        "cves": ["CVE-2011-3389"],
        "assets": [f"host-{n}.example.org"],
        "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
        "remediation_plan": plan,
    }

times, created = [], 0
for start in range(first, first + count, batch):
    body = json.dumps({"items": [finding(n) for n in range(start, min(start + batch, first + count))]}).encode()
    req = urllib.request.Request(f"{base}/v1/systems/{sid}/items/bulk", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.perf_counter()
    answer = json.load(urllib.request.urlopen(req, timeout=600))
    times.append((time.perf_counter() - t) * 1000)
    created += answer["summary"]["created"]
    if answer["summary"]["failed"]:
        sys.exit(f"bulk failed: {answer['summary']}")
times.sort()
print("BULKJSON " + json.dumps({
    "batches": len(times), "created": created,
    "p50_ms": round(times[len(times) // 2], 1), "max_ms": round(times[-1], 1),
    "items_per_s": round(created / (sum(times) / 1000), 0),
}))
