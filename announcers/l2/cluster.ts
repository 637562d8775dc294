/**
 * Kubernetes mode of the L2 announcer, as a pure function: the L2 policies
 * (CiliumL2AnnouncementPolicy, MetalLB L2Advertisement, our L2Announcement)
 * applied to LoadBalancer Services' ingress IPs and external IPs give each IP
 * its eligible nodes and interface patterns; rendezvous hashing over the live
 * eligible nodes gives its owner. The result feeds planL2 unchanged: announcements plus the set of
 * IPs this node owns now.
 */
import { matchesLabels } from '../../host-policies/selector.js';
import type {
  HeartbeatLease,
  L2AnnouncementPolicy,
  LoadBalancerPool,
  NodeInfo,
  ServiceInfo,
} from '../../model/cluster.js';
import { choosesAddress, type SelectablePool, selectablePool } from '../ipam/pool-selection.js';
import { eligibleNodes, rendezvousOwner } from '../ownership/rendezvous.js';
import { canonicalIp } from './addresses.js';
import type { L2Announcement } from './model.js';

export interface ClusterL2Input {
  nodeName: string;
  nodes: readonly NodeInfo[];
  services: readonly ServiceInfo[];
  /** `namespace/service` → node → ready endpoints. */
  readyEndpoints: ReadonlyMap<string, ReadonlyMap<string, number>>;
  heartbeats: readonly HeartbeatLease[];
  policies: readonly L2AnnouncementPolicy[];
  pools: readonly LoadBalancerPool[];
  /** Live nodes (heartbeat leases valid; this node only while its own lease holds). */
  live: ReadonlySet<string>;
}

export interface ClusterL2Ip {
  ip: string;
  /** `namespace/name` of the services using it. */
  services: string[];
  /** Policies that select it. */
  policies: string[];
  eligible: string[];
  /** Undefined: no live eligible node. */
  owner?: string;
}

export interface ClusterL2Plan {
  /** This node's announcements: IPs with the interface patterns of the policies under which it is eligible. */
  announcements: L2Announcement[];
  /** The IPs this node owns now. */
  owned: Set<string>;
  /** Every selected IP with its owner, sorted by IP. */
  ips: ClusterL2Ip[];
}

/** Policies match interface names in full (Cilium anchors its regexes); planL2 does not anchor. */
const anchored = (patterns: readonly string[]): string[] =>
  patterns.length === 0 ? ['^.*$'] : patterns.map((p) => `^(?:${p})$`);

/** Where a Service's address comes from: status.loadBalancer.ingress or spec.externalIPs. */
export type ServiceAddressKind = 'loadBalancer' | 'external';

/** A Service's addresses, canonical and each once, with where each comes from. */
function serviceAddresses(service: ServiceInfo): { ip: string; kinds: Set<ServiceAddressKind> }[] {
  const byIp = new Map<string, Set<ServiceAddressKind>>();
  const add = (raw: string, kind: ServiceAddressKind) => {
    const ip = canonicalIp(raw);
    byIp.set(ip, (byIp.get(ip) ?? new Set()).add(kind));
  };
  for (const ip of service.ingressIPs) add(ip, 'loadBalancer');
  for (const ip of service.externalIPs ?? []) add(ip, 'external');
  return [...byIp].map(([ip, kinds]) => ({ ip, kinds }));
}

/**
 * Whether a policy selects this address of this service: its flag for the address's kind
 * (Cilium's loadBalancerIPs / externalIPs), its service selector, and its pools (MetalLB:
 * pool names or pool selectors; neither: every address).
 */
export function policySelects(
  policy: L2AnnouncementPolicy,
  service: ServiceInfo,
  address: { ip: string; kinds: ReadonlySet<ServiceAddressKind> },
  pools: readonly SelectablePool[],
): boolean {
  const byKind =
    (policy.loadBalancerIPs && address.kinds.has('loadBalancer')) ||
    (policy.externalIPs && address.kinds.has('external'));
  if (!byKind) return false;
  if (policy.serviceSelector && !matchesLabels(policy.serviceSelector, service.labels)) return false;
  return choosesAddress(policy, pools, address.ip);
}

export function planClusterL2(input: ClusterL2Input): ClusterL2Plan {
  const interfacesUp = new Map(input.heartbeats.map((h) => [h.node, h.interfacesUp]));
  const nodeFacts = input.nodes.map((n) => ({
    name: n.name,
    labels: n.labels,
    interfacesUp: interfacesUp.get(n.name) ?? [],
  }));
  const byIp = new Map<
    string,
    { services: Set<string>; policies: Set<string>; eligible: Set<string>; mine: Set<string> }
  >();
  const policies = [...input.policies].sort((a, b) => a.id.localeCompare(b.id));
  const pools = input.pools.map(selectablePool);

  for (const service of input.services) {
    const key = `${service.namespace}/${service.name}`;
    const ready = input.readyEndpoints.get(key);
    for (const address of serviceAddresses(service)) {
      const { ip } = address;
      for (const policy of policies) {
        if (!policySelects(policy, service, address, pools)) continue;
        const eligible = eligibleNodes(nodeFacts, {
          nodeSelectors: policy.nodeSelectors,
          interfaces: policy.interfaces,
          externalTrafficPolicy: service.externalTrafficPolicy,
          ...(ready ? { readyByNode: ready } : {}),
        });
        const entry = byIp.get(ip) ?? {
          services: new Set<string>(),
          policies: new Set<string>(),
          eligible: new Set<string>(),
          mine: new Set<string>(),
        };
        byIp.set(ip, entry);
        entry.services.add(key);
        entry.policies.add(policy.id);
        for (const n of eligible) entry.eligible.add(n);
        if (eligible.includes(input.nodeName)) for (const p of anchored(policy.interfaces)) entry.mine.add(p);
      }
    }
  }

  const ips: ClusterL2Ip[] = [];
  const announcements: L2Announcement[] = [];
  const owned = new Set<string>();
  for (const [ip, entry] of [...byIp].sort(([a], [b]) => a.localeCompare(b))) {
    const eligible = [...entry.eligible].sort();
    const owner = rendezvousOwner(
      ip,
      eligible.filter((n) => input.live.has(n)),
    );
    ips.push({
      ip,
      services: [...entry.services].sort(),
      policies: [...entry.policies].sort(),
      eligible,
      ...(owner !== undefined ? { owner } : {}),
    });
    if (entry.mine.size > 0) announcements.push({ ips: [ip], interfaces: [...entry.mine].sort() });
    if (owner === input.nodeName) owned.add(ip);
  }
  return { announcements, owned, ips };
}
