# Build: docker build -t poam .
# Run:   docker run -p 8080:8080 -v poam-data:/data poam
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, in a layer of their own: a change to the service's code does not rebuild
# them. Placeholder sources stand in for the workspace's crates while they build.
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
# The linker's symbol order for the service's code (build.rs): the functions a running service
# touches, laid out together.
COPY link link
COPY crates/domain/Cargo.toml crates/domain/Cargo.toml
COPY crates/persistence/Cargo.toml crates/persistence/Cargo.toml
COPY crates/http/Cargo.toml crates/http/Cargo.toml
RUN for c in domain persistence http; do mkdir -p crates/$c/src && echo '' > crates/$c/src/lib.rs; done \
    && mkdir -p src tests/api && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo '' > tests/api/main.rs \
    && cargo build --profile dist --locked --bin poam \
    && rm -rf src tests crates/*/src
COPY crates crates
COPY migrations migrations
COPY src src
# Integration tests are not built here, but Cargo reads their target from the manifest.
COPY tests tests
# The shipped build: the `dist` profile (fat LTO, one codegen unit). Touch the sources so Cargo
# rebuilds the workspace's crates over the placeholders.
RUN touch crates/*/src/lib.rs src/main.rs src/lib.rs \
    && cargo build --profile dist --locked --bin poam

FROM debian:bookworm-slim
# libpq is built into the binary (pq-sys `bundled`); it needs OpenSSL's libraries at run time.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin poam \
    && mkdir -p /data && chown poam:poam /data && chmod 0700 /data
COPY --from=build /src/target/dist/poam /usr/local/bin/poam
USER poam
# The service's own allocations go to jemalloc (src/main.rs, configured in .cargo/config.toml);
# SQLite's and libpq's go to glibc malloc, set as a long-running server needs it: two arenas
# (the blocking threads of imports and exports each keep one of their own otherwise) and a
# fixed mmap threshold (glibc raises it after freeing a large block, after which 1 MiB buffers
# come from the heap and are never given back). With glibc for everything, a 100,000-finding
# scan import on PostgreSQL left RSS at 631 MiB with the defaults, 72 MiB with these.
ENV POAM_DATA_DIR=/data \
    POAM_BIND=0.0.0.0:8080 \
    POAM_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# Liveness from the binary itself (the slim image has no curl): `poam health` asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/poam", "health"]
ENTRYPOINT ["/usr/local/bin/poam"]
CMD ["serve"]
