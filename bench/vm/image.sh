#!/usr/bin/env bash
# Builds, once, the Debian 12 guest the DSR-against-IPVS bench boots under KVM,
# and prints the directory holding rootfs.img, vmlinuz and initrd.img.
# Why a guest: the reference of the DSR bench is IPVS in DR mode, and a host
# kernel without IPVS (no ip_vs module) cannot run it; Debian's kernel has it.
# Cached under $NODEWARDEN_BENCH_CACHE (default /var/cache/nodewarden-bench),
# keyed by what goes into it, so only the first run pays for debootstrap.
set -euo pipefail

cache_dir=${NODEWARDEN_BENCH_CACHE:-/var/cache/nodewarden-bench}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib/debootstrap.sh"
suite=bookworm
# linux-image-amd64: Debian's kernel and modules (ip_vs, 9p, veth...), booted by qemu.
# ipvsadm: the reference. iproute2/nftables/ethtool/procps: what the DSR lab runs.
# wrk: the load generator. libbpf1: as the package depends on it. libstdc++6: node's.
include=linux-image-amd64,initramfs-tools,kmod,iproute2,ipvsadm,nftables,ethtool,procps,wrk,libbpf1,libstdc++6
mirror=$(debian_mirror)
node_bin=$(command -v node)

key=$( (printf '%s\n' "$suite" "$include" "$mirror"; cat "$here/guest-init.sh" "$node_bin") | sha256sum | cut -c1-12)
out="$cache_dir/guest-$suite-$key"

lock_cache "$cache_dir"
if [ ! -s "$out/rootfs.img" ]; then
  work=$(mktemp -d "$cache_dir/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "guest: debootstrap $suite with Debian's kernel from $mirror (first run only)" >&2
  debootstrap_into "$work" "$suite" "$include" "$mirror"
  root="$work/root"
  # The host's node (same Debian release, so the same glibc): tsx runs the bench inside.
  install -m 755 "$node_bin" "$root/usr/bin/node"
  install -m 755 "$here/guest-init.sh" "$root/sbin/nw-guest-init"
  # Built in a chroot, the initrd may lack the disk driver; make it explicit.
  printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
  kver=$(ls "$root/lib/modules" | head -n 1)
  chroot "$root" update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 || {
    tail -n 30 "$work/initramfs.log" >&2
    exit 1
  }
  mkdir -p "$work/out"
  cp "$root/boot/vmlinuz-$kver" "$work/out/vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$work/out/initrd.img"
  drop_apt_caches "$root"
  # To stderr: stdout carries only the image directory, and mke2fs -d reports there even with -q.
  mkfs.ext4 -q -L nwbench -d "$root" "$work/out/rootfs.img" 2G >&2
  rm -rf "$out"
  mv "$work/out" "$out"
fi
echo "$out"
