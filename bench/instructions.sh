#!/usr/bin/env bash
# Instructions per GET item by id, counted by valgrind's callgrind: the same figure on every run
# (wrk's requests per second swing by 20% on a shared 2-core machine; instruction counts do not).
# Runs the service (BENCH_BIN, default the dist build) on a fresh SQLite database with one item,
# and the reference ceiling's /items-inline/{id} when it was built (make bench builds it), each
# twice under callgrind: with N requests after a warm-up and with none; the difference divided
# by N is the work of one request in user space (kernel and client time are not counted).
#
#   bash bench/instructions.sh            # N=4000
#   BENCH_BIN=/path/to/poam N=2000 bash bench/instructions.sh
#
# Add CALLGRIND_KEEP=dir to keep the profiles (callgrind_annotate dir/service.run) for a
# per-function breakdown. ITEMS=10000 reads, on both sides, ITEMS items at random (the same
# pseudo-random sequence every run) from a database of ITEMS items, as make bench's GET by id does
# (the service's seeded by bench/bulk.py, the ceiling's its own 10,000 rows): B-trees three
# levels deep and SQLite's page cache missing, where the default reads one item over and over.
# One worker thread on each side: the warm-up and the measured requests (two connections) meet
# the same thread and what it keeps (the service's remembered row ids).
# WARM=each warms up by reading every one of the ITEMS items once (make bench's GET by id reads
# each of its 10,000 about 30 times), WARM=2000 (the default) by 2,000 drawn at random.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/dist/poam}
LIMIT=$(realpath -m "${CARGO_TARGET_DIR:-target}")/limit-target/release/limit
# The ceiling as bench/run.sh laid it out, when it did.
[ -x "${LIMIT%/release/limit}-ordered/release/limit" ] && LIMIT=${LIMIT%/release/limit}-ordered/release/limit
N=${N:-4000}
ITEMS=${ITEMS:-1}
WARM=${WARM:-2000}
dir=$(mktemp -d)
keep=${CALLGRIND_KEEP:-$dir}
mkdir -p "$keep"
trap 'rm -rf "$dir"' EXIT

hit() { # URL TOKEN COUNT [IDS_FILE]: sequential keep-alive GETs that must all answer 200; with
  # IDS_FILE, of URL followed by one of its ids drawn at random (seeded: the same every run);
  # COUNT `each`: every id of IDS_FILE once, in its order
  python3 - "$@" <<'PY'
import http.client, random, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); token = sys.argv[2]
ids = open(sys.argv[4]).read().split() if len(sys.argv) > 4 else None
draw = random.Random(17)
each = sys.argv[3] == "each"
n = len(ids) if each else int(sys.argv[3])
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(n):
    path = u.path + (ids[i] if each else draw.choice(ids)) if ids else u.path
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"{path}: HTTP {r.status}")
PY
}
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'; }
wait_for() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; return 1; }

service() { # OUTFILE COUNT
  local data=$dir/data-$2 port=18557 token sid iid vp
  mkdir -p "$data"
  POAM_DATA_DIR=$data POAM_BIND=127.0.0.1:$port POAM_LOG=warn \
    POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00 POAM_DATABASE_URL=sqlite://$data/poam.db \
    POAM_RATE_LIMIT_PER_SECOND=1000000 POAM_RATE_LIMIT_BURST=1000000 \
    POAM_RATE_LIMIT_ADDRESS_PER_SECOND=1000000 POAM_RATE_LIMIT_ADDRESS_BURST=1000000 POAM_WORKERS=1 \
    valgrind --tool=callgrind --callgrind-out-file="$1" "$BIN" serve >/dev/null 2>&1 &
  vp=$!
  wait_for "http://127.0.0.1:$port/readyz"
  token=$(POAM_DATA_DIR=$data POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00 \
    POAM_DATABASE_URL=sqlite://$data/poam.db "$BIN" token --sub bench --role admin --ttl 2h)
  sid=$(curl -sf -X POST "http://127.0.0.1:$port/v1/systems" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"name":"Bench","regime":"fedramp","impact_level":"moderate"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # The item of bench/bulk.py (realistic field sizes).
  iid=$(python3 - <<'PY' | curl -sf -X POST "http://127.0.0.1:$port/v1/systems/$sid/items" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d @- | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
import json
print(json.dumps({
    "title": "Finding 1 from the nightly scan",
    "description": "The service accepts TLS 1.0 handshakes on its public listener. " * 6,
    "risk_rating": "high", "detected_on": "2026-10-01", "scheduled_completion": "2026-12-31",
    "source": {"kind": "scan", "detector": "Tenable Nessus", "identifier": "plugin 100001"},
    "controls": ["SC-8(1)", "3.13.8"], "cves": ["CVE-2011-3389"], "assets": ["host-1.example.org"],
    "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
    "remediation_plan": "Disable legacy protocols in the listener policy, redeploy, rescan. " * 4,
}))
PY
)
  if [ "$ITEMS" -gt 1 ]; then
    python3 bench/bulk.py "http://127.0.0.1:$port" "$sid" "$token" 1 "$((ITEMS - 1))" >/dev/null
    python3 -c 'import sqlite3,sys; print("\n".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT id FROM items")))' \
      "$data/poam.db" > "$data/ids.txt"
    hit "http://127.0.0.1:$port/v1/items/" "$token" "$WARM" "$data/ids.txt"
    # The seeding's instructions differ from run to run by more than a request's: counted from
    # zero after the warm-up instead, up to a dump (OUTFILE.1) after the N requests.
    callgrind_control -z "$vp" >/dev/null 2>&1
    hit "http://127.0.0.1:$port/v1/items/" "$token" "$2" "$data/ids.txt"
    callgrind_control -d "$vp" >/dev/null 2>&1
  else
    hit "http://127.0.0.1:$port/v1/items/$iid" "$token" 200
    hit "http://127.0.0.1:$port/v1/items/$iid" "$token" "$2"
  fi
  kill "$vp"; wait "$vp" 2>/dev/null || true
}

ceiling() { # OUTFILE COUNT
  local vp
  mkdir -p "$dir/limit-$2"
  (cd "$dir/limit-$2" && LIMIT_ROWS=$((ITEMS > 10000 ? ITEMS : 10000)) LIMIT_TEST_ON_CHECKOUT=0 LIMIT_WORKERS=1 exec valgrind --tool=callgrind --callgrind-out-file="$1" "$LIMIT") >/dev/null 2>&1 &
  vp=$!
  wait_for http://127.0.0.1:8090/static
  if [ "$ITEMS" -gt 1 ]; then
    seq 1 "$ITEMS" > "$dir/limit-$2/ids.txt"
    hit http://127.0.0.1:8090/items-inline/ x "$WARM" "$dir/limit-$2/ids.txt"
    callgrind_control -z "$vp" >/dev/null 2>&1
    hit http://127.0.0.1:8090/items-inline/ x "$2" "$dir/limit-$2/ids.txt"
    callgrind_control -d "$vp" >/dev/null 2>&1
  else
    hit http://127.0.0.1:8090/items-inline/17 x 200
    hit http://127.0.0.1:8090/items-inline/17 x "$2"
  fi
  kill "$vp"; wait "$vp" 2>/dev/null || true
}

if [ "$ITEMS" -gt 1 ]; then
  service "$keep/service.run" "$N"
  s=$(( $(total "$keep/service.run.1") / N ))
else
  service "$keep/service.base" 0
  service "$keep/service.run" "$N"
  s=$(( ($(total "$keep/service.run") - $(total "$keep/service.base")) / N ))
fi
echo "service GET /v1/items/{id}: $s instructions per request"
if [ -x "$LIMIT" ]; then
  if [ "$ITEMS" -gt 1 ]; then
    ceiling "$keep/ceiling.run" "$N"
    c=$(( $(total "$keep/ceiling.run.1") / N ))
  else
    ceiling "$keep/ceiling.base" 0
    ceiling "$keep/ceiling.run" "$N"
    c=$(( ($(total "$keep/ceiling.run") - $(total "$keep/ceiling.base")) / N ))
  fi
  echo "ceiling GET /items-inline/{id}: $c instructions per request"
  python3 -c "import sys; print(f'INSTRJSON {{\"service\": {sys.argv[1]}, \"ceiling\": {sys.argv[2]}, \"ratio\": {int(sys.argv[2])/int(sys.argv[1]):.2f}}}')" "$s" "$c"
else
  echo "no ceiling at $LIMIT (make bench builds it)"
fi
