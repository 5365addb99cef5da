#!/usr/bin/env python3
"""Runs a command while sampling a process's resident memory every 20 ms:
python3 bench/peak.py PID -- CMD... ; prints PEAKJSON with the wall time, the command's stdout
(first line) and the process's peak and final RSS in MiB during the run."""
import json, subprocess, sys, threading, time

pid = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1:]

def rss():
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0

peak, done = [rss()], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.02)
t = threading.Thread(target=sample); t.start()
start = time.perf_counter()
out = subprocess.run(cmd, capture_output=True, text=True)
wall = time.perf_counter() - start
done.set(); t.join()
print("PEAKJSON " + json.dumps({"wall_s": round(wall, 3), "peak_rss_mib": round(peak[0], 1),
                               "after_rss_mib": round(rss(), 1), "out": out.stdout.strip().splitlines()[:1],
                               "rc": out.returncode}))
