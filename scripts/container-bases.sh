#!/usr/bin/env bash
# Builds, from Debian packages, the base images the Dockerfile and docker-compose.yml name,
# for machines that reach package registries but no container registry (this project's CI
# machine): PostgreSQL for compose (a stand-in, see scripts/container-standins/); the builder,
# `rust:<RUST_VERSION>-slim-<DEBIAN_RELEASE>`, is a debootstrapped Debian with gcc and this
# machine's own Rust toolchain and CA certificates (so that cargo inside reaches crates.io as
# the host does). It is tagged with the name the Dockerfile uses, so `podman build` finds it
# locally and the Dockerfile stays exactly what users build against the real image. (The
# runtime stage is `FROM scratch`: nothing to build for it.)
#
#   scripts/container-bases.sh          # needs root, podman and debootstrap
#
# The debootstrapped tree is kept in GLS_BASES_DIR (/var/tmp/gls-bases) for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh

arg() { sed -n "s/^ARG $1=//p" Dockerfile; }
RUST_VERSION="$(arg RUST_VERSION)"
DEBIAN_RELEASE="$(arg DEBIAN_RELEASE)"
BASES_DIR="${GLS_BASES_DIR:-/var/tmp/gls-bases}"
BUILDER_ROOT="$BASES_DIR/$DEBIAN_RELEASE-builder"
BUILDER_TAG="docker.io/library/rust:$RUST_VERSION-slim-$DEBIAN_RELEASE"

host_rust="$(rustc --version | awk '{print $2}')"
case "$host_rust" in
  "$RUST_VERSION" | "$RUST_VERSION".*) ;;
  *) echo "the Dockerfile builds with Rust $RUST_VERSION, this machine has $host_rust" >&2; exit 1 ;;
esac

# Kept when it already holds this toolchain, so that podman's build cache (keyed by the base
# image) carries over from one run to the next.
builder_is_current() {
  podman image exists "$BUILDER_TAG" &&
    podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$BUILDER_TAG" |
    grep -qx "RUST_VERSION=$host_rust"
}

# The compose file's PostgreSQL, as a stand-in: Debian's PostgreSQL behind an entrypoint
# that honours the official image's settings (scripts/container-standins/).
POSTGRES_TAG="docker.io/library/$(sed -n 's/^    image: \(postgres:.*\)$/\1/p' docker-compose.yml)"
DEBIAN_TAG="docker.io/library/debian:$DEBIAN_RELEASE-slim"
SLIM_ROOT="$BASES_DIR/$DEBIAN_RELEASE-slim"
if ! podman image exists "$POSTGRES_TAG"; then
  if [ ! -x "$SLIM_ROOT/bin/bash" ]; then
    rm -rf "$SLIM_ROOT"
    mkdir -p "$BASES_DIR"
    debootstrap --variant=minbase "$DEBIAN_RELEASE" "$SLIM_ROOT" http://deb.debian.org/debian \
      >"$BASES_DIR/debootstrap-slim.log"
  fi
  podman image exists "$DEBIAN_TAG" ||
    tar -C "$SLIM_ROOT" -c . | podman import --change 'CMD ["/bin/bash"]' - "$DEBIAN_TAG" >/dev/null
  podman build --quiet --format docker -t "$POSTGRES_TAG" \
    -f scripts/container-standins/postgres.Containerfile scripts/container-standins >/dev/null
  echo "built $POSTGRES_TAG (a stand-in)"
fi

# The replicas recipe's load balancer, as a stand-in: Debian's nginx.
NGINX_TAG="docker.io/library/$(sed -n 's/^    image: \(nginx:.*\)$/\1/p' docker-compose.replicas.yml)"
if ! podman image exists "$NGINX_TAG"; then
  podman build --quiet --format docker -t "$NGINX_TAG" \
    -f scripts/container-standins/nginx.Containerfile scripts/container-standins >/dev/null
  echo "built $NGINX_TAG (a stand-in)"
fi

if builder_is_current; then
  echo "$BUILDER_TAG is up to date"
  exit 0
fi

if [ ! -x "$BUILDER_ROOT/usr/bin/gcc" ]; then
  rm -rf "$BUILDER_ROOT"
  mkdir -p "$BASES_DIR"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
    "$DEBIAN_RELEASE" "$BUILDER_ROOT" http://deb.debian.org/debian >"$BASES_DIR/debootstrap.log"
  rm -rf "$BUILDER_ROOT"/var/cache/apt/archives/*.deb "$BUILDER_ROOT"/var/lib/apt/lists/*
fi

# What the host adds: its toolchain (compilers and standard libraries, not the docs) under
# /usr/local/rust, and the CA bundle it trusts.
# The tree is linked, not copied, from the cached one; replaced files are unlinked first.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -al "$BUILDER_ROOT" "$STAGE/root"
sysroot="$(rustc --print sysroot)"
mkdir -p "$STAGE/root/usr/local/rust"
cp -a "$sysroot/bin" "$sysroot/lib" "$STAGE/root/usr/local/rust/"
cp -L --remove-destination /etc/ssl/certs/ca-certificates.crt \
  "$STAGE/root/etc/ssl/certs/ca-certificates.crt"

tar -C "$STAGE/root" -c . |
  podman import \
    --change "ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV CARGO_HOME=/usr/local/cargo" \
    --change "ENV RUST_VERSION=$host_rust" \
    --change 'CMD ["/bin/bash"]' \
    - "$BUILDER_TAG" >/dev/null
podman run --rm "$BUILDER_TAG" sh -c 'rustc --version && cargo --version && gcc --version | head -1'
echo "built $BUILDER_TAG"
