/**
 * compilePolicies, judged by what the datapath would do with its output: a
 * reference evaluator makes the datapath's two lookups over the compiled maps
 * (longest identity prefix → set; longest (set, direction, proto, port) prefix
 * → verdict) and every expectation is a verdict for a concrete packet. A
 * randomized property test compares that evaluator with a naive, direct
 * reading of the policies' semantics.
 */

import { describe, expect, it } from 'vitest';
import { Direction, POLICY_PREFIX_L3, Verdict, type VerdictCode } from '../../bpf/codecs/firewall.js';
import {
  type CompiledPolicy,
  compilePolicies,
  type NodeFacts,
  type SystemAllow,
} from '../../host-policies/compile.js';
import type {
  Entity,
  HostPolicy,
  L4Match,
  LabelSelector,
  Peer,
  PortProtocol,
  Rule,
} from '../../host-policies/model.js';
import { formatPrefix, parsePrefix } from '../../host-policies/prefix.js';
import { matchesLabels } from '../../host-policies/selector.js';
import { formatNet, maskNet, parseNet } from '../support/nets.js';
import { SeededRandom } from '../support/random.js';

// ---------------------------------------------------------------------------
// Builders

type Dir = 'ingress' | 'egress';
const EVERY_NODE: LabelSelector = { matchLabels: {}, matchExpressions: [] };

type RuleInput = Omit<Rule, 'index'>;

interface PolicyInput {
  audit?: boolean;
  nodeSelector?: LabelSelector;
  ingress?: RuleInput[];
  ingressDeny?: RuleInput[];
  egress?: RuleInput[];
  egressDeny?: RuleInput[];
  defaultDeny?: Partial<HostPolicy['defaultDeny']>;
}

const indexed = (rules: RuleInput[] = []): Rule[] => rules.map((r, index) => ({ index, ...r }));

/** A policy as the parser would produce it: default deny in every direction it has rules for. */
function policy(name: string, input: PolicyInput): HostPolicy {
  const ingress = indexed(input.ingress);
  const ingressDeny = indexed(input.ingressDeny);
  const egress = indexed(input.egress);
  const egressDeny = indexed(input.egressDeny);
  return {
    name,
    source: 'test',
    audit: input.audit ?? false,
    nodeSelector: input.nodeSelector ?? EVERY_NODE,
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    defaultDeny: {
      ingress: input.defaultDeny?.ingress ?? ingress.length + ingressDeny.length > 0,
      egress: input.defaultDeny?.egress ?? egress.length + egressDeny.length > 0,
    },
    warnings: [],
  };
}

const rule = (peers: Peer[] | 'any', l4: L4Match[] | 'any'): RuleInput => ({ peers, l4 });
const cidr = (text: string, ...except: string[]): Peer => ({ kind: 'cidr', cidr: text, except });
const entity = (name: Entity): Peer => ({ kind: 'entity', entity: name });
const ports = (protocol: PortProtocol, port: number, endPort = port): L4Match => ({
  kind: 'ports',
  protocol,
  port,
  endPort,
});
const tcp = (port: number, endPort = port) => ports('TCP', port, endPort);
const udp = (port: number, endPort = port) => ports('UDP', port, endPort);
const icmp = (family: 'IPv4' | 'IPv6', type: number): L4Match => ({ kind: 'icmp', family, type });
const proto = (protocol: number): L4Match => ({ kind: 'protocol', protocol });

const FACTS: NodeFacts = {
  nodeName: 'node-a',
  labels: { 'kubernetes.io/hostname': 'node-a', role: 'worker', zone: 'a' },
  hostAddresses: ['10.0.0.5', 'fd00::5'],
  remoteNodeAddresses: ['10.0.0.6', 'fd00::6'],
  clusterCIDRs: ['10.244.0.0/16', 'fd44::/64'],
  apiServerAddresses: ['10.96.0.1'],
};

const P = { ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132, VRRP: 112 } as const;

// ---------------------------------------------------------------------------
// Reference evaluator: the datapath's lookups over the compiled maps

interface Packet {
  dir: Dir;
  /** The remote side: source on ingress, destination on egress. */
  peer: string;
  proto: number;
  /** Destination port, or ICMP type<<8|code, as nw_policy_port computes it. */
  port: number;
}

interface Decision {
  verdict: VerdictCode;
  rule: number;
  description: string;
}

interface Lookups {
  identities: { shift: bigint; addr: bigint; len: number; set: number }[];
  /** Policy entries by set and direction, with their key bits. */
  entries: Map<string, { shift: bigint; bits: bigint; entry: CompiledPolicy['entries'][number] }[]>;
}

const lookupCache = new WeakMap<CompiledPolicy, Lookups>();

function lookupsOf(compiled: CompiledPolicy): Lookups {
  let lookups = lookupCache.get(compiled);
  if (lookups) return lookups;
  lookups = {
    identities: compiled.identities.map(({ prefix, set }) => {
      const shift = BigInt(128 - prefix.len);
      return { shift, addr: prefix.addr >> shift, len: prefix.len, set };
    }),
    entries: new Map(),
  };
  for (const entry of compiled.entries) {
    const key = `${entry.set}/${entry.direction}`;
    const list = lookups.entries.get(key) ?? [];
    const shift = BigInt(64 - entry.prefixlen);
    list.push({
      shift,
      bits: policyBits(entry.set, entry.direction, entry.proto, entry.port) >> shift,
      entry,
    });
    lookups.entries.set(key, list);
  }
  lookupCache.set(compiled, lookups);
  return lookups;
}

/** The longest identity prefix that contains the address; set 0 when none does. */
function identityOf(compiled: CompiledPolicy, address: string): number {
  const addr = parsePrefix(address).addr;
  let best: { len: number; set: number } | undefined;
  for (const id of lookupsOf(compiled).identities) {
    if (addr >> id.shift !== id.addr) continue;
    if (best && best.len === id.len) throw new Error(`two identities of length ${id.len} contain ${address}`);
    if (!best || id.len > best.len) best = { len: id.len, set: id.set };
  }
  return best?.set ?? 0;
}

/** The 64 data bits of nw_policy_key: set (32), direction (8), proto (8), port (16). */
function policyBits(set: number, dir: number, protocol: number, port: number): bigint {
  return (BigInt(set) << 32n) | (BigInt(dir) << 24n) | (BigInt(protocol) << 16n) | BigInt(port);
}

/** The datapath's decision for the first packet of a flow: identity, then the longest policy prefix, else the default. */
function evaluate(compiled: CompiledPolicy, pkt: Packet): Decision {
  const set = identityOf(compiled, pkt.peer);
  const dir = Direction[pkt.dir];
  const key = policyBits(set, dir, pkt.proto, pkt.port);
  // Every entry's prefix covers at least set and direction, so only this set's entries can match.
  let hit: CompiledPolicy['entries'][number] | undefined;
  for (const { shift, bits, entry } of lookupsOf(compiled).entries.get(`${set}/${dir}`) ?? []) {
    if (key >> shift !== bits) continue;
    if (hit && hit.prefixlen === entry.prefixlen)
      throw new Error('two policy entries match at the same length');
    if (!hit || entry.prefixlen > hit.prefixlen) hit = entry;
  }
  if (hit && hit.verdict !== Verdict.none) {
    return { verdict: hit.verdict, rule: hit.rule, description: compiled.rules[hit.rule]!.description };
  }
  const fallback = compiled.defaults[pkt.dir];
  return {
    verdict: fallback === Verdict.none ? Verdict.allow : fallback,
    rule: dir,
    description: compiled.rules[dir]!.description,
  };
}

const VERDICT_NAME: Record<number, string> = {
  [Verdict.allow]: 'allow',
  [Verdict.deny]: 'deny',
  [Verdict.audit]: 'audit',
  [Verdict.allowSystem]: 'allow-system',
};

/** "allow", "deny", ...: what happens to the first packet of the flow. */
function verdictOf(compiled: CompiledPolicy, pkt: Packet): string {
  return VERDICT_NAME[evaluate(compiled, pkt).verdict]!;
}

const pkt = (dir: Dir, peer: string, protocol: number, port = 0): Packet => ({
  dir,
  peer,
  proto: protocol,
  port,
});
const icmpPort = (type: number, code = 0) => (type << 8) | code;

/** Checks a table of [peer, proto, port, expected verdict] in one direction, reporting every row. */
function expectVerdicts(compiled: CompiledPolicy, dir: Dir, rows: [string, number, number, string][]): void {
  const actual = rows.map(([peer, p, port]) => [peer, p, port, verdictOf(compiled, pkt(dir, peer, p, port))]);
  expect(actual).toEqual(rows);
}

/** Structural invariants the datapath relies on. */
function expectWellFormed(compiled: CompiledPolicy): void {
  const problems: string[] = [];
  const prefixes = compiled.identities.map((i) => formatPrefix(i.prefix));
  if (new Set(prefixes).size !== prefixes.length) problems.push(`duplicate identity prefixes: ${prefixes}`);
  const keys = new Set<string>();
  for (const e of compiled.entries) {
    const text = JSON.stringify(e);
    if (e.prefixlen < POLICY_PREFIX_L3 || e.prefixlen > 64) problems.push(`prefixlen of ${text}`);
    // Host bits of the (proto, port) prefix are zero, as an LPM key must be.
    const space = (e.proto << 16) | e.port;
    if ((space & ((1 << (64 - e.prefixlen)) - 1)) !== 0) problems.push(`host bits set in ${text}`);
    if (e.rule < 3 || e.rule >= compiled.rules.length) problems.push(`rule index of ${text}`);
    else if (compiled.rules[e.rule]!.verdict !== e.verdict)
      problems.push(`verdict differs from rule: ${text}`);
    const key = `${e.set}/${e.direction}/${space}/${e.prefixlen}`;
    if (keys.has(key)) problems.push(`duplicate entry ${text}`);
    keys.add(key);
  }
  compiled.rules.forEach((r, i) => {
    if (r.index !== i) problems.push(`rule ${i} has index ${r.index}`);
  });
  expect(problems).toEqual([]);
}

// ---------------------------------------------------------------------------
// Naive evaluator: the policies' semantics read directly, no prefixes shared

function inNet(address: string, net: string): boolean {
  const a = parseNet(address);
  const n = parseNet(net);
  if (a.family !== n.family) return false;
  const shift = BigInt((a.family === 4 ? 32 : 128) - n.len);
  return a.value >> shift === n.value >> shift;
}

function naiveL4(m: L4Match, p: Packet): boolean {
  switch (m.kind) {
    case 'ports':
      return p.proto === P[m.protocol] && m.port <= p.port && p.port <= m.endPort;
    case 'protocol':
      return p.proto === m.protocol;
    case 'icmp':
      return p.proto === (m.family === 'IPv4' ? P.ICMP : P.ICMPv6) && p.port >> 8 === m.type;
  }
}

function naivePeer(peer: Peer, address: string, facts: NodeFacts): boolean {
  const inAny = (nets: string[]) => nets.some((n) => inNet(address, n));
  const cluster = [
    ...facts.hostAddresses,
    ...facts.remoteNodeAddresses,
    ...facts.clusterCIDRs,
    ...facts.apiServerAddresses,
  ];
  switch (peer.kind) {
    case 'cidr':
      return inNet(address, peer.cidr) && !peer.except.some((e) => inNet(address, e));
    case 'endpoints':
      return inAny(facts.endpointAddresses?.(peer) ?? []);
    case 'entity':
      switch (peer.entity) {
        case 'all':
          return true;
        case 'world':
          return !inAny(cluster);
        case 'cluster':
          return inAny(cluster);
        case 'host':
          return inAny(facts.hostAddresses);
        case 'remote-node':
          return inAny(facts.remoteNodeAddresses);
        case 'kube-apiserver':
          return inAny(facts.apiServerAddresses);
      }
  }
}

const RANK = { allow: 1, audit: 2, deny: 3, system: 4 } as const;

function naive(
  policies: readonly HostPolicy[],
  facts: NodeFacts,
  system: readonly SystemAllow[],
  p: Packet,
): { verdict: VerdictCode; description: string } {
  const selected = policies.filter((x) => matchesLabels(x.nodeSelector, facts.labels));
  let best: { rank: number; verdict: VerdictCode; description: string } | undefined;
  const consider = (rank: number, verdict: VerdictCode, description: string) => {
    // Earlier rules win ties, so only a strictly stronger verdict replaces the current one.
    if (!best || rank > best.rank) best = { rank, verdict, description };
  };
  for (const x of selected) {
    const sections = [
      ['ingress', 'ingress', false],
      ['ingressDeny', 'ingress', true],
      ['egress', 'egress', false],
      ['egressDeny', 'egress', true],
    ] as const;
    for (const [section, dir, deny] of sections) {
      if (dir !== p.dir) continue;
      for (const r of x[section]) {
        const peerOk = r.peers === 'any' || r.peers.some((peer) => naivePeer(peer, p.peer, facts));
        const l4Ok = r.l4 === 'any' || r.l4.some((m) => naiveL4(m, p));
        if (!peerOk || !l4Ok) continue;
        const description = `${x.name} ${section}[${r.index}]`;
        if (!deny) consider(RANK.allow, Verdict.allow, description);
        else if (x.audit) consider(RANK.audit, Verdict.audit, description);
        else consider(RANK.deny, Verdict.deny, description);
      }
    }
  }
  for (const s of system) {
    if (s.direction !== p.dir) continue;
    const peerOk = s.peers === 'any' || s.peers.some((a) => inNet(p.peer, a));
    if (peerOk && s.l4.some((m) => naiveL4(m, p)))
      consider(RANK.system, Verdict.allowSystem, `system: ${s.reason}`);
  }
  if (best) return { verdict: best.verdict, description: best.description };
  const enforcing = selected.filter((x) => x.defaultDeny[p.dir]);
  const verdict =
    enforcing.length === 0 ? Verdict.allow : enforcing.every((x) => x.audit) ? Verdict.audit : Verdict.deny;
  return { verdict, description: `default ${p.dir}` };
}

// ---------------------------------------------------------------------------

describe('nodeSelector', () => {
  const controlPlane: LabelSelector = { matchLabels: { role: 'control-plane' }, matchExpressions: [] };

  it('a policy that does not select the node contributes nothing and leaves the defaults at allow', () => {
    const compiled = compilePolicies(
      [policy('cp-only', { nodeSelector: controlPlane, ingress: [rule([cidr('10.0.0.0/8')], [tcp(22)])] })],
      FACTS,
    );
    expect(compiled.selected).toEqual([]);
    expect(compiled.entries).toEqual([]);
    expect(compiled.defaults).toEqual({ ingress: Verdict.allow, egress: Verdict.allow });
    expect(compiled.rules.map((r) => r.description)).toEqual([
      'default ingress',
      'default egress',
      'malformed packet',
    ]);
    expectVerdicts(compiled, 'ingress', [
      ['10.1.1.1', P.TCP, 22, 'allow'],
      ['10.1.1.1', P.TCP, 23, 'allow'],
    ]);
  });

  it('only the selecting policies are compiled (matchLabels and matchExpressions)', () => {
    const compiled = compilePolicies(
      [
        policy('cp-only', { nodeSelector: controlPlane, ingressDeny: [rule('any', [tcp(22)])] }),
        policy('workers', {
          nodeSelector: {
            matchLabels: {},
            matchExpressions: [
              { key: 'role', operator: 'In', values: ['worker', 'edge'] },
              { key: 'gpu', operator: 'DoesNotExist', values: [] },
            ],
          },
          ingress: [rule([cidr('10.0.0.0/8')], [tcp(22)])],
        }),
        policy('not-zone-a', {
          nodeSelector: {
            matchLabels: {},
            matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }],
          },
          egress: [rule('any', [tcp(443)])],
        }),
      ],
      FACTS,
    );
    expect(compiled.selected).toEqual(['workers']);
    expect(compiled.rules.slice(3).map((r) => r.description)).toEqual(['workers ingress[0]']);
    expect(compiled.defaults).toEqual({ ingress: Verdict.deny, egress: Verdict.allow });
    expectVerdicts(compiled, 'ingress', [
      ['10.1.1.1', P.TCP, 22, 'allow'], // the cp-only deny is not here
      ['11.1.1.1', P.TCP, 22, 'deny'],
    ]);
    expectVerdicts(compiled, 'egress', [['1.1.1.1', P.TCP, 80, 'allow']]);
  });
});

describe('defaults per direction', () => {
  const ssh = rule([cidr('10.0.0.0/8')], [tcp(22)]);

  it('deny where an enforcing policy selects the node, allow elsewhere', () => {
    const compiled = compilePolicies([policy('in', { ingress: [ssh] })], FACTS);
    expect(compiled.defaults).toEqual({ ingress: Verdict.deny, egress: Verdict.allow });
    expect(compiled.rules.slice(0, 3).map((r) => [r.description, r.verdict, r.section])).toEqual([
      ['default ingress', Verdict.deny, 'default'],
      ['default egress', Verdict.allow, 'default'],
      ['malformed packet', Verdict.deny, 'malformed'],
    ]);
    expect(evaluate(compiled, pkt('ingress', '11.0.0.1', P.TCP, 22))).toEqual({
      verdict: Verdict.deny,
      rule: 0,
      description: 'default ingress',
    });
    expect(evaluate(compiled, pkt('egress', '11.0.0.1', P.TCP, 22))).toEqual({
      verdict: Verdict.allow,
      rule: 1,
      description: 'default egress',
    });
  });

  it('egress only', () => {
    const compiled = compilePolicies([policy('out', { egress: [rule('any', [udp(53)])] })], FACTS);
    expect(compiled.defaults).toEqual({ ingress: Verdict.allow, egress: Verdict.deny });
  });

  it('audit when every enforcing policy is an audit policy', () => {
    const audit = policy('audit', { audit: true, ingress: [ssh], egress: [rule('any', 'any')] });
    expect(compilePolicies([audit], FACTS).defaults).toEqual({
      ingress: Verdict.audit,
      egress: Verdict.audit,
    });
    const enforcing = policy('enforce', { ingress: [ssh] });
    expect(compilePolicies([audit, enforcing], FACTS).defaults).toEqual({
      ingress: Verdict.deny,
      egress: Verdict.audit,
    });
    expect(verdictOf(compilePolicies([audit], FACTS), pkt('ingress', '11.0.0.1', P.TCP, 22))).toBe('audit');
  });

  it('a policy whose default deny is off (enableDefaultDeny: false) leaves the default at allow', () => {
    const compiled = compilePolicies(
      [
        policy('lenient', {
          ingressDeny: [rule([cidr('10.9.0.0/16')], 'any')],
          defaultDeny: { ingress: false },
        }),
      ],
      FACTS,
    );
    expect(compiled.defaults).toEqual({ ingress: Verdict.allow, egress: Verdict.allow });
    expectVerdicts(compiled, 'ingress', [
      ['10.9.1.1', P.TCP, 22, 'deny'],
      ['10.8.1.1', P.TCP, 22, 'allow'],
    ]);
  });

  it('a policy that does not select the node does not turn default deny on', () => {
    const other: LabelSelector = { matchLabels: { role: 'other' }, matchExpressions: [] };
    const compiled = compilePolicies([policy('elsewhere', { nodeSelector: other, ingress: [ssh] })], FACTS);
    expect(compiled.defaults.ingress).toBe(Verdict.allow);
  });
});

describe('identities for nested CIDRs', () => {
  it('an address in both CIDRs gets a set with both selectors, one in the outer only gets the outer', () => {
    const compiled = compilePolicies(
      [
        policy('nested', {
          ingress: [rule([cidr('10.0.0.0/8')], [tcp(22)]), rule([cidr('10.1.0.0/16')], [tcp(80)])],
        }),
      ],
      FACTS,
    );
    expectWellFormed(compiled);
    const inner = identityOf(compiled, '10.1.2.3');
    const outer = identityOf(compiled, '10.2.0.1');
    const outside = identityOf(compiled, '11.0.0.1');
    expect(new Set([inner, outer, outside]).size).toBe(3);
    expect(outside).toBe(0);
    expect(identityOf(compiled, '10.1.255.255')).toBe(inner);
    expect(identityOf(compiled, '10.0.0.0')).toBe(outer);
    expect(compiled.identities.map((i) => [formatPrefix(i.prefix), i.set])).toEqual(
      expect.arrayContaining([
        ['10.0.0.0/8', outer],
        ['10.1.0.0/16', inner],
      ]),
    );
    // The inner set carries both selectors' rules; each rule names itself.
    expect(evaluate(compiled, pkt('ingress', '10.1.2.3', P.TCP, 22)).description).toBe('nested ingress[0]');
    expect(evaluate(compiled, pkt('ingress', '10.1.2.3', P.TCP, 80)).description).toBe('nested ingress[1]');
    expectVerdicts(compiled, 'ingress', [
      ['10.1.2.3', P.TCP, 22, 'allow'],
      ['10.1.2.3', P.TCP, 80, 'allow'],
      ['10.1.2.3', P.TCP, 81, 'deny'],
      ['10.1.0.0', P.TCP, 80, 'allow'],
      ['10.0.255.255', P.TCP, 80, 'deny'],
      ['10.2.0.0', P.TCP, 80, 'deny'],
      ['10.2.0.1', P.TCP, 22, 'allow'],
      ['10.255.255.255', P.TCP, 22, 'allow'],
      ['9.255.255.255', P.TCP, 22, 'deny'],
      ['11.0.0.0', P.TCP, 22, 'deny'],
      ['10.1.2.3', P.UDP, 22, 'deny'],
    ]);
  });

  it('many sample packets agree with the naive reading of the policies', () => {
    const policies = [
      policy('a', {
        ingress: [
          rule([cidr('10.0.0.0/8')], [tcp(22)]),
          rule([cidr('10.1.0.0/16')], [tcp(80)]),
          rule([cidr('10.1.2.0/24')], [tcp(443), udp(53)]),
          rule([cidr('10.1.2.3')], 'any'),
        ],
        ingressDeny: [rule([cidr('10.1.2.128/25')], [tcp(22)])],
      }),
    ];
    const compiled = compilePolicies(policies, FACTS);
    expectWellFormed(compiled);
    const peers = [
      '10.0.0.0',
      '10.0.0.1',
      '10.1.0.0',
      '10.1.2.0',
      '10.1.2.3',
      '10.1.2.4',
      '10.1.2.127',
      '10.1.2.128',
      '10.1.2.255',
      '10.1.3.0',
      '10.255.255.255',
      '11.0.0.0',
      '9.255.255.255',
      'fd00::1',
    ];
    let checked = 0;
    for (const peer of peers)
      for (const p of [P.TCP, P.UDP, P.ICMP])
        for (const port of [0, 21, 22, 23, 53, 79, 80, 81, 443, 65535]) {
          const packet = pkt('ingress', peer, p, port);
          const { verdict, description } = evaluate(compiled, packet);
          expect({ packet, verdict, description }).toEqual({ packet, ...naive(policies, FACTS, [], packet) });
          checked++;
        }
    expect(checked).toBe(peers.length * 3 * 10);
  });
});

describe('CIDR except', () => {
  it('an excepted /32 inside a /24 does not get the rule, but a second rule covering it still applies', () => {
    const compiled = compilePolicies(
      [
        policy('except', {
          ingress: [
            rule([cidr('192.168.1.0/24', '192.168.1.7/32')], [tcp(80)]),
            rule([cidr('192.168.1.7/32')], [tcp(443)]),
          ],
        }),
      ],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['192.168.1.6', P.TCP, 80, 'allow'],
      ['192.168.1.7', P.TCP, 80, 'deny'],
      ['192.168.1.8', P.TCP, 80, 'allow'],
      ['192.168.1.7', P.TCP, 443, 'allow'],
      ['192.168.1.6', P.TCP, 443, 'deny'],
    ]);
  });

  it('a second rule on the same port, in another policy, still allows the excepted address', () => {
    const compiled = compilePolicies(
      [
        policy('a', { ingress: [rule([cidr('192.168.1.0/24', '192.168.1.0/28')], [tcp(80)])] }),
        policy('b', { ingress: [rule([cidr('192.168.1.7/32')], [tcp(80)])] }),
      ],
      FACTS,
    );
    expect(evaluate(compiled, pkt('ingress', '192.168.1.7', P.TCP, 80)).description).toBe('b ingress[0]');
    expect(evaluate(compiled, pkt('ingress', '192.168.1.8', P.TCP, 80)).description).toBe('default ingress');
    expect(evaluate(compiled, pkt('ingress', '192.168.1.16', P.TCP, 80)).description).toBe('a ingress[0]');
  });

  it('another peer of the same rule that covers the excepted address keeps it in', () => {
    const compiled = compilePolicies(
      [
        policy('p', {
          ingress: [rule([cidr('192.168.1.0/24', '192.168.1.7/32'), cidr('192.168.1.7')], [tcp(80)])],
        }),
      ],
      FACTS,
    );
    expectVerdicts(compiled, 'ingress', [
      ['192.168.1.7', P.TCP, 80, 'allow'],
      ['192.168.1.9', P.TCP, 80, 'allow'],
    ]);
  });

  it('excepts in IPv6', () => {
    const compiled = compilePolicies(
      [policy('p6', { egress: [rule([cidr('2001:db8::/32', '2001:db8:bad::/48')], [tcp(443)])] })],
      FACTS,
    );
    expectVerdicts(compiled, 'egress', [
      ['2001:db8::1', P.TCP, 443, 'allow'],
      ['2001:db8:bad::1', P.TCP, 443, 'deny'],
      ['2001:db8:bae::1', P.TCP, 443, 'allow'],
    ]);
  });
});

describe('precedence', () => {
  const system: SystemAllow[] = [
    {
      reason: 'BGP peer 10.9.0.7',
      direction: 'ingress',
      peers: ['10.9.0.7'],
      l4: [tcp(22)],
    },
  ];

  it('deny beats allow, whatever the order; a system allow beats deny', () => {
    for (const order of ['deny first', 'allow first']) {
      const allow = policy('allow', { ingress: [rule([cidr('10.0.0.0/8')], [tcp(0, 65535)])] });
      const deny = policy('deny', { ingressDeny: [rule([cidr('10.9.0.0/16')], [tcp(22)])] });
      const compiled = compilePolicies(order === 'deny first' ? [deny, allow] : [allow, deny], FACTS, system);
      expectWellFormed(compiled);
      const decide = (peer: string, port: number) => evaluate(compiled, pkt('ingress', peer, P.TCP, port));
      expect(decide('10.1.1.1', 22)).toMatchObject({
        verdict: Verdict.allow,
        description: 'allow ingress[0]',
      });
      expect(decide('10.9.1.1', 22)).toMatchObject({
        verdict: Verdict.deny,
        description: 'deny ingressDeny[0]',
      });
      expect(decide('10.9.1.1', 23)).toMatchObject({
        verdict: Verdict.allow,
        description: 'allow ingress[0]',
      });
      expect(decide('10.9.0.7', 22)).toMatchObject({
        verdict: Verdict.allowSystem,
        description: 'system: BGP peer 10.9.0.7',
      });
      const systemRule = compiled.rules.find((r) => r.section === 'system')!;
      expect(systemRule).toMatchObject({ policy: 'nodewarden', position: -1, verdict: Verdict.allowSystem });
      // The system allow is ingress only.
      expect(verdictOf(compiled, pkt('egress', '10.9.0.7', P.TCP, 22))).toBe('allow');
    }
  });

  it('a deny rule of an audit policy becomes audit: it beats allow, loses to deny', () => {
    const audit = policy('audit', { audit: true, ingressDeny: [rule('any', [tcp(22), tcp(25)])] });
    const allow = policy('allow', { ingress: [rule([cidr('10.0.0.0/8')], [tcp(22), tcp(80)])] });
    const deny = policy('deny', { ingressDeny: [rule([cidr('10.0.0.0/8')], [tcp(25)])] });
    const compiled = compilePolicies([audit, allow, deny], FACTS);
    expect(compiled.rules.find((r) => r.description === 'audit ingressDeny[0]')?.verdict).toBe(Verdict.audit);
    expectVerdicts(compiled, 'ingress', [
      ['10.1.1.1', P.TCP, 22, 'audit'],
      ['10.1.1.1', P.TCP, 80, 'allow'],
      ['10.1.1.1', P.TCP, 25, 'deny'],
      ['11.1.1.1', P.TCP, 25, 'audit'],
      ['11.1.1.1', P.TCP, 80, 'deny'],
    ]);
  });

  it('a deny of everything (peers any, l4 any) still loses to a system allow', () => {
    const compiled = compilePolicies([policy('wall', { egressDeny: [rule('any', 'any')] })], FACTS, [
      { reason: 'Kubernetes API', direction: 'egress', peers: ['10.96.0.1'], l4: [tcp(6443)] },
    ]);
    expectVerdicts(compiled, 'egress', [
      ['10.96.0.1', P.TCP, 6443, 'allow-system'],
      ['10.96.0.1', P.TCP, 6444, 'deny'],
      ['10.96.0.2', P.TCP, 6443, 'deny'],
      ['fd00::1', P.UDP, 53, 'deny'],
    ]);
  });
});

describe('L4 matches', () => {
  it('a port range becomes a few prefixes, not one entry per port, and its boundaries hold', () => {
    const compiled = compilePolicies(
      [policy('high', { ingress: [rule('any', [tcp(1024, 65535)]), rule('any', [udp(1000, 2000)])] })],
      FACTS,
    );
    expectWellFormed(compiled);
    const tcpEntries = compiled.entries.filter((e) => e.proto === P.TCP);
    const udpEntries = compiled.entries.filter((e) => e.proto === P.UDP);
    expect(tcpEntries.length).toBeGreaterThan(0);
    expect(tcpEntries.length).toBeLessThanOrEqual(16);
    expect(udpEntries.length).toBeLessThanOrEqual(32);
    expectVerdicts(compiled, 'ingress', [
      ['1.2.3.4', P.TCP, 0, 'deny'],
      ['1.2.3.4', P.TCP, 1023, 'deny'],
      ['1.2.3.4', P.TCP, 1024, 'allow'],
      ['1.2.3.4', P.TCP, 1025, 'allow'],
      ['1.2.3.4', P.TCP, 32767, 'allow'],
      ['1.2.3.4', P.TCP, 32768, 'allow'],
      ['1.2.3.4', P.TCP, 65535, 'allow'],
      ['1.2.3.4', P.UDP, 1024, 'allow'],
      ['1.2.3.4', P.UDP, 999, 'deny'],
      ['1.2.3.4', P.UDP, 1000, 'allow'],
      ['1.2.3.4', P.UDP, 2000, 'allow'],
      ['1.2.3.4', P.UDP, 2001, 'deny'],
      ['1.2.3.4', P.SCTP, 1024, 'deny'],
      // The next protocol's port 0 is not part of the range.
      ['1.2.3.4', P.TCP + 1, 0, 'deny'],
    ]);
    // Every port of both ranges, against the naive reading.
    for (let port = 0; port <= 65535; port += 1 + (port % 7)) {
      expect(verdictOf(compiled, pkt('ingress', '1.2.3.4', P.TCP, port))).toBe(
        port >= 1024 ? 'allow' : 'deny',
      );
      expect(verdictOf(compiled, pkt('ingress', '1.2.3.4', P.UDP, port))).toBe(
        port >= 1000 && port <= 2000 ? 'allow' : 'deny',
      );
    }
  });

  it('all ports of a protocol (0-65535) and a single port', () => {
    const compiled = compilePolicies(
      [policy('p', { ingress: [rule('any', [udp(0, 65535), ports('SCTP', 9)])] })],
      FACTS,
    );
    expect(compiled.entries.filter((e) => e.proto === P.UDP)).toHaveLength(1);
    expectVerdicts(compiled, 'ingress', [
      ['1.2.3.4', P.UDP, 0, 'allow'],
      ['1.2.3.4', P.UDP, 65535, 'allow'],
      ['1.2.3.4', P.SCTP, 9, 'allow'],
      ['1.2.3.4', P.SCTP, 10, 'deny'],
      ['1.2.3.4', P.TCP, 9, 'deny'],
    ]);
  });

  it('ICMP types: EchoRequest is type 8 of protocol 1, ICMPv6 EchoRequest type 128 of protocol 58, any code', () => {
    const compiled = compilePolicies(
      [policy('ping', { ingress: [rule('any', [icmp('IPv4', 8), icmp('IPv6', 128)])] })],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['1.2.3.4', P.ICMP, icmpPort(8), 'allow'],
      ['1.2.3.4', P.ICMP, icmpPort(8, 255), 'allow'],
      ['1.2.3.4', P.ICMP, icmpPort(0), 'deny'],
      ['1.2.3.4', P.ICMP, icmpPort(9), 'deny'],
      ['1.2.3.4', P.ICMP, icmpPort(7, 255), 'deny'],
      ['1.2.3.4', P.ICMP, icmpPort(128), 'deny'],
      ['fd00::9', P.ICMPv6, icmpPort(128), 'allow'],
      ['fd00::9', P.ICMPv6, icmpPort(128, 3), 'allow'],
      ['fd00::9', P.ICMPv6, icmpPort(129), 'deny'],
      ['fd00::9', P.ICMPv6, icmpPort(8), 'deny'],
      ['1.2.3.4', P.TCP, icmpPort(8), 'deny'],
    ]);
  });

  it('a bare protocol (VRRP, 112) matches any port of that protocol and nothing else', () => {
    const compiled = compilePolicies(
      [policy('vrrp', { ingress: [rule([cidr('10.0.0.0/24')], [proto(P.VRRP)])] })],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['10.0.0.9', P.VRRP, 0, 'allow'],
      ['10.0.0.9', P.VRRP, 65535, 'allow'],
      ['10.0.0.9', P.VRRP + 1, 0, 'deny'],
      ['10.0.0.9', P.VRRP - 1, 65535, 'deny'],
      ['10.0.0.9', P.TCP, 112, 'deny'],
      ['10.0.1.9', P.VRRP, 0, 'deny'],
    ]);
  });

  it("peers 'any' match every address of both families; l4 'any' matches every protocol", () => {
    const compiled = compilePolicies(
      [policy('p', { ingress: [rule('any', [tcp(443)]), rule([cidr('10.5.0.0/16')], 'any')] })],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['1.2.3.4', P.TCP, 443, 'allow'],
      ['2001:db8::1', P.TCP, 443, 'allow'],
      ['10.0.0.6', P.TCP, 443, 'allow'],
      ['1.2.3.4', P.TCP, 444, 'deny'],
      ['10.5.1.1', P.TCP, 1, 'allow'],
      ['10.5.1.1', P.UDP, 65535, 'allow'],
      ['10.5.1.1', P.ICMP, icmpPort(8), 'allow'],
      ['10.5.1.1', P.VRRP, 0, 'allow'],
      ['10.5.1.1', 0, 0, 'allow'],
      ['10.5.1.1', 255, 65535, 'allow'],
      ['10.6.1.1', P.UDP, 53, 'deny'],
    ]);
    expect(evaluate(compiled, pkt('ingress', '10.5.1.1', P.TCP, 443)).description).toBe('p ingress[0]');
  });
});

describe('entities', () => {
  const ENTITIES: [Entity, number][] = [
    ['world', 1001],
    ['cluster', 1002],
    ['host', 1003],
    ['remote-node', 1004],
    ['kube-apiserver', 1005],
    ['all', 1006],
  ];
  const compiled = compilePolicies(
    [policy('ents', { ingress: ENTITIES.map(([e, port]) => rule([entity(e)], [tcp(port)])) })],
    FACTS,
  );
  const allowedPorts = (peer: string) =>
    ENTITIES.filter(([, port]) => verdictOf(compiled, pkt('ingress', peer, P.TCP, port)) === 'allow').map(
      ([e]) => e,
    );

  it.each([
    ['8.8.8.8', ['world', 'all']],
    ['2001:db8::1', ['world', 'all']],
    ['10.0.0.7', ['world', 'all']],
    ['10.244.3.4', ['cluster', 'all']],
    ['fd44::9', ['cluster', 'all']],
    ['fd44:0:0:1::9', ['world', 'all']],
    ['10.0.0.5', ['cluster', 'host', 'all']],
    ['fd00::5', ['cluster', 'host', 'all']],
    ['10.0.0.6', ['cluster', 'remote-node', 'all']],
    ['fd00::6', ['cluster', 'remote-node', 'all']],
    ['10.96.0.1', ['cluster', 'kube-apiserver', 'all']],
  ])('%s is %j', (peer, expected) => {
    expectWellFormed(compiled);
    expect(allowedPorts(peer)).toEqual(expected);
  });
});

describe('rules that resolve to nothing', () => {
  it('an empty rule (peers []) matches nothing, but its policy still turns on default deny', () => {
    const compiled = compilePolicies([policy('empty', { ingress: [rule([], [tcp(22)])] })], FACTS);
    expect(compiled.defaults.ingress).toBe(Verdict.deny);
    expect(compiled.entries).toEqual([]);
    expect(compiled.rules[3]).toMatchObject({
      description: 'empty ingress[0]',
      section: 'ingress',
      position: 0,
    });
    expectVerdicts(compiled, 'ingress', [
      ['10.0.0.6', P.TCP, 22, 'deny'],
      ['fd00::6', P.TCP, 22, 'deny'],
    ]);
  });

  it('endpoint peers resolve through the node facts; none resolved matches nothing', () => {
    const app = (name: string): Peer => ({
      kind: 'endpoints',
      selector: { matchLabels: { app: name }, matchExpressions: [] },
    });
    const facts: NodeFacts = {
      ...FACTS,
      endpointAddresses: (peer) =>
        peer.selector.matchLabels.app === 'web' ? ['10.244.1.10', 'fd44::10'] : [],
    };
    const compiled = compilePolicies(
      [policy('pods', { ingress: [rule([app('web')], [tcp(8080)]), rule([app('db')], [tcp(5432)])] })],
      facts,
    );
    expectVerdicts(compiled, 'ingress', [
      ['10.244.1.10', P.TCP, 8080, 'allow'],
      ['fd44::10', P.TCP, 8080, 'allow'],
      ['10.244.1.11', P.TCP, 8080, 'deny'],
      ['10.244.1.10', P.TCP, 5432, 'deny'],
    ]);
  });
});

describe('rule table', () => {
  it('describes every rule as "<policy> <section>[<position>]", in policy and section order', () => {
    const compiled = compilePolicies(
      [
        policy('ssh', {
          ingress: [rule([cidr('10.0.0.0/8')], [tcp(22)]), rule('any', [icmp('IPv4', 8)])],
          egressDeny: [rule([cidr('169.254.169.254')], 'any')],
        }),
        policy('web', {
          egress: [rule('any', [tcp(443)])],
          ingressDeny: [rule([cidr('10.66.0.0/16')], 'any')],
        }),
      ],
      FACTS,
      [{ reason: 'DNS', direction: 'egress', peers: 'any', l4: [udp(53)] }],
    );
    expect(compiled.rules.map((r) => [r.index, r.description, r.section, r.position, r.verdict])).toEqual([
      [0, 'default ingress', 'default', -1, Verdict.deny],
      [1, 'default egress', 'default', -1, Verdict.deny],
      [2, 'malformed packet', 'malformed', -1, Verdict.deny],
      [3, 'ssh ingress[0]', 'ingress', 0, Verdict.allow],
      [4, 'ssh ingress[1]', 'ingress', 1, Verdict.allow],
      [5, 'ssh egressDeny[0]', 'egressDeny', 0, Verdict.deny],
      [6, 'web ingressDeny[0]', 'ingressDeny', 0, Verdict.deny],
      [7, 'web egress[0]', 'egress', 0, Verdict.allow],
      [8, 'system: DNS', 'system', -1, Verdict.allowSystem],
    ]);
    expect(evaluate(compiled, pkt('egress', '169.254.169.254', P.TCP, 443))).toMatchObject({ rule: 5 });
    expect(evaluate(compiled, pkt('egress', '1.1.1.1', P.TCP, 443))).toMatchObject({ rule: 7 });
    expect(evaluate(compiled, pkt('egress', '169.254.169.254', P.UDP, 53))).toMatchObject({ rule: 8 });
    expect(evaluate(compiled, pkt('ingress', '10.66.0.1', P.TCP, 22))).toMatchObject({ rule: 6 });
    expect(evaluate(compiled, pkt('ingress', '10.65.0.1', P.TCP, 22))).toMatchObject({ rule: 3 });
  });
});

describe('IPv4 and IPv6 together', () => {
  it('one rule with peers of both families', () => {
    const compiled = compilePolicies(
      [policy('dual', { ingress: [rule([cidr('10.0.0.0/8'), cidr('fd00::/8')], [tcp(22)])] })],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['10.1.1.1', P.TCP, 22, 'allow'],
      ['fd12::1', P.TCP, 22, 'allow'],
      ['fe80::1', P.TCP, 22, 'deny'],
      ['11.1.1.1', P.TCP, 22, 'deny'],
      // IPv4-mapped IPv6 is IPv4, as the datapath keys it.
      ['::ffff:10.1.1.1', P.TCP, 22, 'allow'],
    ]);
  });

  it('::/0 is IPv6 only and 0.0.0.0/0 is IPv4 only', () => {
    const compiled = compilePolicies(
      [policy('halves', { ingress: [rule([cidr('::/0')], [tcp(6)]), rule([cidr('0.0.0.0/0')], [tcp(4)])] })],
      FACTS,
    );
    expectWellFormed(compiled);
    expectVerdicts(compiled, 'ingress', [
      ['2001:db8::1', P.TCP, 6, 'allow'],
      ['::', P.TCP, 6, 'allow'],
      ['1.2.3.4', P.TCP, 6, 'deny'],
      ['10.0.0.6', P.TCP, 6, 'deny'],
      ['1.2.3.4', P.TCP, 4, 'allow'],
      ['2001:db8::1', P.TCP, 4, 'deny'],
    ]);
  });

  it('a short IPv6 prefix that contains the IPv4-mapped space (::/80) does not match IPv4 either', () => {
    const compiled = compilePolicies(
      [policy('p', { ingressDeny: [rule([cidr('::/80')], 'any')], ingress: [rule('any', 'any')] })],
      FACTS,
    );
    expectVerdicts(compiled, 'ingress', [
      ['::1', P.TCP, 22, 'deny'],
      ['1.2.3.4', P.TCP, 22, 'allow'],
    ]);
  });
});

// ---------------------------------------------------------------------------
// Randomized: the compiled maps against the naive reading

/** Random rules and packets, reproducible from a seed. */
const Gen = SeededRandom;
type Gen = SeededRandom;

/** A small address universe, so that prefixes nest and overlap often. */
function randomAddress(g: Gen, family: 4 | 6): bigint {
  if (family === 4) {
    const base = g.pick([0x0a000000n, 0x0a010000n, 0x0a010200n, 0xc0a80000n, 0x08080800n]);
    return base | BigInt(g.chance(0.5) ? g.int(0, 3) : g.int(0, 0xffff));
  }
  const base = g.pick(['fd00::', 'fd00:1::', 'fd00:1:2::', 'fd44::', '2001:db8::']);
  return parseNet(base).value | (g.chance(0.5) ? BigInt(g.int(0, 3)) : g.bits(80));
}

function randomCidr(g: Gen): { family: 4 | 6; value: bigint; len: number } {
  const family = g.chance(0.6) ? 4 : 6;
  const len =
    family === 4
      ? g.pick([0, 8, 12, 16, 20, 24, 25, 28, 30, 31, 32])
      : g.pick([0, 8, 16, 32, 48, 64, 80, 81, 96, 120, 128]);
  return { family, value: maskNet(family, randomAddress(g, family), len), len };
}

function randomPeer(g: Gen): Peer {
  const r = g.random();
  if (r < 0.15)
    return entity(g.pick(['world', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'all'] as const));
  if (r < 0.22)
    return {
      kind: 'endpoints',
      selector: { matchLabels: { app: g.pick(['web', 'db', 'none']) }, matchExpressions: [] },
    };
  const c = randomCidr(g);
  const bits = c.family === 4 ? 32 : 128;
  const except: string[] = [];
  if (c.len < bits && g.chance(0.4)) {
    for (let i = g.int(1, 2); i > 0; i--) {
      const len = g.int(c.len + 1, bits);
      const inside = c.value | (g.bits(bits) & ((1n << BigInt(bits - c.len)) - 1n));
      except.push(formatNet(c.family, maskNet(c.family, inside, len), len));
    }
  }
  return cidr(formatNet(c.family, c.value, c.len), ...new Set(except));
}

const INTERESTING_PORTS = [0, 1, 22, 53, 80, 443, 1023, 1024, 8080, 32767, 32768, 65534, 65535];

function randomL4(g: Gen): L4Match {
  const r = g.random();
  if (r < 0.65) {
    const protocol = g.pick(['TCP', 'UDP', 'SCTP'] as const);
    if (g.chance(0.1)) return ports(protocol, 0, 65535);
    const lo = g.chance(0.5) ? g.pick(INTERESTING_PORTS) : g.int(0, 65535);
    const hi = g.chance(0.5) ? lo : Math.min(65535, lo + g.pick([1, 7, 100, 1000, 30000, 65535]));
    return ports(protocol, lo, hi);
  }
  if (r < 0.85) return icmp(g.pick(['IPv4', 'IPv6'] as const), g.pick([0, 3, 8, 11, 128, 129, 1, 2, 255]));
  return proto(g.pick([112, 47, 50, 89, 2]));
}

function randomRule(g: Gen): RuleInput {
  const peers: Peer[] | 'any' = g.chance(0.15)
    ? 'any'
    : Array.from({ length: g.chance(0.05) ? 0 : g.int(1, 3) }, () => randomPeer(g));
  const l4: L4Match[] | 'any' = g.chance(0.2)
    ? 'any'
    : Array.from({ length: g.int(1, 3) }, () => randomL4(g));
  return rule(peers, l4);
}

const RANDOM_FACTS: NodeFacts = {
  nodeName: 'node-r',
  labels: { role: 'worker' },
  hostAddresses: ['10.1.0.5', 'fd00:1::5'],
  remoteNodeAddresses: ['10.1.0.6', 'fd00:1::6', '192.168.0.9'],
  clusterCIDRs: ['10.1.2.0/24', 'fd44::/64'],
  apiServerAddresses: ['10.1.0.1'],
  endpointAddresses: (peer) =>
    ({ web: ['10.1.2.10', 'fd44::10'], db: ['10.1.2.20', '10.1.2.21'] })[
      peer.selector.matchLabels.app ?? ''
    ] ?? [],
};

function randomPolicies(g: Gen, round: number): { policies: HostPolicy[]; system: SystemAllow[] } {
  const policies = Array.from({ length: g.int(1, 4) }, (_, i) => {
    const list = () => Array.from({ length: g.chance(0.3) ? 0 : g.int(1, 3) }, () => randomRule(g));
    const p = policy(`r${round}p${i}`, {
      audit: g.chance(0.25),
      nodeSelector: g.chance(0.15)
        ? { matchLabels: { role: 'control-plane' }, matchExpressions: [] }
        : EVERY_NODE,
      ingress: list(),
      ingressDeny: g.chance(0.5) ? list() : [],
      egress: list(),
      egressDeny: g.chance(0.5) ? list() : [],
    });
    if (g.chance(0.15)) p.defaultDeny.ingress = !p.defaultDeny.ingress;
    if (g.chance(0.15)) p.defaultDeny.egress = !p.defaultDeny.egress;
    return p;
  });
  const system: SystemAllow[] = Array.from({ length: g.chance(0.5) ? g.int(1, 2) : 0 }, (_, i) => {
    const family = g.chance(0.6) ? 4 : 6;
    return {
      reason: `sys${i}`,
      direction: g.pick(['ingress', 'egress'] as const),
      peers: g.chance(0.3) ? 'any' : [formatNet(family, randomAddress(g, family))],
      l4: Array.from({ length: g.int(1, 2) }, () => randomL4(g)),
    };
  });
  return { policies, system };
}

/** Addresses at and around every prefix the policies mention, and some at random. */
function samplePeers(g: Gen, policies: HostPolicy[], system: SystemAllow[]): string[] {
  const nets: string[] = [
    ...RANDOM_FACTS.hostAddresses,
    ...RANDOM_FACTS.remoteNodeAddresses,
    ...RANDOM_FACTS.clusterCIDRs,
    ...RANDOM_FACTS.apiServerAddresses,
    '10.1.2.10',
    '10.1.2.20',
  ];
  for (const p of policies)
    for (const section of [p.ingress, p.ingressDeny, p.egress, p.egressDeny])
      for (const r of section)
        if (r.peers !== 'any')
          for (const peer of r.peers) if (peer.kind === 'cidr') nets.push(peer.cidr, ...peer.except);
  for (const s of system) if (s.peers !== 'any') nets.push(...s.peers);
  const out = new Set<string>();
  for (const text of nets) {
    const n = parseNet(text);
    const bits = n.family === 4 ? 32 : 128;
    const max = (1n << BigInt(bits)) - 1n;
    const last = n.value | ((1n << BigInt(bits - n.len)) - 1n);
    for (const v of [n.value, last, n.value - 1n, last + 1n, n.value | (g.bits(bits) & (last - n.value))])
      if (v >= 0n && v <= max) out.add(formatNet(n.family, v));
  }
  for (let i = 0; i < 10; i++) {
    const family = g.chance(0.6) ? 4 : 6;
    out.add(formatNet(family, randomAddress(g, family)));
  }
  out.add('0.0.0.0');
  out.add('255.255.255.255');
  out.add('::');
  out.add('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  return [...out];
}

function samplePorts(g: Gen, policies: HostPolicy[], system: SystemAllow[]): number[] {
  const out = new Set(INTERESTING_PORTS);
  const l4s = [
    ...policies.flatMap((p) => [p.ingress, p.ingressDeny, p.egress, p.egressDeny].flat()).map((r) => r.l4),
    ...system.map((s) => s.l4),
  ];
  for (const l4 of l4s)
    if (l4 !== 'any')
      for (const m of l4)
        if (m.kind === 'ports') for (const v of [m.port - 1, m.port, m.endPort, m.endPort + 1]) out.add(v);
  for (let i = 0; i < 4; i++) out.add(g.int(0, 65535));
  return [...out].filter((p) => p >= 0 && p <= 65535);
}

function randomPacket(g: Gen, peers: string[], portList: number[]): Packet {
  const dir = g.pick(['ingress', 'egress'] as const);
  const peer = g.pick(peers);
  const p = g.pick([P.TCP, P.TCP, P.UDP, P.UDP, P.SCTP, P.ICMP, P.ICMPv6, 112, 47, 50, 0, 255]);
  let port: number;
  if (p === P.ICMP || p === P.ICMPv6)
    port = icmpPort(g.pick([0, 1, 2, 3, 8, 11, 128, 129, 255]), g.pick([0, 1, 3, 128, 255]));
  else if (p === P.TCP || p === P.UDP || p === P.SCTP) port = g.pick(portList);
  else port = g.chance(0.5) ? 0 : g.int(0, 65535);
  return pkt(dir, peer, p, port);
}

describe('randomized: compiled maps agree with the naive semantics', () => {
  it('300 random rule sets, 300 packets each', () => {
    const g = new Gen(0x5eed_f00d);
    let packets = 0;
    const seen = new Set<string>();
    for (let round = 0; round < 300; round++) {
      const { policies, system } = randomPolicies(g, round);
      const compiled = compilePolicies(policies, RANDOM_FACTS, system);
      expectWellFormed(compiled);
      const peers = samplePeers(g, policies, system);
      const portList = samplePorts(g, policies, system);
      for (let i = 0; i < 300; i++) {
        const packet = randomPacket(g, peers, portList);
        const { verdict, rule: index, description } = evaluate(compiled, packet);
        const expected = naive(policies, RANDOM_FACTS, system, packet);
        if (verdict !== expected.verdict || description !== expected.description) {
          // The whole case, to reproduce it.
          expect({ round, packet, verdict, description, policies, system }).toEqual({
            round,
            packet,
            ...expected,
            policies,
            system,
          });
        }
        seen.add(`${VERDICT_NAME[verdict]}:${compiled.rules[index]!.section}`);
        packets++;
      }
    }
    expect(packets).toBe(90_000);
    // The generator exercised every kind of outcome.
    expect([...seen].sort()).toEqual(
      expect.arrayContaining([
        'allow:default',
        'audit:default',
        'deny:default',
        'allow:ingress',
        'allow:egress',
        'deny:ingressDeny',
        'deny:egressDeny',
        'audit:ingressDeny',
        'audit:egressDeny',
        'allow-system:system',
      ]),
    );
  });
});
