#!/usr/bin/env bash
# Builds the controller's container image without a container engine: the release binary,
# static (glibc, -C target-feature=+crt-static; scripts/image.env), on an empty base with the files of
# scripts/image-rootfs.sh, as an OCI image made with crane in a throw-away local registry.
#
#   scripts/build-image.sh [--profile release|image-test] [--oci DIR] [--tar FILE] [--push REF]
#
#   --oci DIR    write an OCI image layout to DIR (default: target/image/oci, when neither
#                --tar nor --push is given)
#   --tar FILE   write a tarball `docker load` and `crane push` take
#   --push REF   push to REF (e.g. ghcr.io/you/atmos-auth-controller:0.1.0), with the
#                credentials of ~/.docker/config.json (`crane auth login`); a registry on
#                localhost or 127.0.0.1 is reached over plain HTTP
#   --profile    cargo profile of the binary: release (default, what ships) or image-test
#                (unoptimized, for tests/image.rs: minutes less on a cold build)
#
# Needs cargo (Rust with the x86_64-unknown-linux-gnu target, the only one it builds for),
# Go (crane and the registry server are built from Go modules, once, by
# tests/controlplane/build-binaries.sh registry), python3, readelf, GNU tar, and the Debian
# ca-certificates package (installed when missing and run as root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=image.env
. "$here/image.env"
TARGET=x86_64-unknown-linux-gnu
log() { echo "build-image: $*" >&2; }
fail() { log "$*"; exit 1; }

profile=release oci="" tar="" push=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --oci) oci="$2"; shift 2 ;;
    --tar) tar="$2"; shift 2 ;;
    --push) push="$2"; shift 2 ;;
    *) fail "unknown argument $1 (usage: $0 [--profile P] [--oci DIR] [--tar FILE] [--push REF])" ;;
  esac
done
[ -n "$oci$tar$push" ] || oci="$repo/target/image/oci"
for tool in cargo go python3 readelf tar; do
  command -v "$tool" >/dev/null || fail "$tool is required (see the header of $0)"
done

cd "$repo"
eval "$(cargo metadata --locked --no-deps --format-version 1 | python3 -c '
import json, shlex, sys
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "atmos-auth-controller")
for k in ("name", "version", "license", "description"):
    print(f"pkg_{k}={shlex.quote(p[k])}")
')"

# The static binary (scripts/image.env's flags). RUSTFLAGS with --target reach only the
# target's crates, not build scripts and proc macros (they must stay dynamic); hence the
# explicit host triple.
log "building $pkg_name $pkg_version ($profile, static, $TARGET)"
start=$SECONDS
RUSTFLAGS="$IMAGE_RUSTFLAGS" cargo build --locked --profile "$profile" --target "$TARGET" \
  -p atmos-auth-controller --bin atmos-auth-controller
log "binary built in $((SECONDS - start)) s"
dir="$profile"; [ "$profile" = dev ] && dir=debug
binary="target/$TARGET/$dir/atmos-auth-controller"

work="$repo/target/image/$profile"
mkdir -p "$work"
"$here/image-rootfs.sh" "$binary" "$work/rootfs"

# One layer, reproducible: sorted, owned by root (the user's home by the user), fixed times.
layer="$work/layer.tar"
tar_flags=(--sort=name --mtime=@0 --numeric-owner --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
tar -C "$work/rootfs" "${tar_flags[@]}" --owner=0 --group=0 --exclude="./home/$IMAGE_USER_NAME" -cf "$layer" .
tar -C "$work/rootfs" "${tar_flags[@]}" --owner="$IMAGE_UID" --group="$IMAGE_GID" -rf "$layer" "./home/$IMAGE_USER_NAME"

# crane edits images in a registry: a throw-away one on a free loopback port.
bin="$(bash "$repo/tests/controlplane/build-binaries.sh" registry)"
crane="$bin/crane"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
rm -rf "$work/registry"
"$bin/registry" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; rm -rf "$work/registry"' EXIT
for _ in $(seq 100); do
  "$crane" catalog "127.0.0.1:$port" >/dev/null 2>&1 && break
  kill -0 "$registry_pid" 2>/dev/null || fail "the local registry exited: $(cat "$work/registry.log")"
  sleep 0.1
done

ref="127.0.0.1:$port/$pkg_name:$pkg_version"
"$crane" append --oci-empty-base --new_layer "$layer" --new_tag "$ref" >/dev/null
digest="$("$crane" mutate "$ref" --set-platform linux/amd64 \
  --entrypoint "$IMAGE_BINARY" --cmd "$IMAGE_CMD" --user "$IMAGE_UID:$IMAGE_GID" \
  --exposed-ports "$IMAGE_PORT" --workdir / \
  --label "org.opencontainers.image.title=$pkg_name" \
  --label "org.opencontainers.image.description=$pkg_description" \
  --label "org.opencontainers.image.version=$pkg_version" \
  --label "org.opencontainers.image.licenses=$pkg_license" \
  --label "org.opencontainers.image.source=$IMAGE_SOURCE" \
  --tag "$ref")"
log "image $digest"

if [ -n "$oci" ]; then
  rm -rf "$oci"
  "$crane" pull --format oci "$ref" "$oci"
  log "OCI layout: $oci"
fi
if [ -n "$tar" ]; then
  "$crane" pull "$ref" "$tar"
  log "tarball: $tar"
fi
if [ -n "$push" ]; then
  "$crane" copy "$ref" "$push" >&2
  log "pushed: $push"
fi
# Sizes: the compressed layer as pushed, and the files it holds.
compressed="$("$crane" manifest "$ref" | python3 -c 'import json, sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')"
log "size: $compressed bytes compressed, $(stat -c %s "$layer") bytes uncompressed (the layer tar)"
