# gitlab-license-server container image.
#
#   docker build -t gitlab-license-server .
#   docker run -d -p 8080:8080 -v gls-data:/data gitlab-license-server
#
# With podman, build with `podman build --format docker ...`: podman's default (OCI)
# image format has no HEALTHCHECK, and drops the one below without a word.
#
# Two stages: a Rust builder and a small Debian runtime holding only the binary. The
# SQL migrations are embedded in the binary, so nothing else is copied across.
# See docs/deployment.md for configuration, PostgreSQL, replicas, backups and upgrades.

# Builder and runtime must be the same Debian release: the binary links against the
# builder's glibc, and an older glibc at run time would refuse to load it.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder

# The rust images already carry gcc, which the bundled SQLite needs; no OpenSSL is used.
# SQLX_OFFLINE: compile-time-checked queries (if any) must come from the committed .sqlx/
# data, never from a live database. Stripping symbols keeps the runtime image small.
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    SQLX_OFFLINE=true

WORKDIR /build

# 1. Dependencies only. Build the real manifest and lock file against stub sources, so
#    this (slow) layer is reused until Cargo.toml or Cargo.lock change. The stubs cover
#    every target the manifest names (the binary, the library, the `it` test).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/it \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs tests/it/main.rs \
    && cargo build --release --locked \
    && rm -rf src tests

# 2. The real sources (.dockerignore keeps target/, data/ and .git out of the context).
#    COPY keeps the files' original mtimes, which may be older than the stub build, so
#    cargo could take the stub crate for up to date: forget its fingerprint to force the
#    package itself (and only it) to be rebuilt.
COPY . .
RUN rm -rf target/release/.fingerprint/gitlab-license-server-* \
    && cargo build --release --locked \
    && install -m 0755 target/release/gitlab-license-server /usr/local/bin/gitlab-license-server \
    && gitlab-license-server --version

# ---------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# No packages are installed: the server makes no outgoing TLS connections (so needs no
# CA bundle), talks to PostgreSQL over plain TCP, and its own `healthcheck` subcommand
# replaces curl. glibc and libgcc_s, all the binary links against, are in the base image.

LABEL org.opencontainers.image.title="gitlab-license-server" \
      org.opencontainers.image.description="A self-hosted server that speaks GitLab's license and seat APIs" \
      org.opencontainers.image.licenses="MIT"

# A fixed, unprivileged uid/gid (10001) so that bind-mounted data directories can be
# chowned to it on the host, and so it cannot collide with a host user.
RUN groupadd --system --gid 10001 gitlab-license-server \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin gitlab-license-server \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=builder /usr/local/bin/gitlab-license-server /usr/local/bin/gitlab-license-server

# Everything the server writes lives under /data: the SQLite database (unless
# DATABASE_URL points at PostgreSQL), generated keys in /data/keys/, and the generated
# root token in /data/initial_root_token. LISTEN_ADDR must be 0.0.0.0 inside a container
# (the binary's default, 127.0.0.1, is unreachable from outside it).
ENV DATA_DIR=/data \
    DATABASE_URL=sqlite:///data/gitlab-license-server.db \
    LISTEN_ADDR=0.0.0.0:8080

# Declared after the chown above, so a new named volume starts out owned by uid 10001.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# `healthcheck` asks GET /-/readiness on LISTEN_ADDR (via 127.0.0.1 when it is 0.0.0.0)
# and exits 0 on 200. The start period covers migrations and first-run key generation.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["gitlab-license-server", "healthcheck"]

# The binary is PID 1 and handles SIGTERM itself (graceful shutdown). Any other
# subcommand can be given in place of `serve`, e.g.
#   docker run --rm -v gls-data:/data gitlab-license-server migrate
ENTRYPOINT ["gitlab-license-server"]
CMD ["serve"]
