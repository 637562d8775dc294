/**
 * FirewallMaps.apply writes the maps from encodeIdentities(): its buffers must
 * hold, byte for byte and in the same order, what the codecs make of
 * packIdentities() (the identity hash and trie, the policy hash and the
 * overflow policy trie).
 */
import { describe, expect, it } from 'vitest';
import type { Codec } from '../../bpf/codec.js';
import {
  IDENT_PROBES,
  identKey,
  identLengths,
  identValue,
  policyKey,
  policyValue,
} from '../../bpf/codecs/firewall.js';
import { encodeIdentities, packIdentities, placeIdentities } from '../../daemon/firewall/actuator.js';
import { type CompiledPolicy, compilePolicies, type NodeFacts } from '../../host-policies/compile.js';
import type { HostPolicy, L4Match, Rule } from '../../host-policies/model.js';
import { SeededRandom } from '../support/random.js';

const FACTS: NodeFacts = {
  nodeName: 'node-e',
  labels: {},
  hostAddresses: ['10.9.0.5', 'fd00::5'],
  remoteNodeAddresses: ['10.9.0.6'],
  clusterCIDRs: ['10.244.0.0/16'],
  apiServerAddresses: [],
};

function encodeAll<T>(codec: Codec<T>, items: readonly T[]): Buffer {
  const buf = Buffer.alloc(items.length * codec.size);
  items.forEach((item, i) => {
    codec.encode(item, buf, i * codec.size);
  });
  return buf;
}

/** The bytes apply() wrote before encodeIdentities(): packIdentities() through the codecs. */
function viaCodecs(compiled: CompiledPolicy) {
  const packed = packIdentities(compiled);
  return {
    hashKeys: encodeAll(
      identKey,
      packed.hash.map(([k]) => k),
    ),
    hashValues: encodeAll(
      identValue,
      packed.hash.map(([, v]) => v),
    ),
    trieKeys: encodeAll(
      identKey,
      packed.trie.map(([k]) => k),
    ),
    trieValues: encodeAll(
      identValue,
      packed.trie.map(([, v]) => v),
    ),
    lengths: encodeAll(identLengths, [packed.lengths]),
    overflowKeys: encodeAll(
      policyKey,
      packed.overflow.map((e) => ({
        prefixlen: e.prefixlen,
        set: e.set,
        direction: e.direction,
        proto: e.proto,
        port: e.port,
      })),
    ),
    overflowValues: encodeAll(
      policyValue,
      packed.overflow.map((e) => ({ verdict: e.verdict, pad: new Uint8Array(3), rule: e.rule })),
    ),
    hashedKeys: encodeAll(
      policyKey,
      packed.hashed.map((e) => ({
        prefixlen: e.prefixlen,
        set: e.set,
        direction: e.direction,
        proto: e.proto,
        port: e.port,
      })),
    ),
    hashedValues: encodeAll(
      policyValue,
      packed.hashed.map((e) => ({ verdict: e.verdict, pad: new Uint8Array(3), rule: e.rule })),
    ),
    counts: [packed.hash.length, packed.trie.length, packed.overflow.length, packed.hashed.length],
  };
}

function direct(compiled: CompiledPolicy) {
  const { hash, trie, lengths, overflow, hashed } = encodeIdentities(compiled);
  const used = (e: typeof hash, which: 'keys' | 'values') =>
    e[which].subarray(0, e.count * (which === 'keys' ? e.keySize : e.valueSize));
  return {
    hashKeys: used(hash, 'keys'),
    hashValues: used(hash, 'values'),
    trieKeys: used(trie, 'keys'),
    trieValues: used(trie, 'values'),
    lengths: encodeAll(identLengths, [lengths]),
    overflowKeys: used(overflow, 'keys'),
    overflowValues: used(overflow, 'values'),
    hashedKeys: used(hashed, 'keys'),
    hashedValues: used(hashed, 'values'),
    counts: [hash.count, trie.count, overflow.count, hashed.count],
  };
}

function expectSameBytes(compiled: CompiledPolicy): number[] {
  const want = viaCodecs(compiled);
  const got = direct(compiled);
  for (const key of Object.keys(want) as (keyof typeof want)[]) {
    if (key === 'counts') continue;
    // Hex, so that a mismatch shows where.
    expect([key, got[key].toString('hex')]).toEqual([key, want[key].toString('hex')]);
  }
  expect(got.counts).toEqual(want.counts);
  return got.counts;
}

const ports = (...list: number[]): L4Match[] =>
  list.map((port) => ({ kind: 'ports', protocol: 'TCP', port, endPort: port }));

/**
 * Rules over /24, /32, /64 and /128 sources; some with many single ports (their sets go to the
 * policy hash), some with port ranges of many prefix lengths (the policy trie), some deny, some egress.
 */
function ruleSet(count: number): HostPolicy[] {
  const policies: HostPolicy[] = [];
  const rules: { rule: Omit<Rule, 'index'>; section: 'ingress' | 'ingressDeny' | 'egress' }[] = [];
  for (let k = 0; k < count; k++) {
    const cidr = [
      `10.${128 + (k >> 8)}.${k & 255}.0/24`,
      `172.16.${(k >> 8) & 255}.${k & 255}/32`,
      `fd00:64:0:${k.toString(16)}::/64`,
      `fd00:128::${k.toString(16)}/128`,
    ][k % 4]!;
    const l4: L4Match[] | 'any' =
      k % 13 === 0
        ? 'any'
        : k % 7 === 0
          ? ports(22, 80, 443, 8080, 9090, 10250)
          : k % 5 === 0
            ? [...ports(22, 443), { kind: 'ports', protocol: 'TCP', port: 30000, endPort: 32767 }]
            : ports(22 + (k % 5));
    const section = k % 11 === 0 ? 'ingressDeny' : k % 17 === 0 ? 'egress' : 'ingress';
    rules.push({ rule: { peers: [{ kind: 'cidr', cidr, except: [] }], l4 }, section });
  }
  // A few shared peers, so that several identities share a set's value.
  rules.push(
    { rule: { peers: [{ kind: 'entity', entity: 'cluster' }], l4: ports(10250) }, section: 'ingress' },
    { rule: { peers: [{ kind: 'entity', entity: 'world' }], l4: ports(443) }, section: 'ingress' },
  );
  for (let i = 0; i < rules.length; i += 100) {
    const chunk = rules.slice(i, i + 100);
    const of = (section: string) =>
      chunk.filter((r) => r.section === section).map((r, index): Rule => ({ index, ...r.rule }));
    policies.push({
      name: `e${i / 100}`,
      source: 'test',
      audit: i % 300 === 100,
      nodeSelector: { matchLabels: {}, matchExpressions: [] },
      ingress: of('ingress'),
      ingressDeny: of('ingressDeny'),
      egress: of('egress'),
      egressDeny: [],
      defaultDeny: { ingress: true, egress: true },
      warnings: [],
    });
  }
  return policies;
}

describe('encodeIdentities', () => {
  it('gives the codecs’ bytes for a compiled rule set with inline and overflowing sets', () => {
    const compiled = compilePolicies(ruleSet(3000), FACTS);
    const [hash, trie, overflow, hashed] = expectSameBytes(compiled);
    expect(hash).toBeGreaterThan(2000);
    // Four lengths per family fit the hash (/32, /24, /16 and /0 for IPv4 here); the trie is empty.
    expect(trie).toBe(0);
    expect(overflow).toBeGreaterThan(1000);
    expect(hashed).toBeGreaterThan(1000);
  });

  it('handles sets shared by identities, sparse set numbers and addresses of every size', () => {
    const compiled = compilePolicies(ruleSet(200), FACTS);
    const sparse: CompiledPolicy = {
      ...compiled,
      entries: compiled.entries.map((e) => ({ ...e, set: e.set * 1_000_003 })),
      identities: compiled.identities.map((i) => ({ ...i, set: i.set * 1_000_003 })),
    };
    expectSameBytes(sparse);
    const set = (n: number) => compiled.identities[n % compiled.identities.length]!.set;
    const odd: CompiledPolicy = {
      ...compiled,
      identities: [
        { prefix: { addr: (1n << 128n) - 1n, len: 128 }, set: set(1) },
        { prefix: { addr: 0n, len: 128 }, set: set(2) },
        { prefix: { addr: (1n << 53n) - 1n, len: 128 }, set: set(1) },
        { prefix: { addr: 1n << 53n, len: 100 }, set: set(3) },
        { prefix: { addr: 0xfd00n << 112n, len: 8 }, set: set(3) },
        { prefix: { addr: 0xfd00n << 112n, len: 8 }, set: set(1) },
        { prefix: { addr: 0n, len: 0 }, set: 0 },
        { prefix: { addr: 0xfd01n << 112n, len: 64 }, set: set(2) },
        { prefix: { addr: 0xfd02n << 112n, len: 48 }, set: set(3) },
      ],
    };
    // IPv6 uses six lengths: the two shortest go to the trie, and ::/0 (IPv4's too) to both.
    expect(expectSameBytes(odd).slice(0, 2)).toEqual([7, 3]);
    expectSameBytes({ ...compiled, identities: [], entries: [] });
  });

  it('rejects what the codecs rejected', () => {
    const compiled = compilePolicies(ruleSet(20), FACTS);
    const bad = (change: Record<string, number>): CompiledPolicy => ({
      ...compiled,
      entries: compiled.entries.map((e, i) => (i === 0 ? { ...e, ...change } : e)),
    });
    const changes: Record<string, number>[] = [
      { rule: -1 },
      { rule: 2 ** 32 },
      { prefixlen: 39 },
      { verdict: 256 },
    ];
    for (const change of changes) {
      expect(() => packIdentities(bad(change))).not.toThrow();
      expect(() => viaCodecs(bad(change))).toThrow(RangeError);
      expect(() => encodeIdentities(bad(change))).toThrow(RangeError);
    }
    expect(() => encodeIdentities(bad({ direction: 2 }))).toThrow(TypeError);
  });
});

describe('placeIdentities', () => {
  const V4 = 0xffffn << 32n;
  const mask = (addr: bigint, len: number) =>
    len === 0 ? 0n : (addr >> BigInt(128 - len)) << BigInt(128 - len);

  /** nw_identity() over in-memory maps: hash probes per family, longest first, then the trie. */
  function viaPlacement(identities: CompiledPolicy['identities'], addr: bigint): number | undefined {
    const { lengths, place } = placeIdentities(identities);
    const hash = new Map<string, number>();
    const trie: CompiledPolicy['identities'] = [];
    identities.forEach((id, i) => {
      if (place[i]! & 1) hash.set(`${id.prefix.len}/${id.prefix.addr}`, id.set);
      if (place[i]! & 2) trie.push(id);
    });
    const family = addr >> 32n === 0xffffn ? 0 : 1;
    for (let i = 0; i < lengths.count[family]!; i++) {
      const len = lengths.len[family * IDENT_PROBES + i]!;
      const set = hash.get(`${len}/${mask(addr, len)}`);
      if (set !== undefined) return set;
    }
    return lengths.trie[family] ? longestMatch(trie, addr) : undefined;
  }

  function longestMatch(identities: CompiledPolicy['identities'], addr: bigint): number | undefined {
    let best: { len: number; set: number } | undefined;
    for (const { prefix, set } of identities)
      if (mask(addr, prefix.len) === prefix.addr && (!best || prefix.len > best.len))
        best = { len: prefix.len, set };
    return best?.set;
  }

  it('finds the longest match for every address, with few and with many prefix lengths per family', () => {
    const g = new SeededRandom(7);
    for (const lengthsPerFamily of [1, 2, 4, 5, 12]) {
      const v4Lengths = Array.from({ length: lengthsPerFamily }, () => 96 + g.int(0, 32));
      const v6Lengths = Array.from({ length: lengthsPerFamily }, () => g.int(0, 128));
      const seen = new Set<string>();
      // ::/0 and ::/80 hold IPv4's ::ffff:0:0/96 too: both families must find them.
      const identities: CompiledPolicy['identities'] = [
        { prefix: { addr: 0n, len: 0 }, set: 1000 },
        { prefix: { addr: 0n, len: 80 }, set: 1001 },
      ];
      const addresses: bigint[] = [];
      for (let i = 0; i < 300; i++) {
        const v4 = g.chance(0.5);
        const len = v4 ? g.pick(v4Lengths) : g.pick(v6Lengths);
        // Nested prefixes: most share a few top bits, so that lengths compete for the same address.
        const raw = v4
          ? V4 | (BigInt(g.pick([10, 172, 192])) << 24n) | g.bits(24)
          : (0xfdn << 120n) | g.bits(120);
        const addr = mask(raw, len);
        if (seen.has(`${len}/${addr}`)) continue;
        seen.add(`${len}/${addr}`);
        identities.push({ prefix: { addr, len }, set: i });
        addresses.push(raw, raw ^ 1n, mask(raw, Math.max(0, len - 3)));
      }
      addresses.push(V4 | 0x08080808n, 0n, (1n << 128n) - 1n);
      const wrong = addresses.filter((a) => viaPlacement(identities, a) !== longestMatch(identities, a));
      expect([lengthsPerFamily, wrong.map((a) => a.toString(16))]).toEqual([lengthsPerFamily, []]);
    }
  });
});
