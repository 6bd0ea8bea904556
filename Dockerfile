# syntax=docker/dockerfile:1
# Multi-stage build of messages-server: dependencies are built in a layer of their own (it is
# rebuilt only when Cargo.toml or Cargo.lock change), the final image is distroless and runs as
# a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# 1. Dependencies only: the manifests with stub sources.
COPY Cargo.toml Cargo.lock ./
COPY messages-core/Cargo.toml messages-core/Cargo.toml
COPY messages-server/Cargo.toml messages-server/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN mkdir -p messages-core/src messages-server/src bench/src/bin bench/benches loadtest/src \
 && echo '' > messages-core/src/lib.rs \
 && echo '' > messages-server/src/lib.rs \
 && echo 'fn main() {}' > messages-server/src/main.rs \
 && echo '' > bench/src/lib.rs \
 && echo 'fn main() {}' > bench/src/bin/ceiling.rs \
 && echo 'fn main() {}' > bench/src/bin/sqlite_ceiling.rs \
 && for b in cursor page cache event store service depth; do echo 'fn main() {}' > bench/benches/$b.rs; done \
 && echo 'fn main() {}' > loadtest/src/main.rs \
 && mkdir -p messages-core/migrations \
 && cargo build --release --locked -p messages-server \
 && rm -rf messages-core/src messages-server/src
# 2. The sources.
COPY messages-core messages-core
COPY messages-server messages-server
RUN touch messages-core/src/lib.rs messages-server/src/lib.rs messages-server/src/main.rs \
 && cargo build --release --locked -p messages-server \
 && cp target/release/messages-server /messages-server

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /messages-server /usr/local/bin/messages-server
USER 65532:65532
EXPOSE 3000
ENV BIND_ADDR=0.0.0.0:3000
# mimalloc commits its arenas as it takes memory only: with eager commit, 10,000 open event
# streams took 363-371 MiB resident instead of 228-232 (loadtest/README.md).
ENV MIMALLOC_ARENA_EAGER_COMMIT=0
ENTRYPOINT ["/usr/local/bin/messages-server"]
CMD ["serve"]
