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
  type IdentValue,
  INLINE_OVERFLOW,
  INLINE_RULES,
  identExactKey,
  identKey,
  identValue,
  POLICY_MAX,
  POLICY_PREFIX_L3,
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
import type { CompiledPolicy, PolicyEntry } from '../../host-policies/compile.js';
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

export interface LiveMaps {
  slot: ActiveSlot;
  exact: OwnedMap;
  ident: OwnedMap;
  policy: OwnedMap;
  stats: OwnedMap;
  close(): void;
}

type IdentEntry<K> = readonly [K, IdentValue];

/**
 * Splits identities into single addresses (hash) and prefixes (trie), and
 * gives each the rules of its set: inline when a direction has at most
 * INLINE_RULES entries, otherwise INLINE_OVERFLOW and the set's entries go to
 * the policy trie. Pure.
 */
export function packIdentities(compiled: CompiledPolicy): {
  exact: IdentEntry<{ addr: Uint8Array }>[];
  prefixes: IdentEntry<{ prefixlen: number; addr: Uint8Array }>[];
  overflow: PolicyEntry[];
} {
  const bySet = new Map<number, [PolicyEntry[], PolicyEntry[]]>();
  for (const e of compiled.entries) {
    const lists = bySet.get(e.set) ?? [[], []];
    bySet.set(e.set, lists);
    lists[e.direction]!.push(e);
  }
  const overflow: PolicyEntry[] = [];
  const values = new Map<number, IdentValue>();
  const identityValue = (set: number): IdentValue => {
    const cached = values.get(set);
    if (cached) return cached;
    const lists = bySet.get(set) ?? [[], []];
    const inlineCount = new Uint8Array(2);
    const rules = lists.map((list, dir) => {
      if (list.length > INLINE_RULES) {
        inlineCount[dir] = INLINE_OVERFLOW;
        overflow.push(...list);
        return [];
      }
      inlineCount[dir] = list.length;
      return list.map((e) => ({
        start: (e.proto << 16) | e.port,
        bits: e.prefixlen - POLICY_PREFIX_L3,
        verdict: e.verdict,
        pad: 0,
        rule: e.rule,
      }));
    });
    const value = { set, inlineCount, pad: new Uint8Array(2), rules };
    values.set(set, value);
    return value;
  };
  const exact: IdentEntry<{ addr: Uint8Array }>[] = [];
  const prefixes: IdentEntry<{ prefixlen: number; addr: Uint8Array }>[] = [];
  for (const { prefix, set } of compiled.identities) {
    if (prefix.len === 128) exact.push([{ addr: toBytes(prefix) }, identityValue(set)]);
    else prefixes.push([{ prefixlen: prefix.len, addr: toBytes(prefix) }, identityValue(set)]);
  }
  return { exact, prefixes, overflow };
}

export class FirewallMaps {
  private readonly active: BpfMap<number, ActiveSlot>;
  private readonly outerIdent: BpfMap<number, number>;
  private readonly outerIdentExact: BpfMap<number, number>;
  private readonly outerPolicy: BpfMap<number, number>;
  private readonly outerStats: BpfMap<number, number>;
  private readonly hostAddrs: BpfMap<{ addr: Uint8Array }, number>;
  private readonly settings: BpfMap<number, { eventsPerSec: number; pad: number }>;
  private readonly eventRate: BpfMap<number, { startNs: bigint; count: bigint; suppressed: bigint }>;

  constructor(object: BpfObject) {
    this.active = new BpfMap(object.map(FIREWALL_MAPS.active), u32, activeSlot);
    this.outerIdent = new BpfMap(object.map(FIREWALL_MAPS.ident), u32, u32);
    this.outerIdentExact = new BpfMap(object.map(FIREWALL_MAPS.identExact), u32, u32);
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
      const packed = packIdentities(compiled);
      const ident = createMap({
        type: MapType.lpmTrie,
        name: 'nw_fw_ident_in',
        keySize: identKey.size,
        valueSize: identValue.size,
        maxEntries: IDENT_MAX,
        flags: BPF_F_NO_PREALLOC,
      });
      inner.push(ident);
      fill(new BpfMap(ident, identKey, identValue), packed.prefixes);
      const exact = createMap({
        type: MapType.hash,
        name: 'nw_fw_ident_ex',
        keySize: identExactKey.size,
        valueSize: identValue.size,
        maxEntries: IDENT_MAX,
        flags: BPF_F_NO_PREALLOC,
      });
      inner.push(exact);
      fill(new BpfMap(exact, identExactKey, identValue), packed.exact);
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
        packed.overflow.map(
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
      this.outerIdentExact.update(slot, exact.fd);
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
  openLive(): LiveMaps | undefined {
    const slot = this.activeSlot();
    const outers = [this.outerIdentExact, this.outerIdent, this.outerPolicy, this.outerStats];
    const ids = outers.map((outer) => outer.lookup(slot.slot));
    if (ids.some((id) => id === undefined)) return undefined;
    const maps = ids.map((id) => openMapById(id!)) as [OwnedMap, OwnedMap, OwnedMap, OwnedMap];
    const [exact, ident, policy, stats] = maps;
    return {
      slot,
      exact,
      ident,
      policy,
      stats,
      close() {
        for (const map of maps) map.close();
      },
    };
  }
}

/**
 * The verdict the datapath would reach for a new flow's peer, with the same
 * lookups on the live maps: exact hash, then identity trie; inline rules, or
 * the policy trie for a set that overflows. For `policy trace`.
 */
export function lookupVerdict(
  live: LiveMaps,
  peer: Uint8Array,
  direction: number,
  proto: number,
  port: number,
): { set?: number; verdict: number; rule?: number } {
  const ident =
    new BpfMap(live.exact, identExactKey, identValue).lookup({ addr: peer }) ??
    new BpfMap(live.ident, identKey, identValue).lookup({ prefixlen: 128, addr: peer });
  if (!ident) return { verdict: 0 };
  const key = (proto << 16) | port;
  if (ident.inlineCount[direction] !== INLINE_OVERFLOW) {
    const rules = ident.rules[direction]!.slice(0, ident.inlineCount[direction]);
    const hit = rules.find(
      (r) => r.bits <= 24 && (r.bits === 0 || key >>> (24 - r.bits) === r.start >>> (24 - r.bits)),
    );
    return hit ? { set: ident.set, verdict: hit.verdict, rule: hit.rule } : { set: ident.set, verdict: 0 };
  }
  const hit = new BpfMap(live.policy, policyKey, policyValue).lookup({
    prefixlen: 64,
    set: ident.set,
    direction,
    proto,
    port,
  });
  return hit ? { set: ident.set, verdict: hit.verdict, rule: hit.rule } : { set: ident.set, verdict: 0 };
}
