#!/usr/bin/env bash
# GET by id at a given size, alone: a fresh SQLite service (the dist build, or BENCH_BIN), N
# items seeded by bench/bulk.py (1,000 a request), 10,000 of their ids drawn at random, then
# three 10 s runs of wrk (16 connections, bench/get.lua), the item cache's counters from
# /metrics after each (hits, misses, rechecks). Compare two sizes run one after the other:
#   SCALE_ITEMS=10000 bash bench/scale.sh; SCALE_ITEMS=1000000 bash bench/scale.sh
# SCALE_ANALYZE=1 runs ANALYZE on the database before the server starts.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${SCALE_ITEMS:-1000000}
if [ -n "${BENCH_BIN:-}" ]; then BIN=$BENCH_BIN; else cargo build --profile dist --quiet; BIN=${CARGO_TARGET_DIR:-target}/dist/poam; fi
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_LOG=warn POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
export POAM_RATE_LIMIT_PER_SECOND=1000000 POAM_RATE_LIMIT_BURST=1000000
export POAM_RATE_LIMIT_ADDRESS_PER_SECOND=1000000 POAM_RATE_LIMIT_ADDRESS_BURST=1000000
export POAM_DATABASE_URL="sqlite://$dir/poam.db"
BASE=http://127.0.0.1:$port
serve() {
  "$BIN" serve > "$dir/server.log" 2>&1 & pid=$!
  for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && return; sleep 0.1; done
  echo "the server did not become ready"; cat "$dir/server.log"; exit 1
}
serve
TOKEN=$("$BIN" token --sub bench --role admin --ttl 2h)
AUTH="Authorization: Bearer $TOKEN"
SID=$(curl -sf -X POST "$BASE/v1/systems" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"name":"Scale","regime":"fedramp","impact_level":"moderate"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 bench/bulk.py "$BASE" "$SID" "$TOKEN" 1 "$N" | grep BULKJSON
# A restart, as after a deployment: the write burst's WAL is checkpointed by the last close.
kill "$pid"; wait "$pid" 2>/dev/null || true
if [ -n "${SCALE_ANALYZE:-}" ]; then
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("ANALYZE"); c.commit()' "$dir/poam.db"
fi
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("\n".join(r[0] for r in c.execute("SELECT id FROM items WHERE system_id = ? ORDER BY random() LIMIT 10000", (sys.argv[2],))))' "$dir/poam.db" "$SID" > "$dir/ids"
serve
for run in 1 2 3; do
  rate=$(IDS_FILE=$dir/ids GET_PREFIX=/v1/items/ GET_SUFFIX= wrk -t2 -c16 -d10s -H "$AUTH" -s bench/get.lua "$BASE" | awk '/Requests\/sec/{print $2}')
  counts=$(curl -s "$BASE/metrics" -H "$AUTH" | awk '/^poam_item_cache_(hits|misses|rechecks)_total/{printf "%s=%s ", $1, $2}')
  echo "items=$N run=$run req/s=$rate $counts"
done
