/**
 * Who announces each IP: rendezvous (highest random weight) hashing over the
 * live, eligible nodes. Every node computes the same answer from the same
 * inputs, without talking to the others, and a node joining or leaving moves
 * only the IPs whose winner it is (or becomes): about 1/n of them.
 */
import type { LabelSelector } from '../../host-policies/model.js';
import { matchesLabels } from '../../host-policies/selector.js';

/** cyrb53: a fast 53-bit string hash with good avalanche; weights need spread, not secrecy. */
function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export function rendezvousWeight(ip: string, node: string): number {
  return hash53(`${ip}\u0000${node}`);
}

/** The winner among `candidates`, or undefined when there is none. Ties (astronomically rare) go to the smaller name. */
export function rendezvousOwner(ip: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of candidates) {
    const w = rendezvousWeight(ip, node);
    if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = w;
    }
  }
  return best;
}

export interface AnnouncedIP {
  ip: string;
  /** Nodes allowed to announce it (see eligibleNodes). */
  eligible: readonly string[];
}

/** Each IP's owner among the eligible nodes that are live; IPs without a candidate are absent. */
export function planOwnership(ips: readonly AnnouncedIP[], live: ReadonlySet<string>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const { ip, eligible } of ips) {
    const owner = rendezvousOwner(
      ip,
      eligible.filter((n) => live.has(n)),
    );
    if (owner !== undefined) owners.set(ip, owner);
  }
  return owners;
}

export interface NodeEligibilityFacts {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** Interfaces that are up on the node (it publishes them with its heartbeat). */
  interfacesUp: readonly string[];
}

export interface EligibilityRule {
  /** The node must match one of them; none: every node. */
  nodeSelectors: readonly LabelSelector[];
  /** Interface names or regular expressions (full match); empty: any interface. */
  interfaces: readonly string[];
  externalTrafficPolicy: 'Cluster' | 'Local';
  /** Ready endpoints per node, for `externalTrafficPolicy: Local`. */
  readyByNode?: ReadonlyMap<string, number>;
}

function interfaceMatcher(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => true;
  const regexes = patterns.map((p) => {
    try {
      return new RegExp(`^(?:${p})$`);
    } catch {
      return undefined; // an invalid pattern matches its literal name only
    }
  });
  return (name) => patterns.some((p, i) => p === name || regexes[i]?.test(name) === true);
}

/**
 * Nodes that may announce an IP: they match a node selector, have a matching
 * interface up, and, with `externalTrafficPolicy: Local`, a ready local endpoint
 * (otherwise traffic sent to them would be dropped).
 */
export function eligibleNodes(nodes: readonly NodeEligibilityFacts[], rule: EligibilityRule): string[] {
  const matchInterface = interfaceMatcher(rule.interfaces);
  return nodes
    .filter(
      (n) => rule.nodeSelectors.length === 0 || rule.nodeSelectors.some((s) => matchesLabels(s, n.labels)),
    )
    .filter((n) => n.interfacesUp.some(matchInterface))
    .filter((n) => rule.externalTrafficPolicy === 'Cluster' || (rule.readyByNode?.get(n.name) ?? 0) > 0)
    .map((n) => n.name);
}
