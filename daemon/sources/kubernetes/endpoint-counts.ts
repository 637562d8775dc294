/**
 * Ready endpoints per Service and node from EndpointSlice projections. Pure, so
 * the dual-stack rule is unit-tested apart from the watcher.
 */
import type { EndpointCounts } from '../../../model/cluster.js';

/**
 * `namespace/service` → node → ready endpoints. Slices of one address family add
 * up (a family may be split over several slices); across families the largest
 * count wins, because a dual-stack Service has an IPv4 and an IPv6 slice that
 * list the same pods. kube-proxy reports per family too, so a dual-stack pod
 * counts once (healthCheckNodePort's `localEndpoints`), not twice.
 */
export function readyEndpointsByService(slices: Iterable<EndpointCounts>): Map<string, Map<string, number>> {
  // service → family → node → ready endpoints
  const perFamily = new Map<string, Map<string, Map<string, number>>>();
  for (const slice of slices) {
    const key = `${slice.namespace}/${slice.service}`;
    const families = perFamily.get(key) ?? new Map<string, Map<string, number>>();
    perFamily.set(key, families);
    const family = slice.addressType ?? '';
    const byNode = families.get(family) ?? new Map<string, number>();
    families.set(family, byNode);
    for (const [node, n] of Object.entries(slice.readyByNode)) byNode.set(node, (byNode.get(node) ?? 0) + n);
  }
  const ready = new Map<string, Map<string, number>>();
  for (const [key, families] of perFamily) {
    const byNode = new Map<string, number>();
    for (const counts of families.values())
      for (const [node, n] of counts) byNode.set(node, Math.max(byNode.get(node) ?? 0, n));
    ready.set(key, byNode);
  }
  return ready;
}
