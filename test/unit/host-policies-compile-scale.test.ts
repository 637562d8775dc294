/**
 * compilePolicies on rule sets big enough for its bulk paths (hundreds of
 * prefixes: the native sort of IPv4-mapped prefixes and its merge with the IPv6
 * prefixes just below and above the IPv4-mapped block, many single-selector
 * sets, shared and excepted prefixes), judged like the randomized test in
 * host-policies-compile.test.ts: the datapath's two longest-prefix lookups over
 * the compiled maps must give the verdict a naive reading of the rules gives.
 */

import { describe, expect, it } from 'vitest';
import { Direction, Verdict } from '../../bpf/codecs/firewall.js';
import { type CompiledPolicy, compilePolicies, type NodeFacts } from '../../host-policies/compile.js';
import type { HostPolicy, L4Match, Peer, Rule } from '../../host-policies/model.js';
import { formatNet, maskNet, type Net, parseNet } from '../support/nets.js';
import { SeededRandom } from '../support/random.js';

const TCP = 6;

const FACTS: NodeFacts = {
  nodeName: 'node-s',
  labels: {},
  hostAddresses: ['10.9.0.5', 'fd00::5'],
  remoteNodeAddresses: [],
  clusterCIDRs: [],
  apiServerAddresses: [],
};

/** Random rules and packets, reproducible from a seed. */
const Gen = SeededRandom;
type Gen = SeededRandom;

// ---------------------------------------------------------------------------
// Addresses (test/support/nets.ts is independent of host-policies/prefix.ts)

/** The datapath's 128-bit key of an address: IPv4 as ::ffff:a.b.c.d. */
const mapped = (a: Net) => (a.family === 4 ? (0xffffn << 32n) | a.value : a.value);

// ---------------------------------------------------------------------------
// Rule sets

/** Bases that put IPv6 prefixes on both sides of the IPv4-mapped block (::ffff:0:0/96) and next to it. */
const V4_BASES = [0x0a000000n, 0x0a010000n, 0x0a010200n, 0xac100000n, 0xc0a80000n, 0x00000000n, 0xffffff00n];
const V6_BASES = [
  '::',
  '::fffe:0:0',
  '::fffe:ffff:ff00',
  '::1:0:0:0',
  '::1:0:0:1',
  '64:ff9b::',
  'fd00::',
  'fd00:1::',
  '2001:db8::',
];

function randomAddress(g: Gen, family: 4 | 6): bigint {
  if (family === 4) return g.pick(V4_BASES) | (g.chance(0.5) ? BigInt(g.int(0, 300)) : g.bits(16));
  return parseNet(g.pick(V6_BASES)).value | (g.chance(0.5) ? BigInt(g.int(0, 300)) : g.bits(g.int(8, 48)));
}

function randomNet(g: Gen): Net {
  const family = g.chance(0.65) ? 4 : 6;
  const len =
    family === 4
      ? g.pick([0, 8, 12, 16, 20, 22, 24, 24, 26, 28, 30, 31, 32, 32, 32, 32])
      : g.pick([0, 16, 32, 48, 64, 64, 80, 95, 96, 97, 112, 120, 127, 128, 128, 128]);
  return { family, value: maskNet(family, randomAddress(g, family), len), len };
}

function randomPeer(g: Gen): Peer {
  const net = randomNet(g);
  const bits = net.family === 4 ? 32 : 128;
  const except: string[] = [];
  if (net.len < bits && g.chance(0.2)) {
    for (let i = g.int(1, 2); i > 0; i--) {
      const len = g.int(net.len + 1, bits);
      const inside = net.value | (g.bits(bits) & ((1n << BigInt(bits - net.len)) - 1n));
      except.push(formatNet(net.family, maskNet(net.family, inside, len), len, g.chance(0.5)));
    }
  }
  return {
    kind: 'cidr',
    cidr: formatNet(net.family, net.value, net.len, g.chance(0.5)),
    except: [...new Set(except)],
  };
}

const PORTS = [22, 80, 443, 8080, 9090, 10250];

function randomL4(g: Gen): L4Match[] | 'any' {
  if (g.chance(0.1)) return 'any';
  return Array.from({ length: g.chance(0.15) ? 6 : g.int(1, 2) }, (): L4Match => {
    const port = g.pick(PORTS);
    return { kind: 'ports', protocol: 'TCP', port, endPort: g.chance(0.2) ? port + g.int(1, 40) : port };
  });
}

function randomPolicies(g: Gen, rules: number): HostPolicy[] {
  const policies: HostPolicy[] = [];
  for (let p = 0; p * 100 < rules; p++) {
    const list = (n: number): Rule[] =>
      Array.from({ length: n }, (_, index) => ({
        index,
        peers: g.chance(0.02) ? 'any' : Array.from({ length: g.chance(0.2) ? 2 : 1 }, () => randomPeer(g)),
        l4: randomL4(g),
      }));
    const count = Math.min(100, rules - p * 100);
    const deny = Math.floor(count * 0.2);
    policies.push({
      name: `s${p}`,
      source: 'test',
      audit: false,
      nodeSelector: { matchLabels: {}, matchExpressions: [] },
      ingress: list(count - deny),
      ingressDeny: list(deny),
      egress: [],
      egressDeny: [],
      defaultDeny: { ingress: true, egress: false },
      warnings: [],
    });
  }
  return policies;
}

// ---------------------------------------------------------------------------
// The two oracles

interface NaiveRule {
  verdict: number;
  /** Each peer: its net and excepts, as (family, shift, value >> shift). */
  peers: { net: [number, bigint, bigint]; excepts: [number, bigint, bigint][] }[] | 'any';
  ports: [number, number][] | 'any';
}

function naiveRules(policies: HostPolicy[]): NaiveRule[] {
  const key = (text: string): [number, bigint, bigint] => {
    const n = parseNet(text);
    const shift = BigInt((n.family === 4 ? 32 : 128) - n.len);
    return [n.family, shift, n.value >> shift];
  };
  return policies.flatMap((p) =>
    [
      [p.ingress, Verdict.allow],
      [p.ingressDeny, Verdict.deny],
    ].flatMap(([rules, verdict]) =>
      (rules as Rule[]).map(
        (r): NaiveRule => ({
          verdict: verdict as number,
          peers:
            r.peers === 'any'
              ? 'any'
              : r.peers.map((x) => {
                  if (x.kind !== 'cidr') throw new Error('cidr peers only');
                  return { net: key(x.cidr), excepts: x.except.map(key) };
                }),
          ports:
            r.l4 === 'any' ? 'any' : r.l4.map((m) => (m.kind === 'ports' ? [m.port, m.endPort] : [-1, -1])),
        }),
      ),
    ),
  );
}

/** Ingress verdict for a TCP packet from `peer` to `port`, straight from the rules: deny beats allow. */
function naive(rules: NaiveRule[], peer: Net, port: number): number {
  const inKey = ([family, shift, value]: [number, bigint, bigint]) =>
    family === peer.family && peer.value >> shift === value;
  let allowed = false;
  for (const r of rules) {
    if (r.verdict === Verdict.allow && allowed) continue;
    if (r.ports !== 'any' && !r.ports.some(([lo, hi]) => lo <= port && port <= hi)) continue;
    if (r.peers !== 'any' && !r.peers.some((x) => inKey(x.net) && !x.excepts.some(inKey))) continue;
    if (r.verdict === Verdict.deny) return Verdict.deny;
    allowed = true;
  }
  // Every policy has ingress rules: default deny.
  return allowed ? Verdict.allow : Verdict.deny;
}

/** The datapath's lookups over the compiled maps, indexed by prefix length. */
function lookups(compiled: CompiledPolicy): (peer: Net, port: number) => number {
  const byLen = new Map<number, Map<bigint, number>>();
  for (const { prefix, set } of compiled.identities) {
    const shift = BigInt(128 - prefix.len);
    const m = byLen.get(prefix.len) ?? new Map<bigint, number>();
    byLen.set(prefix.len, m);
    expect(m.has(prefix.addr >> shift)).toBe(false);
    m.set(prefix.addr >> shift, set);
  }
  const lens = [...byLen.keys()].sort((a, b) => b - a);
  const entries = new Map<number, CompiledPolicy['entries']>();
  for (const e of compiled.entries) {
    if (e.direction !== Direction.ingress) continue;
    const list = entries.get(e.set) ?? [];
    list.push(e);
    entries.set(e.set, list);
  }
  return (peer, port) => {
    const key = mapped(peer);
    let set = 0;
    for (const len of lens) {
      const hit = byLen.get(len)!.get(key >> BigInt(128 - len));
      if (hit !== undefined) {
        set = hit;
        break;
      }
    }
    const space = (TCP << 16) | port;
    let best: CompiledPolicy['entries'][number] | undefined;
    for (const e of entries.get(set) ?? []) {
      const bits = e.prefixlen - 40;
      const shift = 24 - bits;
      if (bits < 0 || space >>> shift !== ((e.proto << 16) | e.port) >>> shift) continue;
      if (!best || e.prefixlen > best.prefixlen) best = e;
    }
    return best ? best.verdict : compiled.defaults.ingress;
  };
}

describe('compilePolicies at scale', () => {
  it('1000 random CIDR rules: the compiled maps agree with the naive semantics', () => {
    const g = new Gen(0xc0ffee);
    const policies = randomPolicies(g, 1000);
    const compiled = compilePolicies(policies, FACTS);
    // Deterministic, and in the walk's order: by address, containers first, no duplicates.
    expect(compilePolicies(policies, FACTS)).toEqual(compiled);
    for (let i = 1; i < compiled.identities.length; i++) {
      const a = compiled.identities[i - 1]!.prefix;
      const b = compiled.identities[i]!.prefix;
      expect(a.addr < b.addr || (a.addr === b.addr && a.len < b.len)).toBe(true);
    }
    expect(compiled.identities.length).toBeGreaterThan(500);

    // Peers at the edges of every prefix, and random ones.
    const peers: Net[] = [];
    for (const p of policies)
      for (const r of [...p.ingress, ...p.ingressDeny])
        if (r.peers !== 'any')
          for (const peer of r.peers)
            if (peer.kind === 'cidr')
              for (const text of [peer.cidr, ...peer.except]) {
                const n = parseNet(text);
                const bits = n.family === 4 ? 32 : 128;
                const last = n.value | ((1n << BigInt(bits - n.len)) - 1n);
                for (const v of [n.value, last, n.value - 1n, last + 1n])
                  if (v >= 0n && v < 1n << BigInt(bits))
                    peers.push({ family: n.family, value: v, len: bits });
              }
    for (let i = 0; i < 500; i++) {
      const family = g.chance(0.6) ? 4 : 6;
      peers.push({ family, value: randomAddress(g, family), len: family === 4 ? 32 : 128 });
    }
    const datapath = lookups(compiled);
    const rules = naiveRules(policies);
    const mismatches: unknown[] = [];
    for (let i = 0; i < 4000; i++) {
      const peer = g.pick(peers);
      const port = g.chance(0.7) ? g.pick(PORTS) + g.int(-1, 1) : g.int(0, 65535);
      const got = datapath(peer, port);
      const want = naive(rules, peer, port);
      if (got !== want) mismatches.push({ peer: formatNet(peer.family, peer.value), port, got, want });
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });
});
