#!/usr/bin/env bash
# Builds, once, the minimal Debian 12 rootfs the package install test boots
# systemd in, and prints the path of its tarball. The tarball is cached under
# $NODEWARDEN_TEST_CACHE (default /var/cache/nodewarden-test), keyed by what
# goes into it, so only the first run pays for debootstrap.
# The rootfs has no Node.js: the single executable must bring its own runtime.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/../../scripts/lib/debootstrap.sh"

cache_dir=${NODEWARDEN_TEST_CACHE:-/var/cache/nodewarden-test}
suite=bookworm
# systemd as PID 1, libbpf1 for the package's dependency, iproute2 to look at
# links and filters from inside, procps for ps in failure reports.
include=systemd,systemd-sysv,libbpf1,iproute2,procps
mirror=$(debian_mirror)

key=$(printf '%s\n' "$suite" "$include" "$mirror" | sha256sum | cut -c1-12)
tarball="$cache_dir/rootfs-$suite-$key.tar"

lock_cache "$cache_dir"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache_dir/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "rootfs: debootstrap $suite from $mirror (first run only)" >&2
  debootstrap_into "$work" "$suite" "$include" "$mirror"
  drop_apt_caches "$work/root"
  tar -C "$work/root" --numeric-owner -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
fi
echo "$tarball"
