# gitlab-license-server container image.
#
#   docker build -t gitlab-license-server .
#   docker run -d -p 8080:8080 -v gls-data:/data gitlab-license-server
#
# With podman, build with `podman build --format docker ...`: podman's default (OCI)
# image format has no HEALTHCHECK, and drops the one below without a word.
#
# Two stages: a Rust builder, and a runtime made of nothing but the binary, the shared
# libraries it links against, a passwd entry for its user and its /data directory — no
# shell, no package manager (about 23 MB). The SQL migrations are embedded in the binary.
# See docs/deployment.md for configuration, PostgreSQL, replicas, backups and upgrades.

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

# 3. The runtime's whole filesystem, under /runtime: the binary; the shared libraries it
#    links against, as ldd lists them (glibc, libm, libgcc_s and the loader — glibc 2.36
#    resolves host names without loading NSS modules); /etc/passwd and /etc/group naming
#    the unprivileged uid/gid 10001 (fixed, so bind-mounted directories can be chowned to
#    it on the host); /data for its state and /tmp. The server makes outgoing TLS
#    connections only for system hooks, with rustls and its built-in roots: no CA bundle.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN set -eu; \
    mkdir -p /runtime/usr/local/bin /runtime/etc /runtime/data /runtime/tmp; \
    cp /usr/local/bin/gitlab-license-server /runtime/usr/local/bin/; \
    for library in $(ldd /usr/local/bin/gitlab-license-server | grep -o '/[^ ]*'); do \
        mkdir -p "/runtime$(dirname "$library")"; \
        cp -L "$library" "/runtime$library"; \
    done; \
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\ngitlab-license-server:x:10001:10001::/data:/usr/sbin/nologin\n' \
        > /runtime/etc/passwd; \
    printf 'root:x:0:\ngitlab-license-server:x:10001:\n' > /runtime/etc/group; \
    chown 10001:10001 /runtime/data; \
    chmod 0750 /runtime/data; \
    chmod 1777 /runtime/tmp

# ---------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------
FROM scratch AS runtime

LABEL org.opencontainers.image.title="gitlab-license-server" \
      org.opencontainers.image.description="A self-hosted server that speaks GitLab's license and seat APIs" \
      org.opencontainers.image.licenses="MIT"

COPY --from=builder /runtime/ /

# Everything the server writes lives under /data: the SQLite database (unless
# DATABASE_URL points at PostgreSQL), generated keys in /data/keys/, and the generated
# root token in /data/initial_root_token (`gitlab-license-server token initial` prints
# it). LISTEN_ADDR must be 0.0.0.0 inside a container (the binary's default, 127.0.0.1,
# is unreachable from outside it).
ENV DATA_DIR=/data \
    DATABASE_URL=sqlite:///data/gitlab-license-server.db \
    LISTEN_ADDR=0.0.0.0:8080

# Declared after /data was made (owned by 10001), so a new named volume starts out owned
# by uid 10001.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# `healthcheck` asks GET /-/readiness on LISTEN_ADDR (via 127.0.0.1 when it is 0.0.0.0)
# and exits 0 on 200. The start period covers migrations and first-run key generation.
# (Podman keeps it only in its docker image format: `podman build --format docker`.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/gitlab-license-server", "healthcheck"]

# The binary is PID 1 and handles SIGTERM itself (graceful shutdown). Any other
# subcommand can be given in place of `serve`, e.g.
#   docker run --rm -v gls-data:/data gitlab-license-server migrate
ENTRYPOINT ["/usr/local/bin/gitlab-license-server"]
CMD ["serve"]
