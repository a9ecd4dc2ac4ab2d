# Parley in a container: `docker build -t parley .` then see compose.yaml for several nodes.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin parley

FROM debian:bookworm-slim
RUN useradd --system --home /data parley && mkdir -p /data && chown parley /data
COPY --from=build /src/target/release/parley /usr/local/bin/parley
USER parley
WORKDIR /data
ENV PARLEY_LISTEN=0.0.0.0:8080 PARLEY_TCP_LISTEN=0.0.0.0:7070 PARLEY_DATA_DIR=/data
EXPOSE 8080 7070
ENTRYPOINT ["parley"]
CMD ["serve"]
