/**
 * Settings that make other nodes answer ARP for IPs nodewarden announces, so
 * that clients see several MACs for one IP (MetalLB #153): kube-proxy in IPVS
 * mode puts every Service IP on the kube-ipvs0 dummy device, and with
 * arp_ignore=0 the kernel answers ARP for any local address on any interface.
 * kube-proxy's `strictARP: true` sets arp_ignore=1 and arp_announce=2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { canonicalIp } from '../../announcers/l2/addresses.js';

export interface ArpSysctls {
  name: string;
  arpIgnore: number;
  arpAnnounce: number;
}

export interface ArpFacts {
  kubeIpvs: boolean;
  all: ArpSysctls;
  devices: readonly ArpSysctls[];
  /** Announced IPs this node does not own, mapped to the local devices that carry them as addresses. */
  foreignLocal: readonly { ip: string; device: string }[];
}

export function arpHazards(facts: ArpFacts): string[] {
  const warnings: string[] = [];
  if (facts.kubeIpvs) {
    // The kernel uses the larger of "all" and the device's value.
    const loose = facts.devices.filter((d) => Math.max(d.arpIgnore, facts.all.arpIgnore) < 1);
    if (loose.length > 0)
      warnings.push(
        `kube-proxy IPVS mode without strictARP: kube-ipvs0 holds every Service IP and arp_ignore=0 on ${loose
          .map((d) => d.name)
          .join(
            ', ',
          )}, so every node answers ARP for them (MetalLB #153); set strictARP: true in kube-proxy's IPVS config (arp_ignore=1, arp_announce=2)`,
      );
    const announce = facts.devices.filter((d) => Math.max(d.arpAnnounce, facts.all.arpAnnounce) < 2);
    if (announce.length > 0)
      warnings.push(
        `kube-proxy IPVS mode: arp_announce<2 on ${announce.map((d) => d.name).join(', ')}, so ARP requests from this node may carry Service IPs as sender (strictARP sets arp_announce=2)`,
      );
  }
  for (const { ip, device } of facts.foreignLocal)
    warnings.push(
      `${ip} is owned by another node but is a local address on ${device} here: the kernel answers ARP/NDP for it too`,
    );
  return warnings;
}

function sysctl(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return 0;
  }
}

function arpSysctls(name: string): ArpSysctls {
  const dir = `/proc/sys/net/ipv4/conf/${name}`;
  return { name, arpIgnore: sysctl(`${dir}/arp_ignore`), arpAnnounce: sysctl(`${dir}/arp_announce`) };
}

export function readArpFacts(devices: readonly string[], notOwned: readonly string[]): ArpFacts {
  const wanted = new Set(notOwned.map(canonicalIp));
  const foreignLocal: { ip: string; device: string }[] = [];
  for (const [device, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      const ip = canonicalIp(a.address.split('%')[0]!);
      if (wanted.has(ip)) foreignLocal.push({ ip, device });
    }
  }
  return {
    kubeIpvs: existsSync('/sys/class/net/kube-ipvs0'),
    all: arpSysctls('all'),
    devices: devices.map(arpSysctls),
    foreignLocal,
  };
}
