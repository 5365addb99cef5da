# Build: docker build -t poam .
# Run:   docker run -p 8080:8080 -v poam-data:/data poam
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates crates
COPY migrations migrations
COPY src src
# Integration tests are not built here, but Cargo reads their target from the manifest.
COPY tests tests
RUN cargo build --release --locked --bin poam

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin poam \
    && mkdir -p /data && chown poam:poam /data && chmod 0700 /data
COPY --from=build /src/target/release/poam /usr/local/bin/poam
USER poam
ENV POAM_DATA_DIR=/data \
    POAM_BIND=0.0.0.0:8080 \
    POAM_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/poam"]
CMD ["serve"]
