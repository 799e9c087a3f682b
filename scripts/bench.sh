#!/usr/bin/env bash
# Throughput and latency of GET /api/v4/license against a bare axum JSON handler, measured in
# the same run on the same machine, plus start-up time and idle memory.
#
# The server runs as users run it: default settings, one access-log line per request, its
# output going to a file. A second server on the same database with RUST_LOG=warn (no access
# log) is measured in the same rounds: the difference is what the access log costs.
#
#   scripts/bench.sh [sqlite|postgres]      (default sqlite)
#   BIN=/tmp/other-build scripts/bench.sh   (measure another build of the server)
#
# Needs wrk (installed from Debian when missing) and, for postgres, the local PostgreSQL at
# 127.0.0.1:5432 (user postgres). Loopback only; every run is bounded by DURATION seconds.
#
# The servers run on SERVER_CPUS and wrk on WRK_CPUS (CPU 0 and CPU 1 by default): when the
# load generator competes with the server for the same cores, whichever server is faster
# leaves wrk less CPU, and wrk's own queueing then shows up as the faster server's latency.
# The two are measured in alternation, ROUNDS times, and the medians are reported, because a
# shared machine's speed drifts within a run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/web-session.sh
. scripts/web-session.sh

BACKEND="${1:-sqlite}"
DURATION="${DURATION:-6}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-7}"
SERVER_CPUS="${SERVER_CPUS:-0}"
WRK_CPUS="${WRK_CPUS:-1}"
BARE_PORT=18081
SERVER_PORT=18082
QUIET_PORT=18083
TOKEN="glpat-benchmark-token-000000"
WORK="$(mktemp -d)"
PIDS=()
PG_DB=""

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
  if [ -n "$PG_DB" ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in "$BARE_PORT" "$SERVER_PORT" "$QUIET_PORT"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

if ! command -v wrk >/dev/null; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# BIN=path/to/another/build measures that binary instead (to compare two builds run by run).
if [ -n "${BIN:-}" ]; then
  cargo build --release --locked --quiet --example bare_json
else
  cargo build --release --locked --quiet --bin gitlab-license-server --example bare_json
  BIN=target/release/gitlab-license-server
fi

case "$BACKEND" in
  sqlite) DATABASE_URL="sqlite://$WORK/bench.db" ;;
  postgres)
    PG_DB="gls_bench_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PG_DB" ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac

now_ms() { date +%s%3N; }

# Start-up: a first run (migrations, root user, key generation) and a second one on the same
# database, timed from spawn to the first 200 from /-/readiness.
start_server() {
  env -u RUST_LOG -u LOG_FORMAT DATABASE_URL="$DATABASE_URL" DATA_DIR="$WORK/data" LISTEN_ADDR="127.0.0.1:$SERVER_PORT" \
    INITIAL_ROOT_TOKEN="$TOKEN" taskset -c "$SERVER_CPUS" "$BIN" serve >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local started; started=$(now_ms)
  until curl -fs -o /dev/null "http://127.0.0.1:$SERVER_PORT/-/readiness"; do
    sleep 0.002
    if [ $(( $(now_ms) - started )) -gt 30000 ]; then echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; fi
  done
  READY_MS=$(( $(now_ms) - started ))
}
start_server
FIRST_READY_MS=$READY_MS
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
sleep 1
IDLE_RSS_KIB=$(rss_kib "$SERVER_PID")

"$BIN" license issue --private-key "$WORK/data/keys/license_key" --name Bench --email bench@example.org \
  --company Bench --plan ultimate --seats 100 --starts 2026-01-01 --expires 2036-01-01 >"$WORK/bench.license"
curl -fs -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" --data-urlencode "license@$WORK/bench.license" \
  "http://127.0.0.1:$SERVER_PORT/api/v4/license"

taskset -c "$SERVER_CPUS" ./target/release/examples/bare_json "127.0.0.1:$BARE_PORT" &
BARE_PID=$!
PIDS+=("$BARE_PID")
# The same server without its access log (RUST_LOG=warn), on the same database.
DATABASE_URL="$DATABASE_URL" DATA_DIR="$WORK/data" LISTEN_ADDR="127.0.0.1:$QUIET_PORT" \
  RUST_LOG=warn taskset -c "$SERVER_CPUS" "$BIN" serve >>"$WORK/quiet.log" 2>&1 &
PIDS+=("$!")
until curl -fs -o /dev/null "http://127.0.0.1:$QUIET_PORT/-/readiness"; do sleep 0.01; done
until curl -fs -o /dev/null "http://127.0.0.1:$BARE_PORT/license"; do sleep 0.01; done

# wrk prints "Requests/sec: N" and, with --latency, a "99%" percentile line.
measure() {
  local output
  output=$(taskset -c "$WRK_CPUS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  echo "$output" >>"$WORK/wrk.log"
  local rps p99
  rps=$(echo "$output" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$output" | awk '$1 == "99%" {print $2}')
  echo "$rps $p99"
}
to_ms() {
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /s$/) { sub(/s$/, "", v); print v*1000 } else print v }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Warm-up, not counted: connections, caches and the allocator's pages settle first.
taskset -c "$WRK_CPUS" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$BARE_PORT/license" >/dev/null
for port in "$SERVER_PORT" "$QUIET_PORT"; do
  taskset -c "$WRK_CPUS" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "PRIVATE-TOKEN: $TOKEN" \
    "http://127.0.0.1:$port/api/v4/license" >/dev/null
done
: >"$WORK/rounds"
for round in $(seq "$ROUNDS"); do
  read -r bare_rps bare_p99 < <(measure "http://127.0.0.1:$BARE_PORT/license")
  read -r api_rps api_p99 < <(measure -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$SERVER_PORT/api/v4/license")
  read -r quiet_rps quiet_p99 < <(measure -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$QUIET_PORT/api/v4/license")
  bare_p99=$(to_ms "$bare_p99"); api_p99=$(to_ms "$api_p99"); quiet_p99=$(to_ms "$quiet_p99")
  echo "$bare_rps $api_rps $bare_p99 $api_p99 $quiet_rps $quiet_p99" >>"$WORK/rounds"
  echo "round $round: bare $bare_rps requests/s, p99 $bare_p99 ms; server $api_rps requests/s, p99 $api_p99 ms; without access log $quiet_rps requests/s, p99 $quiet_p99 ms" >&2
done
column_median() { awk -v c="$1" '{ print $c }' "$WORK/rounds" | median; }
BARE_RPS=$(column_median 1); API_RPS=$(column_median 2)
BARE_P99_MS=$(column_median 3); API_P99_MS=$(column_median 4)
# The ratios are the medians of each round's ratio: the two in a round ran side by side.
RPS_RATIO=$(awk '{ print $2 / $1 }' "$WORK/rounds" | median)
P99_RATIO=$(awk '{ print $4 / $3 }' "$WORK/rounds" | median)
QUIET_RPS=$(column_median 5)
QUIET_RPS_RATIO=$(awk '{ print $5 / $1 }' "$WORK/rounds" | median)
QUIET_P99_RATIO=$(awk '{ print $6 / $3 }' "$WORK/rounds" | median)
ACCESS_LOG_LINES=$(grep -c ' response status=' "$WORK/server.log" || true)
LOADED_RSS_KIB=$(rss_kib "$SERVER_PID")

# wrk and the servers sharing both cores (as on a small machine running everything): the
# servers are moved onto SHARED_CPUS and wrk runs there too, SHARED_ROUNDS alternating rounds.
SHARED_CPUS="${SHARED_CPUS:-0,1}"
SHARED_ROUNDS="${SHARED_ROUNDS:-5}"
taskset -a -p -c "$SHARED_CPUS" "$SERVER_PID" >/dev/null
taskset -a -p -c "$SHARED_CPUS" "$BARE_PID" >/dev/null
: >"$WORK/shared"
for round in $(seq "$SHARED_ROUNDS"); do
  read -r bare_rps bare_p99 < <(WRK_CPUS="$SHARED_CPUS" measure "http://127.0.0.1:$BARE_PORT/license")
  read -r api_rps api_p99 < <(WRK_CPUS="$SHARED_CPUS" measure -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$SERVER_PORT/api/v4/license")
  echo "$bare_rps $api_rps $(to_ms "$bare_p99") $(to_ms "$api_p99")" >>"$WORK/shared"
  echo "shared-cores round $round: bare $bare_rps requests/s; server $api_rps requests/s, p99 $(to_ms "$api_p99") ms" >&2
done
taskset -a -p -c "$SERVER_CPUS" "$SERVER_PID" >/dev/null
taskset -a -p -c "$SERVER_CPUS" "$BARE_PID" >/dev/null
SHARED_RPS=$(awk '{ print $2 }' "$WORK/shared" | median)
SHARED_RPS_RATIO=$(awk '{ print $2 / $1 }' "$WORK/shared" | median)
SHARED_P99_RATIO=$(awk '{ print $4 / $3 }' "$WORK/shared" | median)

# GitLab's per-user throttle turned on (a limit no round reaches): what counting every request
# costs, in THROTTLED_ROUNDS more alternating rounds. Turned off again afterwards.
THROTTLED_ROUNDS="${THROTTLED_ROUNDS:-5}"
set_throttle() {
  curl -fs -o /dev/null -X PUT -H "PRIVATE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"throttle_authenticated_api_enabled\": $1, \"throttle_authenticated_api_requests_per_period\": 100000000, \"throttle_authenticated_api_period_in_seconds\": 3600}" \
    "http://127.0.0.1:$SERVER_PORT/api/v4/application/settings"
}
set_throttle true
: >"$WORK/throttled"
for round in $(seq "$THROTTLED_ROUNDS"); do
  read -r bare_rps bare_p99 < <(measure "http://127.0.0.1:$BARE_PORT/license")
  read -r api_rps api_p99 < <(measure -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$SERVER_PORT/api/v4/license")
  echo "$bare_rps $api_rps $(to_ms "$bare_p99") $(to_ms "$api_p99")" >>"$WORK/throttled"
  echo "throttled round $round: bare $bare_rps requests/s; server $api_rps requests/s, p99 $(to_ms "$api_p99") ms" >&2
done
set_throttle false
THROTTLED_RPS=$(awk '{ print $2 }' "$WORK/throttled" | median)
THROTTLED_RPS_RATIO=$(awk '{ print $2 / $1 }' "$WORK/throttled" | median)
THROTTLED_P99_RATIO=$(awk '{ print $4 / $3 }' "$WORK/throttled" | median)

# The subscription page, signed in, with a year of daily history in the chart (365 points).
{ echo "Date,Billable User Count"
  for i in $(seq 0 364); do echo "$(date -u -d "2026-01-01 + $i days" +%F),$((40 + i % 30))"; done
} >"$WORK/history.csv"
DATABASE_URL="$DATABASE_URL" DATA_DIR="$WORK/data" RUST_LOG=warn "$BIN" history import "$WORK/history.csv" >/dev/null
SESSION=$(web_session "http://127.0.0.1:$SERVER_PORT" "$TOKEN" "$WORK/cookies")
PAGE_POINTS=$(curl -fs -H "Cookie: _gitlab_license_server_session=$SESSION" \
  "http://127.0.0.1:$SERVER_PORT/admin/subscription" | grep -o '<circle class="point' | wc -l)
read -r PAGE_RPS PAGE_P99 < <(measure -H "Cookie: _gitlab_license_server_session=$SESSION" \
  "http://127.0.0.1:$SERVER_PORT/admin/subscription")

awk -v backend="$BACKEND" -v bare="$BARE_RPS" -v api="$API_RPS" -v bp="$BARE_P99_MS" -v ap="$API_P99_MS" \
    -v rr="$RPS_RATIO" -v pr="$P99_RATIO" -v rounds="$ROUNDS" \
    -v first="$FIRST_READY_MS" -v ready="$READY_MS" -v idle="$IDLE_RSS_KIB" -v loaded="$LOADED_RSS_KIB" \
    -v conns="$CONNECTIONS" -v dur="$DURATION" 'BEGIN {
  printf "backend: %s, wrk -t'"$THREADS"' -c%d -d%ds on CPU '"$WRK_CPUS"', servers on CPU '"$SERVER_CPUS"', medians of %d alternating rounds, loopback; the server with default settings, its log (one line per request, '"$ACCESS_LOG_LINES"' lines) to a file\n", backend, conns, dur, rounds
  printf "| measure | bare axum JSON | GET /api/v4/license | ratio | aim |\n|---|---|---|---|---|\n"
  printf "| requests/s | %.0f | %.0f | %.2f | ≥ 0.90 |\n", bare, api, rr
  printf "| p99 latency | %.2f ms | %.2f ms | %.2f× | ≤ 1.25× |\n", bp, ap, pr
  printf "| ready after start (first run / later) | | %d ms / %d ms | | < 200 ms |\n", first, ready
  printf "| resident memory idle / after load | | %.1f MiB / %.1f MiB | | idle < 20 MiB |\n", idle / 1024, loaded / 1024
}'
printf "| GET /api/v4/license without the access log (RUST_LOG=warn), same rounds | | %.0f requests/s | %.2f (p99 %.2f×) | |\n" \
  "$QUIET_RPS" "$QUIET_RPS_RATIO" "$QUIET_P99_RATIO"
printf "| GET /api/v4/license, wrk and servers sharing CPUs %s (%d rounds) | | %.0f requests/s | %.2f (p99 %.2f×) | ≥ 0.85 |\n" \
  "$SHARED_CPUS" "$SHARED_ROUNDS" "$SHARED_RPS" "$SHARED_RPS_RATIO" "$SHARED_P99_RATIO"
printf "| GET /api/v4/license, per-user throttle on (%d rounds) | | %.0f requests/s | %.2f (p99 %.2f×) | ≥ 0.90 |\n" \
  "$THROTTLED_ROUNDS" "$THROTTLED_RPS" "$THROTTLED_RPS_RATIO" "$THROTTLED_P99_RATIO"
PAGE_P99_MS=$(to_ms "$PAGE_P99")
echo "| GET /admin/subscription, signed in, $PAGE_POINTS chart points | | $PAGE_RPS requests/s, p99 $PAGE_P99_MS ms | | |"
