#!/usr/bin/env bash
# The container image as an administrator uses it, with a real engine (podman): built from
# the Dockerfile as it is, then started on a named volume; readiness; the generated root
# token read with `token initial` (the image has no shell); a license issued with the key
# the container generated and uploaded; the health check; a graceful stop; a restart on the
# same volume that still has the license. Then docker-compose.yml with PostgreSQL under
# podman-compose: up, readiness on PostgreSQL, token, license upload, health check, down and
# up again with the data kept. Then the replicas recipe (docker-compose.replicas.yml): two
# servers behind nginx with the shared key and root token as files. Fails on the first step
# that does not hold.
#
#   scripts/container-smoke.sh          # needs root, podman, debootstrap, runc (CI installs them)
#
# IMAGE names the image built (localhost/gitlab-license-server:local); MAX_IMAGE_BYTES is
# the size it must stay under (30 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh

IMAGE="${IMAGE:-localhost/gitlab-license-server:local}"
MAX_IMAGE_BYTES="${MAX_IMAGE_BYTES:-30000000}"
NAME="gls-smoke-$$"
VOLUME="gls-smoke-data-$$"
WORK="$(mktemp -d)"

cleanup() {
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf -- '- %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; podman logs "$NAME" >&2 2>&1 || true; exit 1; }
now_ms() { date +%s%3N; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 60 s) for readiness at $1 (the server under test by default); prints the ms.
wait_ready() {
  local base="${1:-$BASE}" started
  started=$(now_ms)
  until curl -fs -o /dev/null "$base/-/readiness"; do
    [ $(($(now_ms) - started)) -lt 60000 ] || fail "not ready within 60 s"
    sleep 0.2
  done
  echo $(($(now_ms) - started))
}

bash scripts/container-bases.sh
step "build (podman build --format docker, so that the HEALTHCHECK is kept)"
podman build --quiet --format docker -t "$IMAGE" . >/dev/null

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
step "image size: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1e6 }'))"
[ "$size" -lt "$MAX_IMAGE_BYTES" ] || fail "the image is over $MAX_IMAGE_BYTES bytes"
healthcheck=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE")
case "$healthcheck" in
  *gitlab-license-server*healthcheck*) ;;
  *) fail "the image has no health check: $healthcheck" ;;
esac
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] \
  || fail "the image does not run as 10001:10001"

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
# Without systemd, podman cannot schedule the periodic check (and says so on every start
# and stop); the check itself is run by hand below.
HEALTH_TIMER=()
[ -d /run/systemd/system ] || HEALTH_TIMER=(--health-interval disable)
start() {
  podman run -d --name "$NAME" "${HEALTH_TIMER[@]}" -p "127.0.0.1:$PORT:8080" -v "$VOLUME:/data" \
    "$IMAGE" >/dev/null
}
step "first start on an empty volume"
start
step "ready after $(wait_ready) ms"
[ "$(podman top "$NAME" huser | sed -n 2p)" = 10001 ] || fail "the server does not run as uid 10001"
podman exec "$NAME" /bin/sh -c true >/dev/null 2>&1 && fail "the image has a shell"

TOKEN=$(podman exec "$NAME" gitlab-license-server token initial)
case "$TOKEN" in glpat-*) ;; *) fail "token initial printed no token" ;; esac
step "root's token read with token initial"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "PRIVATE-TOKEN: $TOKEN" "$BASE/api/v4/license")" = 200 ] \
  || fail "the token is refused"

issue() {
  podman exec "$NAME" gitlab-license-server license issue --private-key /data/keys/license_key \
    --name "Smoke Test" --email smoke@example.org --company "Example Org" --plan ultimate \
    --seats 25 --starts "$(date -u +%F)" --expires "$(date -u -d '+1 year' +%F)"
}
# The key pair is generated in the background at first start: wait for it.
issue_when_ready() {
  for _ in $(seq 50); do
    issue >"$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "no license could be issued with the generated key"
}
# POST /license through $BASE as $TOKEN; sets license_id.
upload() {
  local status
  status=$(curl -s -o "$WORK/upload.json" -w '%{http_code}' -H "PRIVATE-TOKEN: $TOKEN" \
    --data-urlencode "license@$1" "$BASE/api/v4/license")
  [ "$status" = 201 ] || fail "upload answered $status: $(cat "$WORK/upload.json")"
  license_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' <"$WORK/upload.json")
}
# Fails unless the server at $1 shows license $license_id as the current one.
expect_license() {
  local current
  current=$(curl -s -H "PRIVATE-TOKEN: $TOKEN" "$1/api/v4/license")
  case "$current" in
    "{\"id\":$license_id,"*) ;;
    *) fail "$2: $current" ;;
  esac
}
issue_when_ready "$WORK/smoke.license"
upload "$WORK/smoke.license"
step "license $license_id issued with the generated key and uploaded"

podman healthcheck run "$NAME" >/dev/null || fail "the health check fails on a ready server"
step "health check: healthy"

started=$(now_ms)
podman stop --time 20 "$NAME" >/dev/null
stopped_ms=$(($(now_ms) - started))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$exit_code" = 0 ] || fail "SIGTERM ended the server with exit code $exit_code"
[ "$stopped_ms" -lt 10000 ] || fail "stopping took $stopped_ms ms"
podman logs "$NAME" 2>&1 | grep -q "stopped" || fail "no shutdown in the log"
step "graceful stop in $stopped_ms ms (exit code 0)"

podman rm "$NAME" >/dev/null
step "restart on the same volume"
start
step "ready after $(wait_ready) ms"
expect_license "$BASE" "the license did not survive the restart"
step "the license and the token survived the restart"
podman stop --time 20 "$NAME" >/dev/null
podman rm "$NAME" >/dev/null

# --- docker-compose.yml with PostgreSQL, under podman-compose --------------------------
PROJECT="gls-compose-smoke-$$"
compose() { HTTP_PUBLISH="$PORT:8080" podman-compose --no-ansi -p "$PROJECT" -f docker-compose.yml "$@"; }
compose_cleanup() { compose down -v >/dev/null 2>&1 || true; }
trap 'compose_cleanup; cleanup' EXIT
SERVER="${PROJECT}_gitlab-license-server_1"
step "compose up (PostgreSQL and the server; podman-compose $(podman-compose version 2>/dev/null | sed -n 's/^podman-composer* version *//p'))"
compose up -d >"$WORK/compose.log" 2>&1 || { cat "$WORK/compose.log" >&2; fail "compose up"; }
# podman-compose 1.0 does not wait for PostgreSQL's health check before starting the server
# (depends_on: service_healthy); the server exits when it cannot connect and its restart
# policy brings it back.
NAME="$SERVER"
step "ready after $(wait_ready) ms, on PostgreSQL"
TOKEN=$(podman exec "$SERVER" gitlab-license-server token initial)
backend=$(curl -s -H "PRIVATE-TOKEN: $TOKEN" "$BASE/-/metrics" |
  sed -n 's/.*backend="\([a-z]*\)".*/\1/p' | head -1)
[ "$backend" = postgresql ] || fail "the compose server is not on PostgreSQL (backend: $backend)"
issue_when_ready "$WORK/compose.license"
upload "$WORK/compose.license"
step "token read, license $license_id uploaded"
podman healthcheck run "$SERVER" >/dev/null || fail "the compose server's health check fails"
step "health check: healthy"
compose down >/dev/null 2>&1 || fail "compose down"
step "compose down, then up again on the same volumes"
compose up -d >>"$WORK/compose.log" 2>&1 || { cat "$WORK/compose.log" >&2; fail "compose up again"; }
step "ready after $(wait_ready) ms"
expect_license "$BASE" "the license did not survive compose down/up"
step "the license and the token survived"
compose down -v >/dev/null 2>&1 || fail "compose down -v"

# --- docker-compose.replicas.yml: two replicas behind the load balancer ----------------
# As docs/deployment.md prepares it: a key pair made with the image, the public key and a
# root token as files owned by uid 10001, mode 0600, beside the compose files.
RECIPE="$WORK/recipe"
mkdir -p "$RECIPE/keys" "$RECIPE/secrets" "$RECIPE/deploy/compose"
cp docker-compose.yml docker-compose.replicas.yml "$RECIPE/"
cp deploy/compose/nginx.conf "$RECIPE/deploy/compose/"
podman run --rm --user 0 -v "$RECIPE/keys:/keys" "$IMAGE" keys generate --out /keys >/dev/null
cp "$RECIPE/keys/license_key.pub" "$RECIPE/keys/license_keys.pub"
printf 'glpat-%s' "$(head -c 15 /dev/urandom | base64 | tr '+/' '-_')" >"$RECIPE/secrets/initial_root_token"
head -c 32 /dev/urandom | base64 >"$RECIPE/secrets/secrets_key"
chown 10001:10001 "$RECIPE/keys/license_keys.pub" "$RECIPE/secrets/initial_root_token" "$RECIPE/secrets/secrets_key"
chmod 0600 "$RECIPE/keys/license_keys.pub" "$RECIPE/secrets/initial_root_token" "$RECIPE/secrets/secrets_key"
TOKEN=$(cat "$RECIPE/secrets/initial_root_token")
REPLICAS_PROJECT="gls-replicas-smoke-$$"
replicas() {
  (cd "$RECIPE" && HTTP_PUBLISH=8080 LB_PORT="$PORT" podman-compose --no-ansi -p "$REPLICAS_PROJECT" \
    -f docker-compose.yml -f docker-compose.replicas.yml "$@")
}
trap 'replicas down -v >/dev/null 2>&1 || true; compose_cleanup; cleanup' EXIT
step "replicas recipe up: two servers and the load balancer on one PostgreSQL"
replicas up -d >"$WORK/replicas.log" 2>&1 || { cat "$WORK/replicas.log" >&2; fail "replicas up"; }
NAME="${REPLICAS_PROJECT}_gitlab-license-server_1"
step "ready through the load balancer after $(wait_ready) ms"
replica_ports=()
for number in 1 2; do
  replica="${REPLICAS_PROJECT}_gitlab-license-server_$number"
  port=$(podman port "$replica" 8080 | head -1 | sed 's/.*://')
  [ -n "$port" ] || fail "replica $number is not running"
  replica_ports+=("$port")
  wait_ready "http://127.0.0.1:$port" >/dev/null
done
podman run --rm --user 0 -v "$RECIPE/keys:/keys:ro" "$IMAGE" license issue \
  --private-key /keys/license_key --name "Replica Test" --email replicas@example.org \
  --company "Example Org" --plan premium --seats 10 --starts "$(date -u +%F)" \
  --expires "$(date -u -d '+1 year' +%F)" >"$WORK/replicas.license"
upload "$WORK/replicas.license"
step "license $license_id uploaded through the load balancer with the shared root token"
for port in "${replica_ports[@]}"; do
  expect_license "http://127.0.0.1:$port" "the replica on port $port does not show the license"
done
step "both replicas verify it with the shared key and show it"
echo "container smoke test passed"
