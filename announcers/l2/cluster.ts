/**
 * Kubernetes mode of the L2 announcer, as a pure function: the L2 policies
 * (CiliumL2AnnouncementPolicy, MetalLB L2Advertisement, our L2Announcement)
 * applied to LoadBalancer Services' ingress IPs give each IP its eligible nodes
 * and interface patterns; rendezvous hashing over the live eligible nodes gives
 * its owner. The result feeds planL2 unchanged: announcements plus the set of
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
import { ipToBigInt, parseRange } from '../ipam/plan.js';
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

function poolName(pool: LoadBalancerPool): string {
  return pool.id.split('/').at(-1)!;
}

function inPool(ip: string, pool: LoadBalancerPool): boolean {
  const v = ipToBigInt(ip);
  if (!v) return false;
  return pool.ranges.some((text) => {
    const r = parseRange(text);
    return r !== undefined && r.v6 === v.v6 && r.lo <= v.value && v.value <= r.hi;
  });
}

/** Whether a policy selects this IP of this service. */
export function policySelects(
  policy: L2AnnouncementPolicy,
  service: ServiceInfo,
  ip: string,
  pools: readonly LoadBalancerPool[],
): boolean {
  if (!policy.loadBalancerIPs) return false;
  if (policy.serviceSelector && !matchesLabels(policy.serviceSelector, service.labels)) return false;
  // MetalLB: neither pools nor pool selectors means every pool. Our pools carry no labels, so a
  // pool selector cannot match one: such an advertisement selects by its pool names only.
  if (policy.pools.length === 0 && policy.poolSelectors.length === 0) return true;
  return pools.some((p) => policy.pools.includes(poolName(p)) && inPool(ip, p));
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

  for (const service of input.services) {
    const key = `${service.namespace}/${service.name}`;
    const ready = input.readyEndpoints.get(key);
    for (const raw of service.ingressIPs) {
      const ip = canonicalIp(raw);
      for (const policy of policies) {
        if (!policySelects(policy, service, ip, input.pools)) continue;
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
