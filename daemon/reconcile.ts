/**
 * Kubernetes mode's reconcile pass. The source calls back after every burst of
 * cluster changes (coalesced to 250 ms), and most of them are heartbeat
 * renewals that no planner reads. Each consumer (services, BGP, firewall, L2)
 * names the slices of the cluster view it reads; a pass re-plans a consumer
 * only when one of those slices' versions moved since it last planned.
 * Comparing a dozen numbers replaces re-serializing each consumer's whole input.
 * The consumers keep their own compare of what they plan, so a re-plan whose
 * result is unchanged still applies nothing.
 */
import type { SourceVersions } from './sources/kubernetes/source.js';

/** A slice of the input: the source's, or the config file (bumped by each reload). */
export type ClusterSlice = keyof SourceVersions | 'config';

export type Versions<K extends string = ClusterSlice> = Readonly<Record<K, number>>;

/**
 * What each consumer reads, in the order a pass runs them: services first, so
 * that health answers change before the slower policy compile.
 */
export const CLUSTER_READS = {
  /** Health ports and DSR: Services, this node's ready endpoints, the nodes' addresses (DSR backends). */
  services: ['config', 'synced', 'nodes', 'services', 'endpointSlices'],
  /** Routes of the Services' addresses, the cluster's peers and advertisements for this node's labels. */
  bgp: ['config', 'synced', 'nodes', 'services', 'endpointSlices', 'pools', 'bgpPeers', 'bgpAdvertisements'],
  /**
   * Policies, identities (nodes, API servers), the Services' automatic allows
   * (backend nodes from the endpoints), BGP peers' sessions, and pods of endpoint
   * selectors. Endpoint counts move this slice too; the firewall's own compare
   * leaves them out, so they do not recompile.
   */
  firewall: ['config', 'synced', 'hostPolicies', 'nodes', 'services', 'endpointSlices', 'bgpPeers', 'pods'],
  /**
   * Announcements and owners: policies, pools, Services, eligible nodes (labels,
   * published interfaces, ready endpoints) and the live set. A renewal moves
   * neither heartbeatMembers nor live; an expiry also takes the immediate
   * onOwnershipChange path.
   */
  l2: ['config', 'nodes', 'services', 'endpointSlices', 'heartbeatMembers', 'l2Policies', 'pools', 'live'],
} as const satisfies Record<string, readonly ClusterSlice[]>;

export type ClusterConsumerName = keyof typeof CLUSTER_READS;

/** Whether a slice in `reads` moved from `last` (undefined: never planned) to `now`. */
export function slicesMoved<K extends string>(
  reads: readonly K[],
  last: Versions<K> | undefined,
  now: Versions<K>,
): boolean {
  return last === undefined || reads.some((slice) => last[slice] !== now[slice]);
}

export interface Consumer<K extends string> {
  name: string;
  reads: readonly K[];
  /**
   * Re-plans, and applies what changed. False when it could not use this input
   * yet (an actuator not started, pod watches not listed): the next pass tries again.
   */
  replan(): boolean;
}

export interface ConsumerStats {
  name: string;
  replans: number;
  skips: number;
}

export class ReconcilePass<K extends string = ClusterSlice> {
  private readonly planned = new Map<string, Versions<K>>();
  private readonly counts = new Map<string, { replans: number; skips: number }>();

  constructor(private readonly consumers: readonly Consumer<K>[]) {
    for (const c of consumers) this.counts.set(c.name, { replans: 0, skips: 0 });
  }

  /**
   * One pass over the consumers in order. `now` is read before any of them runs:
   * a change made while one plans moves a version past `now`, so the next pass
   * sees it. Returns the consumers that re-planned.
   */
  run(now: Versions<K>): string[] {
    const ran: string[] = [];
    for (const consumer of this.consumers) {
      const count = this.counts.get(consumer.name)!;
      if (!slicesMoved(consumer.reads, this.planned.get(consumer.name), now)) {
        count.skips++;
        continue;
      }
      count.replans++;
      ran.push(consumer.name);
      if (consumer.replan()) this.planned.set(consumer.name, now);
      else this.planned.delete(consumer.name);
    }
    return ran;
  }

  stats(): ConsumerStats[] {
    return this.consumers.map((c) => ({ name: c.name, ...this.counts.get(c.name)! }));
  }
}

/** A value derived from some slices, recomputed only when one of them moved (shared by the consumers of one pass). */
export class Derived<V, K extends string = ClusterSlice> {
  private last: { versions: Versions<K>; value: V } | undefined;

  constructor(
    private readonly reads: readonly K[],
    private readonly compute: () => V,
  ) {}

  get(now: Versions<K>): V {
    if (this.last && !slicesMoved(this.reads, this.last.versions, now)) return this.last.value;
    const value = this.compute();
    this.last = { versions: now, value };
    return value;
  }
}
