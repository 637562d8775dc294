/**
 * The host firewall against the issue's targets, and against nftables and
 * iptables measured in the same run:
 *
 * 1. per-packet cost of nw_fw_ingress/nw_fw_egress with BPF_PROG_TEST_RUN
 *    (kernel ns per run, repeat=1e6, median of 3) at 10, 1k, 10k and 100k CIDRs, for each
 *    lookup path of a new flow: the identity hash's first probe (/32, /128) or second (/24, /64),
 *    and the policy hash (sets with more entries than fit inline in the identity);
 * 2. compilePolicies and FirewallMaps.apply time at 10k and 100k CIDRs;
 * 3. end to end over one veth between two lab namespaces at 10k CIDRs:
 *    unfiltered, nodewarden (tcx), an nftables set, iptables-nft and
 *    iptables-legacy (linear), with and without a conntrack shortcut;
 * 4. a summary, also written to bench/results/firewall-latest.json.
 *
 * Every address, route, program and ruleset lives in lab namespaces this
 * process creates; pins live on a private bpffs. Run as root:
 * `npm run bench:firewall` (about 3 minutes on 2 cores; it stops by itself
 * after 9.5 minutes whatever happens). `--only=testrun,compile,e2e` picks sections.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  type CtKey,
  type CtValue,
  ctKey,
  ctValue,
  Family,
  FIREWALL_MAPS,
  FIRST_RULE_INDEX,
  IDENT_PROBES,
  INLINE_HASH,
  INLINE_HASH_COUNT,
  INLINE_RULES,
  identKey,
  identValue,
  policyKey,
  policyValue,
  RULES_MAX,
  ruleStats,
} from '../bpf/codecs/firewall.js';
import {
  attachTc,
  BpfMap,
  BpfObject,
  type BpfProgram,
  detachPinnedLink,
  inNetns,
  MapType,
  testRun,
  u32,
} from '../bpf/index.js';
import { bpfObjectPath } from '../bpf/paths.js';
import { FirewallMaps, identityOf, type LiveMaps } from '../daemon/firewall/actuator.js';
import { type CompiledPolicy, compilePolicies, type NodeFacts } from '../host-policies/compile.js';
import type { HostPolicy, Rule } from '../host-policies/model.js';
import { parsePrefix, toBytes } from '../host-policies/prefix.js';
import { createLab, formatArgv, type Host, type Lab } from '../test/lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../test/support/bpffs.js';
import { machineFacts } from './report.js';

// ---------------------------------------------------------------------------------------------
// Parameters

const REPEAT = 1_000_000;
const MEDIAN_OF = 3;
/** repeat=1 runs for the "allowed new flow" row, whose conntrack entry is deleted before each run. */
const SINGLE_RUNS = 3000;
const COUNTS = [10, 1_000, 10_000, 100_000] as const;
const COMPILE_COUNTS = [10_000, 100_000] as const;
const COMPILE_RUNS = 4; // the first is cold (JIT), the median of the rest is "warm"
const E2E_CIDRS = 10_000;
const IPERF_SECONDS = 5;
const IPERF_RUNS = 3;
const RR_COUNT = 3000;
const CONNECT_COUNT = 300;
const RULES_PER_POLICY = 100;
/** The daemon's default (policies.eventsPerSecond). */
const EVENTS_PER_SEC = 100;
const DEADLINE_MS = 9.5 * 60_000;

const TARGET = {
  newFlowNs: 150,
  establishedNs: 100,
  growth: 2,
  compile10kMs: 200,
  compile100kMs: 1000,
} as const;

/** The node (packet destination) and the sources of the rules near the end of the list. */
const NODE = { v4: '192.168.77.1', v6: 'fd77::1' } as const;
const CLIENT = '192.168.77.2';
const ALLOWED_PORT = 443;
const DENIED_PORT = 444;
const IPERF_PORT = 5201;
const ECHO_PORT = 7777;
const UNLISTED_PORT = 7778;
/** Ports of the generated rules: a realistic mix that avoids the ports above. */
const PORTS = [22, 80, 443, 3306, 5432, 6379, 8080, 8443, 9090, 9100, 10250, 2379] as const;
/**
 * The ports of the M sources' rules (policy-hash path): 6 separate ports, more than fit inline
 * (INLINE_RULES), around DENIED_PORT.
 */
const MANY_PORTS = [439, 441, 443, 445, 447, 449] as const;
/** Section 1's rule sets: one generated rule in this many allows MULTI_PORT_COUNT ports of PORTS. */
const MULTI_PORT_EVERY = 10;
const MULTI_PORT_COUNT = 6;

const TC_ACT_UNSPEC = 0xffffffff; // -1 as the u32 retval
const TC_ACT_SHOT = 2;
const TCP_FLAG = { SYN: 0x02, ACK: 0x10, PSH: 0x08 } as const;
const CT_ESTABLISHED = 2;

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results', 'firewall-latest.json');

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fmt(value: number | undefined, digits = 0): string {
  return value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits);
}

function kLabel(n: number): string {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}

function table(header: string[], rows: string[][], rightAlign: (col: number) => boolean): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAlign(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const passMiss = (ok: boolean) => (ok ? 'PASS' : 'MISS');

// ---------------------------------------------------------------------------------------------
// Rule sets

interface BenchRule {
  cidrs: string[];
  /** TCP ports the rule allows; never adjacent, so each stays its own policy entry. */
  ports: number[];
  policy: string;
  position: number;
}

/**
 * The sources of the test-run rows, one pair per lookup path that a new flow's verdict can take
 * after the conntrack miss (bpf/lib/identity.h, bpf/firewall.c):
 * S = a /32 or /128 rule allowing one port: identity hash (nw_fw_ident_hash) hit at the first
 *     probe (/32 or /128, the longest length in use), 1 inline rule;
 * P = an address inside a /24 or /64 rule allowing one port: the first probe misses, the second
 *     (/24 or /64) hits, 1 inline rule. (With more than IDENT_PROBES prefix lengths per family,
 *     the shorter ones would be in the identity LPM trie, nw_fw_ident: no row here.);
 * M = a /32 or /128 rule allowing MANY_PORTS: first probe hit, but the set has more ingress
 *     entries than fit inline, all single ports (one prefix length), so the identity says INLINE_HASH
 *     and one probe of the policy hash (nw_fw_policy_hash) decides. (Sets whose entries use more than
 *     INLINE_RULES prefix lengths go to the policy LPM trie, nw_fw_policy: no row here.)
 */
type SourceName = 'S4' | 'S6' | 'P4' | 'P6' | 'M4' | 'M6';
type Path = 'exact' | 'prefix' | 'hash';

interface Target extends BenchRule {
  name: SourceName;
  path: Path;
  /** The address the rows send from. */
  src: string;
}

interface RuleSet {
  cidrs: number;
  rules: BenchRule[];
  policies: HostPolicy[];
  cidrsPerRule: number;
  /** Generated rules that allow MULTI_PORT_COUNT ports instead of one (RuleSetOptions.multiPort). */
  multiPortRules: number;
  /** Rules of interest, all near the end of the list, after the generated ones. */
  targets: Partial<Record<SourceName, Target>>;
  clientIperf: BenchRule;
  clientEcho: BenchRule;
}

interface RuleSetOptions {
  /** Generate IPv6 CIDRs too (and the S6, P6, M6 targets). */
  ipv6: boolean;
  /** One rule per CIDR even beyond the compiler's rule limit (to record its refusal). */
  oneCidrPerRule?: boolean;
  /**
   * One generated rule in MULTI_PORT_EVERY allows MULTI_PORT_COUNT ports: its set overflows into
   * the policy hash, so that hash grows with the rule count as it would in a real rule set.
   */
  multiPort?: boolean;
}

/** The k-th generated CIDR. With IPv6: 20 % /24, 60 % /32, 10 % /64, 10 % /128; without: 25 % /24, 75 % /32. */
function genericCidr(k: number, counters: number[], ipv6: boolean): string {
  return cidrOfKind(ipv6 ? [0, 0, 1, 1, 1, 1, 1, 1, 2, 3][k % 10]! : k % 4 === 0 ? 0 : 1, counters);
}

function cidrOfKind(kind: number, counters: number[]): string {
  const c = counters[kind]!++;
  const hex = (v: number) => v.toString(16);
  switch (kind) {
    case 0:
      return `10.${128 + (c >> 8)}.${c & 255}.0/24`; // 10.128.0.0/9: room for 32768
    case 1:
      return `172.${16 + (c >> 16)}.${(c >> 8) & 255}.${c & 255}/32`;
    case 2:
      return `fd00:64:${hex(c >> 16)}:${hex(c & 0xffff)}::/64`;
    default:
      return `fd00:128::${hex(c >> 16)}:${hex(c & 0xffff)}/128`;
  }
}

/** The address a row sends from: a single-address rule's own address, else host 77 of the prefix. */
function hostIn(cidr: string): string {
  const [addr, len] = cidr.split('/') as [string, string];
  if (len === '32' || len === '128') return addr;
  if (len === '24' && addr.endsWith('.0')) return `${addr.slice(0, -1)}77`;
  if (len === '64' && addr.endsWith('::')) return `${addr}77`;
  throw new Error(`hostIn: unexpected generated CIDR ${cidr}`);
}

const TARGET_TEMPLATES: { name: SourceName; kind: number; ports: readonly number[]; path: Path }[] = [
  { name: 'S4', kind: 1, ports: [ALLOWED_PORT], path: 'exact' },
  { name: 'S6', kind: 3, ports: [ALLOWED_PORT], path: 'exact' },
  { name: 'P4', kind: 0, ports: [ALLOWED_PORT], path: 'prefix' },
  { name: 'P6', kind: 2, ports: [ALLOWED_PORT], path: 'prefix' },
  { name: 'M4', kind: 1, ports: MANY_PORTS, path: 'hash' },
  { name: 'M6', kind: 3, ports: MANY_PORTS, path: 'hash' },
];

/**
 * `total` distinct source CIDRs in policies of 100 rules, each rule allowing one TCP port (or, with
 * `multiPort`, one rule in MULTI_PORT_EVERY allowing MULTI_PORT_COUNT ports). The rules the benchmark
 * aims at come last: the test-run targets (their CIDRs drawn after the generated ones, so they
 * continue the densest blocks), then the client's two rules of section 3. While the compiler's
 * rule limit allows, every CIDR is its own rule; beyond it, neighbouring CIDRs share a rule.
 */
function generateRuleSet(total: number, options: RuleSetOptions): RuleSet {
  const { ipv6 } = options;
  const templates = TARGET_TEMPLATES.filter((t) => ipv6 || t.name.endsWith('4'));
  const clientRules = [
    { cidrs: [`${CLIENT}/32`], ports: [IPERF_PORT] },
    { cidrs: [`${CLIENT}/32`], ports: [ECHO_PORT] },
  ];
  const targetCount = templates.length + clientRules.length;
  const generic = total - targetCount;
  const maxRules = RULES_MAX - FIRST_RULE_INDEX;
  const perRule =
    options.oneCidrPerRule || total <= maxRules ? 1 : Math.ceil(generic / (maxRules - targetCount));
  const counters = [0, 0, 0, 0];
  const plain: { cidrs: string[]; ports: number[] }[] = [];
  let multiPortRules = 0;
  for (let k = 0, r = 0; k < generic; r++) {
    const cidrs: string[] = [];
    for (let j = 0; j < perRule && k < generic; j++, k++) cidrs.push(genericCidr(k, counters, ipv6));
    // One rule per block of MULTI_PORT_EVERY, at a position that rotates, so every CIDR kind gets some.
    const multi =
      options.multiPort === true &&
      r % MULTI_PORT_EVERY === Math.floor(r / MULTI_PORT_EVERY) % MULTI_PORT_EVERY;
    if (multi) multiPortRules++;
    const count = multi ? MULTI_PORT_COUNT : 1;
    plain.push({ cidrs, ports: Array.from({ length: count }, (_, j) => PORTS[(r + j) % PORTS.length]!) });
  }
  for (const t of templates) plain.push({ cidrs: [cidrOfKind(t.kind, counters)], ports: [...t.ports] });
  plain.push(...clientRules);

  const rules: BenchRule[] = plain.map((r, i) => ({
    ...r,
    policy: `bench-${String(Math.floor(i / RULES_PER_POLICY)).padStart(4, '0')}`,
    position: i % RULES_PER_POLICY,
  }));
  const policies: HostPolicy[] = [];
  for (let i = 0; i < rules.length; i += RULES_PER_POLICY) {
    const chunk = rules.slice(i, i + RULES_PER_POLICY);
    policies.push({
      name: chunk[0]!.policy,
      source: 'bench/firewall.ts',
      audit: false,
      nodeSelector: { matchLabels: {}, matchExpressions: [] },
      ingress: chunk.map(
        (r): Rule => ({
          index: r.position,
          peers: r.cidrs.map((cidr) => ({ kind: 'cidr', cidr, except: [] })),
          l4: r.ports.map((port) => ({ kind: 'ports', protocol: 'TCP', port, endPort: port })),
        }),
      ),
      ingressDeny: [],
      egress: [],
      egressDeny: [],
      defaultDeny: { ingress: true, egress: false },
      warnings: [],
    });
  }
  const n = rules.length;
  const first = n - targetCount;
  const targets: RuleSet['targets'] = {};
  templates.forEach((t, i) => {
    const rule = rules[first + i]!;
    targets[t.name] = { ...rule, name: t.name, path: t.path, src: hostIn(rule.cidrs[0]!) };
  });
  return {
    cidrs: total,
    rules,
    policies,
    cidrsPerRule: perRule,
    multiPortRules,
    targets,
    clientIperf: rules[n - 2]!,
    clientEcho: rules[n - 1]!,
  };
}

function nodeFacts(hostAddresses: string[]): NodeFacts {
  return {
    nodeName: 'bench-node',
    labels: {},
    hostAddresses,
    remoteNodeAddresses: [],
    clusterCIDRs: [],
    apiServerAddresses: [],
  };
}

/** The compiled rule index of a generated rule (what conntrack and the rule counters record). */
function ruleIndex(compiled: CompiledPolicy, rule: BenchRule): number {
  const found = compiled.rules.find(
    (r) => r.policy === rule.policy && r.section === 'ingress' && r.position === rule.position,
  );
  if (!found) throw new Error(`no compiled rule for ${rule.policy} ingress[${rule.position}]`);
  return found.index;
}

function ruleSetLabel(set: RuleSet): string {
  const multi =
    set.multiPortRules > 0 ? `, ${set.multiPortRules} of them with ${MULTI_PORT_COUNT} ports` : '';
  return set.cidrsPerRule === 1
    ? `${set.cidrs} CIDRs, 1 per rule${multi}`
    : `${set.cidrs} CIDRs in ${set.rules.length} rules (${set.cidrsPerRule} per rule)${multi}`;
}

// ---------------------------------------------------------------------------------------------
// Packets

interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

const reverse = (t: Tuple): Tuple => ({ src: t.dst, dst: t.src, sport: t.dport, dport: t.sport });

function addrBytes(addr: string): Uint8Array {
  return isIPv4(addr) ? Uint8Array.from(addr.split('.').map(Number)) : toBytes(parsePrefix(addr));
}

function ipv4Checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4 or IPv6 + a 20-byte TCP header; the TCP checksum stays zero (the program ignores it). */
function tcpPacket(t: Tuple, flags: number): Buffer {
  const v4 = isIPv4(t.src);
  const l3 = v4 ? 20 : 40;
  const buf = Buffer.alloc(14 + l3 + 20);
  Buffer.from([0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02]).copy(buf, 0);
  buf.writeUInt16BE(v4 ? 0x0800 : 0x86dd, 12);
  let off = 14;
  if (v4) {
    buf[off] = 0x45;
    buf.writeUInt16BE(40, off + 2);
    buf.writeUInt16BE(0x4000, off + 6); // DF
    buf[off + 8] = 64;
    buf[off + 9] = 6;
    buf.set(addrBytes(t.src), off + 12);
    buf.set(addrBytes(t.dst), off + 16);
    buf.writeUInt16BE(ipv4Checksum(buf.subarray(off, off + 20)), off + 10);
  } else {
    buf.writeUInt32BE(0x60000000, off);
    buf.writeUInt16BE(20, off + 4);
    buf[off + 6] = 6;
    buf[off + 7] = 64;
    buf.set(addrBytes(t.src), off + 8);
    buf.set(addrBytes(t.dst), off + 24);
  }
  off += l3;
  buf.writeUInt16BE(t.sport, off);
  buf.writeUInt16BE(t.dport, off + 2);
  buf.writeUInt32BE(1000, off + 4);
  buf.writeUInt32BE(flags & TCP_FLAG.ACK ? 2000 : 0, off + 8);
  buf[off + 12] = 0x50;
  buf[off + 13] = flags;
  buf.writeUInt16BE(64240, off + 14);
  return buf;
}

function describe(t: Tuple, flags: string): string {
  const ep = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  return `TCP ${flags} ${ep(t.src, t.sport)} -> ${ep(t.dst, t.dport)}`;
}

// ---------------------------------------------------------------------------------------------
// 1. BPF_PROG_TEST_RUN

type CaseId =
  | 'v4-deny'
  | 'v4-new'
  | 'v4-syn-ct'
  | 'v4-est'
  | 'v4-est-1'
  | 'v4-pfx-deny'
  | 'v4-pfx-est'
  | 'v4-many-deny'
  | 'v6-deny'
  | 'v6-est'
  | 'v6-pfx-deny'
  | 'v6-many-deny';

/** What a row does: see runTestRunCases. */
type CaseKind = 'deny' | 'new-ct-insert' | 'syn-ct' | 'established' | 'established-1';

interface CaseSpec {
  id: CaseId;
  source: SourceName;
  kind: CaseKind;
  label: string;
  how: string;
  /** Which target this row is judged against. */
  target: 'new' | 'established' | 'info';
  /** Whether the 10 -> 100k growth target applies (repeat=1e6 rows). */
  growth: boolean;
}

const DENY_SPORT = 40000;
const NEW_SPORT = 40001;
const SYN_SPORT = 40002;
const EST_SPORT = 40003;
/** The SYN of the path check (verifyPaths), removed from conntrack again before the rows run. */
const CHECK_SPORT = 40004;

const dstOf = (source: SourceName) => (source.endsWith('4') ? NODE.v4 : NODE.v6);
const synTo = (source: SourceName, sport: number, dport: number, flags = 'SYN') =>
  describe({ src: source, dst: dstOf(source), sport, dport }, flags);

/** The lookups of a denied new flow after parsing and the conntrack miss, per path. */
const DENY_PATH: Record<Path, string> = {
  exact: `host-address hash; identity hash nw_fw_ident_hash hit at the first probe (/32 or /128); inline scan of the set's 1 rule (${ALLOWED_PORT}), no match`,
  prefix: `host-address hash; identity hash nw_fw_ident_hash: first probe (/32 or /128) misses, second (/24 or /64, the masked address; IPv4 as ::ffff:0:0/96 + n) hits; inline scan of the set's 1 rule (${ALLOWED_PORT}), no match`,
  hash: `host-address hash; identity hash hit at the first probe, inline_count = INLINE_HASH | 1 (the set has ${MANY_PORTS.length} ingress entries > ${INLINE_RULES}, all of one prefix length: single ports); one policy hash nw_fw_policy_hash probe of (set, ingress, TCP, ${DENIED_PORT}) at /64, a miss`,
};
const DENY_TAIL = `then default deny (rule counter, rate-limited event: ${EVENTS_PER_SEC}/s). Never enters conntrack (checked), so every run is a new flow. Expect TC_ACT_SHOT.`;

function denyCase(id: CaseId, source: SourceName, path: Path, label: string): CaseSpec {
  return {
    id,
    source,
    kind: 'deny',
    label,
    how: `testRun(nw_fw_ingress, ${synTo(source, DENY_SPORT, DENIED_PORT)}, repeat=1e6) x${MEDIAN_OF}, median. Port ${DENIED_PORT} is allowed by no rule. Parse, conntrack miss, ${DENY_PATH[path]}; ${DENY_TAIL}`,
    target: 'new',
    growth: true,
  };
}

function establishedCase(id: CaseId, source: SourceName, label: string, note = ''): CaseSpec {
  return {
    id,
    source,
    kind: 'established',
    label,
    how: `SYN once through nw_fw_ingress (allowed; the conntrack entry must name ${source}'s rule), SYN-ACK once through nw_fw_egress (the entry becomes ESTABLISHED, checked), then testRun(nw_fw_ingress, ${synTo(source, EST_SPORT, ALLOWED_PORT, 'ACK')}, repeat=1e6) x${MEDIAN_OF}, median. Expect TC_ACT_UNSPEC.${note}`,
    target: 'established',
    growth: true,
  };
}

/** The rows, in table order (the letters follow it). */
const CASES: CaseSpec[] = [
  denyCase('v4-deny', 'S4', 'exact', 'IPv4 /32 rule (ident hash, 1 probe): new flow, denied'),
  {
    id: 'v4-new',
    source: 'S4',
    kind: 'new-ct-insert',
    label: 'IPv4 /32 rule: new flow allowed, CT insert (repeat=1)',
    how: `testRun(nw_fw_ingress, ${synTo('S4', NEW_SPORT, ALLOWED_PORT)}, repeat=1) x${SINGLE_RUNS}, median; the conntrack entry is deleted from user space before every run, so each run is a genuinely new allowed flow: the full evaluation (identity hash, inline rule matches) plus the conntrack insert. repeat=1 includes the kernel's timer reads and cold caches: compare with row "IPv4 /32 rule: established (repeat=1)". Expect TC_ACT_UNSPEC and a CT entry naming the rule.`,
    target: 'info',
    growth: false,
  },
  {
    id: 'v4-syn-ct',
    source: 'S4',
    kind: 'syn-ct',
    label: 'IPv4 /32 rule: allowed SYN, CT entry from 1st run',
    how: `testRun(nw_fw_ingress, ${synTo('S4', SYN_SPORT, ALLOWED_PORT)}, repeat=1e6) x${MEDIAN_OF}, median; conntrack has no entry before the first of the 3e6 runs, which evaluates policy and inserts one; every later run finds it (SYN state). So this is a conntrack hit for a SYN, not a policy evaluation.`,
    target: 'info',
    growth: true,
  },
  establishedCase('v4-est', 'S4', 'IPv4 /32 rule: established (ACK, CT hit)'),
  {
    id: 'v4-est-1',
    source: 'S4',
    kind: 'established-1',
    label: 'IPv4 /32 rule: established (repeat=1)',
    how: `the ACK of row "IPv4 /32 rule: established (ACK, CT hit)" with repeat=1 x${SINGLE_RUNS}, median: the baseline of the repeat=1 method (timer reads, cold caches) for the "CT insert" row.`,
    target: 'info',
    growth: false,
  },
  denyCase('v4-pfx-deny', 'P4', 'prefix', 'IPv4 /24 rule (ident hash, 2 probes): new flow, denied'),
  establishedCase(
    'v4-pfx-est',
    'P4',
    'IPv4 /24 rule: established (ACK, CT hit)',
    ' Conntrack is looked up before any identity map, so this row takes the same path as the /32 established row; it shows that the source does not matter once a flow is established.',
  ),
  denyCase('v4-many-deny', 'M4', 'hash', 'IPv4 /32 rule, 6 ports (policy hash): new flow, denied'),
  denyCase('v6-deny', 'S6', 'exact', 'IPv6 /128 rule (ident hash, 1 probe): new flow, denied'),
  establishedCase('v6-est', 'S6', 'IPv6 /128 rule: established (ACK, CT hit)'),
  denyCase('v6-pfx-deny', 'P6', 'prefix', 'IPv6 /64 rule (ident hash, 2 probes): new flow, denied'),
  denyCase('v6-many-deny', 'M6', 'hash', 'IPv6 /128 rule, 6 ports (policy hash): new flow, denied'),
];

/** One cell of the table: the median, with the runs (repeat=1e6) or a summary of the samples (repeat=1). */
interface Cell {
  medianNs: number;
  runsNs?: number[];
  samples?: { n: number; min: number; p10: number; p90: number; max: number };
}

interface TestRunRow {
  id: CaseId;
  byCount: Record<number, Cell>;
}

function expectRetval(got: number, want: number, what: string): void {
  if (got !== want) throw new Error(`${what}: program returned ${got}, expected ${want}`);
}

function timed(program: BpfProgram, packet: Buffer, want: number, what: string): number[] {
  const runs: number[] = [];
  for (let i = 0; i < MEDIAN_OF; i++) {
    const result = testRun(program, { packet, repeat: REPEAT });
    expectRetval(result.retval, want, what);
    runs.push(result.durationNs);
  }
  return runs;
}

function mapped(addr: string): string {
  return Buffer.from(toBytes(parsePrefix(addr))).toString('hex');
}

/** The conntrack entry of a tuple, found by content (the key's normalization is the datapath's business). */
function findCt(ct: BpfMap<CtKey, CtValue>, t: Tuple): CtKey | undefined {
  const ends = new Set([`${mapped(t.src)}:${t.sport}`, `${mapped(t.dst)}:${t.dport}`]);
  for (const key of ct.keys()) {
    const a = `${Buffer.from(key.aAddr).toString('hex')}:${key.aPort}`;
    const b = `${Buffer.from(key.bAddr).toString('hex')}:${key.bPort}`;
    if (key.proto === 6 && a !== b && ends.has(a) && ends.has(b)) return key;
  }
  return undefined;
}

/** The identity hash's probe lengths for an address's family, as CIDR lengths ("/32, /24"). */
function probeList(live: LiveMaps, addr: Uint8Array): string {
  const v4 = addr[10] === 0xff && addr[11] === 0xff && addr.slice(0, 10).every((b) => b === 0);
  const family = v4 ? Family.v4 : Family.v6;
  const lens = Array.from(
    live.lengths.len.slice(family * IDENT_PROBES, family * IDENT_PROBES + live.lengths.count[family]!),
  );
  // IPv4 lengths count from ::ffff:0:0/96; a shorter prefix (::/0) holds IPv6 addresses too.
  return `${lens.map((l) => (v4 && l >= 96 ? `/${l - 96}` : `::/${l}`)).join(', ')}${live.lengths.trie[family] ? ' + trie' : ''}`;
}

/** Entries of the live generation's lookup maps. */
interface MapPopulation {
  identityHash: number;
  identityTrie: number;
  policyHash: number;
  policyTrie: number;
}

interface PathCheck {
  population: MapPopulation;
  /** Per source: which lookups the live maps give its address, in words. */
  paths: Partial<Record<SourceName, string>>;
}

/**
 * Proves that each target source takes the lookup path its rows claim, on the live maps (the same
 * lookups as bpf/lib/identity.h), and that a SYN to ALLOWED_PORT from it is allowed by its own rule
 * through that path. Also counts the entries of the four lookup maps.
 */
function verifyPaths(
  maps: FirewallMaps,
  object: BpfObject,
  compiled: CompiledPolicy,
  set: RuleSet,
): PathCheck {
  const live = maps.openLive();
  if (!live) throw new Error('verifyPaths: no live generation');
  const paths: PathCheck['paths'] = {};
  let population: MapPopulation;
  try {
    const identHash = new BpfMap(live.identHash, identKey, identValue);
    const trie = new BpfMap(live.ident, identKey, identValue);
    const policy = new BpfMap(live.policy, policyKey, policyValue);
    const policyHashMap = new BpfMap(live.policyHash, policyKey, policyValue);
    const ingressEntries = new Map<number, number>();
    let policyTrie = 0;
    for (const _ of policy.keys()) policyTrie++;
    let policyHash = 0;
    for (const key of policyHashMap.keys()) {
      policyHash++;
      if (key.direction === 0) ingressEntries.set(key.set, (ingressEntries.get(key.set) ?? 0) + 1);
    }
    let identityHash = 0;
    for (const _ of identHash.keys()) identityHash++;
    let identityTrie = 0;
    for (const _ of trie.keys()) identityTrie++;
    population = { identityHash, identityTrie, policyHash, policyTrie };

    for (const target of Object.values(set.targets)) {
      const addr = toBytes(parsePrefix(target.src));
      const found = identityOf(live, addr);
      if (!found) throw new Error(`${target.name} ${target.src}: in neither identity map`);
      const { value, probe } = found;
      const inline = value.inlineCount[0]!;
      const path: Path = inline > INLINE_RULES ? 'hash' : probe === 0 ? 'exact' : 'prefix';
      if (
        path !== target.path ||
        probe !== (path === 'prefix' ? 1 : 0) ||
        (path === 'hash' && inline !== (INLINE_HASH | 1))
      )
        throw new Error(`${target.name} ${target.src}: lookup path ${path}, expected ${target.path}`);
      const entries = ingressEntries.get(value.set) ?? 0;
      if (path === 'hash' ? entries !== target.ports.length : inline !== target.ports.length || entries !== 0)
        throw new Error(
          `${target.name}: set ${value.set} has inline count ${inline} and ${entries} policy-hash entries`,
        );
      paths[target.name] =
        path === 'hash'
          ? `identity hash hit at probe 1, INLINE_HASH | ${inline & INLINE_HASH_COUNT} (probe /${40 + value.rules[0]![0]!.bits}), set ${value.set} has ${entries} ingress entries in the policy hash`
          : `identity hash hit at probe ${probe! + 1} of ${probeList(live, addr)}, set ${value.set}, ${inline} inline rule`;
    }
  } finally {
    live.close();
  }

  // A SYN to ALLOWED_PORT from every source must be allowed, and by its own rule.
  const ingress = object.program('nw_fw_ingress');
  const ct = new BpfMap(object.map(FIREWALL_MAPS.conntrack), ctKey, ctValue);
  for (const target of Object.values(set.targets)) {
    const t = { src: target.src, dst: dstOf(target.name), sport: CHECK_SPORT, dport: ALLOWED_PORT };
    expectRetval(
      testRun(ingress, { packet: tcpPacket(t, TCP_FLAG.SYN) }).retval,
      TC_ACT_UNSPEC,
      `${target.name} path check`,
    );
    const key = findCt(ct, t);
    const rule = key && ct.lookup(key)?.rule;
    if (!key || rule !== ruleIndex(compiled, target))
      throw new Error(
        `${target.name} path check: allowed by rule ${rule}, expected ${ruleIndex(compiled, target)}`,
      );
    ct.delete(key);
  }
  return { population, paths };
}

function runTestRunCases(object: BpfObject, compiled: CompiledPolicy, set: RuleSet): Record<CaseId, Cell> {
  const ingress = object.program('nw_fw_ingress');
  const egress = object.program('nw_fw_egress');
  const ct = new BpfMap(object.map(FIREWALL_MAPS.conntrack), ctKey, ctValue);
  const out = {} as Record<CaseId, Cell>;
  const put = (id: CaseId, runsNs: number[]) => {
    if (runsNs.length <= MEDIAN_OF) {
      out[id] = { medianNs: median(runsNs), runsNs };
      return;
    }
    const sorted = [...runsNs].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    out[id] = {
      medianNs: median(runsNs),
      samples: {
        n: sorted.length,
        min: sorted[0]!,
        p10: q(0.1),
        p90: q(0.9),
        max: sorted[sorted.length - 1]!,
      },
    };
  };
  const target = (name: SourceName): Target => {
    const found = set.targets[name];
    if (!found) throw new Error(`rule set has no source ${name}`);
    return found;
  };
  const tuple = (name: SourceName, sport: number, dport: number): Tuple => ({
    src: target(name).src,
    dst: dstOf(name),
    sport,
    dport,
  });
  /** The established ACK of each source, for its repeat=1 row. */
  const acks = new Map<SourceName, Buffer>();

  for (const spec of CASES) {
    const { id, source } = spec;
    const rule = ruleIndex(compiled, target(source));
    switch (spec.kind) {
      case 'deny': {
        const t = tuple(source, DENY_SPORT, DENIED_PORT);
        put(id, timed(ingress, tcpPacket(t, TCP_FLAG.SYN), TC_ACT_SHOT, id));
        if (findCt(ct, t)) throw new Error(`${id}: a denied flow entered conntrack`);
        break;
      }
      case 'new-ct-insert': {
        // Allowed new flow: repeat=1 with the conntrack entry removed before every run.
        const t = tuple(source, NEW_SPORT, ALLOWED_PORT);
        const syn = tcpPacket(t, TCP_FLAG.SYN);
        expectRetval(testRun(ingress, { packet: syn }).retval, TC_ACT_UNSPEC, id);
        const key = findCt(ct, t);
        const entry = key && ct.lookup(key);
        if (!key || entry?.rule !== rule)
          throw new Error(`${id}: conntrack entry ${JSON.stringify(entry?.rule)}, expected rule ${rule}`);
        const singles: number[] = [];
        for (let i = 0; i < SINGLE_RUNS; i++) {
          ct.delete(key);
          const result = testRun(ingress, { packet: syn });
          expectRetval(result.retval, TC_ACT_UNSPEC, id);
          singles.push(result.durationNs);
        }
        put(id, singles);
        break;
      }
      case 'syn-ct': {
        // Allowed SYN whose entry only exists after the first run.
        const t = tuple(source, SYN_SPORT, ALLOWED_PORT);
        if (findCt(ct, t)) throw new Error(`${id}: conntrack entry exists before the first run`);
        put(id, timed(ingress, tcpPacket(t, TCP_FLAG.SYN), TC_ACT_UNSPEC, id));
        break;
      }
      case 'established': {
        const t = tuple(source, EST_SPORT, ALLOWED_PORT);
        expectRetval(
          testRun(ingress, { packet: tcpPacket(t, TCP_FLAG.SYN) }).retval,
          TC_ACT_UNSPEC,
          `${id} SYN`,
        );
        const synAck = tcpPacket(reverse(t), TCP_FLAG.SYN | TCP_FLAG.ACK);
        expectRetval(testRun(egress, { packet: synAck }).retval, TC_ACT_UNSPEC, `${id} SYN-ACK`);
        const key = findCt(ct, t);
        const entry = key && ct.lookup(key);
        if (entry?.state !== CT_ESTABLISHED)
          throw new Error(`${id}: conntrack state ${entry?.state}, expected established`);
        if (entry.rule !== rule)
          throw new Error(`${id}: conntrack names rule ${entry.rule}, expected ${rule}`);
        const ack = tcpPacket(t, TCP_FLAG.ACK | TCP_FLAG.PSH);
        put(id, timed(ingress, ack, TC_ACT_UNSPEC, id));
        acks.set(source, ack);
        break;
      }
      case 'established-1': {
        const ack = acks.get(source);
        if (!ack) throw new Error(`${id}: no established row for ${source} before it`);
        const singles: number[] = [];
        for (let i = 0; i < SINGLE_RUNS; i++) {
          const result = testRun(ingress, { packet: ack });
          expectRetval(result.retval, TC_ACT_UNSPEC, id);
          singles.push(result.durationNs);
        }
        put(id, singles);
        break;
      }
    }
  }
  return out;
}

interface TestRunResults {
  rows: TestRunRow[];
  labels: Record<number, string>;
  sources: Record<number, Partial<Record<SourceName, string>>>;
  paths: Record<number, PathCheck>;
}

async function benchTestRun(bpffs: TempBpffs): Promise<TestRunResults> {
  const rows: TestRunRow[] = CASES.map((c) => ({ id: c.id, byCount: {} }));
  const labels: Record<number, string> = {};
  const sources: TestRunResults['sources'] = {};
  const paths: TestRunResults['paths'] = {};
  for (const n of COUNTS) {
    const set = generateRuleSet(n, { ipv6: true, multiPort: true });
    labels[n] = ruleSetLabel(set);
    sources[n] = Object.fromEntries(Object.values(set.targets).map((t) => [t.name, t.src]));
    const pinDir = join(bpffs.dir, `testrun-${n}`);
    const object = BpfObject.load(bpfObjectPath('firewall'), { pinDir });
    try {
      const maps = new FirewallMaps(object);
      maps.setHostAddresses([NODE.v4, NODE.v6]);
      maps.setEventsPerSecond(EVENTS_PER_SEC);
      const compiled = compilePolicies(set.policies, nodeFacts([NODE.v4, NODE.v6]));
      maps.apply(compiled);
      paths[n] = verifyPaths(maps, object, compiled, set);
      const p = paths[n].population;
      log(
        `test-run at ${labels[n]}: ${compiled.identities.length} identities, ${compiled.entries.length} policy entries; live maps: identity hash ${p.identityHash}, identity trie ${p.identityTrie}, policy hash ${p.policyHash}, policy trie ${p.policyTrie}`,
      );
      const results = runTestRunCases(object, compiled, set);
      for (const row of rows) row.byCount[n] = results[row.id];
    } finally {
      object.close();
      rmSync(pinDir, { recursive: true, force: true });
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { rows, labels, sources, paths };
}

interface Verdict {
  name: string;
  measured: string;
  ok: boolean;
}

function judgeTestRun(rows: TestRunRow[]): Map<CaseId, Verdict[]> {
  const verdicts = new Map<CaseId, Verdict[]>();
  const first = COUNTS[0];
  const last = COUNTS[COUNTS.length - 1]!;
  for (const row of rows) {
    const spec = CASES.find((c) => c.id === row.id)!;
    const list: Verdict[] = [];
    const at = (n: number) => row.byCount[n]?.medianNs ?? Number.NaN;
    if (spec.target === 'new') {
      list.push({
        name: `new flow <= ${TARGET.newFlowNs} ns at ${kLabel(last)}`,
        measured: `${fmt(at(last))} ns`,
        ok: at(last) <= TARGET.newFlowNs,
      });
    }
    if (spec.target === 'established') {
      const worst = Math.max(...COUNTS.map(at));
      list.push({
        name: `established <= ${TARGET.establishedNs} ns at every count`,
        measured: `worst ${fmt(worst)} ns`,
        ok: worst <= TARGET.establishedNs,
      });
    }
    if (spec.growth) {
      const growth = at(last) / at(first);
      list.push({
        name: `growth ${kLabel(first)} -> ${kLabel(last)} <= ${TARGET.growth}x`,
        measured: `${fmt(growth, 2)}x`,
        ok: growth <= TARGET.growth,
      });
    }
    verdicts.set(row.id, list);
  }
  return verdicts;
}

/** How far apart the runs of each cell are: the machine's noise, for reading the table. */
function noiseLine(rows: TestRunRow[]): string {
  const spreads = rows.flatMap((row) =>
    Object.values(row.byCount)
      .flatMap((cell) => (cell.runsNs ? [cell.runsNs] : []))
      .map((runs) => (Math.max(...runs) - Math.min(...runs)) / median(runs)),
  );
  if (spreads.length === 0) return '';
  return `noise: (max - min) / median of the ${MEDIAN_OF} runs of a cell is ${fmt(100 * median(spreads))}% at the median cell, ${fmt(100 * Math.max(...spreads))}% at the worst`;
}

const rowLetter = (i: number) => String.fromCharCode(65 + i);

function renderTestRun(
  { rows, labels, sources, paths }: TestRunResults,
  verdicts: Map<CaseId, Verdict[]>,
): string {
  const header = [
    'row',
    'src',
    'case (kernel ns per run)',
    ...COUNTS.map((n) => kLabel(n)),
    `${kLabel(COUNTS[COUNTS.length - 1]!)}/${kLabel(COUNTS[0])}`,
    'targets',
  ];
  const body = rows.map((row, i) => {
    const spec = CASES.find((c) => c.id === row.id)!;
    const at = (n: number) => row.byCount[n]?.medianNs;
    const growth = (at(COUNTS[COUNTS.length - 1]!) ?? Number.NaN) / (at(COUNTS[0]) ?? Number.NaN);
    const v = verdicts.get(row.id) ?? [];
    return [
      rowLetter(i),
      spec.source,
      spec.label,
      ...COUNTS.map((n) => fmt(at(n))),
      `${fmt(growth, 2)}x`,
      v.length === 0 ? '(info)' : v.map((x) => `${passMiss(x.ok)} ${x.name} (${x.measured})`).join('; '),
    ];
  });
  const names: SourceName[] = ['S4', 'S6', 'P4', 'P6', 'M4', 'M6'];
  const lastCount = COUNTS[COUNTS.length - 1]!;
  const lines = [
    '1. Per-packet cost: BPF_PROG_TEST_RUN of bpf/out/firewall.o (kernel-reported ns per run)',
    `   loaded with BpfObject.load(..., { pinDir: <temp bpffs> }); compilePolicies(...) + new FirewallMaps(object).apply(...);`,
    `   setHostAddresses([${NODE.v4}, ${NODE.v6}]); setEventsPerSecond(${EVENTS_PER_SEC}); one fresh pinDir (empty conntrack) per count.`,
    `   rule sets: ${COUNTS.map((n) => `${kLabel(n)} = ${labels[n]}`).join('; ')}`,
    '   rule mix: 20% /24 and 60% /32 IPv4, 10% /64 and 10% /128 IPv6, one TCP port each from a 12-port mix, except',
    `   1 rule in ${MULTI_PORT_EVERY} (every CIDR kind) that allows ${MULTI_PORT_COUNT} separate ports of the mix, so its selector set has ${MULTI_PORT_COUNT} ingress entries`,
    `   (> ${INLINE_RULES} inline) and goes to the policy hash, which therefore grows with the rule count; ${RULES_PER_POLICY} rules per HostPolicy,`,
    "   ingress default deny. The rows' 6 source rules and section 3's 2 client rules end the list.",
    `   live maps after apply, entries in identity hash / identity trie / policy hash / policy trie: ${COUNTS.map((n) => `${kLabel(n)}: ${paths[n]?.population.identityHash} / ${paths[n]?.population.identityTrie} / ${paths[n]?.population.policyHash} / ${paths[n]?.population.policyTrie}`).join('; ')}`,
    '',
    '   sources (src): the last rules before the client rules, their CIDRs drawn right after the generated ones (densest blocks):',
    `   S4, S6 = the address of a /32, /128 rule allowing tcp ${ALLOWED_PORT}                            -> identity hash 1st probe, inline rule`,
    `   P4, P6 = host .77, ::77 inside a /24, /64 rule allowing tcp ${ALLOWED_PORT}                      -> identity hash 2nd probe, inline rule`,
    `   M4, M6 = the address of a /32, /128 rule allowing tcp ${MANY_PORTS.join(', ')} -> identity hash 1st probe, INLINE_HASH, policy hash`,
    ...COUNTS.map(
      (n) => `   ${kLabel(n).padStart(4)}: ${names.map((s) => `${s} ${sources[n]?.[s] ?? '-'}`).join('  ')}`,
    ),
    "   checked before measuring, at every count, on the live maps with the datapath's lookups (identity.h), and by a",
    `   SYN to ${ALLOWED_PORT} from each source that must be allowed with conntrack naming that source's rule. At ${kLabel(lastCount)}:`,
    ...names.map((s) => `   ${s}: ${paths[lastCount]?.paths[s] ?? '-'}`),
    '',
    table(header, body, (c) => c >= 3 && c <= COUNTS.length + 3),
    '',
    `   ${noiseLine(rows)}`,
    '',
    '   how each row was produced:',
    ...rows.map((row, i) => `   ${rowLetter(i)}: ${CASES.find((c) => c.id === row.id)!.how}`),
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// 2. Compile + apply

interface CompileRow {
  cidrs: number;
  label: string;
  identities: number;
  entries: number;
  runs: { compileMs: number; applyMs: number; totalMs: number }[];
  cold: { compileMs: number; applyMs: number; totalMs: number };
  warm: { compileMs: number; applyMs: number; totalMs: number };
  targetMs: number;
  ok: boolean;
  /** The compiler's answer to the same CIDRs as one rule each, when it refuses them. */
  oneRulePerCidr?: string;
}

async function benchCompile(bpffs: TempBpffs): Promise<CompileRow[]> {
  const rows: CompileRow[] = [];
  const facts = nodeFacts([NODE.v4, NODE.v6]);
  for (const n of COMPILE_COUNTS) {
    const set = generateRuleSet(n, { ipv6: true });
    const pinDir = join(bpffs.dir, `compile-${n}`);
    const object = BpfObject.load(bpfObjectPath('firewall'), { pinDir });
    try {
      const maps = new FirewallMaps(object);
      const runs: CompileRow['runs'] = [];
      let compiled: CompiledPolicy | undefined;
      for (let i = 0; i < COMPILE_RUNS; i++) {
        const t0 = performance.now();
        compiled = compilePolicies(set.policies, facts);
        const t1 = performance.now();
        maps.apply(compiled);
        const t2 = performance.now();
        runs.push({ compileMs: t1 - t0, applyMs: t2 - t1, totalMs: t2 - t0 });
        log(`compile+apply ${kLabel(n)} run ${i + 1}: ${fmt(t1 - t0)} + ${fmt(t2 - t1)} ms`);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const warmRuns = runs.slice(1);
      const warm = {
        compileMs: median(warmRuns.map((r) => r.compileMs)),
        applyMs: median(warmRuns.map((r) => r.applyMs)),
        totalMs: median(warmRuns.map((r) => r.totalMs)),
      };
      const targetMs = n >= 100_000 ? TARGET.compile100kMs : TARGET.compile10kMs;
      const row: CompileRow = {
        cidrs: n,
        label: ruleSetLabel(set),
        identities: compiled!.identities.length,
        entries: compiled!.entries.length,
        runs,
        cold: runs[0]!,
        warm,
        targetMs,
        ok: warm.totalMs < targetMs,
      };
      if (set.cidrsPerRule > 1) {
        try {
          compilePolicies(generateRuleSet(n, { ipv6: true, oneCidrPerRule: true }).policies, facts);
        } catch (error) {
          row.oneRulePerCidr = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        }
      }
      rows.push(row);
    } finally {
      object.close();
      rmSync(pinDir, { recursive: true, force: true });
    }
  }
  return rows;
}

function renderCompile(rows: CompileRow[]): string {
  const header = [
    'rule set',
    'identities',
    'entries',
    'compile ms',
    'apply ms',
    'together ms',
    'cold together',
    'target',
    'result',
  ];
  const body = rows.map((r) => [
    r.label,
    String(r.identities),
    String(r.entries),
    fmt(r.warm.compileMs),
    fmt(r.warm.applyMs),
    fmt(r.warm.totalMs),
    fmt(r.cold.totalMs),
    `< ${r.targetMs} ms`,
    `${passMiss(r.ok)} (warm)${r.cold.totalMs < r.targetMs ? '' : `, cold ${passMiss(false)}`}`,
  ]);
  const notes = rows
    .filter((r) => r.oneRulePerCidr)
    .map(
      (r) =>
        `   note: the same ${r.cidrs} CIDRs as one rule each are refused by compilePolicies: ${r.oneRulePerCidr}`,
    );
  return [
    '2. Compile + apply (performance.now() around compilePolicies, around FirewallMaps.apply, and around both)',
    `   ${COMPILE_RUNS} runs per size on one loaded object (each apply swaps generations); "cold" is the first run of the`,
    `   process (JIT cold), the other columns the median of runs 2-${COMPILE_RUNS}. Judged on the warm figure.`,
    '',
    table(header, body, (c) => c >= 1 && c <= 6),
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 3. End to end

interface E2eNumbers {
  /** The median of IPERF_RUNS runs, and every run. */
  gbps: number;
  gbpsRuns: number[];
  retransmits: number;
  rr: { p50: number; avg: number; p99: number };
  connect: { p50: number; avg: number; p99: number };
  unlisted: 'dropped' | 'refused' | 'other';
}

interface E2eRow {
  name: string;
  description: string;
  install: string;
  installMs: number | undefined;
  filtered: boolean;
  numbers?: E2eNumbers;
  ruleHits?: string;
  error?: string;
  valid: boolean;
}

/** Request/response over one connection, then connect + one request/response per connection. */
const PROBE = `
const net = require('node:net');
const [host, port, rrCount, connectCount] = process.argv.slice(-4);
const WARMUP = 200;
const now = () => process.hrtime.bigint();
const us = (a, b) => Number(b - a) / 1000;
function summary(xs) {
  xs.sort((a, b) => a - b);
  const q = (p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  return { n: xs.length, avg: xs.reduce((s, x) => s + x, 0) / xs.length, p50: q(0.5), p99: q(0.99) };
}
function rr(n) {
  return new Promise((resolve, reject) => {
    const out = [];
    let t0 = 0n;
    let i = 0;
    const s = net.connect({ host, port: Number(port) }, () => { s.setNoDelay(true); t0 = now(); s.write('x'); });
    s.on('data', () => {
      const t = now();
      if (i++ >= WARMUP) out.push(us(t0, t));
      if (i >= n + WARMUP) { s.destroy(); resolve(out); } else { t0 = now(); s.write('x'); }
    });
    s.on('error', reject);
  });
}
function connectOnce() {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const s = net.connect({ host, port: Number(port) }, () => { s.setNoDelay(true); s.write('x'); });
    s.setTimeout(2000, () => { s.destroy(); reject(new Error('connect timed out')); });
    s.once('data', () => { const t = now(); s.destroy(); resolve(us(t0, t)); });
    s.on('error', reject);
  });
}
(async () => {
  const rrTimes = await rr(Number(rrCount));
  const connects = [];
  for (let i = 0; i < Number(connectCount); i++) connects.push(await connectOnce());
  console.log(JSON.stringify({ rr: summary(rrTimes), connect: summary(connects) }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
`;

const ECHO_SERVER = `require('node:net').createServer((s) => { s.setNoDelay(true); s.pipe(s); s.on('error', () => {}); }).listen(${ECHO_PORT}, '0.0.0.0', () => console.log('listening'));`;

interface E2eConfig {
  name: string;
  description: string;
  filtered: boolean;
  install(): Promise<{ command: string; ms: number }>;
  ruleHits(): Promise<string>;
  remove(): Promise<void>;
}

function nftRuleset(set: RuleSet, stateful: boolean): string {
  const elements: string[] = [];
  for (const rule of set.rules)
    for (const cidr of rule.cidrs)
      if (isIPv4(cidr.split('/')[0]!)) for (const port of rule.ports) elements.push(`${cidr} . ${port}`);
  return [
    'table inet nwbench {',
    '  set allow4 {',
    '    type ipv4_addr . inet_service',
    '    flags interval',
    `    elements = { ${elements.join(',\n      ')} }`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    ...(stateful ? ['    ct state established,related accept'] : []),
    '    ip saddr . tcp dport @allow4 counter accept',
    '  }',
    '}',
    '',
  ].join('\n');
}

function iptablesRestoreInput(set: RuleSet, stateful: boolean): string {
  const lines = ['*filter', ':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  lines.push('-A INPUT -i lo -j ACCEPT');
  if (stateful) lines.push('-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT');
  for (const rule of set.rules)
    for (const cidr of rule.cidrs)
      if (isIPv4(cidr.split('/')[0]!))
        for (const port of rule.ports)
          lines.push(`-A INPUT -s ${cidr} -p tcp -m tcp --dport ${port} -j ACCEPT`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const IPTABLES_OPEN = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

async function timedExec(host: Host, argv: string[], input: string, inputLabel: string) {
  const t0 = performance.now();
  await host.exec(argv, { input, timeoutMs: 120_000 });
  return {
    command: `${formatArgv(['ip', 'netns', 'exec', host.netns, ...argv])} < ${inputLabel}`,
    ms: performance.now() - t0,
  };
}

function e2eConfigs(node: Host, set: RuleSet, bpffs: TempBpffs): E2eConfig[] {
  /** (IPv4 CIDR, port) pairs: one iptables rule or nft set element each. */
  const v4Lines = set.rules.reduce(
    (s, r) => s + r.cidrs.filter((c) => isIPv4(c.split('/')[0]!)).length * r.ports.length,
    0,
  );
  const iptables = (variant: 'legacy' | 'nft', stateful: boolean): E2eConfig => {
    const restore = `iptables-${variant}-restore`;
    const list = `iptables-${variant}`;
    return {
      name: `iptables-${variant}${stateful ? ' +ct' : ''}`,
      description: `${list}: ${v4Lines} linear INPUT rules "-s CIDR -p tcp --dport P -j ACCEPT", policy DROP${stateful ? ', "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT" first' : ', no conntrack: every packet walks the list'}`,
      filtered: true,
      install: () =>
        timedExec(
          node,
          [restore],
          iptablesRestoreInput(set, stateful),
          `(${v4Lines + (stateful ? 2 : 1)} rules)`,
        ),
      async ruleHits() {
        const { stdout } = await node.exec([list, '-L', 'INPUT', '-v', '-n', '-x', '--line-numbers'], {
          timeoutMs: 60_000,
        });
        const hit = stdout.split('\n').find((l) => l.includes(CLIENT) && l.includes(`dpt:${IPERF_PORT}`));
        const fields = hit?.trim().split(/\s+/) ?? [];
        return hit
          ? `rule #${fields[0]} of ${v4Lines + (stateful ? 2 : 1)}: ${fields[1]} pkts`
          : 'rule not found';
      },
      async remove() {
        if (variant === 'legacy') {
          await node.exec([restore], { input: IPTABLES_OPEN });
          await node.exec([list, '-X']);
        } else {
          await node.exec(['nft', 'delete', 'table', 'ip', 'filter'], { allowFailure: true });
        }
      },
    };
  };
  const nft = (stateful: boolean): E2eConfig => ({
    name: `nftables set${stateful ? ' +ct' : ''}`,
    description: `nft: one rule "ip saddr . tcp dport @allow4 accept" over an interval set of ${v4Lines} (prefix . port) elements, policy drop${stateful ? ', "ct state established,related accept" first' : ', no conntrack: every packet does the set lookup'}`,
    filtered: true,
    install: () =>
      timedExec(
        node,
        ['nft', '-f', '-'],
        nftRuleset(set, stateful),
        `(table inet nwbench, ${v4Lines} elements)`,
      ),
    async ruleHits() {
      const { stdout } = await node.exec(['nft', 'list', 'chain', 'inet', 'nwbench', 'input']);
      const m = stdout.match(/@allow4 counter packets (\d+)/);
      return m ? `set rule: ${m[1]} pkts` : 'counter not found';
    },
    async remove() {
      await node.exec(['nft', 'delete', 'table', 'inet', 'nwbench']);
    },
  });

  let fw: { object: BpfObject; maps: FirewallMaps; compiled: CompiledPolicy; pinDir: string } | undefined;
  const linkPin = (pinDir: string, hook: string) => join(pinDir, 'links', `tcx-${hook}-eth0-nw_fw_${hook}`);
  const nodewarden: E2eConfig = {
    name: 'nodewarden (tcx)',
    description: `firewall.o, nw_fw_ingress + nw_fw_egress as tcx links on the node's eth0; ${ruleSetLabel(set)}, ingress default deny`,
    filtered: true,
    async install() {
      const t0 = performance.now();
      const pinDir = join(bpffs.dir, 'e2e');
      const object = BpfObject.load(bpfObjectPath('firewall'), { pinDir });
      const maps = new FirewallMaps(object);
      fw = { object, maps, compiled: compilePolicies(set.policies, nodeFacts([NODE.v4])), pinDir };
      maps.setHostAddresses([NODE.v4]);
      maps.setEventsPerSecond(EVENTS_PER_SEC);
      maps.apply(fw.compiled);
      inNetns(node.netns, () => {
        for (const hook of ['ingress', 'egress'] as const) {
          attachTc({
            program: object.program(`nw_fw_${hook}`),
            ifname: 'eth0',
            direction: hook,
            mode: 'tcx',
            pinPath: linkPin(pinDir, hook),
          });
        }
      });
      return {
        command: `BpfObject.load(firewall.o) + compilePolicies + FirewallMaps.apply; inNetns(${node.netns}, attachTc(nw_fw_ingress/egress, eth0, tcx))`,
        ms: performance.now() - t0,
      };
    },
    async ruleHits() {
      const live = fw!.maps.openLive();
      if (!live) return 'no live generation';
      try {
        // The counters count the packets that were decided by policy: one per new flow, unless
        // conntrack lost track of a flow (then later packets of it are decided again).
        const stats = new BpfMap(live.stats, u32, ruleStats);
        const decided = (index: number): bigint =>
          live.stats.type === MapType.percpuArray
            ? (stats.lookupPerCpu(index) ?? []).reduce((sum, v) => sum + v.packets, 0n)
            : (stats.lookup(index)?.packets ?? 0n);
        const iperf = ruleIndex(fw!.compiled, set.clientIperf);
        const echo = ruleIndex(fw!.compiled, set.clientEcho);
        return `rule #${iperf}: ${decided(iperf)} decisions for ${2 * IPERF_RUNS} iperf3 connections, #${echo}: ${decided(echo)} for ${CONNECT_COUNT + 1} probe connections, default egress: ${decided(1)}`;
      } finally {
        live.close();
      }
    },
    async remove() {
      if (!fw) return;
      const { object, pinDir } = fw;
      fw = undefined;
      inNetns(node.netns, () => {
        for (const hook of ['ingress', 'egress']) detachPinnedLink(linkPin(pinDir, hook));
      });
      object.close();
      rmSync(pinDir, { recursive: true, force: true });
    },
  };
  const baseline = (again: boolean): E2eConfig => ({
    name: again ? 'unfiltered (again)' : 'unfiltered',
    description: again
      ? 'no filter, measured last to show drift over the run'
      : 'no filter in the node namespace',
    filtered: false,
    install: async () => ({ command: '-', ms: 0 }),
    ruleHits: async () => '-',
    remove: async () => {},
  });
  // Stateless configurations first, so no conntrack module state is around for them.
  return [
    baseline(false),
    nodewarden,
    nft(false),
    iptables('nft', false),
    iptables('legacy', false),
    nft(true),
    iptables('legacy', true),
    baseline(true),
  ];
}

/**
 * CPU placement is fixed, because on a 2-vCPU VM cross-CPU wakeups (IPIs) make latency bimodal:
 * the iperf3 client on CPU 0 and its server on CPU 1; the latency probe and the echo server
 * share CPU 1, so a round trip never waits for another CPU.
 */
const CPU = { iperfClient: 0, iperfServer: 1, latency: 1 } as const;

function iperfArgs(): string[] {
  return [
    'iperf3',
    '-c',
    NODE.v4,
    '-p',
    String(IPERF_PORT),
    '-t',
    String(IPERF_SECONDS),
    '-O',
    '1',
    '-A',
    String(CPU.iperfClient),
    '-J',
  ];
}

function probeArgs(): string[] {
  return [
    'taskset',
    '-c',
    String(CPU.latency),
    process.execPath,
    '-e',
    PROBE,
    '--',
    NODE.v4,
    String(ECHO_PORT),
    String(RR_COUNT),
    String(CONNECT_COUNT),
  ];
}

async function measureE2e(client: Host): Promise<E2eNumbers> {
  const unlisted = await client.exec(
    ['timeout', '1', 'bash', '-c', `exec 3<>/dev/tcp/${NODE.v4}/${UNLISTED_PORT}`],
    { allowFailure: true },
  );
  // Latency first: a bulk transfer just before would leave its traces (TIME_WAIT, memory, softirq backlog).
  const probe = await client.exec(probeArgs(), { timeoutMs: 120_000 });
  const latency = JSON.parse(probe.stdout) as Pick<E2eNumbers, 'rr' | 'connect'>;
  const runs: { gbps: number; retransmits: number }[] = [];
  for (let i = 0; i < IPERF_RUNS; i++) {
    const iperf = await client.exec(iperfArgs(), { timeoutMs: (IPERF_SECONDS + 20) * 1000 });
    const report = JSON.parse(iperf.stdout) as {
      end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } };
    };
    runs.push({
      gbps: report.end.sum_received.bits_per_second / 1e9,
      retransmits: report.end.sum_sent.retransmits ?? 0,
    });
  }
  const mid = [...runs].sort((a, b) => a.gbps - b.gbps)[runs.length >> 1]!;
  return {
    gbps: mid.gbps,
    gbpsRuns: runs.map((r) => r.gbps),
    retransmits: mid.retransmits,
    rr: latency.rr,
    connect: latency.connect,
    unlisted: unlisted.code === 124 ? 'dropped' : unlisted.code === 1 ? 'refused' : 'other',
  };
}

async function benchE2e(
  lab: Lab,
  bpffs: TempBpffs,
): Promise<{ rows: E2eRow[]; netns: { client: string; node: string } }> {
  const client = await lab.host('client');
  const node = await lab.host('node');
  await lab.link(client, node, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: [`${CLIENT}/24`],
    bAddrs: [`${NODE.v4}/24`],
  });
  const iperfServer = node.spawn([
    'iperf3',
    '-s',
    '-p',
    String(IPERF_PORT),
    '-A',
    String(CPU.iperfServer),
    '--forceflush',
  ]);
  await iperfServer.waitForOutput(/Server listening/);
  const echo = node.spawn(['taskset', '-c', String(CPU.latency), process.execPath, '-e', ECHO_SERVER]);
  await echo.waitForOutput(/listening/);
  await client.exec(['ping', '-c', '1', '-W', '2', NODE.v4]);

  const set = generateRuleSet(E2E_CIDRS, { ipv6: false });
  const rows: E2eRow[] = [];
  for (const config of e2eConfigs(node, set, bpffs)) {
    const row: E2eRow = {
      name: config.name,
      description: config.description,
      install: '-',
      installMs: undefined,
      filtered: config.filtered,
      valid: false,
    };
    rows.push(row);
    log(`e2e: ${config.name}`);
    try {
      const installed = await config.install();
      row.install = installed.command;
      row.installMs = installed.ms;
      row.numbers = await measureE2e(client);
      row.ruleHits = await config.ruleHits();
      row.valid = row.numbers.unlisted === (config.filtered ? 'dropped' : 'refused');
      if (!row.valid) row.error = `unlisted port ${UNLISTED_PORT} was ${row.numbers.unlisted}`;
    } catch (error) {
      row.error = error instanceof Error ? error.message.split('\n').slice(0, 3).join(' | ') : String(error);
      log(`e2e: ${config.name} failed: ${row.error}`);
    } finally {
      await config.remove();
    }
  }
  return { rows, netns: { client: client.netns, node: node.netns } };
}

function renderE2e(rows: E2eRow[], netns: { client: string; node: string }): string {
  const base = rows.find((r) => r.name === 'unfiltered')?.numbers;
  const header = [
    'configuration',
    'install ms',
    'iperf3 Gbit/s',
    `${IPERF_RUNS} runs`,
    'vs unfilt.',
    'retr',
    'RR p50 us',
    'RR avg',
    'RR p99',
    'connect p50 us',
    'connect avg',
    'connect p99',
    `port ${UNLISTED_PORT}`,
  ];
  const body = rows.map((r) => {
    const n = r.numbers;
    if (!n) return [r.name, fmt(r.installMs), `FAILED: ${r.error ?? ''}`];
    return [
      r.name + (r.valid ? '' : ' (INVALID)'),
      r.filtered ? fmt(r.installMs) : '-',
      fmt(n.gbps, 2),
      `${fmt(Math.min(...n.gbpsRuns), 1)}-${fmt(Math.max(...n.gbpsRuns), 1)}`,
      base ? `${fmt((100 * n.gbps) / base.gbps)}%` : '-',
      String(n.retransmits),
      fmt(n.rr.p50, 1),
      fmt(n.rr.avg, 1),
      fmt(n.rr.p99, 1),
      fmt(n.connect.p50, 1),
      fmt(n.connect.avg, 1),
      fmt(n.connect.p99, 1),
      n.unlisted,
    ];
  });
  const exec = (ns: string, argv: string[]) => formatArgv(['ip', 'netns', 'exec', ns, ...argv]);
  const probe = probeArgs();
  return [
    `3. End to end: client ${CLIENT} --veth-- node ${NODE.v4} (two lab namespaces, same veth for every row), ${ruleSetLabel(generateRuleSet(E2E_CIDRS, { ipv6: false }))} (IPv4 only)`,
    `   the client's rules (${CLIENT}/32 -> tcp ${IPERF_PORT}, -> tcp ${ECHO_PORT}) are the last two of the list; everything else is dropped.`,
    '',
    table(header, body, (c) => c >= 1 && c <= 11),
    '',
    "   rule counters after each row (the client's rules must have matched):",
    ...rows.filter((r) => r.filtered).map((r) => `   - ${r.name}: ${r.ruleHits ?? r.error ?? '-'}`),
    '',
    '   commands:',
    `   throughput: ${exec(netns.client, iperfArgs())}  x${IPERF_RUNS}, median of end.sum_received (server: ${formatArgv(['iperf3', '-s', '-p', String(IPERF_PORT), '-A', String(CPU.iperfServer)])} in ${netns.node})`,
    `   latency:    ${exec(netns.client, [...probe.slice(0, 4), '-e', '<PROBE in bench/firewall.ts>', ...probe.slice(6)])}`,
    `               RR = ${RR_COUNT} one-byte request/responses on one TCP_NODELAY connection to the echo server on :${ECHO_PORT} (after ${200} warm-up);`,
    `               connect = ${CONNECT_COUNT} sequential connect + one request/response + close (a new flow each: full policy evaluation)`,
    `   port 7778:  ${exec(netns.client, ['timeout', '1', 'bash', '-c', `exec 3<>/dev/tcp/${NODE.v4}/${UNLISTED_PORT}`])}  (dropped = exit 124, refused = 1): proves the filter is live`,
    '   install:',
    ...rows.filter((r) => r.filtered).map((r) => `   - ${r.name}: ${r.install}\n       ${r.description}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * JSON as the repository's formatter (biome) writes it, so the committed result stays lint-clean:
 * two-space indent, and arrays of plain values on one line when they fit in 110 columns.
 */
function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
  const scalar = String.raw`(?:-?[\d.eE+-]+|"(?:[^"\\]|\\.)*"|true|false|null)`;
  const array = new RegExp(String.raw`^( *)(.*)\[\n((?:\1  ${scalar},?\n)+)\1\]`, 'gm');
  const collapsed = text.replace(array, (whole, indent: string, head: string, items: string) => {
    const list = items
      .split('\n')
      .map((item) => item.trim())
      .filter(Boolean)
      .join(' ');
    const line = `${indent}${head}[${list}]`;
    return line.length + 1 <= 110 ? line : whole;
  });
  return `${collapsed}\n`;
}

function ensureTools(): void {
  const wanted: [string, string][] = [
    ['iperf3', 'iperf3'],
    ['nft', 'nftables'],
    ['iptables-legacy-restore', 'iptables'],
    ['iptables-nft-restore', 'iptables'],
  ];
  const has = (cmd: string) => {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  const missing = [...new Set(wanted.filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  log(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
}

function checkObject(): void {
  const object = bpfObjectPath('firewall');
  if (!existsSync(object)) throw new Error(`${object} is missing: run npm run build:bpf`);
  const built = statSync(object).mtimeMs;
  const sources = [join(REPO, 'bpf', 'firewall.c'), join(REPO, 'bpf', 'lib')];
  const newer = sources.some((s) => existsSync(s) && statSync(s).mtimeMs > built);
  if (newer) log(`warning: ${object} is older than bpf/firewall.c or bpf/lib: run npm run build:bpf`);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/firewall.ts needs root (BPF, network namespaces)\n');
    return 1;
  }
  const only = process.argv
    .find((a) => a.startsWith('--only='))
    ?.slice(7)
    .split(',');
  const want = (section: string) => !only || only.includes(section);
  const startedAt = new Date();
  const startLoad = loadavg()[0];
  checkObject();
  ensureTools();

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch (error) {
        log(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  const abort = (why: string) => {
    log(`${why}: cleaning up and exiting`);
    void cleanup().finally(() => process.exit(2));
  };
  const watchdog = setTimeout(
    () => abort(`time limit of ${DEADLINE_MS / 60_000} minutes reached`),
    DEADLINE_MS,
  );
  process.once('SIGINT', () => abort('SIGINT'));
  process.once('SIGTERM', () => abort('SIGTERM'));

  const sections: string[] = [];
  const json: Record<string, unknown> = {
    benchmark: 'bench/firewall.ts',
    command: 'npm run bench:firewall',
    startedAt: startedAt.toISOString(),
    machine: machineFacts(),
    targets: TARGET,
  };
  const summary: { check: string; measured: string; result: string }[] = [];
  try {
    const bpffs = mountTempBpffs();
    cleanups.push(() => bpffs.destroy());

    // Compile/apply first, so that its first run is the process's first compile (JIT cold).
    let compileRows: CompileRow[] = [];
    if (want('compile')) compileRows = await benchCompile(bpffs);

    if (want('testrun')) {
      const results = await benchTestRun(bpffs);
      const { rows, labels } = results;
      const verdicts = judgeTestRun(rows);
      sections.push(renderTestRun(results, verdicts));
      json.testRun = {
        repeat: REPEAT,
        medianOf: MEDIAN_OF,
        singleRuns: SINGLE_RUNS,
        ruleSets: labels,
        sources: results.sources,
        lookupPaths: results.paths,
        rows: rows.map((r) => ({
          ...r,
          source: CASES.find((c) => c.id === r.id)!.source,
          label: CASES.find((c) => c.id === r.id)!.label,
          how: CASES.find((c) => c.id === r.id)!.how,
          verdicts: verdicts.get(r.id),
        })),
      };
      rows.forEach((row, i) => {
        const label = `${rowLetter(i)} ${CASES.find((c) => c.id === row.id)!.label}`;
        for (const v of verdicts.get(row.id) ?? [])
          summary.push({ check: `${label}: ${v.name}`, measured: v.measured, result: passMiss(v.ok) });
      });
    }
    if (want('compile')) {
      sections.push(renderCompile(compileRows));
      json.compileApply = compileRows;
      for (const r of compileRows)
        summary.push({
          check: `compile + apply ${kLabel(r.cidrs)} CIDRs < ${r.targetMs} ms (warm)`,
          measured: `${fmt(r.warm.totalMs)} ms (cold ${fmt(r.cold.totalMs)} ms)`,
          result: passMiss(r.ok),
        });
    }
    if (want('e2e')) {
      const lab = await createLab();
      cleanups.push(() => lab.destroy());
      const { rows, netns } = await benchE2e(lab, bpffs);
      sections.push(renderE2e(rows, netns));
      json.endToEnd = {
        cidrs: E2E_CIDRS,
        iperfSeconds: IPERF_SECONDS,
        iperfRuns: IPERF_RUNS,
        rr: RR_COUNT,
        connects: CONNECT_COUNT,
        rows,
      };
      const base = rows.find((r) => r.name === 'unfiltered')?.numbers;
      for (const r of rows.filter((x) => x.filtered)) {
        const n = r.numbers;
        summary.push({
          check: `e2e ${r.name}: throughput / RR p50 / connect p50`,
          measured: n
            ? `${fmt(n.gbps, 2)} Gbit/s (${base ? fmt((100 * n.gbps) / base.gbps) : '-'}%) / ${fmt(n.rr.p50, 1)} us / ${fmt(n.connect.p50, 1)} us`
            : `failed: ${r.error}`,
          result: r.valid ? 'info' : 'INVALID',
        });
      }
    }
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }

  const finishedAt = new Date();
  json.finishedAt = finishedAt.toISOString();
  json.summary = summary;
  const summaryText = [
    '4. Summary',
    '',
    table(
      ['check', 'measured', 'result'],
      summary.map((s) => [s.check, s.measured, s.result]),
      () => false,
    ),
    '',
    `   ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}; ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s; JSON: bench/results/firewall-latest.json`,
    `   load average (1 min) at start ${fmt(startLoad, 2)}, at end ${fmt(loadavg()[0], 2)}: anything else running on the machine shows up as noise above`,
  ].join('\n');
  sections.push(summaryText);
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, toJson(json));
  process.stdout.write(
    `nodewarden firewall benchmark (npm run bench:firewall)\n\n${sections.join('\n\n')}\n`,
  );
  return 0;
}

// Make sure nothing from the lab runs on if main throws.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench/firewall.ts failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
