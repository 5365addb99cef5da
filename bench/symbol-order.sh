#!/usr/bin/env bash
# Regenerates link/poam.order, the linker's symbol order for the shipped build (build.rs hands
# it to lld): the functions the service runs from start to ready and while idle come first, then
# those of its ordinary requests, so the code a running service touches sits together at the
# start of .text instead of across all of it. Each page it touches is then mostly code it uses,
# and the kernel's fault-around (64 KiB around each faulting page of a cached file) maps little
# else: idle RSS. The functions are taken from callgrind (a full record of what ran, by symbol,
# unmangled names as the linker sees them) on a dist build.
#
#   CARGO_TARGET_DIR=... bash bench/symbol-order.sh      # then rebuild the dist binary
#   CEILING_BIN=... ORDER_OUT=... bash bench/symbol-order.sh   # the ceiling's (bench/run.sh)
#
# Three runs: start and idle; start, idle and requests; and the requests alone (costs collected
# only inside actix's HTTP/1 dispatcher, which runs each request from its bytes to its answer). The order: the functions of the requests first, the
# busiest first (the hot path in as few pages as possible: instruction cache and TLB), then
# those of start and idle, then the rest.
#
# A stale order costs nothing but locality: a name that no longer exists is skipped by the
# linker (warnings off), a new function is laid out where it would have been anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
BIN=$(realpath -m "${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/dist/poam}")
OUT=${ORDER_OUT:-link/poam.order}
dir=$(mktemp -d)
vp=
trap '[ -z "$vp" ] || kill "$vp" 2>/dev/null || true; rm -rf "$dir"' EXIT
wait_for() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; return 1; }

run() { # OUTFILE no|yes|only (requests: none, after start and idle, or only they are counted)
  local data=$dir/data-$2 port=18558 token sid iid base
  mkdir -p "$data"
  base=http://127.0.0.1:$port
  export POAM_DATA_DIR=$data POAM_LOG=warn POAM_JWT_SECRET=bench-secret-bench-secret-bench-secret-00 \
    POAM_DATABASE_URL=sqlite://$data/poam.db \
    POAM_RATE_LIMIT_PER_SECOND=1000000 POAM_RATE_LIMIT_BURST=1000000 \
    POAM_RATE_LIMIT_ADDRESS_PER_SECOND=1000000 POAM_RATE_LIMIT_ADDRESS_BURST=1000000
  POAM_BIND=127.0.0.1:$port valgrind --tool=callgrind --demangle=no --dump-instr=no \
    $([ "$2" = only ] && echo '--toggle-collect=*actix_http..h1..dispatcher..Dispatcher*Future$GT$4poll*') \
    --callgrind-out-file="$1" "$BIN" serve >/dev/null 2>&1 &
  vp=$!
  wait_for "$base/readyz"
  # Idle long enough for the scheduler's first ticks.
  sleep 5
  if [ "$2" != no ]; then
    token=$("$BIN" token --sub bench --role admin --ttl 2h)
    auth="Authorization: Bearer $token"
    sid=$(curl -sf -X POST "$base/v1/systems" -H "$auth" -H 'Content-Type: application/json' \
      -d '{"name":"Order","regime":"fedramp","impact_level":"moderate"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    iid=$(curl -sf -X POST "$base/v1/systems/$sid/items" -H "$auth" -H 'Content-Type: application/json' \
      -d '{"title":"Finding","description":"TLS 1.0 accepted","risk_rating":"high","detected_on":"2026-10-01","scheduled_completion":"2026-12-31","source":{"kind":"scan","detector":"Nessus","identifier":"100001"},"controls":["SC-8(1)"],"cves":["CVE-2011-3389"],"owner":{"name":"Dana","email":"dana@example.org"}}' |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for _ in $(seq 1 "$([ "$2" = only ] && echo 20 || echo 3)"); do
      curl -sf "$base/v1/items/$iid" -H "$auth" >/dev/null
      curl -sf "$base/v1/systems/$sid/items?limit=50" -H "$auth" >/dev/null
      curl -sf "$base/v1/systems/$sid" -H "$auth" >/dev/null
      curl -sf -X PATCH "$base/v1/items/$iid" -H "$auth" -H 'Content-Type: application/merge-patch+json' \
        -H "If-Match: *" -d '{"comments":"checked"}' >/dev/null || true
      curl -s "$base/v1/items/00000000-0000-0000-0000-000000000000" -H "$auth" >/dev/null
    done
    # Unauthenticated: once (failed authentications have a budget of their own).
    curl -s "$base/v1/items/$iid" >/dev/null
  fi
  kill "$vp"; wait "$vp" 2>/dev/null || true
}

# The functions of the binary itself (not libc's) with any cost, in callgrind's order.
functions() {
  python3 - "$1" "$BIN" ${2:+"$2"} <<'PY'
import re, sys
path, binary = sys.argv[1], sys.argv[2]
# Names are given once, at their first mention (in ob=/fn= or in cob=/cfn= lines), then
# referred to by number.
ref = re.compile(r"^\((\d+)\)(?: (.*))?$")
obs, fns, cur, seen, out = {}, {}, None, set(), []
current, cost, by_cost, call = None, {}, len(sys.argv) > 3, False
for line in open(path, errors="replace"):
    if line.startswith("calls="):
        # The next cost line is the call's (inclusive), not the function's own.
        call = True
        continue
    for key, table in (("ob=", obs), ("cob=", obs), ("fn=", fns), ("cfn=", fns)):
        if not line.startswith(key):
            continue
        m = ref.match(line[len(key):].strip())
        if not m:
            continue
        if m.group(2):
            table[m.group(1)] = m.group(2)
        if key == "ob=":
            cur = obs.get(m.group(1))
        elif key == "fn=":
            name = fns.get(m.group(1))
            # Callgrind tells a function's recursive activations apart with a suffix ('2).
            name = re.sub(r"'\d+$", "", name) if name else name
            current = name if cur == binary and name and not name.startswith("0x") else None
            if current and current not in seen:
                seen.add(current)
                out.append(current)
        break
    else:
        # A cost line ("position cost"): the current function's own, unless it follows calls=.
        if line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if current and not call and len(parts) >= 2 and parts[1].isdigit():
                cost[current] = cost.get(current, 0) + int(parts[1])
            call = False
if by_cost:
    out.sort(key=lambda n: -cost.get(n, 0))
print("\n".join(out))
PY
}

# The reference ceiling (bench/run.sh gives it a layout of its own, as fair as the service's):
# CEILING_BIN=path, its requests' path only, busiest first.
if [ -n "${CEILING_BIN:-}" ]; then
  BIN=$(realpath "$CEILING_BIN")
  mkdir -p "$dir/ceiling"
  (cd "$dir/ceiling" && LIMIT_ADDR=127.0.0.1:8091 LIMIT_ROWS=100 LIMIT_TEST_ON_CHECKOUT=0 exec valgrind \
    --tool=callgrind --demangle=no --dump-instr=no \
    '--toggle-collect=*actix_http..h1..dispatcher..Dispatcher*Future$GT$4poll*' \
    --callgrind-out-file="$dir/ceiling.out" "$BIN" >/dev/null 2>&1) &
  vp=$!
  wait_for http://127.0.0.1:8091/static
  for _ in $(seq 1 50); do
    curl -sf http://127.0.0.1:8091/items-inline/17 >/dev/null
    curl -sf http://127.0.0.1:8091/items/17 >/dev/null
  done
  kill "$vp"; wait "$vp" 2>/dev/null || true
  vp=
  functions "$dir/ceiling.out" by-cost | grep -v '^$' >"$OUT"
  echo "$(wc -l <"$OUT") functions on the ceiling's requests' path: $OUT"
  exit 0
fi

run "$dir/idle" no
run "$dir/busy" yes
run "$dir/hot" only
functions "$dir/idle" >"$dir/idle.txt"
functions "$dir/busy" >"$dir/busy.txt"
functions "$dir/hot" by-cost | grep -v '^$' >"$dir/hot.txt" || true
mkdir -p "$(dirname "$OUT")"
# The requests' functions (busiest first), then start and idle, then what else requests add.
cat "$dir/hot.txt" "$dir/idle.txt" "$dir/busy.txt" | awk '!seen[$0]++' >"$OUT"
echo "$(wc -l <"$dir/hot.txt") functions on the requests' path, $(wc -l <"$dir/idle.txt") at start and idle, $(wc -l <"$OUT") in all: $OUT"
