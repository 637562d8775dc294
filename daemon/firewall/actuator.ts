/**
 * Puts a compiled policy into the kernel without a window where half of it is
 * live: fresh inner maps are filled for the inactive generation slot, the
 * outer maps point that slot at them, and one write flips the active slot.
 * Conntrack is never touched, so established flows survive every apply and
 * every restart.
 */

import {
  type ActiveSlot,
  activeSlot,
  FIREWALL_MAPS,
  fwSettings,
  hostAddrKey,
  IDENT_MAX,
  identKey,
  identValue,
  POLICY_MAX,
  policyKey,
  policyValue,
  RULES_MAX,
  rateWindow,
  ruleStats,
} from '../../bpf/codecs/firewall.js';
import {
  BPF_F_INNER_MAP,
  BPF_F_NO_PREALLOC,
  BpfError,
  BpfMap,
  type BpfObject,
  createMap,
  MapType,
  type OwnedMap,
  openMapById,
  u32,
} from '../../bpf/index.js';
import type { CompiledPolicy } from '../../host-policies/compile.js';
import { parsePrefix, toBytes } from '../../host-policies/prefix.js';

export interface ApplyResult {
  generation: number;
  slot: number;
  identities: number;
  entries: number;
  durationMs: number;
}

const ZERO_PAD3 = new Uint8Array(3);

/** Fills a map, in batches where the kernel supports them for its type. */
function fill<K, V>(map: BpfMap<K, V>, entries: readonly (readonly [K, V])[]): void {
  const CHUNK = 16384;
  try {
    for (let i = 0; i < entries.length; i += CHUNK) map.updateBatch(entries.slice(i, i + CHUNK));
  } catch (error) {
    // LPM tries gained batch updates late; one by one is the portable path.
    if (
      !(error instanceof BpfError) ||
      (error.code !== 'EINVAL' &&
        error.code !== 'ENOTSUPP' &&
        error.code !== 'EOPNOTSUPP' &&
        error.errno !== 524)
    )
      throw error;
    for (const [k, v] of entries) map.update(k, v);
  }
}

export class FirewallMaps {
  private readonly active: BpfMap<number, ActiveSlot>;
  private readonly outerIdent: BpfMap<number, number>;
  private readonly outerPolicy: BpfMap<number, number>;
  private readonly outerStats: BpfMap<number, number>;
  private readonly hostAddrs: BpfMap<{ addr: Uint8Array }, number>;
  private readonly settings: BpfMap<number, { eventsPerSec: number; pad: number }>;
  private readonly eventRate: BpfMap<number, { startNs: bigint; count: bigint; suppressed: bigint }>;

  constructor(object: BpfObject) {
    this.active = new BpfMap(object.map(FIREWALL_MAPS.active), u32, activeSlot);
    this.outerIdent = new BpfMap(object.map(FIREWALL_MAPS.ident), u32, u32);
    this.outerPolicy = new BpfMap(object.map(FIREWALL_MAPS.policy), u32, u32);
    this.outerStats = new BpfMap(object.map(FIREWALL_MAPS.ruleStats), u32, u32);
    this.hostAddrs = new BpfMap(object.map(FIREWALL_MAPS.hostAddrs), hostAddrKey, u32);
    this.settings = new BpfMap(object.map(FIREWALL_MAPS.settings), u32, fwSettings);
    this.eventRate = new BpfMap(object.map(FIREWALL_MAPS.eventRate), u32, rateWindow);
  }

  activeSlot(): ActiveSlot {
    return this.active.lookup(0)!;
  }

  apply(compiled: CompiledPolicy): ApplyResult {
    const start = performance.now();
    const current = this.activeSlot();
    const slot = current.slot === 0 ? 1 : 0;
    const inner: OwnedMap[] = [];
    try {
      const ident = createMap({
        type: MapType.lpmTrie,
        name: 'nw_fw_ident_in',
        keySize: identKey.size,
        valueSize: identValue.size,
        maxEntries: IDENT_MAX,
        flags: BPF_F_NO_PREALLOC,
      });
      inner.push(ident);
      fill(
        new BpfMap(ident, identKey, identValue),
        compiled.identities.map(
          ({ prefix, set }) =>
            [
              { prefixlen: prefix.len, addr: toBytes(prefix) },
              { set, pad: 0 },
            ] as const,
        ),
      );
      const policy = createMap({
        type: MapType.lpmTrie,
        name: 'nw_fw_policy_in',
        keySize: policyKey.size,
        valueSize: policyValue.size,
        maxEntries: POLICY_MAX,
        flags: BPF_F_NO_PREALLOC,
      });
      inner.push(policy);
      fill(
        new BpfMap(policy, policyKey, policyValue),
        compiled.entries.map(
          (e) =>
            [
              { prefixlen: e.prefixlen, set: e.set, direction: e.direction, proto: e.proto, port: e.port },
              { verdict: e.verdict, pad: ZERO_PAD3, rule: e.rule },
            ] as const,
        ),
      );
      const stats = createMap({
        type: MapType.array,
        name: 'nw_fw_stats_in',
        keySize: 4,
        valueSize: ruleStats.size,
        maxEntries: Math.min(Math.max(compiled.rules.length, 1), RULES_MAX),
        flags: BPF_F_INNER_MAP,
      });
      inner.push(stats);

      this.outerIdent.update(slot, ident.fd);
      this.outerPolicy.update(slot, policy.fd);
      this.outerStats.update(slot, stats.fd);
      // Two writes: first the new slot's defaults (not live yet), then the flip.
      const defaults = Uint8Array.from(current.defaultVerdict);
      defaults[slot * 2] = compiled.defaults.ingress;
      defaults[slot * 2 + 1] = compiled.defaults.egress;
      this.active.update(0, { ...current, defaultVerdict: defaults });
      const generation = current.generation + 1;
      this.active.update(0, { slot, generation, defaultVerdict: defaults, pad: new Uint8Array(4) });
      return {
        generation,
        slot,
        identities: compiled.identities.length,
        entries: compiled.entries.length,
        durationMs: performance.now() - start,
      };
    } finally {
      // The outer maps hold the inner maps now; our fds are not needed.
      for (const map of inner) map.close();
    }
  }

  /** Makes the host-address map hold exactly these addresses. */
  setHostAddresses(addresses: readonly string[]): void {
    const wanted = new Map(
      addresses.map((a) => {
        const bytes = toBytes(parsePrefix(a));
        return [Buffer.from(bytes).toString('hex'), bytes] as const;
      }),
    );
    for (const key of [...this.hostAddrs.keys()]) {
      if (!wanted.delete(Buffer.from(key.addr).toString('hex'))) this.hostAddrs.delete(key);
    }
    for (const addr of wanted.values()) this.hostAddrs.update({ addr }, 1);
  }

  hasHostAddress(address: string): boolean {
    return this.hostAddrs.lookup({ addr: toBytes(parsePrefix(address)) }) !== undefined;
  }

  /** Events the kernel's rate limit dropped, summed over CPUs. */
  suppressedEvents(): bigint {
    return (this.eventRate.lookupPerCpu(0) ?? []).reduce((n, w) => n + w.suppressed, 0n);
  }

  setEventsPerSecond(eventsPerSec: number): void {
    this.settings.update(0, { eventsPerSec, pad: 0 });
  }

  /** Opens the live generation's inner maps for reading (trace, stats). Close them after use. */
  openLive():
    | { slot: ActiveSlot; ident: OwnedMap; policy: OwnedMap; stats: OwnedMap; close(): void }
    | undefined {
    const slot = this.activeSlot();
    const ids = [this.outerIdent, this.outerPolicy, this.outerStats].map((outer) => outer.lookup(slot.slot));
    if (ids.some((id) => id === undefined)) return undefined;
    const [ident, policy, stats] = ids.map((id) => openMapById(id!)) as [OwnedMap, OwnedMap, OwnedMap];
    return {
      slot,
      ident,
      policy,
      stats,
      close() {
        ident.close();
        policy.close();
        stats.close();
      },
    };
  }
}
