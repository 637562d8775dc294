#!/usr/bin/env bash
# Installs everything nodewarden needs to build and test, idempotently:
# Debian packages (only those missing), node_modules (only when the lock file
# changed), the BPF objects and the bundle. Both README commands call this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get, network namespaces and BPF need it)" >&2
  exit 1
fi

# Build: clang/llvm/libbpf-dev/linux-libc-dev/make. Run: libbpf1, iproute2.
# Tests: bpftool, iputils-ping, util-linux (umount), openssh-server (the SSH lockdown test),
# bird2/frr/gobgpd (real BGP peers), iputils-arping/ndisc6 (L2 clients), tcpdump,
# ipvsadm/wrk/iperf3/nftables/iptables (reference systems in tests and benchmarks),
# debootstrap/systemd-container/rpm/lintian (packages and the install test),
# rpmlint (the .rpm's checker, in the package contents test).
APT_PACKAGES=(clang llvm libbpf-dev libbpf1 linux-libc-dev libc6-dev make bpftool iproute2 iputils-ping util-linux openssh-server
  bird2 frr gobgpd iputils-arping ndisc6 tcpdump ipvsadm wrk iperf3 nftables iptables
  debootstrap systemd-container rpm lintian rpmlint
  # ethtool: the DSR lab turns off tx checksum offload on the client's veth
  ethtool
  # qemu-system-x86: the KVM guest (Debian's kernel, with IPVS) of the DSR-against-IPVS bench,
  # and the Debian 12 (6.1 verifier) kernel test
  qemu-system-x86)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # The peers' packages would start their services on the host. Tests start their
  # own instances inside namespaces, so forbid service starts during the install
  # (policy-rc.d, the Debian mechanism), unless the machine already has a policy.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  trap '[ -n "$guard" ] && rm -f "$guard"' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$guard" ] && rm -f "$guard"
  guard=""
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed to build (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# --ignore-scripts: koffi and esbuild ship prebuilt binaries in their
# platform packages and work without their install scripts, and npm 11 would
# otherwise ask before running them.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

npm run --silent build
