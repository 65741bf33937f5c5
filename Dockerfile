# syntax=docker/dockerfile:1
# The controller's image for those with a container engine:
#   docker build -t REGISTRY/atmos-auth-controller:0.1.0 .
# The same image as scripts/build-image.sh (the README's engine-free command): the same static
# binary (glibc, +crt-static, x86_64-unknown-linux-gnu), the same files, staged by the same
# scripts/image-rootfs.sh, on an empty base. tests/chart/dockerfile.rs checks that every path
# copied here exists and is in the build context, and that the user, entry point, port and
# labels below are those of scripts/image.env and Cargo.toml, which the script reads.

# Build stage: the official Rust image (Debian bookworm: ca-certificates, python3, binutils).
# Same Rust as the crate's rust-version or newer.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock LICENSE ./
COPY .cargo .cargo
COPY src src
COPY scripts/image.env scripts/image-rootfs.sh scripts/image-licenses.py scripts/
# The workspace members (the test environment, `cargo dev`'s launcher): cargo reads their
# manifests to load the workspace and Cargo.lock. They are not built here and never reach
# the runtime image.
COPY tests/support tests/support
COPY tests/dev tests/dev
# The licences are copied from the registry's crate sources: same RUN as the build, while
# the cache is mounted.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' cargo build --release --locked --target x86_64-unknown-linux-gnu -p atmos-auth-controller --bin atmos-auth-controller \
 && scripts/image-rootfs.sh target/x86_64-unknown-linux-gnu/release/atmos-auth-controller /rootfs

# Runtime: nothing but the staged files.
FROM scratch
COPY --from=build /rootfs /
# COPY makes files root's: the user's home is the user's, as in the script's layer.
COPY --from=build --chown=65532:65532 /rootfs/home/nonroot /home/nonroot
USER 65532:65532
EXPOSE 8080
WORKDIR /
LABEL org.opencontainers.image.title="atmos-auth-controller" \
      org.opencontainers.image.description="Kubernetes controller that turns Atmos auth profiles into refreshed AWS role credentials" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/atmos-tools/atmos-auth-controller"
ENTRYPOINT ["/atmos-auth-controller"]
CMD ["run"]
