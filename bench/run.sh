#!/usr/bin/env bash
# make bench: release build, a fresh database (SQLite, or PostgreSQL with BENCH_DB=postgres), a
# minted token, loopback load with wrk at 16 connections, and the reference ceiling
# (../shared/bench/limit) in the same run. Bounded in time; stops everything it started.
#
# Scenarios, in order: idle RSS; bulk upsert of 1,000 findings (10 batches seed 10,000 items);
# GET item by random id; list page (50 items, a filter and a sort) at 10,000; PATCH with
# If-Match; create item; bulk up to 100,000 items; list page at 100,000; metrics at 100,000;
# export json and oscal of 100,000 (wall time, peak RSS); start to ready on the migrated
# database; the ceiling's GET /items/{id}. Prints a Markdown table (and keeps it in
# target/bench-<db>.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNECTIONS:-16}
BIG=${BENCH_BIG_ITEMS:-100000}
DB=${BENCH_DB:-sqlite}
ROUNDS=${BENCH_ROUNDS:-3}
# BENCH_SCENARIOS=get stops after GET by id and the ceiling; BENCH_SCENARIOS=scan runs only the
# 200 MB .nessus import (after the idle RSS), which `all` runs last.
SCENARIOS=${BENCH_SCENARIOS:-all}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
# The shipped build (the `dist` profile: fat LTO, one codegen unit), as the Dockerfile makes it.
# BENCH_BIN names a binary already built (comparing two builds); otherwise this tree's.
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
else
  cargo build --profile dist --quiet
  BIN=${CARGO_TARGET_DIR:-target}/dist/poam
fi
LIMIT_TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")/limit-target
# The ceiling, built from a writable copy of ../shared/bench/limit.
if [ -d ../shared/bench/limit ]; then
  mkdir -p target/limit-src
  cp -r ../shared/bench/limit/. target/limit-src/ && chmod -R u+w target/limit-src
  # Its own workspace, not a member of ours.
  grep -q '^\[workspace\]' target/limit-src/Cargo.toml || printf '\n[workspace]\n' >> target/limit-src/Cargo.toml
  # Built as fairly as the service: with this project's SQLite flags and jemalloc settings
  # (.cargo/config.toml applies under this directory, and an explicit LIBSQLITE3_FLAGS is passed
  # on), its allocator (jemalloc) and its release profile (fat LTO, one codegen unit). A ceiling
  # built with less would flatter the ratio.
  python3 - target/limit-src <<'PY'
import re, sys
root = sys.argv[1]
path = root + "/Cargo.toml"
text = open(path).read()
text = re.sub(r"\[profile\.release\][^\[]*", "", text)
text += "\n[profile.release]\ncodegen-units = 1\nlto = \"fat\"\n"
if "tikv-jemallocator" not in text:
    text = text.replace("[dependencies]\n", "[dependencies]\ntikv-jemallocator = \"0.6\"\n", 1)
open(path, "w").write(text)
main = root + "/src/main.rs"
code = open(main).read()
if "global_allocator" not in code:
    lines = code.split("\n")
    at = next(i for i, l in enumerate(lines) if not l.startswith("//!"))
    lines.insert(at, "#[global_allocator]\nstatic ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;")
    code = "\n".join(lines)
# The service's page cache (POAM_SQLITE_CACHE_MIB, 16 MiB shared by its 8 connections): the
# same per connection here, so neither side reads more of its file than the other would.
code = code.replace("PRAGMA foreign_keys=ON;", "PRAGMA foreign_keys=ON; PRAGMA cache_size=-2048;", 1)
open(main, "w").write(code)
PY
  (cd target/limit-src && CARGO_TARGET_DIR=$LIMIT_TARGET cargo build --release --quiet)
  # And laid out as the service is (build.rs, link/poam.order): its own requests' functions
  # first, from callgrind, linked by rust-lld in that order. The service's layout is a flag the
  # ceiling gets too (1-3% on the ceiling). BENCH_CEILING_ORDER=0 skips it.
  if [ "${BENCH_CEILING_ORDER:-1}" = 1 ] && [ "$(uname -m)" = x86_64 ]; then
    command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
    CEILING_BIN=$LIMIT_TARGET/release/limit ORDER_OUT=$LIMIT_TARGET/limit.order bash bench/symbol-order.sh
    (cd target/limit-src && CARGO_TARGET_DIR=$LIMIT_TARGET-ordered \
      RUSTFLAGS="-C link-arg=-Wl,--symbol-ordering-file=$LIMIT_TARGET/limit.order -C link-arg=-Wl,--no-warn-symbol-ordering" \
      cargo build --release --quiet)
    LIMIT_TARGET=$LIMIT_TARGET-ordered
  fi
fi
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$DB" = postgres ]; then psql "${base:-}" -qc "DROP DATABASE IF EXISTS ${db:-none} WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_LOG=warn POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
# The rate limiters stay on (their cost is part of every figure) with budgets the load cannot
# spend: the defaults would throttle wrk, as they should throttle any one client.
export POAM_RATE_LIMIT_PER_SECOND=1000000 POAM_RATE_LIMIT_BURST=1000000
# As the Dockerfile ships it: two malloc arenas, a fixed mmap threshold.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072}
export POAM_RATE_LIMIT_ADDRESS_PER_SECOND=1000000 POAM_RATE_LIMIT_ADDRESS_BURST=1000000
if [ "$DB" = postgres ]; then
  base=${POAM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  db=poam_bench_$$
  psql "$base" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  export POAM_DATABASE_URL="${base%/*}/$db"
  "$BIN" migrate >/dev/null
else
  export POAM_DATABASE_URL="sqlite://$dir/poam.db"
fi
BASE=http://127.0.0.1:$port
start_server() {
  local line
  line=$(python3 bench/ready.py "$BASE" -- "$BIN" serve | grep READYJSON)
  SERVER_PID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])["pid"])' "$line")
  READY_MS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])["ready_ms"])' "$line")
  pids+=("$SERVER_PID")
}
rss_of() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(d[sys.argv[2]])' "$1" "$2"; }
json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

start_server
sleep 1
IDLE_RSS=$(rss_of "$SERVER_PID")
TOKEN=$("$BIN" token --sub bench --role admin --ttl 2h)
AUTH="Authorization: Bearer $TOKEN"
SID=$(curl -sf -X POST "$BASE/v1/systems" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"name":"Bench","regime":"fedramp","impact_level":"moderate"}' | json_get id)

out=$dir/table.md
{
  echo "| scenario ($DB, $CONNS connections, $DURATION each) | req/s | p50 ms | p99 ms | non-2xx / notes |"
  echo "|---|---|---|---|---|"
} > "$out"
row() { # scenario WRKJSON-line
  python3 - "$1" "$2" >> "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[2].split("WRKJSON ", 1)[1])
cpu = ""
if "server_user_us" in d:
    cpu = f"; server CPU per request {d['server_user_us'] + d['server_sys_us']:.1f} µs ({d['server_user_us']:.1f} user + {d['server_sys_us']:.1f} system)"
print(f"| {sys.argv[1]} | {d['rps']:.0f} | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} | {d['non2xx']}{cpu} |")
PY
}
# with_cpu PID CMD...: runs CMD (one wrk run, printing its WRKJSON line) and adds the CPU time
# the server process PID spent per request meanwhile (/proc/PID/stat, user and system): a figure
# of the server alone, which wrk's share of the two cores does not move.
with_cpu() {
  local pid=$1 before line after
  shift
  before=$(awk '{print $14, $15}' "/proc/$pid/stat")
  line=$("$@")
  after=$(awk '{print $14, $15}' "/proc/$pid/stat")
  python3 - "$line" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
line, before, after, hz = sys.argv[1:]
d = json.loads(line.split("WRKJSON ", 1)[1])
(u0, s0), (u1, s1) = (map(int, before.split()), map(int, after.split()))
n = max(d["requests"], 1)
d["server_user_us"] = (u1 - u0) / int(hz) * 1e6 / n
d["server_sys_us"] = (s1 - s0) / int(hz) * 1e6 / n
print("WRKJSON " + json.dumps(d))
PY
}
note() { echo "| $1 | $2 | | | $3 |" >> "$out"; }
wrk_run() { wrk -t2 -c"$CONNS" -d"$DURATION" -H "$AUTH" "$@" "$BASE" | grep WRKJSON; }
# A .nessus of BENCH_SCAN_HOSTS hosts × BENCH_SCAN_ITEMS findings (default 1,000 × 100: about
# 200 MB, 100,000 findings) imported into a fresh system, streamed from disk by curl: the wall
# time and the server's peak and after RSS; then the same file again (a repeat: nothing written).
scan_import() {
  local file=$dir/scan.nessus sid line mb summary pass
  python3 bench/gen_nessus.py "$file" "${BENCH_SCAN_HOSTS:-1000}" "${BENCH_SCAN_ITEMS:-100}" >/dev/null
  mb=$(( $(stat -c %s "$file") / 1048576 ))
  sid=$(curl -sf -X POST "$BASE/v1/systems" -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"name":"Scan bench","regime":"fedramp","impact_level":"moderate"}' | json_get id)
  for pass in first repeat; do
    line=$(python3 bench/peak.py "$SERVER_PID" -- curl -s -o "$dir/scan.json" -w '%{http_code}' --max-time 3600 \
      -H "$AUTH" -H 'Content-Type: application/xml' -X POST -T "$file" \
      "$BASE/v1/systems/$sid/imports/nessus?filename=bench.nessus" | grep PEAKJSON)
    summary=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print("{} findings: {} created, {} unchanged, {} failed".format(s["findings"], s["created"], s["unchanged"], s["failed"]))' "$dir/scan.json" 2>/dev/null || echo "no report")
    note "import ($pass) of a $mb MiB .nessus" "$(field "$line" wall_s) s" "HTTP $(field "$line" out); server peak RSS $(field "$line" peak_rss_mib) MiB, after $(field "$line" after_rss_mib) MiB; $summary"
  done
  rm -f "$file" "$dir/scan.json"
}
ids_file() { # every item id of the system, in display order
  python3 - "$BASE" "$SID" "$TOKEN" > "$1" <<'PY'
import json, sys, urllib.request
base, sid, token = sys.argv[1:]
cursor = None
while True:
    url = f"{base}/v1/systems/{sid}/items?limit=200" + (f"&cursor={cursor}" if cursor else "")
    page = json.load(urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})))
    for item in page["items"]:
        print(item["id"])
    cursor = page["next_cursor"]
    if not cursor:
        break
PY
}
analyze() { if [ "$DB" = postgres ]; then psql "$POAM_DATABASE_URL" -qc "ANALYZE" >/dev/null; else sqlite3_analyze; fi; }
sqlite3_analyze() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("ANALYZE"); c.commit()' "$dir/poam.db"; }

note "idle RSS after start" "$IDLE_RSS MiB" "target < 20 MiB"
if [ "$SCENARIOS" = scan ]; then
  scan_import
  echo; cat "$out"; cp "$out" "target/bench-$DB-scan.md"; exit 0
fi
line=$(python3 bench/bulk.py "$BASE" "$SID" "$TOKEN" 1 10000)
note "bulk upsert, 1,000 findings per request (10 requests)" "$(field "$line" items_per_s) items/s" "p50 $(field "$line" p50_ms) ms per 1,000; max $(field "$line" max_ms) ms"
analyze
ids=$dir/ids.txt
ids_file "$ids"
# GET by id and the ceiling, interleaved (ROUNDS times each, median kept), so both meet the
# same machine state. The ceiling is a separate process on its own SQLite file.
LIMIT_BIN=${LIMIT_TARGET}/release/limit
if [ -x "$LIMIT_BIN" ]; then
  # No "SELECT 1" on each checkout (r2d2's default): the service does not test its connections
  # on checkout either (only one idle long enough to have been dropped).
  LIMIT_ADDR=127.0.0.1:8090 LIMIT_DB=$dir/limit.sqlite3 LIMIT_TEST_ON_CHECKOUT=0 "$LIMIT_BIN" >/dev/null 2>&1 &
  LIMIT_PID=$!
  pids+=("$LIMIT_PID")
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8090/static >/dev/null && break; sleep 0.1; done
  seq 1 10000 > "$dir/limit-ids.txt"
fi
# The ceiling twice: its `/items/{id}` reads on actix's blocking pool (web::block, the usual
# pattern), its `/items-inline/{id}` on the worker itself, as this service reads one row by key
# on SQLite when a connection is idle (AppState::read). The second is the fair one.
limit_run() { wrk -t2 -c"$CONNS" -d"$DURATION" -s bench/get.lua http://127.0.0.1:8090 | grep WRKJSON; }
ours=() ceiling=() inline=()
for _ in $(seq 1 "$ROUNDS"); do
  ours+=("$(IDS_FILE=$ids GET_PREFIX=/v1/items/ GET_SUFFIX= with_cpu "$SERVER_PID" wrk_run -s bench/get.lua)")
  if [ -x "$LIMIT_BIN" ]; then
    ceiling+=("$(IDS_FILE=$dir/limit-ids.txt GET_PREFIX=/items/ GET_SUFFIX= with_cpu "$LIMIT_PID" limit_run)")
    inline+=("$(IDS_FILE=$dir/limit-ids.txt GET_PREFIX=/items-inline/ GET_SUFFIX= with_cpu "$LIMIT_PID" limit_run)")
  fi
done
median_run() { printf '%s\n' "$@" | python3 -c '
import json, sys
runs = [l for l in sys.stdin.read().splitlines() if l.strip()]
runs.sort(key=lambda l: json.loads(l.split("WRKJSON ", 1)[1])["rps"])
print(runs[len(runs) // 2])'; }
all_rps() { printf '%s\n' "$@" | python3 -c '
import json, sys
rates = [json.loads(l.split("WRKJSON ", 1)[1])["rps"] for l in sys.stdin.read().splitlines() if l.strip()]
print(", ".join("%.0f" % r for r in rates))'; }
row "GET item by random id (10,000 items; median of $ROUNDS: $(all_rps "${ours[@]}"))" "$(median_run "${ours[@]}")"
if [ ${#ceiling[@]} -gt 0 ]; then
  row "ceiling: bare actix + diesel + SQLite GET /items/{id}, web::block (median of $ROUNDS: $(all_rps "${ceiling[@]}"))" "$(median_run "${ceiling[@]}")"
  row "ceiling inline: GET /items-inline/{id}, read on the worker (median of $ROUNDS: $(all_rps "${inline[@]}"))" "$(median_run "${inline[@]}")"
  python3 - "$out" >> "$out" <<'PY2'
import sys
rows = open(sys.argv[1]).read().splitlines()
def rps(prefix):
    for r in rows:
        if r.startswith("| " + prefix):
            return float(r.split("|")[2])
def cpu(prefix):
    for r in rows:
        if r.startswith("| " + prefix) and "server CPU per request " in r:
            return float(r.split("server CPU per request ")[1].split(" ")[0])
ours = rps("GET item by random id")
print(f"| GET by id as a share of the ceiling, web::block (medians) | {100 * ours / rps('ceiling:'):.0f}% | | | |")
print(f"| GET by id as a share of the ceiling inline, the fair one (medians) | {100 * ours / rps('ceiling inline'):.0f}% | | | target ≥ 90% |")
mine, theirs = cpu("GET item by random id"), cpu("ceiling inline")
if mine and theirs:
    print(f"| server CPU per request, the ceiling inline's as a share of ours (the median runs) | {100 * theirs / mine:.0f}% | | | {theirs:.1f} µs against {mine:.1f} µs |")
PY2
  # Each round's two runs meet the same machine state (ours, then the ceiling's, seconds apart):
  # their ratio, round by round, is steadier than the ratio of the two medians when the machine's
  # speed drifts between rounds.
  python3 - "${#ours[@]}" "${ours[@]}" "${inline[@]}" >> "$out" <<'PY3'
import json, sys
n = int(sys.argv[1])
rps = [json.loads(l.split("WRKJSON ", 1)[1])["rps"] for l in sys.argv[2:]]
shares = sorted(100 * a / b for a, b in zip(rps[:n], rps[n:]))
print(f"| GET by id as a share of the ceiling inline, round by round (paired) | {shares[len(shares) // 2]:.0f}% | | | median of {', '.join('%.0f%%' % s for s in shares)} |")
PY3
fi
if [ "$SCENARIOS" = get ]; then
  echo; cat "$out"; cp "$out" "target/bench-$DB-get.md"; exit 0
fi
LIST="/v1/systems/$SID/items?limit=50&status=open&sort=-risk_rating"
row "list page (50, status filter, -risk_rating) at 10,000" "$(IDS_FILE= GET_PREFIX=$LIST GET_SUFFIX= wrk_run -s bench/get.lua)"
note "executive HTML report of one system at 10,000 items (median of 5)" "$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "$BASE/v1/systems/$SID/report?format=html&level=executive" -H "$AUTH"; done | sort -n | sed -n 3p | python3 -c 'import sys; print(round(float(sys.stdin.read()) * 1000))') ms" "target < 1 s"
row "PATCH with If-Match (random item of 10,000)" "$(IDS_FILE=$ids wrk_run -s bench/patch.lua)"
row "create item (history event included)" "$(CREATE_PATH=/v1/systems/$SID/items wrk_run -s bench/create.lua)"
have=$(curl -sf "$BASE/v1/systems/$SID/metrics" -H "$AUTH" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo 0)
more=$(( BIG - have ))
if [ "$more" -gt 0 ]; then
  line=$(python3 bench/bulk.py "$BASE" "$SID" "$TOKEN" 20001 "$more")
  note "bulk upsert to $BIG items ($(field "$line" batches) requests)" "$(field "$line" items_per_s) items/s" "p50 $(field "$line" p50_ms) ms per 1,000; max $(field "$line" max_ms) ms"
fi
analyze
# 10,000 ids drawn at random from the whole table, read from the database itself (listing a
# million items page by page would take longer than the rest of the bench).
if [ "$DB" = postgres ]; then
  psql "$POAM_DATABASE_URL" -Atc "SELECT id FROM items WHERE system_id = '$SID' ORDER BY random() LIMIT 10000" > "$ids"
else
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("\n".join(r[0] for r in c.execute("SELECT id FROM items WHERE system_id = ? ORDER BY random() LIMIT 10000", (sys.argv[2],))))' "$dir/poam.db" "$SID" > "$ids"
fi
# As at 10,000: ROUNDS runs, the median kept (the first run makes the renderings of the ids,
# which the 10,000 figure's rounds share with its warm ones: one cold run against a median of
# warm ones is not a comparison).
big=()
for _ in $(seq 1 "$ROUNDS"); do
  big+=("$(IDS_FILE=$ids GET_PREFIX=/v1/items/ GET_SUFFIX= with_cpu "$SERVER_PID" wrk_run -s bench/get.lua)")
done
row "GET item by random id ($BIG items; median of $ROUNDS: $(all_rps "${big[@]}"))" "$(median_run "${big[@]}")"
row "list page (50, status filter, -risk_rating) at $BIG" "$(IDS_FILE= GET_PREFIX=$LIST GET_SUFFIX= wrk_run -s bench/get.lua)"
times=()
for _ in 1 2 3 4 5; do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' "$BASE/v1/systems/$SID/metrics" -H "$AUTH")")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
note "metrics of one system at $BIG items (median of 5)" "$(python3 -c "print(round($median*1000))") ms" ""
for format in json oscal; do
  line=$(python3 bench/peak.py "$SERVER_PID" -- curl -s -o /dev/null -w '%{size_download}' -H "$AUTH" "$BASE/v1/systems/$SID/export?format=$format" | grep PEAKJSON)
  bytes=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])["out"][0])' "$line")
  note "export $format of $BIG items" "$(field "$line" wall_s) s" "server peak RSS $(field "$line" peak_rss_mib) MiB; $(( bytes / 1048576 )) MiB streamed; target < 5 s, < 100 MiB"
done
# Hostile scenarios, each while wrk reads items by id: eight exports read at 1 KB/s, then
# concurrent 30 MB OSCAL imports (the figures: ordinary reads' rate and latency meanwhile, what
# the hostile clients were answered, the server's peak RSS and its RSS after).
hostile() { # label scenario args...
  local label=$1 line; shift
  line=$(python3 bench/hostile.py "$@" | grep HOSTILEJSON)
  python3 - "$label" "$line" >> "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[2].split(" ", 1)[1])
g = d["get"]
notes = [f"hostile answers {d['hostile_answers']}", f"RSS {d['rss_before_mib']} → peak {d['peak_rss_mib']} → after {d['rss_after_mib']} MiB"]
if "readyz" in d: notes.append(f"/readyz {d['readyz']}")
if "body_mb" in d: notes.append(f"{d['body_mb']} MB each")
print(f"| {sys.argv[1]} | {g['rps']:.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} | {g['non2xx']} non-2xx; " + "; ".join(notes) + " |")
PY
}
hostile "GET by id during 8 exports read at 1 KB/s" stalled "$BASE" "$SID" "$TOKEN" "$SERVER_PID" "$ids" "$DURATION" "$CONNS" 8
hostile "GET by id during 4 concurrent 30 MB OSCAL imports" burst "$BASE" "$SID" "$TOKEN" "$SERVER_PID" "$ids" "$DURATION" "$CONNS" 4 30
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
sleep 0.5
start_server
note "start to ready on the migrated database ($BIG items)" "$READY_MS ms" "target < 1,000 ms"
scan_import
kill "$SERVER_PID" 2>/dev/null || true

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
cat "$out"
cp "$out" "target/bench-$DB.md"
