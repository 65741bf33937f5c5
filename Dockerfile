# syntax=docker/dockerfile:1
# The controller's image: the release binary alone, on distroless, as a non-root user.
#   docker build -t REGISTRY/atmos-auth-controller:0.1.0 .
# tests/chart.rs checks that every path copied here exists and is in the build context;
# CI builds the same release binary with the same cargo command.

# Build stage: the official Rust image (Debian bookworm, glibc 2.36). Same Rust as the
# crate's rust-version or newer.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
# The workspace members (the test environment, `cargo dev`'s launcher): cargo reads their
# manifests to load the workspace and Cargo.lock. They are not built here and never reach
# the runtime image.
COPY tests/support tests/support
COPY tests/dev tests/dev
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p atmos-auth-controller --bin atmos-auth-controller \
 && cp target/release/atmos-auth-controller /atmos-auth-controller

# Runtime stage: distroless "cc" (glibc and libgcc, no shell, no package manager), matching
# the build stage's Debian release.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /atmos-auth-controller /atmos-auth-controller
# The distroless "nonroot" user; the chart's podSecurityContext runs as the same uid.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/atmos-auth-controller"]
CMD ["run"]
