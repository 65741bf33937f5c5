#!/usr/bin/env bash
# Stages the image's filesystem in DIR around a static BINARY: the binary, the Debian CA
# bundle, /etc/passwd and /etc/group with the non-root user, /etc/nsswitch.conf, /tmp, and
# the licences (the project's, the CA bundle's, and every Rust crate linked in, copied from
# the cargo registry's sources). Used by scripts/build-image.sh and by the Dockerfile, so
# both images hold the same files.
#
#   scripts/image-rootfs.sh BINARY DIR
#
# Needs: the `ca-certificates` Debian package (installed when missing and run as root with
# apt-get), python3, cargo (for `cargo metadata` of the locked dependency graph).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
[ $# -eq 2 ] || { echo "usage: $0 BINARY DIR" >&2; exit 2; }
binary="$1" root="$2"
# shellcheck source=image.env
. "$here/image.env"
fail() { echo "image-rootfs: $*" >&2; exit 1; }

[ -x "$binary" ] || fail "$binary is not an executable"
# A dynamic binary would not start in an image without a libc: refuse it here.
if readelf --program-headers "$binary" | grep -q INTERP || readelf --dynamic "$binary" | grep -q NEEDED; then
  fail "$binary is dynamically linked (build it with -C target-feature=+crt-static and --target)"
fi

# The CA bundle: the certificates of Debian's ca-certificates package only (not whatever the
# build machine added under /usr/local/share/ca-certificates), in the package's order.
if ! dpkg-query -W -f '${Status}' ca-certificates 2>/dev/null | grep -q 'install ok installed'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "image-rootfs: installing the ca-certificates package" >&2
    apt-get install -y --no-install-recommends ca-certificates >&2
  else
    fail "the Debian package ca-certificates is not installed (apt-get install ca-certificates)"
  fi
fi
ca_version="$(dpkg-query -W -f '${Version}' ca-certificates)"
mapfile -t certs < <(dpkg-query -L ca-certificates | grep '^/usr/share/ca-certificates/.*\.crt$' | LC_ALL=C sort)
[ "${#certs[@]}" -gt 100 ] || fail "ca-certificates $ca_version lists only ${#certs[@]} certificates"

rm -rf "$root"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root$IMAGE_LICENSE_DIR" "$root/home/$IMAGE_USER_NAME"
install -m 0755 "$binary" "$root$IMAGE_BINARY"
cat "${certs[@]}" >"$root$IMAGE_CA_BUNDLE"
chmod 0644 "$root$IMAGE_CA_BUNDLE"
cat >"$root/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
$IMAGE_USER_NAME:x:$IMAGE_UID:$IMAGE_GID:$IMAGE_USER_NAME:/home/$IMAGE_USER_NAME:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<GROUP
root:x:0:
$IMAGE_USER_NAME:x:$IMAGE_GID:
GROUP
# glibc's resolver, linked in statically, reads the hosts file kubelet mounts before DNS.
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"

# Licences.
licenses="$root$IMAGE_LICENSE_DIR"
install -m 0644 "$repo/LICENSE" "$licenses/LICENSE"
mkdir -p "$licenses/ca-certificates"
install -m 0644 /usr/share/doc/ca-certificates/copyright "$licenses/ca-certificates/copyright"
echo "Debian ca-certificates $ca_version: $IMAGE_CA_BUNDLE" >"$licenses/ca-certificates/VERSION"
[ -f /usr/share/common-licenses/MPL-2.0 ] && install -m 0644 /usr/share/common-licenses/MPL-2.0 "$licenses/ca-certificates/MPL-2.0"
(cd "$repo" && cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu) |
  python3 "$here/image-licenses.py" "$licenses"
