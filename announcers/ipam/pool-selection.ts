/**
 * Which addresses an advertisement chooses through its pools, as MetalLB's
 * L2Advertisement and BGPAdvertisement (and our L2Announcement) define it: an
 * address is chosen when it lies in a pool named in `pools` or in a pool whose
 * labels match one of `poolSelectors`; with neither, every address is chosen,
 * including addresses outside any pool. Shared by the L2 and BGP planners.
 */
import type { LabelSelector } from '../../host-policies/model.js';
import { matchesLabels } from '../../host-policies/selector.js';
import { ipToBigInt, parseRange } from './plan.js';

export interface PoolChoice {
  /** Pool names (metadata.name). */
  pools: readonly string[];
  poolSelectors: readonly LabelSelector[];
}

export interface SelectablePool {
  /** The name `pools` lists. */
  name: string;
  labels: Readonly<Record<string, string>>;
  /** CIDRs and `first-last` ranges. */
  ranges: readonly string[];
}

/** The name requests and advertisements use: the last segment of `Kind/name` or `Kind/namespace/name`. */
const poolName = (id: string): string => id.split('/').at(-1)!;

export function addressInRanges(ip: string, ranges: readonly string[]): boolean {
  const v = ipToBigInt(ip);
  if (!v) return false;
  return ranges.some((text) => {
    const r = parseRange(text);
    return r !== undefined && r.v6 === v.v6 && r.lo <= v.value && v.value <= r.hi;
  });
}

function choosesPool(choice: PoolChoice, pool: Pick<SelectablePool, 'name' | 'labels'>): boolean {
  return choice.pools.includes(pool.name) || choice.poolSelectors.some((s) => matchesLabels(s, pool.labels));
}

export function choosesAddress(choice: PoolChoice, pools: readonly SelectablePool[], ip: string): boolean {
  if (choice.pools.length === 0 && choice.poolSelectors.length === 0) return true;
  return pools.some((p) => choosesPool(choice, p) && addressInRanges(ip, p.ranges));
}

/** A pool as the source keeps it (LoadBalancerPool in model/cluster.ts) → the form selection reads. */
export const selectablePool = (pool: {
  id: string;
  labels: Readonly<Record<string, string>>;
  ranges: readonly string[];
}): SelectablePool => ({ name: poolName(pool.id), labels: pool.labels, ranges: pool.ranges });
