# Sourced by the container scripts: makes podman work inside a restricted machine such as
# this project's CI sandbox, changing nothing elsewhere.
#
# - Without CAP_SYS_RESOURCE, containers may not get higher resource limits than the caller
#   has, and podman's defaults ask for more: the caller's own open-file limits, and 4,096
#   processes (the sandbox refused the caller's own process limit, and 65,536; the server
#   and a two-job cargo build need a few dozen).
# - crun refuses a hybrid cgroup v1/v2 hierarchy; runc accepts it.
#
# The settings go into a containers.conf of our own (CONTAINERS_CONF), so the machine's
# configuration is left alone.
# shellcheck shell=bash
podman_conf="${TMPDIR:-/tmp}/gls-containers.conf"
{
  echo "[containers]"
  echo "default_ulimits = [\"nofile=$(ulimit -Sn):$(ulimit -Hn)\", \"nproc=4096:4096\"]"
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && command -v runc >/dev/null; then
    echo "[engine]"
    echo 'runtime = "runc"'
  fi
} >"$podman_conf"
export CONTAINERS_CONF="$podman_conf"
