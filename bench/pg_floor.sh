#!/usr/bin/env bash
# What PostgreSQL alone allows for item creation in one system, one item per transaction, with no
# service in the way (creations that share a group-commit batch are written together and go past it):
# pgbench runs the statements one create needs (lock the system row and move its counters, insert
# the item and its two control rows, insert the hash-chained event, move the chain head), on the
# migrated schema, with rows copied from an item and an event the service wrote. Prints
# pgbench's figures at 1 and 16 clients, and per-statement latencies at 1 client.
#   bash bench/pg_floor.sh            (PostgreSQL at 127.0.0.1:5432, or POAM_TEST_DATABASE_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
base=${POAM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=poam_floor_$$
url="${base%/*}/$db"
dir=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  psql "$base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
cargo build --release --quiet
psql "$base" -qc "CREATE DATABASE $db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_LOG=warn POAM_DATABASE_URL=$url \
  POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
target/release/poam migrate >/dev/null
target/release/poam serve & pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
token=$(target/release/poam token --sub bench --role admin --ttl 1h)
sid=$(curl -sf -X POST "http://127.0.0.1:$port/v1/systems" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"name":"Floor","regime":"fedramp","impact_level":"moderate"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CREATE_PATH=/v1/systems/$sid/items wrk -t1 -c1 -d1s -H "Authorization: Bearer $token" -s bench/create.lua \
  "http://127.0.0.1:$port" >/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
item=$(psql "$url" -Atc "SELECT id FROM items LIMIT 1")
event=$(psql "$url" -Atc "SELECT id FROM events WHERE resource_kind = 'item' LIMIT 1")
cols="system_id, display_id, external_id, title, description, controls, source_kind, risk_rating,
  risk_rank, adjusted_risk_rating, status, owner, owner_name_key, owner_email_key, detected_on,
  scheduled_completion, due_key, completed_on, closed_on, details, search_text, version, created_at,
  updated_at, archived_at, deadline_rule, estimated_cost, actual_cost, deviation_state, vendor_check_in"
cat > "$dir/create.sql" <<SQL
\set n random(1000, 2000000000)
BEGIN;
UPDATE systems SET next_item_seq = next_item_seq + 1, event_seq = event_seq + 1 WHERE id = '$sid' RETURNING next_item_seq, event_seq, event_head, archived_at, regime, deadline_policy;
INSERT INTO items (id, seq, $(echo $cols)) SELECT 'floor-' || :n, :n, $(echo $cols) FROM items WHERE id = '$item';
INSERT INTO item_controls (item_id, system_id, control) VALUES ('floor-' || :n, '$sid', 'SC-8(1)');
INSERT INTO item_controls (item_id, system_id, control) VALUES ('floor-' || :n, '$sid', '3.13.8');
INSERT INTO events (id, system_id, seq, resource_kind, resource_id, action, actor, at, version, changes, snapshot, prev_hash, hash) SELECT 'floor-' || :n, system_id, :n, resource_kind, 'floor-' || :n, action, actor, at, version, changes, snapshot, prev_hash, hash FROM events WHERE id = '$event';
UPDATE systems SET event_head = md5(:n::text) WHERE id = '$sid';
COMMIT;
SQL
for c in 1 16; do
  echo "== $c client(s)"
  "$PGBIN/pgbench" -n -M prepared -f "$dir/create.sql" -c "$c" -j 2 -T "${FLOOR_SECONDS:-6}" "$url" 2>&1 |
    grep -E '^(tps|latency average)'
done
echo "== per statement, 1 client (ms)"
"$PGBIN/pgbench" -n -r -M prepared -f "$dir/create.sql" -c 1 -T "${FLOOR_SECONDS:-6}" "$url" 2>&1 |
  sed -n '/statement latencies/,$p' | tail -n +2 | cut -c1-90
