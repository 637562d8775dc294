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
import type { Entity, HostPolicy, L4Match, Peer, Rule } from './model.js';
import {
  comparePrefixes,
  contains,
  formatPrefix,
  isV4Mapped,
  type Prefix,
  parsePrefix,
  prefixKey,
  ROOT,
} from './prefix.js';
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

interface RuleSpec {
  index: number;
  direction: number;
  rank: number;
  verdict: VerdictCode;
  intervals: [number, number][];
}

interface SelectorEntry {
  selector: number;
  cidr: Prefix;
  excepts: Prefix[];
}

/** The (protocol, port) space: proto in the top 8 bits, port (or ICMP type<<8|code) below. */
function l4Intervals(l4: L4Match[] | 'any'): [number, number][] {
  if (l4 === 'any') return [[0, SPACE_MAX]];
  return l4.map((m): [number, number] => {
    switch (m.kind) {
      case 'ports':
        return [(PROTO[m.protocol] << 16) | m.port, (PROTO[m.protocol] << 16) | m.endPort];
      case 'protocol':
        return [m.protocol << 16, (m.protocol << 16) | 0xffff];
      case 'icmp': {
        const proto = m.family === 'IPv4' ? PROTO.ICMP : PROTO.ICMPv6;
        return [(proto << 16) | (m.type << 8), (proto << 16) | (m.type << 8) | 0xff];
      }
      default:
        throw new TypeError(`unknown L4 match ${JSON.stringify(m)}`);
    }
  });
}

/** Splits [lo, hi] into aligned power-of-two blocks: [start, prefix length in 24 bits]. */
function rangeToPrefixes(lo: number, hi: number): [number, number][] {
  const out: [number, number][] = [];
  while (lo <= hi) {
    let size = lo === 0 ? 1 << 24 : lo & -lo;
    while (size > hi - lo + 1) size >>>= 1;
    out.push([lo, 24 - Math.log2(size)]);
    lo += size;
  }
  return out;
}

/** Deny beats allow, system allow beats deny; ties go to the earlier rule. */
function flatten(rules: RuleSpec[]): { lo: number; hi: number; rule: RuleSpec }[] {
  const bounds = new Set<number>();
  for (const r of rules) for (const [lo, hi] of r.intervals) bounds.add(lo).add(hi + 1);
  const points = [...bounds].sort((a, b) => a - b);
  const out: { lo: number; hi: number; rule: RuleSpec }[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const lo = points[i]!;
    const hi = points[i + 1]! - 1;
    let best: RuleSpec | undefined;
    for (const r of rules) {
      if (!r.intervals.some(([a, b]) => a <= lo && hi <= b)) continue;
      if (!best || r.rank > best.rank || (r.rank === best.rank && r.index < best.index)) best = r;
    }
    if (!best) continue;
    const last = out[out.length - 1];
    if (last && last.rule === best && last.hi + 1 === lo) last.hi = hi;
    else out.push({ lo, hi, rule: best });
  }
  return out;
}

class SelectorTable {
  readonly entries: SelectorEntry[] = [];
  private readonly byKey = new Map<string, number>();
  count = 0;

  /** Returns the selector id for these (cidr, excepts) entries, sharing identical selectors. */
  intern(entries: { cidr: Prefix; excepts: Prefix[] }[]): number {
    const key = entries
      .map((e) => `${prefixKey(e.cidr)}-${e.excepts.map(prefixKey).sort().join(',')}`)
      .sort()
      .join(';');
    const existing = this.byKey.get(key);
    if (existing !== undefined) return existing;
    const id = this.count++;
    this.byKey.set(key, id);
    for (const e of entries) this.entries.push({ selector: id, cidr: e.cidr, excepts: e.excepts });
    return id;
  }
}

const V4_SPACE = parsePrefix('::ffff:0:0/96');

function parseAll(addresses: string[]): Prefix[] {
  return addresses.map((a) => parsePrefix(a));
}

function peerEntries(peer: Peer, facts: NodeFacts, cluster: Prefix[]): { cidr: Prefix; excepts: Prefix[] }[] {
  const plain = (prefixes: Prefix[]) => prefixes.map((cidr) => ({ cidr, excepts: [] }));
  switch (peer.kind) {
    case 'cidr': {
      const cidr = parsePrefix(peer.cidr);
      const excepts = parseAll(peer.except);
      // IPv4 lives at ::ffff:0:0/96 of the shared space; an IPv6 CIDR that contains it
      // (::/0 … ::/80) must not match IPv4 peers.
      if (!isV4Mapped(cidr) && contains(cidr, V4_SPACE)) excepts.push(V4_SPACE);
      return [{ cidr, excepts }];
    }
    case 'endpoints':
      return plain(parseAll(facts.endpointAddresses?.(peer) ?? []));
    case 'entity':
      return entityEntries(peer.entity, facts, cluster);
  }
}

function entityEntries(
  entity: Entity,
  facts: NodeFacts,
  cluster: Prefix[],
): { cidr: Prefix; excepts: Prefix[] }[] {
  const plain = (prefixes: Prefix[]) => prefixes.map((cidr) => ({ cidr, excepts: [] }));
  switch (entity) {
    case 'all':
      return [{ cidr: ROOT, excepts: [] }];
    case 'world':
      return [{ cidr: ROOT, excepts: cluster }];
    case 'cluster':
      return plain(cluster);
    case 'host':
      return plain(parseAll(facts.hostAddresses));
    case 'remote-node':
      return plain(parseAll(facts.remoteNodeAddresses));
    case 'kube-apiserver':
      return plain(parseAll(facts.apiServerAddresses));
  }
}

/** Prefix → active selector entries, walking prefixes so that containers come first. */
function assignSets(table: SelectorTable): {
  identities: { prefix: Prefix; set: number }[];
  sets: number[][];
} {
  const marks = new Map<string, { prefix: Prefix; adds: number[]; removes: number[] }>();
  const mark = (prefix: Prefix) => {
    const key = prefixKey(prefix);
    const existing = marks.get(key);
    if (existing) return existing;
    const created = { prefix, adds: [] as number[], removes: [] as number[] };
    marks.set(key, created);
    return created;
  };
  mark(ROOT);
  table.entries.forEach((entry, id) => {
    mark(entry.cidr).adds.push(id);
    // An except outside its cidr cannot remove anything; the parser rejects those.
    for (const e of entry.excepts) if (contains(entry.cidr, e)) mark(e).removes.push(id);
  });

  const setIds = new Map<string, number>([['', 0]]);
  const sets: number[][] = [[]];
  const identities: { prefix: Prefix; set: number }[] = [];
  const stack: { prefix: Prefix; active: Set<number>; set: number }[] = [];
  for (const m of [...marks.values()].sort((a, b) => comparePrefixes(a.prefix, b.prefix))) {
    while (stack.length > 0 && !contains(stack[stack.length - 1]!.prefix, m.prefix)) stack.pop();
    const parent = stack[stack.length - 1];
    const active = new Set(parent?.active ?? []);
    for (const id of m.adds) active.add(id);
    for (const id of m.removes) active.delete(id);
    const selectors = [...new Set([...active].map((id) => table.entries[id]!.selector))].sort(
      (a, b) => a - b,
    );
    const key = selectors.join(',');
    let set = setIds.get(key);
    if (set === undefined) {
      set = sets.length;
      setIds.set(key, set);
      sets.push(selectors);
    }
    // A prefix whose set equals its container's adds nothing to the trie.
    if (!parent || parent.set !== set) identities.push({ prefix: m.prefix, set });
    stack.push({ prefix: m.prefix, active, set });
  }
  return { identities, sets };
}

export function compilePolicies(
  policies: readonly HostPolicy[],
  facts: NodeFacts,
  system: readonly SystemAllow[] = [],
): CompiledPolicy {
  const selected = policies.filter((p) => matchesLabels(p.nodeSelector, facts.labels));
  const cluster = parseAll([
    ...facts.hostAddresses,
    ...facts.remoteNodeAddresses,
    ...facts.clusterCIDRs,
    ...facts.apiServerAddresses,
  ]);
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
  const rulesBySelector = new Map<number, RuleSpec[]>();
  const addRule = (
    spec: Omit<RuleSpec, 'index'>,
    selector: number | undefined,
    info: Omit<CompiledRule, 'index'>,
  ) => {
    const index = rules.length;
    if (index >= RULES_MAX)
      throw new RangeError(`more than ${RULES_MAX - FIRST_RULE_INDEX} rules select node ${facts.nodeName}`);
    rules.push({ index, ...info });
    if (selector === undefined) return;
    const list = rulesBySelector.get(selector) ?? [];
    list.push({ index, ...spec });
    rulesBySelector.set(selector, list);
  };

  for (const policy of selected) {
    const sections: [
      keyof Pick<HostPolicy, 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny'>,
      number,
      boolean,
    ][] = [
      ['ingress', Direction.ingress, false],
      ['ingressDeny', Direction.ingress, true],
      ['egress', Direction.egress, false],
      ['egressDeny', Direction.egress, true],
    ];
    for (const [section, direction, deny] of sections) {
      policy[section].forEach((rule: Rule) => {
        const verdict = deny ? (policy.audit ? Verdict.audit : Verdict.deny) : Verdict.allow;
        const peers =
          rule.peers === 'any'
            ? [{ cidr: ROOT, excepts: [] }]
            : rule.peers.flatMap((p) => peerEntries(p, facts, cluster));
        // A rule whose peers resolve to nothing matches nothing (but its policy still turns on default deny).
        const selector = peers.length > 0 ? table.intern(peers) : undefined;
        addRule({ direction, rank: RANK[verdict], verdict, intervals: l4Intervals(rule.l4) }, selector, {
          policy: policy.name,
          section,
          position: rule.index,
          verdict,
          description: `${policy.name} ${section}[${rule.index}]`,
        });
      });
    }
  }
  for (const allow of system) {
    const peers =
      allow.peers === 'any'
        ? [{ cidr: ROOT, excepts: [] }]
        : parseAll(allow.peers).map((cidr) => ({ cidr, excepts: [] }));
    const direction = Direction[allow.direction];
    addRule(
      {
        direction,
        rank: RANK[Verdict.allowSystem],
        verdict: Verdict.allowSystem,
        intervals: l4Intervals(allow.l4),
      },
      table.intern(peers),
      {
        policy: 'nodewarden',
        section: 'system',
        position: -1,
        verdict: Verdict.allowSystem,
        description: `system: ${allow.reason}`,
      },
    );
  }

  const { identities, sets } = assignSets(table);
  const entries: PolicyEntry[] = [];
  const flatCache = new Map<string, { lo: number; hi: number; rule: RuleSpec }[]>();
  sets.forEach((selectors, set) => {
    for (const direction of [Direction.ingress, Direction.egress]) {
      const specs = selectors
        .flatMap((s) => rulesBySelector.get(s) ?? [])
        .filter((r) => r.direction === direction);
      if (specs.length === 0) continue;
      const cacheKey = specs
        .map((r) => r.index)
        .sort((a, b) => a - b)
        .join(',');
      const flat = flatCache.get(cacheKey) ?? flatten(specs);
      flatCache.set(cacheKey, flat);
      for (const { lo, hi, rule } of flat) {
        for (const [start, bits] of rangeToPrefixes(lo, hi)) {
          entries.push({
            set,
            direction,
            prefixlen: POLICY_PREFIX_L3 + bits,
            proto: start >>> 16,
            port: start & 0xffff,
            verdict: rule.verdict,
            rule: rule.index,
          });
        }
      }
    }
  });

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

/** For messages and trace output. */
export function describePrefix(p: Prefix): string {
  return formatPrefix(p);
}
