#!/usr/bin/env bash
# Builds, once, the minimal Debian 12 rootfs the package install test boots
# systemd in, and prints the path of its tarball. The tarball is cached under
# $NODEWARDEN_TEST_CACHE (default /var/cache/nodewarden-test), keyed by what
# goes into it, so only the first run pays for debootstrap.
# The rootfs has no Node.js: the single executable must bring its own runtime.
set -euo pipefail

cache_dir=${NODEWARDEN_TEST_CACHE:-/var/cache/nodewarden-test}
suite=bookworm
# systemd as PID 1, libbpf1 for the package's dependency, iproute2 to look at
# links and filters from inside, procps for ps in failure reports.
include=systemd,systemd-sysv,libbpf1,iproute2,procps
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

key=$(printf '%s\n' "$suite" "$include" "$mirror" | sha256sum | cut -c1-12)
tarball="$cache_dir/rootfs-$suite-$key.tar"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache_dir/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "rootfs: debootstrap $suite from $mirror (first run only)" >&2
  debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  tar -C "$work/root" --numeric-owner -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
fi
echo "$tarball"
