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
  Direction,
  Family,
  FIREWALL_MAPS,
  fwSettings,
  hostAddrKey,
  IDENT_MAX,
  IDENT_PROBES,
  type IdentKey,
  type IdentLengths,
  type IdentValue,
  INLINE_HASH,
  INLINE_HASH_COUNT,
  INLINE_OVERFLOW,
  INLINE_RULES,
  identKey,
  identLengths,
  identValue,
  inlineRule,
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
  type Codec,
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

/** LPM tries gained batch updates late; one by one is the portable path. */
function batchUnsupported(error: unknown): boolean {
  return (
    error instanceof BpfError &&
    (error.code === 'EINVAL' ||
      error.code === 'ENOTSUPP' ||
      error.code === 'EOPNOTSUPP' ||
      error.errno === 524)
  );
}

/** Fills a map with entries already encoded, in batches where the kernel supports them for its type. */
function fillRaw(map: BpfMap<unknown, unknown>, encoded: EncodedEntries): void {
  const CHUNK = 16384;
  const { keys, values, count, keySize, valueSize } = encoded;
  try {
    for (let i = 0; i < count; i += CHUNK) {
      const n = Math.min(CHUNK, count - i);
      map.updateBatchRaw(
        keys.subarray(i * keySize, (i + n) * keySize),
        values.subarray(i * valueSize, (i + n) * valueSize),
        n,
      );
    }
  } catch (error) {
    if (!batchUnsupported(error)) throw error;
    for (let i = 0; i < count; i++) {
      map.updateRaw(
        keys.subarray(i * keySize, (i + 1) * keySize),
        values.subarray(i * valueSize, (i + 1) * valueSize),
      );
    }
  }
}

export interface LiveMaps {
  slot: ActiveSlot;
  lengths: IdentLengths;
  identHash: OwnedMap;
  ident: OwnedMap;
  policy: OwnedMap;
  policyHash: OwnedMap;
  stats: OwnedMap;
  close(): void;
}

type IdentEntry<K> = readonly [K, IdentValue];

/** Prefix lengths (within the 24-bit proto/port space) of a set's entries in one direction, longest first. */
function probeLengths(list: readonly PolicyEntry[]): number[] {
  return [...new Set(list.map((e) => e.prefixlen - POLICY_PREFIX_L3))].sort((a, b) => b - a);
}

/** The compiler's address prefixes: IPv4 as ::ffff:0:0/96 + n. */
type IdentityPrefix = CompiledPolicy['identities'][number]['prefix'];

/** Bits of the address families a prefix can match: 1 IPv4 (inside ::ffff:0:0/96), 2 IPv6 (outside). */
function familiesOf({ addr, len }: IdentityPrefix): number {
  if (len >= 96) return addr >> 32n === 0xffffn ? 1 : 2;
  const shift = BigInt(128 - len);
  return addr >> shift === (0xffffn << 32n) >> shift ? 3 : 2;
}

/** Where each identity goes: the hash, the trie or both, and the lengths the datapath probes. */
export interface IdentPlacement {
  lengths: IdentLengths;
  /** Per identity: 1 the hash, 2 the trie, 3 both. */
  place: Uint8Array;
}

/**
 * Per address family, the IDENT_PROBES longest prefix lengths that can match
 * its addresses go to the hash, the shorter ones to the trie (identity.h). A
 * prefix that both families can match (a short one around ::ffff:0:0/96) goes
 * wherever either family looks for its length. Pure.
 */
export function placeIdentities(identities: CompiledPolicy['identities']): IdentPlacement {
  const families = new Uint8Array(identities.length);
  const used = new Uint8Array(2 * 129);
  for (let i = 0; i < identities.length; i++) {
    const { prefix } = identities[i]!;
    const f = familiesOf(prefix);
    families[i] = f;
    if (f & 1) used[prefix.len] = 1;
    if (f & 2) used[129 + prefix.len] = 1;
  }
  const lengths: IdentLengths = {
    len: new Uint8Array(2 * IDENT_PROBES),
    count: new Uint8Array(2),
    trie: new Uint8Array(2),
  };
  // inHash[f * 129 + len]: family f probes len in the hash.
  const inHash = new Uint8Array(2 * 129);
  for (let f = 0; f < 2; f++) {
    let n = 0;
    for (let len = 128; len >= 0; len--) {
      if (!used[f * 129 + len]) continue;
      if (n === IDENT_PROBES) {
        lengths.trie[f] = 1;
        break;
      }
      lengths.len[f * IDENT_PROBES + n++] = len;
      inHash[f * 129 + len] = 1;
    }
    lengths.count[f] = n;
  }
  const place = new Uint8Array(identities.length);
  for (let i = 0; i < identities.length; i++) {
    const len = identities[i]!.prefix.len;
    for (let f = 0; f < 2; f++) {
      if (families[i]! & (1 << f)) place[i]! |= inHash[f * 129 + len] ? 1 : 2;
    }
  }
  return { lengths, place };
}

/**
 * Places identities in the hash and the trie (placeIdentities), and
 * gives each the rules of its set: inline when a direction has at most
 * INLINE_RULES entries; otherwise, when those entries use at most INLINE_RULES
 * prefix lengths, INLINE_HASH with the lengths to probe, and the entries go
 * to the policy hash; otherwise INLINE_OVERFLOW and the entries go to the
 * policy trie. Pure.
 */
export function packIdentities(compiled: CompiledPolicy): {
  hash: IdentEntry<IdentKey>[];
  trie: IdentEntry<IdentKey>[];
  lengths: IdentLengths;
  overflow: PolicyEntry[];
  hashed: PolicyEntry[];
} {
  const bySet = new Map<number, [PolicyEntry[], PolicyEntry[]]>();
  for (const e of compiled.entries) {
    const lists = bySet.get(e.set) ?? [[], []];
    bySet.set(e.set, lists);
    lists[e.direction]!.push(e);
  }
  const overflow: PolicyEntry[] = [];
  const hashed: PolicyEntry[] = [];
  const values = new Map<number, IdentValue>();
  const identityValue = (set: number): IdentValue => {
    const cached = values.get(set);
    if (cached) return cached;
    const lists = bySet.get(set) ?? [[], []];
    const inlineCount = new Uint8Array(2);
    const rules = lists.map((list, dir) => {
      if (list.length > INLINE_RULES) {
        const lengths = probeLengths(list);
        if (lengths.length > INLINE_RULES) {
          inlineCount[dir] = INLINE_OVERFLOW;
          overflow.push(...list);
          return [];
        }
        inlineCount[dir] = INLINE_HASH | lengths.length;
        hashed.push(...list);
        return lengths.map((bits) => ({ start: 0, bits, verdict: 0, pad: 0, rule: 0 }));
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
  const { lengths, place } = placeIdentities(compiled.identities);
  const hash: IdentEntry<IdentKey>[] = [];
  const trie: IdentEntry<IdentKey>[] = [];
  compiled.identities.forEach(({ prefix, set }, i) => {
    const value = identityValue(set);
    const key = { prefixlen: prefix.len, addr: toBytes(prefix) };
    if (place[i]! & 1) hash.push([key, value]);
    if (place[i]! & 2) trie.push([key, value]);
  });
  return { hash, trie, lengths, overflow, hashed };
}

/** Map entries encoded back to back in the map's key and value layout. */
export interface EncodedEntries {
  keys: Buffer;
  values: Buffer;
  count: number;
  keySize: number;
  valueSize: number;
}

const IDENT_VALUE_SIZE = identValue.size;
const IDENT_KEY_SIZE = identKey.size;
const INLINE_RULE_SIZE = inlineRule.size;
/** Offset of `rules` in nw_ident_value (after set, inlineCount[2], pad[2]). */
const IDENT_RULES_OFFSET = 8;
const POLICY_KEY_SIZE = policyKey.size;
const POLICY_VALUE_SIZE = policyValue.size;

/** A buffer and a DataView on it: DataView writes compile to plain stores. */
interface Out {
  buf: Buffer;
  view: DataView;
}

function out(size: number): Out {
  const buf = Buffer.alloc(size);
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length) };
}

// The codecs' range checks, kept: an out-of-range number throws the same error as before.
function u8(o: Out, offset: number, value: number): void {
  if (value > 0xff || value < 0) o.buf.writeUInt8(value, offset);
  o.view.setUint8(offset, value);
}

function u32le(o: Out, offset: number, value: number): void {
  if (value > 0xffffffff || value < 0) o.buf.writeUInt32LE(value, offset);
  o.view.setUint32(offset, value, true);
}

function u32be(o: Out, offset: number, value: number): void {
  if (value > 0xffffffff || value < 0) o.buf.writeUInt32BE(value, offset);
  o.view.setUint32(offset, value, false);
}

function u16be(o: Out, offset: number, value: number): void {
  if (value > 0xffff || value < 0) o.buf.writeUInt16BE(value, offset);
  o.view.setUint16(offset, value, false);
}

/** A 128-bit address as 16 big-endian bytes, as toBytes() gives them. */
function writeAddress(o: Out, offset: number, addr: bigint): void {
  o.view.setBigUint64(offset, BigInt.asUintN(64, addr >> 64n), false);
  o.view.setBigUint64(offset + 8, BigInt.asUintN(64, addr), false);
}

/**
 * What packIdentities() gives, encoded straight into the buffers of the batch updates:
 * the identity hash and trie, the overflow policy trie and the policy hash, in the same order and with the same bytes, without an object per entry.
 */
export function encodeIdentities(compiled: CompiledPolicy): {
  hash: EncodedEntries;
  trie: EncodedEntries;
  lengths: IdentLengths;
  overflow: EncodedEntries;
  hashed: EncodedEntries;
} {
  const entries = compiled.entries;
  const identities = compiled.identities;

  // A dense index per set: the compiler numbers sets from 0, but accept any numbers.
  let maxSet = 0;
  let dense = true;
  for (const e of entries) {
    const set = e.set;
    if (!(Number.isInteger(set) && set >= 0)) dense = false;
    else if (set > maxSet) maxSet = set;
    if (e.direction !== Direction.ingress && e.direction !== Direction.egress)
      throw new TypeError(`policy entry with direction ${e.direction}`);
  }
  for (const { set } of identities) {
    if (!(Number.isInteger(set) && set >= 0)) dense = false;
    else if (set > maxSet) maxSet = set;
  }
  if (maxSet > 4 * (entries.length + identities.length) + 1024) dense = false;
  const entrySet = new Int32Array(entries.length);
  const identitySet = new Int32Array(identities.length);
  let setCount: number;
  if (dense) {
    for (let i = 0; i < entries.length; i++) entrySet[i] = entries[i]!.set;
    for (let i = 0; i < identities.length; i++) identitySet[i] = identities[i]!.set;
    setCount = maxSet + 1;
  } else {
    const ids = new Map<number, number>();
    const indexOf = (set: number) => {
      let id = ids.get(set);
      if (id === undefined) {
        id = ids.size;
        ids.set(set, id);
      }
      return id;
    };
    for (let i = 0; i < entries.length; i++) entrySet[i] = indexOf(entries[i]!.set);
    for (let i = 0; i < identities.length; i++) identitySet[i] = indexOf(identities[i]!.set);
    setCount = ids.size;
  }

  // Entries per (set, direction), in their order: a counting sort.
  const starts = new Int32Array(setCount * 2 + 1);
  for (let i = 0; i < entries.length; i++) starts[entrySet[i]! * 2 + entries[i]!.direction + 1]!++;
  for (let i = 1; i < starts.length; i++) starts[i]! += starts[i - 1]!;
  const fillAt = starts.slice(0, setCount * 2);
  const order = new Int32Array(entries.length);
  for (let i = 0; i < entries.length; i++) order[fillAt[entrySet[i]! * 2 + entries[i]!.direction]!++] = i;

  const placement = placeIdentities(identities);
  const place = placement.place;
  let hashCount = 0;
  let trieCount = 0;
  for (let n = 0; n < identities.length; n++) {
    if (place[n]! & 1) hashCount++;
    if (place[n]! & 2) trieCount++;
  }
  // [hash, trie]: both keyed by struct nw_ident_key { __u32 prefixlen; __u8 addr[16]; }
  const identKeys: [Out, Out] = [out(hashCount * IDENT_KEY_SIZE), out(trieCount * IDENT_KEY_SIZE)];
  const identValues: [Out, Out] = [out(hashCount * IDENT_VALUE_SIZE), out(trieCount * IDENT_VALUE_SIZE)];
  const identCount = [0, 0];
  // The policy trie and the policy hash take the same key and value layout.
  const policyOut = () => ({
    keys: out(entries.length * POLICY_KEY_SIZE),
    values: out(entries.length * POLICY_VALUE_SIZE),
    count: 0,
  });
  let overflow: ReturnType<typeof policyOut> | undefined;
  let hashed: ReturnType<typeof policyOut> | undefined;
  const lengths: number[] = [];

  // Each set's value is encoded where its first identity goes and copied for the others:
  // valueAt is -1, or the entry number << 1 | (1 for the trie, 0 for the hash).
  const valueAt = new Int32Array(setCount).fill(-1);
  for (let n = 0; n < identities.length; n++) {
    const { prefix, set } = identities[n]!;
    const id = identitySet[n]!;
    for (let which = 0; which < 2; which++) {
      if (!(place[n]! & (1 << which))) continue;
      const index = identCount[which]!++;
      const keys = which === 0 ? identKeys[0] : identKeys[1];
      u32le(keys, index * IDENT_KEY_SIZE, prefix.len);
      writeAddress(keys, index * IDENT_KEY_SIZE + 4, prefix.addr);
      const values = which === 0 ? identValues[0] : identValues[1];
      const offset = index * IDENT_VALUE_SIZE;
      const at = valueAt[id]!;
      if (at >= 0) {
        const from = (at >> 1) * IDENT_VALUE_SIZE;
        (at & 1 ? identValues[1] : identValues[0]).buf.copy(
          values.buf,
          offset,
          from,
          from + IDENT_VALUE_SIZE,
        );
        continue;
      }
      valueAt[id] = (index << 1) | which;
      encodeValue(values, offset, id, set);
    }
  }

  /** struct nw_ident_value of set `set` (dense id `id`) at values[offset], and its policy entries. */
  function encodeValue(values: Out, offset: number, id: number, set: number): void {
    // struct nw_ident_value { __u32 set; __u8 inline_count[2]; __u8 pad[2]; struct nw_inline_rule rules[2][4]; }
    u32le(values, offset, set);
    for (let dir = 0; dir < 2; dir++) {
      const start = starts[id * 2 + dir]!;
      const count = starts[id * 2 + dir + 1]! - start;
      if (count > INLINE_RULES) {
        // The distinct prefix lengths in use (as probeLengths() finds them), up to one too many.
        lengths.length = 0;
        for (let i = start; i < start + count && lengths.length <= INLINE_RULES; i++) {
          const bits = entries[order[i]!]!.prefixlen - POLICY_PREFIX_L3;
          if (!lengths.includes(bits)) lengths.push(bits);
        }
        lengths.sort((a, b) => b - a);
        let target: ReturnType<typeof policyOut>;
        if (lengths.length > INLINE_RULES) {
          values.view.setUint8(offset + 4 + dir, INLINE_OVERFLOW);
          overflow ??= policyOut();
          target = overflow;
        } else {
          values.view.setUint8(offset + 4 + dir, INLINE_HASH | lengths.length);
          lengths.forEach((bits, i) => {
            u8(values, offset + IDENT_RULES_OFFSET + (dir * INLINE_RULES + i) * INLINE_RULE_SIZE + 4, bits);
          });
          hashed ??= policyOut();
          target = hashed;
        }
        for (let i = start; i < start + count; i++) {
          const e = entries[order[i]!]!;
          const k = target.count * POLICY_KEY_SIZE;
          const v = target.count * POLICY_VALUE_SIZE;
          // struct nw_policy_key { __u32 prefixlen; __be32 set; __u8 direction; __u8 proto; __be16 port; }
          u32le(target.keys, k, e.prefixlen);
          u32be(target.keys, k + 4, e.set);
          u8(target.keys, k + 8, e.direction);
          u8(target.keys, k + 9, e.proto);
          u16be(target.keys, k + 10, e.port);
          // struct nw_policy_value { __u8 verdict; __u8 pad[3]; __u32 rule; }
          u8(target.values, v, e.verdict);
          u32le(target.values, v + 4, e.rule);
          target.count++;
        }
        continue;
      }
      values.view.setUint8(offset + 4 + dir, count);
      for (let i = 0; i < count; i++) {
        const e = entries[order[start + i]!]!;
        // struct nw_inline_rule { __u32 start; __u8 bits; __u8 verdict; __u16 pad; __u32 rule; }
        const r = offset + IDENT_RULES_OFFSET + (dir * INLINE_RULES + i) * INLINE_RULE_SIZE;
        u32le(values, r, (e.proto << 16) | e.port);
        u8(values, r + 4, e.prefixlen - POLICY_PREFIX_L3);
        u8(values, r + 5, e.verdict);
        u32le(values, r + 8, e.rule);
      }
    }
  }
  const encoded = (
    keys: Out | undefined,
    values: Out | undefined,
    count: number,
    keySize: number,
    valueSize: number,
  ) => ({
    keys: keys?.buf ?? Buffer.alloc(0),
    values: values?.buf ?? Buffer.alloc(0),
    count,
    keySize,
    valueSize,
  });
  return {
    hash: encoded(identKeys[0], identValues[0], hashCount, IDENT_KEY_SIZE, IDENT_VALUE_SIZE),
    trie: encoded(identKeys[1], identValues[1], trieCount, IDENT_KEY_SIZE, IDENT_VALUE_SIZE),
    lengths: placement.lengths,
    overflow: encoded(
      overflow?.keys,
      overflow?.values,
      overflow?.count ?? 0,
      POLICY_KEY_SIZE,
      POLICY_VALUE_SIZE,
    ),
    hashed: encoded(hashed?.keys, hashed?.values, hashed?.count ?? 0, POLICY_KEY_SIZE, POLICY_VALUE_SIZE),
  };
}

/** Entries for an inner hash that holds `encoded` (at least 1; beyond `max` the fill fails as before). */
function hashSize(encoded: EncodedEntries, max: number): number {
  return Math.min(Math.max(encoded.count, 1), max);
}

/** A fresh, unpreallocated inner map for the next generation, filled; `owned` closes it after the swap. */
function filledInnerMap<K, V>(
  owned: OwnedMap[],
  type: number,
  name: string,
  key: Codec<K>,
  value: Codec<V>,
  maxEntries: number,
  entries: EncodedEntries,
): OwnedMap {
  const map = createMap({
    type,
    name,
    keySize: key.size,
    valueSize: value.size,
    maxEntries,
    flags: BPF_F_NO_PREALLOC,
  });
  owned.push(map);
  fillRaw(new BpfMap(map, key, value), entries);
  return map;
}

export class FirewallMaps {
  private readonly active: BpfMap<number, ActiveSlot>;
  private readonly outerIdent: BpfMap<number, number>;
  private readonly outerIdentHash: BpfMap<number, number>;
  private readonly identLengths: BpfMap<number, IdentLengths>;
  private readonly outerPolicy: BpfMap<number, number>;
  private readonly outerPolicyHash: BpfMap<number, number>;
  private readonly outerStats: BpfMap<number, number>;
  private readonly hostAddrs: BpfMap<{ addr: Uint8Array }, number>;
  private readonly settings: BpfMap<number, { eventsPerSec: number; pad: number }>;
  private readonly eventRate: BpfMap<number, { startNs: bigint; count: bigint; suppressed: bigint }>;

  constructor(object: BpfObject) {
    this.active = new BpfMap(object.map(FIREWALL_MAPS.active), u32, activeSlot);
    this.outerIdent = new BpfMap(object.map(FIREWALL_MAPS.ident), u32, u32);
    this.outerIdentHash = new BpfMap(object.map(FIREWALL_MAPS.identHash), u32, u32);
    this.identLengths = new BpfMap(object.map(FIREWALL_MAPS.identLengths), u32, identLengths);
    this.outerPolicy = new BpfMap(object.map(FIREWALL_MAPS.policy), u32, u32);
    this.outerPolicyHash = new BpfMap(object.map(FIREWALL_MAPS.policyHash), u32, u32);
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
      const encoded = encodeIdentities(compiled);
      // Hashes sized to their entries: a hash allocates and clears a bucket per possible entry
      // when it is created (tens of ms for 1M), and the kernel lets an inner hash's size differ
      // from the template's. Tries allocate per entry, so they keep the template's limit.
      const ident = filledInnerMap(
        inner,
        MapType.lpmTrie,
        'nw_fw_ident_in',
        identKey,
        identValue,
        IDENT_MAX,
        encoded.trie,
      );
      const identHash = filledInnerMap(
        inner,
        MapType.hash,
        'nw_fw_ident_hs',
        identKey,
        identValue,
        hashSize(encoded.hash, IDENT_MAX),
        encoded.hash,
      );
      const policy = filledInnerMap(
        inner,
        MapType.lpmTrie,
        'nw_fw_policy_in',
        policyKey,
        policyValue,
        POLICY_MAX,
        encoded.overflow,
      );
      const policyHash = filledInnerMap(
        inner,
        MapType.hash,
        'nw_fw_polhash_in',
        policyKey,
        policyValue,
        hashSize(encoded.hashed, POLICY_MAX),
        encoded.hashed,
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
      this.outerIdentHash.update(slot, identHash.fd);
      this.identLengths.update(slot, encoded.lengths);
      this.outerPolicy.update(slot, policy.fd);
      this.outerPolicyHash.update(slot, policyHash.fd);
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
    const outers = [
      this.outerIdentHash,
      this.outerIdent,
      this.outerPolicy,
      this.outerPolicyHash,
      this.outerStats,
    ];
    const ids = outers.map((outer) => outer.lookup(slot.slot));
    if (ids.some((id) => id === undefined)) return undefined;
    const maps = ids.map((id) => openMapById(id!)) as [OwnedMap, OwnedMap, OwnedMap, OwnedMap, OwnedMap];
    const [identHash, ident, policy, policyHash, stats] = maps;
    const lengths = this.identLengths.lookup(slot.slot);
    if (!lengths) {
      for (const map of maps) map.close();
      return undefined;
    }
    return {
      slot,
      lengths,
      identHash,
      ident,
      policy,
      policyHash,
      stats,
      close() {
        for (const map of maps) map.close();
      },
    };
  }
}

/** A 16-byte address masked to its first `len` bits. */
function masked(addr: Uint8Array, len: number): Uint8Array {
  const out = Uint8Array.from(addr);
  for (let i = 0; i < 16; i++) {
    const keep = Math.min(8, Math.max(0, len - i * 8));
    out[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** The peer's identity in the live maps, with the datapath's lookups (identity.h nw_identity). */
export function identityOf(
  live: LiveMaps,
  peer: Uint8Array,
): { value: IdentValue; probe?: number; trie?: true } | undefined {
  const v4 = peer.slice(0, 10).every((b) => b === 0) && peer[10] === 0xff && peer[11] === 0xff;
  const family = v4 ? Family.v4 : Family.v6;
  const hash = new BpfMap(live.identHash, identKey, identValue);
  for (let i = 0; i < Math.min(live.lengths.count[family]!, IDENT_PROBES); i++) {
    const len = live.lengths.len[family * IDENT_PROBES + i]!;
    if (len > 128) break;
    const value = hash.lookup({ prefixlen: len, addr: masked(peer, len) });
    if (value) return { value, probe: i };
  }
  if (!live.lengths.trie[family]) return undefined;
  const value = new BpfMap(live.ident, identKey, identValue).lookup({ prefixlen: 128, addr: peer });
  return value ? { value, trie: true } : undefined;
}

/**
 * The verdict the datapath would reach for a new flow's peer, with the same
 * lookups on the live maps: identity hash probes, then the identity trie; inline rules, the
 * policy hash probed at the lengths the identity lists, or the policy trie.
 * For `policy trace`.
 */
export function lookupVerdict(
  live: LiveMaps,
  peer: Uint8Array,
  direction: number,
  proto: number,
  port: number,
): { set?: number; verdict: number; rule?: number } {
  const ident = identityOf(live, peer)?.value;
  if (!ident) return { verdict: 0 };
  const key = (proto << 16) | port;
  const mode = ident.inlineCount[direction]!;
  const found = (hit: { verdict: number; rule: number } | undefined) =>
    hit ? { set: ident.set, verdict: hit.verdict, rule: hit.rule } : { set: ident.set, verdict: 0 };
  if (mode <= INLINE_RULES) {
    const rules = ident.rules[direction]!.slice(0, mode);
    return found(
      rules.find(
        (r) => r.bits <= 24 && (r.bits === 0 || key >>> (24 - r.bits) === r.start >>> (24 - r.bits)),
      ),
    );
  }
  if (mode === INLINE_OVERFLOW) {
    return found(
      new BpfMap(live.policy, policyKey, policyValue).lookup({
        prefixlen: 64,
        set: ident.set,
        direction,
        proto,
        port,
      }),
    );
  }
  const hash = new BpfMap(live.policyHash, policyKey, policyValue);
  for (const { bits } of ident.rules[direction]!.slice(0, mode & INLINE_HASH_COUNT)) {
    if (bits > 24) break;
    const masked = key & ((0xffffff << (24 - bits)) & 0xffffff);
    const hit = hash.lookup({
      prefixlen: POLICY_PREFIX_L3 + bits,
      set: ident.set,
      direction,
      proto: masked >>> 16,
      port: masked & 0xffff,
    });
    if (hit) return found(hit);
  }
  return found(undefined);
}
