#!/usr/bin/env bash
# schemathesis against a real server, once per backend: no 5xx, and every response (status,
# content type, headers, body) as the OpenAPI document says. Uses the debug binary the tests
# built; installs schemathesis into .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
if [ ! -x .venv/bin/schemathesis ] || ! .venv/bin/schemathesis --version | grep -q "$VERSION"; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
BIN=target/debug/poam
[ -x "$BIN" ] || cargo build --quiet
SEED_ARGS=()
if [ "${SCHEMATHESIS_SEED:-fixed}" != random ]; then SEED_ARGS=(--seed 20261122); fi
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

run_against() { # name database_url [role] [examples]
  local name=$1 url=$2 role=${3:-admin} examples=${4:-${SCHEMATHESIS_EXAMPLES:-40}} dir port pid token
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_DATABASE_URL=$url POAM_LOG=info POAM_LOG_FORMAT=json
  # The contract run explores the logic behind every operation: the rate limits and the
  # failed-login budget (tested on their own in tests/api/protection.rs) would answer much of it
  # with 429.
  export POAM_RATE_LIMIT_PER_SECOND=0 POAM_RATE_LIMIT_ADDRESS_PER_SECOND=0 POAM_AUTH_FAILURES_PER_MINUTE=0
  if [[ $url == postgres* ]]; then "$BIN" migrate >/dev/null; fi
  "$BIN" serve >"$dir/stdout.log" 2>"$dir/server.log" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  token=$("$BIN" token --sub schemathesis@ci --role "$role" --ttl 1h)
  echo "== schemathesis on $name as $role (127.0.0.1:$port)"
  .venv/bin/schemathesis run "http://127.0.0.1:$port/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" --max-examples "$examples" --workers 1 \
    "${SEED_ARGS[@]}" --no-color
  if grep -q '"status":5[0-9][0-9]' "$dir/server.log"; then
    echo "the server answered 5xx:"; grep '"status":5[0-9][0-9]' "$dir/server.log" | head; return 1
  fi
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
}

run_against sqlite "sqlite://$(mktemp -d)/poam.db"
if [ -n "${POAM_TEST_DATABASE_URL:-}" ] || pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  base=${POAM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  db=poam_schemathesis_$$
  psql "$base" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  run_against postgres "${base%/*}/$db"
  psql "$base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
elif [ "${CI:-}" = true ]; then
  echo "PostgreSQL is required under CI"; exit 1
fi

# Every other role, on SQLite: refusals (403) and everything a role may do stay inside the spec.
for role in editor approver auditor viewer; do
  run_against "sqlite" "sqlite://$(mktemp -d)/poam.db" "$role" "${SCHEMATHESIS_ROLE_EXAMPLES:-15}"
done
