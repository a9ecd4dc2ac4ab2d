# Parley in a container: `docker build -t parley .`, or `docker compose up --build` (compose.yaml) for
# several nodes behind nginx.
#
# The Rust version is pinned to the toolchain CI builds and tests with (Cargo.toml's rust-version is the
# oldest that builds). Dependencies are compiled in a layer of their own, from the manifests alone, so a
# change to Parley's sources rebuilds only Parley. The image uses jemalloc (`--features jemalloc`): measured
# as cheap as the system allocator on the hot paths (BENCHMARKS.md, "Allocator"), and it gives operators
# the heap profile and the parley_heap_* gauges on the metrics listener.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/bench/Cargo.toml crates/bench/
COPY crates/proto/Cargo.toml crates/proto/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/tui/Cargo.toml crates/tui/
RUN mkdir -p src benches crates/bench/src crates/proto/src crates/testkit/src crates/tui/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/bench/src/lib.rs crates/proto/src/lib.rs crates/testkit/src/lib.rs crates/tui/src/lib.rs \
 && echo 'fn main() {}' > benches/hot_paths.rs \
 && cargo build --release --locked --bin parley --features jemalloc \
 && rm -rf src benches crates/bench/src crates/proto/src crates/testkit/src crates/tui/src
COPY . .
# The commit for parley_build_info (the build context has no .git): `--build-arg PARLEY_COMMIT=$(git rev-parse --short=12 HEAD)`.
ARG PARLEY_COMMIT=unknown
# New mtimes so cargo rebuilds the workspace's own crates over the placeholders.
RUN touch src/main.rs src/lib.rs crates/bench/src/lib.rs crates/proto/src/lib.rs crates/testkit/src/lib.rs \
    crates/tui/src/lib.rs \
 && cargo build --release --locked --bin parley --features jemalloc

FROM debian:bookworm-slim
RUN useradd --system --home /data parley && mkdir -p /data && chown parley /data
COPY --from=build /src/target/release/parley /usr/local/bin/parley
USER parley
WORKDIR /data
ENV PARLEY_LISTEN=0.0.0.0:8080 PARLEY_TCP_LISTEN=0.0.0.0:7070 PARLEY_DATA_DIR=/data
EXPOSE 8080 7070
# Ready = /readyz answers 200 (the store and the broker answer); `parley healthcheck` needs no curl.
HEALTHCHECK --interval=5s --timeout=6s --start-period=10s --retries=3 CMD ["parley", "healthcheck"]
ENTRYPOINT ["parley"]
CMD ["serve"]
