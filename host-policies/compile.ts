/**
 * The policy compiler: a pure function from host policies and node facts to
 * the contents of the firewall's maps.
 *
 * 1. Every rule's peers become a selector: CIDR entries, each with excepts.
 *    Entities resolve to prefixes from node facts; `world` is everything
 *    except the cluster's prefixes.
 * 2. Every prefix that any selector mentions gets the set of selectors that
 *    contain it (walking prefixes in containment order), and each distinct set
 *    gets an id: the identity trie maps prefix → set.
 * 3. For each set and direction, the rules of its selectors are flattened over
 *    the (protocol, port) space: deny beats allow, a system allow beats deny.
 *    The flat intervals become port prefixes in the policy trie, so one
 *    longest-prefix lookup gives the verdict.
 */
import {
  Direction,
  FIRST_RULE_INDEX,
  POLICY_PREFIX_L3,
  RULES_MAX,
  Verdict,
  type VerdictCode,
} from '../bpf/codecs/firewall.js';
import type { HostPolicy, L4Match, Peer } from './model.js';
import { addrOfWords, type Prefix, parsePrefixWords, ROOT } from './prefix.js';
import { matchesLabels } from './selector.js';

export interface NodeFacts {
  nodeName: string;
  labels: Record<string, string>;
  /** This node's own addresses (entity host). */
  hostAddresses: string[];
  /** The other cluster nodes' addresses (entity remote-node). */
  remoteNodeAddresses: string[];
  /** Pod and service CIDRs that are part of the cluster. */
  clusterCIDRs: string[];
  /** Kubernetes API server endpoints (entity kube-apiserver). */
  apiServerAddresses: string[];
  /** Pod IPs selected by an endpoint selector; the Kubernetes source provides it. */
  endpointAddresses?: (peer: Extract<Peer, { kind: 'endpoints' }>) => string[];
}

/** Traffic the daemon itself needs, allowed whatever the policies say. */
export interface SystemAllow {
  reason: string;
  direction: keyof typeof Direction;
  peers: string[] | 'any';
  l4: L4Match[];
}

export type RuleSection =
  | 'default'
  | 'malformed'
  | 'ingress'
  | 'ingressDeny'
  | 'egress'
  | 'egressDeny'
  | 'system';

export interface CompiledRule {
  index: number;
  policy: string;
  section: RuleSection;
  /** Position in the section, or -1 for defaults and system rules. */
  position: number;
  verdict: VerdictCode;
  /** "ssh-lockdown ingress[0]", "system: BGP peer 10.0.0.1", "default ingress". */
  description: string;
}

export interface PolicyEntry {
  set: number;
  direction: number;
  /** Bits of (set, direction, proto, port) that must match: 40 + prefix of the 24-bit proto/port space. */
  prefixlen: number;
  proto: number;
  port: number;
  verdict: VerdictCode;
  rule: number;
}

export interface CompiledPolicy {
  identities: { prefix: Prefix; set: number }[];
  entries: PolicyEntry[];
  defaults: { ingress: VerdictCode; egress: VerdictCode };
  rules: CompiledRule[];
  /** Names of the policies that select this node. */
  selected: string[];
  warnings: string[];
}

const RANK: Record<VerdictCode, number> = {
  [Verdict.none]: 0,
  [Verdict.allow]: 1,
  [Verdict.audit]: 2,
  [Verdict.deny]: 3,
  [Verdict.allowSystem]: 4,
};

const PROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132 } as const;
const SPACE_MAX = (1 << 24) - 1;
/** The intervals of a rule without L4 matches: the whole space. */
const ANY: readonly number[] = [0, SPACE_MAX];

/**
 * The rules that have a selector, by rule index (columns rather than an object per rule:
 * they live as long as the compilation).
 */
class RuleSpecs {
  readonly direction: number[] = [];
  readonly rank: number[] = [];
  readonly verdict: VerdictCode[] = [];
  /** Intervals of the (protocol, port) space as pairs: lo, hi, lo, hi, ... */
  readonly intervals: (readonly number[])[] = [];
  /** The next rule of the same selector, in rule order, or -1. */
  readonly next: number[] = [];
  /** Shared interval lists of single-match rules, by lo * 4 + kind. */
  private readonly common = new Map<number, readonly number[]>();

  /** Adds rule `index`; the rules before it that have no selector get placeholders. */
  add(index: number, direction: number, verdict: VerdictCode, intervals: readonly number[]): void {
    while (this.next.length < index) this.push(0, Verdict.none, ANY);
    this.push(direction, verdict, intervals);
  }

  private push(direction: number, verdict: VerdictCode, intervals: readonly number[]): void {
    this.direction.push(direction);
    this.rank.push(RANK[verdict]);
    this.verdict.push(verdict);
    this.intervals.push(intervals);
    this.next.push(-1);
  }

  /** The (protocol, port) space: proto in the top 8 bits, port (or ICMP type<<8|code) below. */
  l4Intervals(l4: L4Match[] | 'any'): readonly number[] {
    if (l4 === 'any') return ANY;
    if (l4.length === 1) {
      // The usual rule: one port, protocol or ICMP type. Share its list.
      const m = l4[0]!;
      let key = -1;
      if (m.kind === 'ports' && m.port === m.endPort && PROTO[m.protocol] !== undefined)
        key = ((PROTO[m.protocol] << 16) | m.port) * 4;
      else if (m.kind === 'protocol') key = (m.protocol << 16) * 4 + 1;
      else if (m.kind === 'icmp')
        key = (((m.family === 'IPv4' ? PROTO.ICMP : PROTO.ICMPv6) << 16) | (m.type << 8)) * 4 + 2;
      if (key >= 0 && Number.isSafeInteger(key)) {
        let shared = this.common.get(key);
        if (!shared) {
          shared = l4Intervals(l4);
          this.common.set(key, shared);
        }
        return shared;
      }
    }
    return l4Intervals(l4);
  }
}

function l4Intervals(l4: L4Match[]): number[] {
  const out = new Array<number>(l4.length * 2);
  for (let i = 0; i < l4.length; i++) {
    const m = l4[i]!;
    switch (m.kind) {
      case 'ports':
        out[2 * i] = (PROTO[m.protocol] << 16) | m.port;
        out[2 * i + 1] = (PROTO[m.protocol] << 16) | m.endPort;
        break;
      case 'protocol':
        out[2 * i] = m.protocol << 16;
        out[2 * i + 1] = (m.protocol << 16) | 0xffff;
        break;
      case 'icmp': {
        const proto = m.family === 'IPv4' ? PROTO.ICMP : PROTO.ICMPv6;
        out[2 * i] = (proto << 16) | (m.type << 8);
        out[2 * i + 1] = (proto << 16) | (m.type << 8) | 0xff;
        break;
      }
      default:
        throw new TypeError(`unknown L4 match ${JSON.stringify(m)}`);
    }
  }
  return out;
}

/**
 * Appends the policy entries of [lo, hi] → rule: the range split into aligned power-of-two
 * blocks, each a prefix of the 24-bit (protocol, port) space.
 */
function emitRange(
  out: PolicyEntry[],
  set: number,
  direction: number,
  lo: number,
  hi: number,
  verdict: VerdictCode,
  rule: number,
): void {
  while (lo <= hi) {
    let size = lo === 0 ? 1 << 24 : lo & -lo;
    while (size > hi - lo + 1) size >>>= 1;
    out.push({
      set,
      direction,
      prefixlen: POLICY_PREFIX_L3 + 24 - (31 - Math.clz32(size)),
      proto: lo >>> 16,
      port: lo & 0xffff,
      verdict,
      rule,
    });
    lo += size;
  }
}

/** The entries of a single rule: the union of its intervals. */
function emitRule(out: PolicyEntry[], set: number, direction: number, specs: RuleSpecs, rule: number): void {
  let intervals = specs.intervals[rule]!;
  const verdict = specs.verdict[rule]!;
  if (intervals.length > 2) {
    const pairs: [number, number][] = [];
    for (let i = 0; i < intervals.length; i += 2) pairs.push([intervals[i]!, intervals[i + 1]!]);
    pairs.sort(byStart);
    intervals = pairs.flat();
  }
  let lo = intervals[0]!;
  let hi = intervals[1]!;
  for (let i = 2; i < intervals.length; i += 2) {
    const a = intervals[i]!;
    const b = intervals[i + 1]!;
    if (a <= hi + 1) {
      if (b > hi) hi = b;
    } else {
      emitRange(out, set, direction, lo, hi, verdict, rule);
      lo = a;
      hi = b;
    }
  }
  emitRange(out, set, direction, lo, hi, verdict, rule);
}

function byStart(a: [number, number], b: [number, number]): number {
  return a[0] - b[0];
}

function ascending(a: number, b: number): number {
  return a - b;
}

interface FlatPiece {
  lo: number;
  hi: number;
  rule: number;
}

/** Deny beats allow, system allow beats deny; ties go to the earlier rule. */
function flatten(specs: RuleSpecs, rules: readonly number[]): FlatPiece[] {
  const bounds = new Set<number>();
  for (const r of rules) {
    const iv = specs.intervals[r]!;
    for (let i = 0; i < iv.length; i += 2) bounds.add(iv[i]!).add(iv[i + 1]! + 1);
  }
  const points = [...bounds].sort(ascending);
  const rank = specs.rank;
  const out: FlatPiece[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const lo = points[i]!;
    const hi = points[i + 1]! - 1;
    let best = -1;
    for (const r of rules) {
      if (best >= 0 && (rank[r]! < rank[best]! || (rank[r] === rank[best] && r > best))) continue;
      const iv = specs.intervals[r]!;
      for (let j = 0; j < iv.length; j += 2) {
        if (iv[j]! <= lo && hi <= iv[j + 1]!) {
          best = r;
          break;
        }
      }
    }
    if (best < 0) continue;
    const last = out[out.length - 1];
    if (last && last.rule === best && last.hi + 1 === lo) last.hi = hi;
    else out.push({ lo, hi, rule: best });
  }
  return out;
}

/**
 * The prefixes of one compilation, interned: equal prefixes get the same id. Each is four
 * 32-bit words (most significant first) and a length, so that hashing, ordering and
 * containment need no BigInt arithmetic and no string keys.
 */
class PrefixPool {
  words = new Uint32Array(4 * 1024);
  lens = new Uint8Array(1024);
  count = 0;
  private slots = new Int32Array(2048);
  private readonly scratch = new Uint32Array(4);

  parse(text: string): number {
    const w = this.scratch;
    const len = parsePrefixWords(text, w);
    return this.intern(w[0]!, w[1]!, w[2]!, w[3]!, len);
  }

  intern(w0: number, w1: number, w2: number, w3: number, len: number): number {
    const slots = this.slots;
    const words = this.words;
    const slotMask = slots.length - 1;
    let h = Math.imul(w0 ^ Math.imul(len, 0x27d4eb2d), 0x9e3779b1);
    h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca6b);
    h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ w3 ^ (h >>> 16), 0x9e3779b1);
    h ^= h >>> 15;
    for (let i = h & slotMask; ; i = (i + 1) & slotMask) {
      const slot = slots[i]!;
      if (slot === 0) break;
      const id = slot - 1;
      const o = id * 4;
      if (
        this.lens[id] === len &&
        words[o] === w0 &&
        words[o + 1] === w1 &&
        words[o + 2] === w2 &&
        words[o + 3] === w3
      )
        return id;
    }
    const id = this.count++;
    if (id === this.lens.length) this.grow();
    const o = id * 4;
    this.words[o] = w0;
    this.words[o + 1] = w1;
    this.words[o + 2] = w2;
    this.words[o + 3] = w3;
    this.lens[id] = len;
    if (this.count * 2 > slots.length) this.rehash();
    else {
      let i = h & slotMask;
      while (slots[i] !== 0) i = (i + 1) & slotMask;
      slots[i] = id + 1;
    }
    return id;
  }

  private grow(): void {
    const words = new Uint32Array(this.words.length * 2);
    words.set(this.words);
    this.words = words;
    const lens = new Uint8Array(this.lens.length * 2);
    lens.set(this.lens);
    this.lens = lens;
  }

  private rehash(): void {
    const count = this.count;
    this.slots = new Int32Array(this.slots.length * 2);
    this.count = 0;
    // Re-interning in id order gives every prefix its old id back.
    for (let id = 0; id < count; id++) {
      const o = id * 4;
      this.intern(this.words[o]!, this.words[o + 1]!, this.words[o + 2]!, this.words[o + 3]!, this.lens[id]!);
    }
  }

  /** Whether prefix `outer` contains prefix `inner`. */
  contains(outer: number, inner: number): boolean {
    const len = this.lens[outer]!;
    if (len > this.lens[inner]!) return false;
    const w = this.words;
    const a = outer * 4;
    const b = inner * 4;
    for (let i = 0; i < 4; i++) {
      const bits = len - 32 * i;
      if (bits <= 0) return true;
      if (bits >= 32) {
        if (w[a + i] !== w[b + i]) return false;
      } else {
        return w[a + i] === (w[b + i]! & (0xffffffff << (32 - bits))) >>> 0;
      }
    }
    return true;
  }

  /** Address, then length: every prefix comes after the prefixes that contain it. */
  compare(a: number, b: number): number {
    const w = this.words;
    const x = a * 4;
    const y = b * 4;
    for (let i = 0; i < 4; i++) {
      const p = w[x + i]!;
      const q = w[y + i]!;
      if (p !== q) return p < q ? -1 : 1;
    }
    return this.lens[a]! - this.lens[b]!;
  }

  /** Sorts prefix ids as compare() orders them. */
  sort(ids: number[]): void {
    const byCompare = (a: number, b: number) => this.compare(a, b);
    if (!LITTLE_ENDIAN || ids.length < 256 || ids.length >= 1 << 26) {
      ids.sort(byCompare);
      return;
    }
    // IPv4-mapped prefixes (usually most of them) sort natively: one 64-bit key each, the
    // address above the length and the position. Others sort with compare(); none of them
    // falls inside the IPv4-mapped block, so they go before or after it.
    const v4: number[] = [];
    const other: number[] = [];
    for (const id of ids) (this.isV4Mapped(id) ? v4 : other).push(id);
    const keys = new BigUint64Array(v4.length);
    const halves = new Uint32Array(keys.buffer);
    for (let i = 0; i < v4.length; i++) {
      const id = v4[i]!;
      halves[2 * i + 1] = this.words[id * 4 + 3]!;
      halves[2 * i] = (((this.lens[id]! - 96) << 26) | i) >>> 0;
    }
    keys.sort();
    other.sort(byCompare);
    const w = this.words;
    let before = 0;
    while (before < other.length) {
      const o = other[before]! * 4;
      if (!(w[o] === 0 && w[o + 1] === 0 && w[o + 2]! < 0xffff)) break;
      before++;
    }
    let n = 0;
    for (let i = 0; i < before; i++) ids[n++] = other[i]!;
    for (let i = 0; i < v4.length; i++) ids[n++] = v4[halves[2 * i]! & 0x3ffffff]!;
    for (let i = before; i < other.length; i++) ids[n++] = other[i]!;
  }

  /** Whether the prefix lies in the IPv4-mapped space (::ffff:0:0/96 and longer). */
  isV4Mapped(id: number): boolean {
    const o = id * 4;
    return (
      this.lens[id]! >= 96 && this.words[o] === 0 && this.words[o + 1] === 0 && this.words[o + 2] === 0xffff
    );
  }

  prefix(id: number): Prefix {
    const o = id * 4;
    const w = this.words;
    return { addr: addrOfWords(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!), len: this.lens[id]! };
  }
}

/** BigUint64Array keys are built from 32-bit halves in host order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const NO_EXCEPTS: readonly number[] = [];

/** Peers resolved to prefix ids: a cidr and the prefixes excepted from it. */
interface PeerEntry {
  cidr: number;
  excepts: readonly number[];
}

class SelectorTable {
  /** Per selector entry: its selector, cidr and excepts (prefix ids). */
  readonly entrySelector: number[] = [];
  readonly entryCidr: number[] = [];
  readonly entryExcepts: (readonly number[])[] = [];
  count = 0;
  /** Selector + 1 of one cidr and no excepts, by prefix id: the common case, without string keys. */
  private single = new Int32Array(1024);
  private readonly byKey = new Map<string, number>();

  /** The selector of one cidr without excepts. */
  internSingle(cidr: number): number {
    if (cidr >= this.single.length) {
      const grown = new Int32Array(Math.max(this.single.length * 2, cidr + 1));
      grown.set(this.single);
      this.single = grown;
    }
    const existing = this.single[cidr]!;
    if (existing !== 0) return existing - 1;
    const id = this.count++;
    this.single[cidr] = id + 1;
    this.push(id, cidr, NO_EXCEPTS);
    return id;
  }

  /** Returns the selector id for these (cidr, excepts) entries, sharing identical selectors. */
  intern(entries: PeerEntry[]): number {
    if (entries.length === 1 && entries[0]!.excepts.length === 0) return this.internSingle(entries[0]!.cidr);
    const parts: string[] = [];
    for (const e of entries) parts.push(`${e.cidr}-${[...e.excepts].sort(ascending).join(',')}`);
    const key = parts.sort().join(';');
    const existing = this.byKey.get(key);
    if (existing !== undefined) return existing;
    const id = this.count++;
    this.byKey.set(key, id);
    for (const e of entries) this.push(id, e.cidr, e.excepts);
    return id;
  }

  private push(selector: number, cidr: number, excepts: readonly number[]): void {
    this.entrySelector.push(selector);
    this.entryCidr.push(cidr);
    this.entryExcepts.push(excepts);
  }
}

/** Prefix ids of the node facts, parsed once per compilation. */
class Resolver {
  readonly root: number;
  private readonly v4Space: number;
  readonly cluster: number[];
  private host?: number[];
  private remote?: number[];
  private apiServers?: number[];

  constructor(
    readonly pool: PrefixPool,
    private readonly facts: NodeFacts,
  ) {
    this.root = pool.intern(0, 0, 0, 0, 0);
    this.v4Space = pool.intern(0, 0, 0xffff, 0, 96);
    this.cluster = this.parseAll([
      ...facts.hostAddresses,
      ...facts.remoteNodeAddresses,
      ...facts.clusterCIDRs,
      ...facts.apiServerAddresses,
    ]);
  }

  parseAll(addresses: readonly string[]): number[] {
    const out = new Array<number>(addresses.length);
    for (let i = 0; i < addresses.length; i++) out[i] = this.pool.parse(addresses[i]!);
    return out;
  }

  /** A CIDR peer without excepts: its prefix, or -1 when it needs the general form. */
  simpleCidr(peer: Extract<Peer, { kind: 'cidr' }>): number {
    if (peer.except.length > 0) return -1;
    const cidr = this.pool.parse(peer.cidr);
    return this.needsV4Except(cidr) ? -1 : cidr;
  }

  /** IPv4 lives at ::ffff:0:0/96 of the shared space; an IPv6 CIDR that contains it must not match IPv4 peers. */
  private needsV4Except(cidr: number): boolean {
    return !this.pool.isV4Mapped(cidr) && this.pool.contains(cidr, this.v4Space);
  }

  peerEntries(peer: Peer, out: PeerEntry[]): void {
    switch (peer.kind) {
      case 'cidr': {
        const cidr = this.pool.parse(peer.cidr);
        const excepts = this.parseAll(peer.except);
        if (this.needsV4Except(cidr)) excepts.push(this.v4Space);
        out.push({ cidr, excepts });
        return;
      }
      case 'endpoints':
        plain(this.parseAll(this.facts.endpointAddresses?.(peer) ?? []), out);
        return;
      case 'entity':
        switch (peer.entity) {
          case 'all':
            out.push({ cidr: this.root, excepts: NO_EXCEPTS });
            return;
          case 'world':
            out.push({ cidr: this.root, excepts: this.cluster });
            return;
          case 'cluster':
            plain(this.cluster, out);
            return;
          case 'host':
            this.host ??= this.parseAll(this.facts.hostAddresses);
            plain(this.host, out);
            return;
          case 'remote-node':
            this.remote ??= this.parseAll(this.facts.remoteNodeAddresses);
            plain(this.remote, out);
            return;
          case 'kube-apiserver':
            this.apiServers ??= this.parseAll(this.facts.apiServerAddresses);
            plain(this.apiServers, out);
            return;
        }
    }
  }
}

function plain(prefixes: readonly number[], out: PeerEntry[]): void {
  for (const cidr of prefixes) out.push({ cidr, excepts: NO_EXCEPTS });
}

/**
 * Selector sets, numbered in order of first use; set 0 is the empty set. A set of one
 * selector (the common case) is kept as that selector, without an array or a string key.
 */
class SetTable {
  /** Per set: its only selector, or -1 (the empty set and sets of several). */
  readonly single: number[] = [-1];
  /** Per set of several selectors: the selectors, ascending. */
  readonly multi: (number[] | undefined)[] = [undefined];
  private readonly bySelector: Int32Array;
  private readonly byKey = new Map<string, number>();

  constructor(
    selectorCount: number,
    private readonly entrySelector: readonly number[],
  ) {
    this.bySelector = new Int32Array(selectorCount).fill(-1);
  }

  get count(): number {
    return this.single.length;
  }

  ofSelector(selector: number): number {
    let set = this.bySelector[selector]!;
    if (set < 0) {
      set = this.single.length;
      this.bySelector[selector] = set;
      this.single.push(selector);
      this.multi.push(undefined);
    }
    return set;
  }

  /** The set of the selectors of these active entries. */
  ofEntries(active: readonly number[]): number {
    if (active.length === 0) return 0;
    const entrySelector = this.entrySelector;
    if (active.length === 1) return this.ofSelector(entrySelector[active[0]!]!);
    const selectors = new Array<number>(active.length);
    for (let i = 0; i < active.length; i++) selectors[i] = entrySelector[active[i]!]!;
    selectors.sort(ascending);
    let n = 1;
    for (let i = 1; i < selectors.length; i++)
      if (selectors[i] !== selectors[n - 1]) selectors[n++] = selectors[i]!;
    selectors.length = n;
    if (n === 1) return this.ofSelector(selectors[0]!);
    const key = selectors.join(',');
    let set = this.byKey.get(key);
    if (set === undefined) {
      set = this.single.length;
      this.byKey.set(key, set);
      this.single.push(-1);
      this.multi.push(selectors);
    }
    return set;
  }
}

const NO_ENTRIES: readonly number[] = [];

/** Prefix → active selector entries, walking prefixes so that containers come first. */
function assignSets(
  pool: PrefixPool,
  table: SelectorTable,
  root: number,
): {
  identities: { prefix: Prefix; set: number }[];
  sets: SetTable;
} {
  const prefixCount = pool.count;
  const entryCount = table.entrySelector.length;
  // Marks: prefixes where entries start (adds) or stop (removes), each a linked list.
  const marked = new Uint8Array(prefixCount);
  const markList: number[] = [root];
  marked[root] = 1;
  const addHead = new Int32Array(prefixCount).fill(-1);
  const addNext = new Int32Array(entryCount);
  const removeHead = new Int32Array(prefixCount).fill(-1);
  const removeEntry: number[] = [];
  const removeNext: number[] = [];
  for (let id = 0; id < entryCount; id++) {
    const cidr = table.entryCidr[id]!;
    if (marked[cidr] === 0) {
      marked[cidr] = 1;
      markList.push(cidr);
    }
    addNext[id] = addHead[cidr]!;
    addHead[cidr] = id;
    // An except outside its cidr cannot remove anything; the parser rejects those.
    for (const e of table.entryExcepts[id]!) {
      if (!pool.contains(cidr, e)) continue;
      if (marked[e] === 0) {
        marked[e] = 1;
        markList.push(e);
      }
      removeEntry.push(id);
      removeNext.push(removeHead[e]!);
      removeHead[e] = removeEntry.length - 1;
    }
  }
  pool.sort(markList);

  const sets = new SetTable(table.count, table.entrySelector);
  const identities: { prefix: Prefix; set: number }[] = [];
  // The walk's stack: a level's active entries are an array, or (for the many leaves that
  // hold one entry) just that entry, made an array only if a child needs it.
  const stackPrefix: number[] = [];
  const stackActive: (readonly number[] | null)[] = [];
  const stackOnly: number[] = [];
  const stackSet: number[] = [];
  let depth = 0;
  for (const id of markList) {
    while (depth > 0 && !pool.contains(stackPrefix[depth - 1]!, id)) depth--;
    const top = depth - 1;
    const firstAdd = addHead[id]!;
    const firstRemove = removeHead[id]!;
    let active: readonly number[] | null;
    let only = -1;
    let set: number;
    if (firstAdd < 0 && firstRemove < 0) {
      // Nothing starts or stops here: the container's entries and set.
      active = depth > 0 ? stackActive[top]! : NO_ENTRIES;
      only = depth > 0 ? stackOnly[top]! : -1;
      set = depth > 0 ? stackSet[top]! : 0;
    } else if (firstRemove < 0 && addNext[firstAdd]! < 0 && (depth === 0 || stackActive[top]?.length === 0)) {
      active = null;
      only = firstAdd;
      set = sets.ofSelector(table.entrySelector[firstAdd]!);
    } else {
      let parent: readonly number[] = NO_ENTRIES;
      if (depth > 0) {
        parent = stackActive[top] ?? [stackOnly[top]!];
        stackActive[top] = parent;
      }
      const next = parent.slice();
      for (let e = firstAdd; e >= 0; e = addNext[e]!) next.push(e);
      if (firstRemove >= 0) {
        const removed = new Set<number>();
        for (let r = firstRemove; r >= 0; r = removeNext[r]!) removed.add(removeEntry[r]!);
        let n = 0;
        for (const e of next) if (!removed.has(e)) next[n++] = e;
        next.length = n;
      }
      active = next;
      set = sets.ofEntries(next);
    }
    // A prefix whose set equals its container's adds nothing to the trie.
    if (depth === 0 || stackSet[top] !== set)
      identities.push({ prefix: id === root ? ROOT : pool.prefix(id), set });
    stackPrefix[depth] = id;
    stackActive[depth] = active;
    stackOnly[depth] = only;
    stackSet[depth] = set;
    depth++;
  }
  return { identities, sets };
}

export function compilePolicies(
  policies: readonly HostPolicy[],
  facts: NodeFacts,
  system: readonly SystemAllow[] = [],
): CompiledPolicy {
  const selected = policies.filter((p) => matchesLabels(p.nodeSelector, facts.labels));
  const pool = new PrefixPool();
  const resolver = new Resolver(pool, facts);
  const rules: CompiledRule[] = [
    {
      index: 0,
      policy: '',
      section: 'default',
      position: -1,
      verdict: Verdict.none,
      description: 'default ingress',
    },
    {
      index: 1,
      policy: '',
      section: 'default',
      position: -1,
      verdict: Verdict.none,
      description: 'default egress',
    },
    {
      index: 2,
      policy: '',
      section: 'malformed',
      position: -1,
      verdict: Verdict.none,
      description: 'malformed packet',
    },
  ];
  const table = new SelectorTable();
  const specs = new RuleSpecs();
  // Per selector: its first and last rule (a list through specs.next), and how many per direction.
  const firstRule: number[] = [];
  const lastRule: number[] = [];
  const rulesPerDirection: number[] = [];
  const addRule = (
    direction: number,
    verdict: VerdictCode,
    l4: L4Match[] | 'any',
    selector: number | undefined,
    policy: string,
    section: RuleSection,
    position: number,
    description: string,
  ) => {
    const intervals = specs.l4Intervals(l4);
    const index = rules.length;
    if (index >= RULES_MAX)
      throw new RangeError(`more than ${RULES_MAX - FIRST_RULE_INDEX} rules select node ${facts.nodeName}`);
    rules.push({ index, policy, section, position, verdict, description });
    if (selector === undefined) return;
    specs.add(index, direction, verdict, intervals);
    while (firstRule.length <= selector) {
      firstRule.push(-1);
      lastRule.push(-1);
      rulesPerDirection.push(0, 0);
    }
    const last = lastRule[selector]!;
    if (last >= 0) specs.next[last] = index;
    else firstRule[selector] = index;
    lastRule[selector] = index;
    rulesPerDirection[selector * 2 + direction]!++;
  };

  const sections = [
    ['ingress', Direction.ingress, false],
    ['ingressDeny', Direction.ingress, true],
    ['egress', Direction.egress, false],
    ['egressDeny', Direction.egress, true],
  ] as const;
  const peers: PeerEntry[] = [];
  for (const policy of selected) {
    for (const [section, direction, deny] of sections) {
      const verdict = deny ? (policy.audit ? Verdict.audit : Verdict.deny) : Verdict.allow;
      for (const rule of policy[section]) {
        let selector: number | undefined;
        if (rule.peers === 'any') selector = table.internSingle(resolver.root);
        else {
          const only = rule.peers.length === 1 ? rule.peers[0]! : undefined;
          const simple = only?.kind === 'cidr' ? resolver.simpleCidr(only) : -1;
          if (simple >= 0) selector = table.internSingle(simple);
          else {
            peers.length = 0;
            for (const p of rule.peers) resolver.peerEntries(p, peers);
            // A rule whose peers resolve to nothing matches nothing (but its policy still turns on default deny).
            selector = peers.length > 0 ? table.intern(peers) : undefined;
          }
        }
        addRule(
          direction,
          verdict,
          rule.l4,
          selector,
          policy.name,
          section,
          rule.index,
          `${policy.name} ${section}[${rule.index}]`,
        );
      }
    }
  }
  for (const allow of system) {
    const entries: PeerEntry[] = [];
    if (allow.peers === 'any') entries.push({ cidr: resolver.root, excepts: NO_EXCEPTS });
    else plain(resolver.parseAll(allow.peers), entries);
    addRule(
      Direction[allow.direction],
      Verdict.allowSystem,
      allow.l4,
      table.intern(entries),
      'nodewarden',
      'system',
      -1,
      `system: ${allow.reason}`,
    );
  }

  const { identities, sets } = assignSets(pool, table, resolver.root);
  const entries: PolicyEntry[] = [];
  const flatCache = new Map<string, FlatPiece[]>();
  const list: number[] = [];
  for (let set = 1; set < sets.count; set++) {
    const single = sets.single[set]!;
    for (const direction of [Direction.ingress, Direction.egress]) {
      list.length = 0;
      if (single >= 0) {
        // One selector: its rules in this direction, flattened (it is the only set with them).
        const count = rulesPerDirection[single * 2 + direction] ?? 0;
        if (count === 0) continue;
        for (let r = firstRule[single]!; r >= 0; r = specs.next[r]!) {
          if (specs.direction[r] !== direction) continue;
          if (count === 1) {
            emitRule(entries, set, direction, specs, r);
            break;
          }
          list.push(r);
        }
        if (count > 1)
          for (const { lo, hi, rule } of flatten(specs, list))
            emitRange(entries, set, direction, lo, hi, specs.verdict[rule]!, rule);
        continue;
      }
      for (const s of sets.multi[set]!) {
        if ((rulesPerDirection[s * 2 + direction] ?? 0) === 0) continue;
        for (let r = firstRule[s]!; r >= 0; r = specs.next[r]!)
          if (specs.direction[r] === direction) list.push(r);
      }
      if (list.length === 0) continue;
      if (list.length === 1) {
        emitRule(entries, set, direction, specs, list[0]!);
        continue;
      }
      // Sets of several selectors often share their rules in a direction.
      const cacheKey = [...list].sort(ascending).join(',');
      let flat = flatCache.get(cacheKey);
      if (!flat) {
        flat = flatten(specs, list);
        flatCache.set(cacheKey, flat);
      }
      for (const { lo, hi, rule } of flat)
        emitRange(entries, set, direction, lo, hi, specs.verdict[rule]!, rule);
    }
  }

  const defaultFor = (direction: 'ingress' | 'egress'): VerdictCode => {
    const enforcing = selected.filter((p) => p.defaultDeny[direction]);
    if (enforcing.length === 0) return Verdict.allow;
    return enforcing.every((p) => p.audit) ? Verdict.audit : Verdict.deny;
  };
  const defaults = { ingress: defaultFor('ingress'), egress: defaultFor('egress') };
  rules[0]!.verdict = defaults.ingress;
  rules[1]!.verdict = defaults.egress;
  rules[2]!.verdict = Verdict.deny;

  return {
    identities,
    entries,
    defaults,
    rules,
    selected: selected.map((p) => p.name),
    warnings: selected.flatMap((p) => p.warnings.map((w) => `${p.name}: ${w}`)),
  };
}
