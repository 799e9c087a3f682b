#!/usr/bin/env bash
# The billable-user recount over 1,000,000 users, on SQLite and on PostgreSQL.
#
#   scripts/bench-billable.sh [USERS]
set -euo pipefail
cd "$(dirname "$0")/.."
USERS="${1:-1000000}"
WORK="$(mktemp -d)"
PG_DB="gls_bench_billable_$$"
cleanup() {
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cargo build --release --locked --quiet --example billable_count
echo "== SQLite"
./target/release/examples/billable_count "sqlite://$WORK/bench.db" "$USERS"
echo "== PostgreSQL"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
./target/release/examples/billable_count "postgres://postgres@127.0.0.1:5432/$PG_DB" "$USERS"
