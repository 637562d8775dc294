/**
 * fromEndpoints/toEndpoints: which pods to watch for the policies in force, and
 * which addresses each endpoint selector resolves to. Pure functions; the
 * Kubernetes source does the watching.
 */
import type { HostPolicy, LabelSelector, Peer } from './model.js';
import { matchesLabels } from './selector.js';

/** Cilium's pseudo-label for a pod's namespace in endpoint selectors. */
export const NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

/** What the firewall keeps of a Pod. */
export interface PodAddresses {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** status.podIPs (IPv4 and IPv6); empty until the pod has an address. */
  addresses: string[];
}

/** One server-side watch: the pods one endpoint selector can match. */
export interface PodWatchPlan {
  /** Stable identity of the selector (its normalized form), shared by every rule that uses it. */
  key: string;
  /** The whole selector, normalized: pods are matched with it (the namespace too) after the server-side narrowing. */
  selector: LabelSelector;
  /** When the selector fixes the namespace with matchLabels: a namespaced watch. */
  namespace?: string;
  /** The selector without the namespace label, in the API's query-string form ('' selects every pod). */
  labelSelector: string;
}

type EndpointPeer = Extract<Peer, { kind: 'endpoints' }>;

/** Cilium prefixes label keys with their source (`k8s:app`, `any:app`); pods carry the bare key. */
function bareKey(key: string): string {
  return key.replace(/^(k8s|any):/, '');
}

/** The selector with bare keys, matchLabels and expressions in a canonical order. */
export function normalizeSelector(selector: LabelSelector): LabelSelector {
  const matchLabels = Object.fromEntries(
    Object.entries(selector.matchLabels)
      .map(([k, v]) => [bareKey(k), v] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const matchExpressions = selector.matchExpressions
    .map((e) => ({ key: bareKey(e.key), operator: e.operator, values: [...e.values].sort() }))
    .sort((a, b) => {
      const x = JSON.stringify(a);
      const y = JSON.stringify(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  return { matchLabels, matchExpressions };
}

const EXPRESSION_TERMS: Record<
  LabelSelector['matchExpressions'][number]['operator'],
  (key: string, values: string) => string
> = {
  In: (key, values) => `${key} in (${values})`,
  NotIn: (key, values) => `${key} notin (${values})`,
  Exists: (key) => key,
  DoesNotExist: (key) => `!${key}`,
};

/** The selector in the API's query-string form, keys bare and sorted: also its identity. */
export function selectorKey(selector: LabelSelector): string {
  const s = normalizeSelector(selector);
  const terms = [
    ...Object.entries(s.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...s.matchExpressions.map((e) => EXPRESSION_TERMS[e.operator](e.key, e.values.join(','))),
  ];
  return terms.join(',');
}

/** The watch for one selector: namespaced when matchLabels names the namespace; the namespace label is not a real pod label. */
export function podWatchPlan(selector: LabelSelector): PodWatchPlan {
  const s = normalizeSelector(selector);
  const namespace = s.matchLabels[NAMESPACE_LABEL];
  const { [NAMESPACE_LABEL]: _, ...labels } = s.matchLabels;
  const serverSide: LabelSelector = {
    matchLabels: labels,
    matchExpressions: s.matchExpressions.filter((e) => e.key !== NAMESPACE_LABEL),
  };
  return {
    key: selectorKey(s),
    selector: s,
    ...(namespace !== undefined ? { namespace } : {}),
    labelSelector: selectorKey(serverSide),
  };
}

export function endpointPeers(policies: readonly HostPolicy[]): EndpointPeer[] {
  const peers: EndpointPeer[] = [];
  for (const p of policies)
    for (const rule of [...p.ingress, ...p.ingressDeny, ...p.egress, ...p.egressDeny])
      if (rule.peers !== 'any')
        for (const peer of rule.peers) if (peer.kind === 'endpoints') peers.push(peer);
  return peers;
}

/** One watch per distinct endpoint selector in the policies, sorted by key. */
export function podWatchPlans(policies: readonly HostPolicy[]): PodWatchPlan[] {
  const byKey = new Map<string, PodWatchPlan>();
  for (const peer of endpointPeers(policies)) {
    const plan = podWatchPlan(peer.selector);
    byKey.set(plan.key, plan);
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The addresses of the pods `selector` matches (the namespace as the pseudo-label), sorted and unique. */
export function resolveEndpoints(selector: LabelSelector, pods: Iterable<PodAddresses>): string[] {
  const s = normalizeSelector(selector);
  const out = new Set<string>();
  for (const pod of pods) {
    if (matchesLabels(s, { ...pod.labels, [NAMESPACE_LABEL]: pod.namespace }))
      for (const a of pod.addresses) out.add(a);
  }
  return [...out].sort();
}

/** The compile hook: an endpoints peer's addresses, from the addresses resolved per selector key. */
export function endpointResolver(
  resolved: Readonly<Record<string, readonly string[]>>,
): (peer: EndpointPeer) => string[] {
  return (peer) => [...(resolved[selectorKey(peer.selector)] ?? [])];
}

export interface EndpointSelectorSummary {
  selector: string;
  addresses: number;
  /** With a traced peer: whether the selector resolves to it. */
  includesPeer?: boolean;
}

/** What status and trace show: each selector in force and how many addresses it resolved to. */
export function summarizeEndpoints(
  resolved: Readonly<Record<string, readonly string[]>>,
  peer?: string,
): EndpointSelectorSummary[] {
  return Object.entries(resolved)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([selector, addresses]) => ({
      selector,
      addresses: addresses.length,
      ...(peer !== undefined ? { includesPeer: addresses.includes(peer) } : {}),
    }));
}
