#!/usr/bin/env bash
# Clients generated from the checked-in openapi/openapi.json, type-checked, and a realistic
# scenario run with each against a real server (SQLite, a throwaway data directory):
#   - Python: openapi-python-client, mypy --strict on the package and clients/python/scenario.py;
#   - TypeScript: openapi-typescript types + openapi-fetch, tsc --strict, clients/ts/scenario.ts.
# The generated clients are build output (target/clients); the scenarios and the pins
# (clients/python/requirements.txt, clients/ts/package.json + package-lock.json) are committed.
# Uses the debug binary the tests built (builds it if missing). `make clients` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/clients
SPEC=$ROOT/openapi/openapi.json
mkdir -p "$OUT"
started=$(date +%s)
phase() { echo "-- $* ($(( $(date +%s) - started ))s)"; }

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "the TypeScript client needs Node.js 20 or later and npm"; exit 1; }

# --- tools -----------------------------------------------------------------------------------
phase "Python tools (clients/python/requirements.txt) in target/clients/venv"
VENV=$OUT/venv
if [ "$(cat "$VENV/pins" 2>/dev/null)" != "$(cat clients/python/requirements.txt)" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r clients/python/requirements.txt
  cp clients/python/requirements.txt "$VENV/pins"
fi

phase "npm ci (clients/ts/package-lock.json)"
if ! cmp -s clients/ts/package-lock.json clients/ts/node_modules/.installed-lock 2>/dev/null; then
  (cd clients/ts && npm ci --silent --no-audit --no-fund && cp package-lock.json node_modules/.installed-lock)
fi

# --- generate and type-check -----------------------------------------------------------------
phase "generate the Python client (openapi-python-client)"
rm -rf "$OUT/python"
mkdir -p "$OUT/python"
# Operations whose request body is only a media type the generator does not support (XML,
# CSV, XLSX, gzip uploads) are left out with a warning; the log says which.
"$VENV/bin/openapi-python-client" generate --path "$SPEC" --output-path "$OUT/python/poam_client" \
  --meta none --config clients/python/openapi-python-client.yaml >"$OUT/python-generate.log" 2>&1 ||
  { cat "$OUT/python-generate.log"; exit 1; }
grep -E '^WARNING' "$OUT/python-generate.log" | sed 's/^WARNING parsing/   left out:/; s/ Endpoint will not be generated.//' || true

phase "mypy --strict (generated package and clients/python/scenario.py)"
(cd "$OUT/python" && MYPYPATH="$OUT/python" "$VENV/bin/mypy" --strict --no-error-summary \
  --cache-dir "$OUT/mypy-cache" poam_client "$ROOT/clients/python/scenario.py")

phase "generate the TypeScript types (openapi-typescript), tsc --strict (noEmitOnError)"
mkdir -p "$OUT/ts"
clients/ts/node_modules/.bin/openapi-typescript "$SPEC" >"$OUT/ts/schema.d.ts"
rm -rf "$OUT/ts/out"
# One pass type-checks and emits (clients/ts/tsconfig.json: strict, noEmitOnError).
clients/ts/node_modules/.bin/tsc -p clients/ts/tsconfig.json --outDir "$OUT/ts/out"
# The compiled scenario is an ES module that imports openapi-fetch from clients/ts.
echo '{"type": "module"}' >"$OUT/ts/out/package.json"
ln -sfn "$ROOT/clients/ts/node_modules" "$OUT/ts/out/node_modules"

# --- a real server -----------------------------------------------------------------------------
BIN=$ROOT/target/debug/poam
[ -x "$BIN" ] || cargo build --quiet
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export POAM_DATA_DIR=$dir POAM_BIND=127.0.0.1:$port POAM_DATABASE_URL="sqlite://$dir/poam.db"
export POAM_JWT_SECRET=ci-clients-secret-0123456789abcdef0123456789abcdef
export POAM_LOG=info POAM_LOG_FORMAT=json
# The scenarios make a few dozen calls in a burst; the rate limits are tested elsewhere.
export POAM_RATE_LIMIT_PER_SECOND=0 POAM_RATE_LIMIT_ADDRESS_PER_SECOND=0 POAM_AUTH_FAILURES_PER_MINUTE=0
"$BIN" serve >"$dir/stdout.log" 2>"$dir/server.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ready=
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then ready=yes; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then echo "the server did not become ready:"; cat "$dir/server.log"; exit 1; fi
export POAM_URL=http://127.0.0.1:$port
POAM_ADMIN_TOKEN=$("$BIN" token --sub ci-client --role admin --ttl 1h)
POAM_APPROVER_TOKEN=$("$BIN" token --sub ci-approver --role approver --ttl 1h)
export POAM_ADMIN_TOKEN POAM_APPROVER_TOKEN

run_scenario() { # name command...
  local name=$1; shift
  phase "$name scenario against $POAM_URL"
  if ! "$@"; then
    echo "the $name scenario failed; the server's log (last 40 lines):"
    tail -n 40 "$dir/server.log"
    return 1
  fi
}
run_scenario Python env PYTHONPATH="$OUT/python" "$VENV/bin/python" clients/python/scenario.py
run_scenario TypeScript node "$OUT/ts/out/scenario.js"

if grep -q '"status":5[0-9][0-9]' "$dir/server.log"; then
  echo "the server answered 5xx:"; grep '"status":5[0-9][0-9]' "$dir/server.log" | head; exit 1
fi
phase "done"
