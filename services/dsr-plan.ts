/**
 * What DSR needs in the kernel on this node, from the services model: the
 * VIP:port entries and one Maglev table per service and address family (on
 * load-balancer nodes), and the load-balancer nodes to accept encapsulated
 * packets from plus the VIPs to hold as local (on backend nodes).
 */
import { isIP } from 'node:net';
import type { SystemAllow } from '../host-policies/compile.js';
import { MAGLEV_SIZE, maglevTable } from './maglev.js';
import { type Service, serviceKey } from './model.js';

export const PROTOCOL_NUMBERS = { TCP: 6, UDP: 17, SCTP: 132 } as const;

export interface DsrVipEntry {
  vip: string;
  port: number;
  protocol: keyof typeof PROTOCOL_NUMBERS;
  /** Maglev table slot. */
  slot: number;
  backends: number;
}

export interface DsrTable {
  /** namespace/name/IPv4 or namespace/name/IPv6 */
  key: string;
  slot: number;
  /** Backend node address per Maglev slot (MAGLEV_SIZE entries), empty without backends. */
  backends: string[];
  entries: string[];
}

export interface DsrPlan {
  vips: DsrVipEntry[];
  tables: DsrTable[];
  /** Every backend node address some table uses. */
  backendNodes: string[];
  /** Nodes whose encapsulated packets this node decapsulates. */
  loadBalancerNodes: string[];
  /** VIPs of DSR services this node is a backend of. */
  localVips: string[];
  /** Slots keyed by table key, to pass to the next plan so slots stay put. */
  slots: Map<string, number>;
}

export interface DsrNodeFacts {
  /** This node's own addresses. */
  addresses: readonly string[];
  /** The nodes allowed to send this node encapsulated VIP traffic. */
  loadBalancerNodes: readonly string[];
}

const family = (address: string) => (isIP(address) === 6 ? 'IPv6' : 'IPv4');

/**
 * `previousSlots` keeps a table in the slot it had, so an update replaces one
 * service's table in place and never points a VIP at another service's table.
 */
export function planDsr(
  services: readonly Service[],
  node: DsrNodeFacts,
  previousSlots: ReadonlyMap<string, number> = new Map(),
  slotCount = 1024,
): DsrPlan {
  const dsr = services
    .filter((s) => s.dsr && (s.type === 'LoadBalancer' || s.externalIPs.length > 0))
    .sort((a, b) => serviceKey(a).localeCompare(serviceKey(b)));
  const own = new Set(node.addresses);
  const tableBackends = new Map<string, string[]>();
  const vipsOf = new Map<string, string[]>();
  const localVips = new Set<string>();
  for (const s of dsr) {
    const vips = [...new Set([...(s.type === 'LoadBalancer' ? s.loadBalancerIPs : []), ...s.externalIPs])];
    const isBackend = s.backendNodes.some((b) => own.has(b));
    for (const fam of ['IPv4', 'IPv6'] as const) {
      const famVips = vips.filter((v) => family(v) === fam);
      if (famVips.length === 0) continue;
      const key = `${serviceKey(s)}/${fam}`;
      tableBackends.set(key, [...new Set(s.backendNodes.filter((b) => family(b) === fam))].sort());
      vipsOf.set(key, famVips);
      if (isBackend) for (const v of famVips) localVips.add(v);
    }
  }

  const slots = new Map<string, number>();
  const used = new Set<number>();
  for (const key of tableBackends.keys()) {
    const slot = previousSlots.get(key);
    if (slot !== undefined && !used.has(slot)) {
      slots.set(key, slot);
      used.add(slot);
    }
  }
  let free = 0;
  for (const key of tableBackends.keys()) {
    if (slots.has(key)) continue;
    while (used.has(free)) free++;
    if (free >= slotCount) throw new RangeError(`more than ${slotCount} DSR service tables`);
    slots.set(key, free);
    used.add(free);
  }

  const tables: DsrTable[] = [];
  const vips: DsrVipEntry[] = [];
  const backendNodes = new Set<string>();
  const byKey = new Map(dsr.map((s) => [serviceKey(s), s]));
  for (const [key, backends] of tableBackends) {
    const slot = slots.get(key)!;
    const { backends: names, table } = maglevTable(backends, MAGLEV_SIZE);
    tables.push({ key, slot, backends: names, entries: Array.from(table, (i) => names[i]!) });
    for (const b of names) backendNodes.add(b);
    const service = byKey.get(key.slice(0, key.lastIndexOf('/')))!;
    for (const vip of vipsOf.get(key)!) {
      for (const p of service.ports)
        vips.push({ vip, port: p.port, protocol: p.protocol, slot, backends: names.length });
    }
  }
  return {
    vips,
    tables,
    backendNodes: [...backendNodes].sort(),
    loadBalancerNodes: [...new Set(node.loadBalancerNodes)].sort(),
    localVips: [...localVips].sort(),
    slots,
  };
}

/**
 * A backend node lets the load-balancer nodes' encapsulated packets in
 * (IPIP: protocol 4, IP6IP6: 41), whatever the host policies say; the
 * decapsulation runs after the firewall.
 */
export function decapSystemAllows(services: readonly Service[], node: DsrNodeFacts): SystemAllow[] {
  const own = new Set(node.addresses);
  const isBackend = services.some((s) => s.dsr && s.backendNodes.some((b) => own.has(b)));
  if (!isBackend || node.loadBalancerNodes.length === 0) return [];
  return [
    {
      reason: 'DSR traffic from load-balancer nodes (IPIP, IP6IP6)',
      direction: 'ingress',
      peers: [...new Set(node.loadBalancerNodes)].sort(),
      l4: [
        { kind: 'protocol', protocol: 4 },
        { kind: 'protocol', protocol: 41 },
      ],
    },
  ];
}
