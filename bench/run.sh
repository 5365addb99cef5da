#!/usr/bin/env bash
# make bench: release build, a fresh database (SQLite, or PostgreSQL with BENCH_DB=postgres),
# loopback load with wrk at 16 connections. Scenarios: create item (this also seeds the data),
# GET item by random id, list page (50 items, a filter and a sort). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNECTIONS:-16}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release --quiet
BIN=target/release/poam
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_LOG=warn POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
if [ "${BENCH_DB:-sqlite}" = postgres ]; then
  base=${POAM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  db=poam_bench_$$
  psql "$base" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  export POAM_DATABASE_URL="${base%/*}/$db"
  "$BIN" migrate >/dev/null
else
  export POAM_DATABASE_URL="sqlite://$dir/poam.db"
fi
"$BIN" serve >/dev/null 2>&1 &
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN" token --sub bench --role admin --ttl 1h)
AUTH="Authorization: Bearer $TOKEN"
BASE=http://127.0.0.1:$port
SID=$(curl -sf -X POST "$BASE/v1/systems" -H "$AUTH" -H 'Content-Type: application/json' -d '{"name":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

row() { # scenario WRKJSON-line
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.loads(sys.argv[2].split("WRKJSON ", 1)[1])
print(f"| {sys.argv[1]} | {d['rps']:.0f} | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} | {d['non2xx']} |")
PY
}

echo "| scenario (${BENCH_DB:-sqlite}, $CONNS connections, $DURATION) | req/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|"
out=$(CREATE_PATH="/v1/systems/$SID/items" wrk -t2 -c"$CONNS" -d"$DURATION" -H "$AUTH" -s bench/create.lua "$BASE" | grep WRKJSON)
row "create item (history event included)" "$out"
ids=$dir/ids.txt
python3 - "$BASE" "$SID" "$TOKEN" > "$ids" <<'PY'
import json, sys, urllib.request
base, sid, token = sys.argv[1:]
cursor = None
while True:
    url = f"{base}/v1/systems/{sid}/items?limit=200" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    for item in page["items"]:
        print(item["id"])
    cursor = page["next_cursor"]
    if not cursor:
        break
PY
echo "| (items in the system after the create run: $(wc -l < "$ids")) | | | | |"
# Fresh tables have no planner statistics yet; autovacuum would gather them within a minute.
if [ "${BENCH_DB:-sqlite}" = postgres ]; then psql "$POAM_DATABASE_URL" -qc "ANALYZE" >/dev/null; fi
out=$(IDS_FILE=$ids GET_PREFIX=/v1/items/ GET_SUFFIX= wrk -t2 -c"$CONNS" -d"$DURATION" -H "$AUTH" -s ../shared/bench/get_by_id.lua "$BASE" | grep WRKJSON)
row "GET item by random id" "$out"
out=$(IDS_FILE= GET_PREFIX="/v1/systems/$SID/items?limit=50&status=open&sort=-risk_rating" GET_SUFFIX= wrk -t2 -c"$CONNS" -d"$DURATION" -H "$AUTH" -s ../shared/bench/get_by_id.lua "$BASE" | grep WRKJSON)
row "list page (50, status filter, -risk_rating)" "$out"
if [ "${BENCH_DB:-sqlite}" = postgres ]; then psql "$base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; fi
