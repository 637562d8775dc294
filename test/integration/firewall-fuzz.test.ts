/**
 * The firewall's tc programs through BPF_PROG_TEST_RUN, no interface needed:
 * known answers for the packets a host must get right (allowed and closed
 * ports, ARP, NDP, DHCP, replies and related ICMP errors through conntrack,
 * fragments, malformed and forwarded packets), drop events and their rate
 * limit, and a fuzz of a few hundred thousand random and mutated packets whose
 * every verdict is compared with a model of the datapath written from its C
 * source (parser, always-allowed traffic, conntrack, host check, identity and
 * policy lookups, defaults).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ctKey,
  ctValue,
  Direction,
  FIREWALL_MAPS,
  type FwEvent,
  fwEvent,
  INLINE_HASH,
  INLINE_OVERFLOW,
  INLINE_RULES,
  Reason,
  Verdict,
} from '../../bpf/codecs/firewall.js';
import {
  BpfMap,
  BpfObject,
  type BpfProgram,
  possibleCpus,
  RingBufferReader,
  struct,
  testRun,
  u32,
  u64,
} from '../../bpf/index.js';
import { FirewallMaps, identityOf, lookupVerdict } from '../../daemon/firewall/actuator.js';
import { type CompiledPolicy, compilePolicies, type NodeFacts } from '../../host-policies/compile.js';
import type { HostPolicy, L4Match, Peer, Rule } from '../../host-policies/model.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import {
  arpFrame,
  EtherType,
  ethernet,
  fragmentIpv4,
  IpProto,
  type Ipv6Extension,
  icmp,
  icmpEcho,
  icmpError,
  icmpv6,
  icmpv6Echo,
  icmpv6Error,
  ipFrame,
  ipv4,
  ipv6,
  type L4,
  mappedAddress,
  neighborAdvertisement,
  neighborSolicitation,
  rawL4,
  sctp,
  TcpFlag,
  tcp,
  udp,
} from '../support/packets.js';
import { BPF_OBJECT } from '../support/paths.js';
import { SeededRandom } from '../support/random.js';

const PASS = 0xffffffff; // TC_ACT_UNSPEC (-1) as the u32 retval
const DROP = 2; // TC_ACT_SHOT

const HOST4 = '10.50.0.1';
const HOST6 = 'fd50::1';
const PEER4 = '10.50.0.2';
const PEER6 = 'fd50::2';
const DENIED4 = '10.50.0.66';
const OTHER4 = '10.50.0.99'; // on the link, not this host: forwarded
const OTHER6 = 'fd50::99';
const OUT4 = '192.0.2.9';
const OUT6 = '2001:db8::9';

// ---------------------------------------------------------------------------
// The policy under test: default deny both ways, a few allows, two denies.

const indexed = (rules: Omit<Rule, 'index'>[]): Rule[] => rules.map((r, index) => ({ index, ...r }));
const cidr = (text: string): Peer => ({ kind: 'cidr', cidr: text, except: [] });
const ports = (protocol: 'TCP' | 'UDP' | 'SCTP', port: number, endPort = port): L4Match => ({
  kind: 'ports',
  protocol,
  port,
  endPort,
});

const POLICY: HostPolicy = {
  name: 'fuzz',
  source: 'test',
  audit: false,
  nodeSelector: { matchLabels: {}, matchExpressions: [] },
  ingress: indexed([
    { peers: [cidr('10.50.0.0/24'), cidr('fd50::/64')], l4: [ports('TCP', 22)] },
    { peers: 'any', l4: [ports('TCP', 80), ports('TCP', 8000, 8999), ports('SCTP', 3868)] },
    {
      peers: 'any',
      l4: [
        { kind: 'icmp', family: 'IPv4', type: 8 },
        { kind: 'icmp', family: 'IPv6', type: 128 },
      ],
    },
    { peers: [cidr('10.50.0.0/24')], l4: [{ kind: 'protocol', protocol: IpProto.vrrp }] },
    // Nested prefixes with different rules (so different sets): IPv4 uses seven prefix lengths
    // (/32, /28, /27, /26, /25, /24, /0), and the three shortest go to the identity trie.
    { peers: [cidr('10.50.0.128/25')], l4: [ports('TCP', 23)] },
    { peers: [cidr('10.50.0.192/26')], l4: [ports('TCP', 24)] },
    { peers: [cidr('10.50.0.224/27')], l4: [ports('TCP', 25)] },
    { peers: [cidr('10.50.0.240/28')], l4: [ports('TCP', 26)] },
  ]),
  ingressDeny: indexed([{ peers: [cidr(`${DENIED4}/32`)], l4: 'any' }]),
  egress: indexed([
    { peers: 'any', l4: [ports('UDP', 53), ports('TCP', 443)] },
    { peers: [cidr('fd50::/64')], l4: [{ kind: 'icmp', family: 'IPv6', type: 128 }] },
    // Seven entries of two prefix lengths: the policy hash, probed at /64 and /62.
    {
      peers: [cidr('198.51.100.0/24')],
      l4: [
        ports('TCP', 25),
        ports('TCP', 587),
        ports('TCP', 993),
        ports('UDP', 123),
        ports('TCP', 40000, 40003),
      ],
    },
  ]),
  egressDeny: indexed([{ peers: [cidr('192.0.2.0/24')], l4: [ports('TCP', 443)] }]),
  defaultDeny: { ingress: true, egress: true },
  warnings: [],
};

const FACTS: NodeFacts = {
  nodeName: 'fuzz-node',
  labels: {},
  hostAddresses: [HOST4, HOST6],
  remoteNodeAddresses: [],
  clusterCIDRs: [],
  apiServerAddresses: [],
};

let bpffs: TempBpffs;
let fw: BpfObject;
let maps: FirewallMaps;
let compiled: CompiledPolicy;
let generation: number;
const programs: Record<'ingress' | 'egress', BpfProgram> = {} as never;

beforeAll(() => {
  bpffs = mountTempBpffs();
  fw = BpfObject.load(BPF_OBJECT('firewall'), { pinDir: `${bpffs.dir}/fw` });
  programs.ingress = fw.program('nw_fw_ingress');
  programs.egress = fw.program('nw_fw_egress');
  maps = new FirewallMaps(fw);
  maps.setHostAddresses(FACTS.hostAddresses);
  compiled = compilePolicies([POLICY], FACTS);
  generation = maps.apply(compiled).generation;
});

afterAll(() => {
  fw?.close();
  bpffs?.destroy();
});

function run(dir: 'ingress' | 'egress', packet: Buffer): number {
  return testRun(programs[dir], { packet }).retval;
}

/** Frames BPF_PROG_TEST_RUN rejects with EINVAL before the program runs: an IP ethertype without a whole fixed IP header. */
function refusedByTestRun(frame: Buffer): boolean {
  const type = frame.length >= 14 ? frame.readUInt16BE(12) : 0;
  return (
    frame.length < 14 ||
    (type === EtherType.ipv4 && frame.length < 14 + 20) ||
    (type === EtherType.ipv6 && frame.length < 14 + 40)
  );
}

const fate = (retval: number) => (retval === PASS ? 'pass' : retval === DROP ? 'drop' : `retval ${retval}`);

/** Runs each [direction, frame, expected] and compares all at once, so a failure shows every row. */
function expectFates(rows: [string, 'ingress' | 'egress', Buffer, 'pass' | 'drop'][]): void {
  const actual = rows.map(([name, dir, frame]) => [name, fate(run(dir, frame))]);
  expect(actual).toEqual(rows.map(([name, , , expected]) => [name, expected]));
}

const syn = (src: string, dst: string, sport: number, dport: number, flags: number = TcpFlag.syn) =>
  ipFrame({ src, dst, l4: tcp({ sport, dport, flags }) });

// ---------------------------------------------------------------------------

describe('known answers', () => {
  it('loads with default deny both ways', () => {
    expect(compiled.defaults).toEqual({ ingress: Verdict.deny, egress: Verdict.deny });
    expect(maps.activeSlot().generation).toBe(generation);
  });

  it('an allowed SYN passes; a SYN to a closed port, from outside the allowed CIDR or from a denied peer drops', () => {
    expectFates([
      ['v4 ssh from the LAN', 'ingress', syn(PEER4, HOST4, 40001, 22), 'pass'],
      ['v6 ssh from the LAN', 'ingress', syn(PEER6, HOST6, 40001, 22), 'pass'],
      ['v4 http from anywhere', 'ingress', syn(OUT4, HOST4, 40002, 80), 'pass'],
      ['v6 port 8999 of 8000-8999', 'ingress', syn(OUT6, HOST6, 40003, 8999), 'pass'],
      ['v4 port 9000 just past the range', 'ingress', syn(OUT4, HOST4, 40003, 9000), 'drop'],
      ['v4 closed port 23', 'ingress', syn(PEER4, HOST4, 40004, 23), 'drop'],
      ['v6 closed port 23', 'ingress', syn(PEER6, HOST6, 40004, 23), 'drop'],
      ['v4 23 from the /28 (identity hash)', 'ingress', syn('10.50.0.241', HOST4, 40004, 23), 'pass'],
      ['v4 23 from the /25 (identity trie)', 'ingress', syn('10.50.0.130', HOST4, 40004, 23), 'pass'],
      ['v4 22 from the /25 (inside the /24)', 'ingress', syn('10.50.0.130', HOST4, 40004, 22), 'pass'],
      ['v4 ssh from outside', 'ingress', syn(OUT4, HOST4, 40005, 22), 'drop'],
      ['v6 ssh from outside', 'ingress', syn(OUT6, HOST6, 40005, 22), 'drop'],
      [
        'udp 22 is not tcp 22',
        'ingress',
        ipFrame({ src: PEER4, dst: HOST4, l4: udp({ sport: 1, dport: 22 }) }),
        'drop',
      ],
      ['denied peer, allowed port', 'ingress', syn(DENIED4, HOST4, 40006, 80), 'drop'],
      [
        'sctp 3868',
        'ingress',
        ipFrame({ src: OUT4, dst: HOST4, l4: sctp({ sport: 5000, dport: 3868 }) }),
        'pass',
      ],
      ['ping', 'ingress', ipFrame({ src: OUT4, dst: HOST4, l4: icmpEcho({ id: 7 }) }), 'pass'],
      ['ping6', 'ingress', ipFrame({ src: OUT6, dst: HOST6, l4: icmpv6Echo({ id: 7 }) }), 'pass'],
      ['timestamp request', 'ingress', ipFrame({ src: OUT4, dst: HOST4, l4: icmp({ type: 13 }) }), 'drop'],
      ['egress https', 'egress', syn(HOST4, '198.51.100.7', 50001, 443), 'pass'],
      ['egress https to a denied net', 'egress', syn(HOST4, OUT4, 50002, 443), 'drop'],
      ['egress smtp', 'egress', syn(HOST6, OUT6, 50003, 25), 'drop'],
      ['egress smtp to the policy-hash net', 'egress', syn(HOST4, '198.51.100.7', 50004, 25), 'pass'],
      ['egress 26 to the policy-hash net', 'egress', syn(HOST4, '198.51.100.7', 50005, 26), 'drop'],
      ['egress 40003, end of a /62', 'egress', syn(HOST4, '198.51.100.7', 50006, 40003), 'pass'],
      ['egress 40004, past the /62', 'egress', syn(HOST4, '198.51.100.7', 50007, 40004), 'drop'],
      [
        'egress udp 123, not tcp',
        'egress',
        ipFrame({ src: HOST4, dst: '198.51.100.7', l4: udp({ sport: 50008, dport: 123 }) }),
        'pass',
      ],
    ]);
  });

  it('the policy covers every way to a verdict: identity hash and trie; inline rules, policy hash and trie', () => {
    const live = maps.openLive();
    if (!live) throw new Error('no live generation');
    try {
      const mode = (addr: string, dir: number) =>
        identityOf(live, mappedAddress(addr))?.value.inlineCount[dir];
      expect(mode('198.51.100.7', Direction.egress)).toBe(INLINE_HASH | 2);
      expect(identityOf(live, mappedAddress('10.50.0.241'))?.probe).toBe(1);
      expect(identityOf(live, mappedAddress('10.50.0.130'))?.trie).toBe(true);
      expect(identityOf(live, mappedAddress(PEER4))?.trie).toBe(true);
      expect(identityOf(live, mappedAddress(PEER6))?.probe).toBe(0);
      // 8000-8999 alone splits into more than INLINE_RULES prefix lengths.
      expect(mode(OUT4, Direction.ingress)).toBe(INLINE_OVERFLOW);
      expect(mode(OUT4, Direction.egress)).toBeLessThanOrEqual(INLINE_RULES);
    } finally {
      live.close();
    }
  });

  it('policy trace (lookupVerdict on the live maps) gives the model’s verdict for every peer, protocol and port', () => {
    const model = new DatapathModel(compiled, FACTS.hostAddresses);
    const live = maps.openLive();
    if (!live) throw new Error('no live generation');
    const mismatches: string[] = [];
    try {
      for (const peer of [...V4_POOL, ...V6_POOL, '198.51.100.200', '10.50.0.77']) {
        for (const dir of [Direction.ingress, Direction.egress]) {
          for (const proto of [
            IpProto.tcp,
            IpProto.udp,
            IpProto.sctp,
            IpProto.vrrp,
            IpProto.icmp,
            IpProto.icmpv6,
          ]) {
            // ICMP's policy port is type << 8 | code: echo request 8 and 128, timestamp 13.
            for (const port of [
              ...PORTS,
              587,
              993,
              123,
              40001,
              40002,
              40004,
              8500,
              8191,
              0x800,
              0x8000,
              0xd00,
            ]) {
              const want = model.verdictFor(mappedAddress(peer), dir, proto, port);
              const got = lookupVerdict(live, mappedAddress(peer), dir, proto, port).verdict;
              if (got !== want)
                mismatches.push(`${peer} dir ${dir} proto ${proto} port ${port}: ${got} != ${want}`);
            }
          }
        }
      }
    } finally {
      live.close();
    }
    expect(mismatches).toEqual([]);
  });

  it('ARP and other non-IP frames pass both ways', () => {
    const request = arpFrame({ senderIp: PEER4, targetIp: HOST4 });
    const reply = arpFrame({ op: 2, senderIp: HOST4, targetIp: PEER4, eth: { dst: '02:00:00:00:00:02' } });
    const lldp = ethernet(0x88cc, Buffer.alloc(46));
    // tc sees 802.1Q tags out of band (skb metadata); an in-band tag is not parsed.
    const tagged = ethernet(
      EtherType.ipv4,
      ipv4({ src: OUT4, dst: HOST4, l4: tcp({ sport: 1, dport: 23 }) }),
      {
        vlans: [100],
      },
    );
    expectFates([
      ['arp request in', 'ingress', request, 'pass'],
      ['arp reply out', 'egress', reply, 'pass'],
      ['arp request out', 'egress', request, 'pass'],
      ['lldp', 'ingress', lldp, 'pass'],
      ['in-band 802.1Q', 'ingress', tagged, 'pass'],
    ]);
  });

  it('neighbour discovery passes under default deny; other ICMPv6 does not', () => {
    const solicitedNode = 'ff02::1:ff00:1';
    expectFates([
      [
        'NS in',
        'ingress',
        ipFrame({ src: PEER6, dst: solicitedNode, l4: neighborSolicitation(HOST6), hopLimit: 255 }),
        'pass',
      ],
      [
        'NS in, DAD from ::',
        'ingress',
        ipFrame({ src: '::', dst: solicitedNode, l4: neighborSolicitation(HOST6) }),
        'pass',
      ],
      ['NA out', 'egress', ipFrame({ src: HOST6, dst: PEER6, l4: neighborAdvertisement(HOST6) }), 'pass'],
      [
        'NS out',
        'egress',
        ipFrame({ src: HOST6, dst: 'ff02::1:ff00:2', l4: neighborSolicitation(PEER6) }),
        'pass',
      ],
      ['RS out', 'egress', ipFrame({ src: 'fe80::1', dst: 'ff02::2', l4: icmpv6({ type: 133 }) }), 'pass'],
      [
        'RA in',
        'ingress',
        ipFrame({ src: 'fe80::2', dst: 'ff02::1', l4: icmpv6({ type: 134, body: Buffer.alloc(12) }) }),
        'pass',
      ],
      [
        'MLDv2 report out',
        'egress',
        ipFrame({ src: HOST6, dst: 'ff02::16', l4: icmpv6({ type: 143 }) }),
        'pass',
      ],
      [
        'ICMPv6 type 200 in',
        'ingress',
        ipFrame({ src: PEER6, dst: HOST6, l4: icmpv6({ type: 200 }) }),
        'drop',
      ],
      [
        'echo reply in, no flow',
        'ingress',
        ipFrame({ src: OUT6, dst: HOST6, l4: icmpv6Echo({ id: 99, reply: true }) }),
        'drop',
      ],
    ]);
  });

  it('DHCP and DHCPv6 client traffic passes; the same ports the wrong way round do not', () => {
    const dhcp = (src: string, dst: string, sport: number, dport: number) =>
      ipFrame({ src, dst, l4: udp({ sport, dport, payload: Buffer.alloc(240) }) });
    expectFates([
      ['offer broadcast', 'ingress', dhcp('10.50.0.254', '255.255.255.255', 67, 68), 'pass'],
      ['ack unicast', 'ingress', dhcp('10.50.0.254', HOST4, 67, 68), 'pass'],
      ['discover', 'egress', dhcp('0.0.0.0', '255.255.255.255', 68, 67), 'pass'],
      ['request unicast', 'egress', dhcp(HOST4, '10.50.0.254', 68, 67), 'pass'],
      ['v6 solicit', 'egress', dhcp('fe80::1', 'ff02::1:2', 546, 547), 'pass'],
      ['v6 reply', 'ingress', dhcp('fe80::2', HOST6, 547, 546), 'pass'],
      ['server port in', 'ingress', dhcp(OUT4, HOST4, 68, 67), 'drop'],
      ['client port out as server', 'egress', dhcp(HOST4, OUT4, 67, 68), 'drop'],
      ['67 to 69', 'ingress', dhcp(OUT4, HOST4, 67, 69), 'drop'],
    ]);
  });

  it('replies of an allowed flow pass after its first packet created conntrack (reverse tuple)', () => {
    expectFates([
      ['reply before the SYN', 'egress', syn(HOST4, PEER4, 22, 40100, TcpFlag.syn | TcpFlag.ack), 'drop'],
      ['SYN', 'ingress', syn(PEER4, HOST4, 40100, 22), 'pass'],
      ['SYN-ACK', 'egress', syn(HOST4, PEER4, 22, 40100, TcpFlag.syn | TcpFlag.ack), 'pass'],
      ['ACK', 'ingress', syn(PEER4, HOST4, 40100, 22, TcpFlag.ack), 'pass'],
      ['data out', 'egress', syn(HOST4, PEER4, 22, 40100, TcpFlag.ack | TcpFlag.psh), 'pass'],
      ['other client port', 'egress', syn(HOST4, PEER4, 22, 40101, TcpFlag.syn | TcpFlag.ack), 'drop'],
      ['v6 SYN', 'ingress', syn(PEER6, HOST6, 40100, 22), 'pass'],
      ['v6 SYN-ACK', 'egress', syn(HOST6, PEER6, 22, 40100, TcpFlag.syn | TcpFlag.ack), 'pass'],
      [
        'dns query',
        'egress',
        ipFrame({ src: HOST4, dst: '9.9.9.9', l4: udp({ sport: 33000, dport: 53 }) }),
        'pass',
      ],
      [
        'dns answer',
        'ingress',
        ipFrame({ src: '9.9.9.9', dst: HOST4, l4: udp({ sport: 53, dport: 33000 }) }),
        'pass',
      ],
      [
        'dns answer to another port',
        'ingress',
        ipFrame({ src: '9.9.9.9', dst: HOST4, l4: udp({ sport: 53, dport: 33001 }) }),
        'drop',
      ],
      ['ping', 'ingress', ipFrame({ src: OUT4, dst: HOST4, l4: icmpEcho({ id: 4242 }) }), 'pass'],
      ['pong', 'egress', ipFrame({ src: HOST4, dst: OUT4, l4: icmpEcho({ id: 4242, reply: true }) }), 'pass'],
      [
        'pong of another id',
        'egress',
        ipFrame({ src: HOST4, dst: OUT4, l4: icmpEcho({ id: 4243, reply: true }) }),
        'drop',
      ],
    ]);
  });

  it('after a RST, a new SYN on the same tuple is decided afresh', () => {
    expectFates([
      ['SYN to 80', 'ingress', syn(OUT4, HOST4, 40200, 80), 'pass'],
      ['RST out', 'egress', syn(HOST4, OUT4, 80, 40200, TcpFlag.rst | TcpFlag.ack), 'pass'],
      ['new SYN, still allowed', 'ingress', syn(OUT4, HOST4, 40200, 80), 'pass'],
    ]);
  });

  it('an ICMP error quoting an allowed flow passes as related; one quoting an unknown flow drops', () => {
    const query = ipv4({
      src: HOST4,
      dst: '9.9.9.9',
      l4: udp({ sport: 34000, dport: 53, payload: Buffer.alloc(30) }),
    });
    const unknown = ipv4({ src: HOST4, dst: '9.9.9.9', l4: udp({ sport: 34001, dport: 53 }) });
    const https = ipv4({ src: HOST4, dst: '198.51.100.7', l4: tcp({ sport: 50100, dport: 443 }) });
    const unknownHttps = ipv4({ src: HOST4, dst: '198.51.100.7', l4: tcp({ sport: 50199, dport: 443 }) });
    const https6 = ipv6({ src: HOST6, dst: '2001:db8:1::1', l4: tcp({ sport: 50101, dport: 443 }) });
    const query6 = ipv6({ src: HOST6, dst: '2001:4860::8888', l4: udp({ sport: 34000, dport: 53 }) });
    const unknown6 = ipv6({ src: HOST6, dst: '2001:4860::8888', l4: udp({ sport: 34002, dport: 53 }) });
    const unreachable = (original: Buffer, from = '9.9.9.9') =>
      ipFrame({ src: from, dst: HOST4, l4: icmpError({ type: 3, code: 3, original }) });
    expectFates([
      ['dns query out', 'egress', ethernet(EtherType.ipv4, query), 'pass'],
      ['port unreachable for it', 'ingress', unreachable(query), 'pass'],
      ['from a router on the path', 'ingress', unreachable(query, OUT4), 'pass'],
      ['port unreachable for an unknown flow', 'ingress', unreachable(unknown), 'drop'],
      ['https SYN out', 'egress', ethernet(EtherType.ipv4, https), 'pass'],
      [
        'fragmentation needed for it',
        'ingress',
        ipFrame({ src: OUT4, dst: HOST4, l4: icmpError({ type: 3, code: 4, rest: 1400, original: https }) }),
        'pass',
      ],
      [
        'time exceeded for it',
        'ingress',
        ipFrame({ src: OUT4, dst: HOST4, l4: icmpError({ type: 11, code: 0, original: https }) }),
        'pass',
      ],
      ['v6 dns query out', 'egress', ethernet(EtherType.ipv6, query6), 'pass'],
      [
        'v6 port unreachable',
        'ingress',
        ipFrame({
          src: '2001:4860::8888',
          dst: HOST6,
          l4: icmpv6Error({ type: 1, code: 4, original: query6 }),
        }),
        'pass',
      ],
      [
        'v6 packet too big',
        'ingress',
        ipFrame({ src: OUT6, dst: HOST6, l4: icmpv6Error({ type: 2, rest: 1280, original: query6 }) }),
        'pass',
      ],
      [
        'v6 unreachable, unknown flow',
        'ingress',
        ipFrame({
          src: '2001:4860::8888',
          dst: HOST6,
          l4: icmpv6Error({ type: 1, code: 4, original: unknown6 }),
        }),
        'drop',
      ],
      // Many routers quote only the IP header and 8 bytes of TCP (RFC 792's minimum): the ports.
      [
        'fragmentation needed quoting 8 bytes of TCP',
        'ingress',
        ipFrame({
          src: OUT4,
          dst: HOST4,
          l4: icmpError({ type: 3, code: 4, rest: 1400, original: https.subarray(0, 28) }),
        }),
        'pass',
      ],
      [
        'the same for an unknown flow',
        'ingress',
        ipFrame({
          src: OUT4,
          dst: HOST4,
          l4: icmpError({ type: 3, code: 4, original: unknownHttps.subarray(0, 28) }),
        }),
        'drop',
      ],
      [
        'quoting 7 bytes of TCP is not enough',
        'ingress',
        ipFrame({
          src: OUT4,
          dst: HOST4,
          l4: icmpError({ type: 3, code: 4, original: https.subarray(0, 27) }),
        }),
        'drop',
      ],
      ['v6 https SYN out', 'egress', ethernet(EtherType.ipv6, https6), 'pass'],
      [
        'v6 packet too big quoting 8 bytes of TCP',
        'ingress',
        ipFrame({
          src: OUT6,
          dst: HOST6,
          l4: icmpv6Error({ type: 2, rest: 1280, original: https6.subarray(0, 48) }),
        }),
        'pass',
      ],
      // An error about a flow is not an error: an echo reply "quoting" the flow is not related.
      [
        'echo reply quoting it',
        'ingress',
        ipFrame({ src: '9.9.9.9', dst: HOST4, l4: icmp({ type: 0, payload: query }) }),
        'drop',
      ],
    ]);
  });

  it('an ICMP error cannot change the state of the flow it quotes', () => {
    const conntrack = new BpfMap(fw.map(FIREWALL_MAPS.conntrack), ctKey, ctValue);
    const state = () =>
      [...conntrack.entries()].find(
        ([k]) => k.proto === IpProto.tcp && [k.aPort, k.bPort].sort().join() === '22,40800',
      )?.[1].state;
    expectFates([
      ['SYN', 'ingress', syn(PEER4, HOST4, 40800, 22), 'pass'],
      ['SYN-ACK', 'egress', syn(HOST4, PEER4, 22, 40800, TcpFlag.syn | TcpFlag.ack), 'pass'],
      ['ACK', 'ingress', syn(PEER4, HOST4, 40800, 22, TcpFlag.ack), 'pass'],
    ]);
    expect(state()).toBe(2); // established
    const rst = ipv4({ src: HOST4, dst: PEER4, l4: tcp({ sport: 22, dport: 40800, flags: TcpFlag.rst }) });
    // Anyone can send this: it names the flow, but a sequence number is not checked.
    expect(
      run('ingress', ipFrame({ src: OUT4, dst: HOST4, l4: icmpError({ type: 3, code: 1, original: rst }) })),
    ).toBe(PASS);
    expect(state()).toBe(2); // still established, not closing
  });

  it('fragments: the first is judged by its ports, a non-first one drops under default deny', () => {
    const big = {
      src: PEER4,
      dst: HOST4,
      l4: tcp({ sport: 40300, dport: 22, payload: Buffer.alloc(600, 1) }),
    };
    const [first, second, third] = fragmentIpv4(big, 256);
    const v6first = ipv6({
      src: PEER6,
      dst: HOST6,
      l4: tcp({ sport: 40301, dport: 22 }),
      extensions: [{ type: 'fragment', offset: 0, more: true }],
    });
    const v6later = ipv6({
      src: PEER6,
      dst: HOST6,
      l4: rawL4(IpProto.tcp, Buffer.alloc(64)),
      extensions: [{ type: 'fragment', offset: 100, more: false }],
    });
    expectFates([
      ['v4 first fragment', 'ingress', ethernet(EtherType.ipv4, first!), 'pass'],
      ['v4 second fragment', 'ingress', ethernet(EtherType.ipv4, second!), 'drop'],
      ['v4 last fragment', 'ingress', ethernet(EtherType.ipv4, third!), 'drop'],
      ['v6 first fragment', 'ingress', ethernet(EtherType.ipv6, v6first), 'pass'],
      ['v6 later fragment', 'ingress', ethernet(EtherType.ipv6, v6later), 'drop'],
      [
        'v4 fragment not for this host',
        'ingress',
        ethernet(EtherType.ipv4, fragmentIpv4({ ...big, dst: OTHER4 }, 256)[1]!),
        'pass',
      ],
    ]);
  });

  it('IPv4 options and IPv6 extension headers are skipped to find the ports', () => {
    const routerAlert = Buffer.from([0x94, 0x04, 0, 0]);
    const chain: Ipv6Extension[] = [
      { type: 'hop-by-hop' },
      { type: 'dest-opts', length: 2 },
      { type: 'routing', length: 1 },
      { type: 'fragment', offset: 0 },
      { type: 'ah', length: 4 },
      { type: 'dest-opts' },
    ];
    const ssh6 = (extensions: Ipv6Extension[], dport = 22) =>
      ipFrame({ src: PEER6, dst: HOST6, l4: tcp({ sport: 40400 + extensions.length, dport }), extensions });
    expectFates([
      [
        'v4 router alert',
        'ingress',
        ipFrame({ src: PEER4, dst: HOST4, l4: tcp({ sport: 40400, dport: 22 }), options: routerAlert }),
        'pass',
      ],
      [
        'v4 40 bytes of options',
        'ingress',
        ipFrame({
          src: PEER4,
          dst: HOST4,
          l4: tcp({ sport: 40401, dport: 22 }),
          options: Buffer.alloc(40, 1),
        }),
        'pass',
      ],
      [
        'v4 options, closed port',
        'ingress',
        ipFrame({
          src: PEER4,
          dst: HOST4,
          l4: tcp({ sport: 40402, dport: 23 }),
          options: Buffer.alloc(40, 1),
        }),
        'drop',
      ],
      ['v6, six extension headers', 'ingress', ssh6(chain), 'pass'],
      ['v6, six extension headers, closed port', 'ingress', ssh6(chain, 23), 'drop'],
      ['v6, seven extension headers: malformed', 'ingress', ssh6([...chain, { type: 'dest-opts' }]), 'drop'],
      [
        'v6 ESP is a protocol, not an extension',
        'ingress',
        ipFrame({ src: PEER6, dst: HOST6, l4: rawL4(IpProto.esp, Buffer.alloc(40)) }),
        'drop',
      ],
      [
        'VRRP from the LAN',
        'ingress',
        ipFrame({ src: PEER4, dst: '224.0.0.18', l4: rawL4(IpProto.vrrp, Buffer.alloc(20)) }),
        'pass',
      ],
      [
        'VRRP from outside',
        'ingress',
        ipFrame({ src: OUT4, dst: '224.0.0.18', l4: rawL4(IpProto.vrrp, Buffer.alloc(20)) }),
        'drop',
      ],
    ]);
  });

  it('truncated and malformed headers drop under default deny', () => {
    const ok = syn(PEER4, HOST4, 40500, 22);
    const ok6 = syn(PEER6, HOST6, 40500, 22);
    const withIhl = (ihl: number) => {
      const frame = Buffer.from(ok);
      frame[14] = (frame[14]! & 0xf0) | ihl;
      return frame;
    };
    const withVersion = (frame: Buffer, version: number) => {
      const out = Buffer.from(frame);
      out[14] = (version << 4) | (out[14]! & 0x0f);
      return out;
    };
    expectFates([
      ['v4 whole', 'ingress', ok, 'pass'],
      ['v6 whole', 'ingress', ok6, 'pass'],
      ['v4 tcp header cut', 'ingress', ok.subarray(0, 14 + 20 + 19), 'drop'],
      ['v4 options cut', 'ingress', withIhl(8).subarray(0, 14 + 28), 'drop'],
      ['v6 tcp header cut', 'ingress', ok6.subarray(0, 14 + 40 + 19), 'drop'],
      ['ihl 4', 'ingress', withIhl(4), 'drop'],
      ['ihl 0', 'ingress', withIhl(0), 'drop'],
      ['ihl 15 past the end', 'ingress', withIhl(15), 'drop'],
      ['version 6 in an IPv4 ethertype', 'ingress', withVersion(ok, 6), 'drop'],
      ['version 4 in an IPv6 ethertype', 'ingress', withVersion(ok6, 4), 'drop'],
      [
        'udp cut',
        'egress',
        ipFrame({ src: HOST4, dst: OUT4, l4: udp({ sport: 1, dport: 53 }) }).subarray(0, 14 + 20 + 7),
        'drop',
      ],
      [
        'icmp cut',
        'ingress',
        ipFrame({ src: OUT4, dst: HOST4, l4: icmpEcho({ id: 1 }) }).subarray(0, 14 + 20 + 3),
        'drop',
      ],
      [
        'v6 extension header past the end',
        'ingress',
        ipFrame({
          src: PEER6,
          dst: HOST6,
          l4: tcp({ sport: 1, dport: 22 }),
          extensions: [{ type: 'hop-by-hop', length: 255 }],
        }).subarray(0, 200),
        'drop',
      ],
      // Malformed is judged before the host check: even forwarded junk drops under default deny.
      [
        'malformed, not for this host',
        'ingress',
        syn(PEER4, OTHER4, 1, 22).subarray(0, 14 + 20 + 10),
        'drop',
      ],
    ]);
  });

  it('BPF_PROG_TEST_RUN itself refuses frames shorter than their fixed IP header', () => {
    // The kernel will not build an skb whose IPv4 or IPv6 header is incomplete,
    // so the parser's own checks for these lengths are out of this test's reach.
    expect(refusedByTestRun(syn(PEER4, HOST4, 1, 22).subarray(0, 14 + 19))).toBe(true);
    for (const frame of [
      syn(PEER4, HOST4, 1, 22).subarray(0, 14),
      syn(PEER4, HOST4, 1, 22).subarray(0, 14 + 19),
      syn(PEER6, HOST6, 1, 22).subarray(0, 14 + 39),
    ]) {
      expect(() => run('ingress', frame)).toThrowError(/EINVAL/);
    }
    expect(refusedByTestRun(syn(PEER6, HOST6, 1, 22).subarray(0, 14 + 40))).toBe(false);
    expect(run('ingress', syn(PEER6, HOST6, 1, 22).subarray(0, 14 + 40))).toBe(DROP);
  });

  it('traffic that is not to or from a host address passes (forwarded)', () => {
    expectFates([
      ['v4 to another address, closed port', 'ingress', syn(OUT4, OTHER4, 40600, 23), 'pass'],
      ['v6 to another address, closed port', 'ingress', syn(OUT6, OTHER6, 40600, 23), 'pass'],
      ['v4 from another address', 'egress', syn(OTHER4, OUT4, 40601, 25), 'pass'],
      ['v6 from another address', 'egress', syn(OTHER6, OUT6, 40601, 25), 'pass'],
      // The same packets for the host itself.
      ['v4 to this host', 'ingress', syn(OUT4, HOST4, 40600, 23), 'drop'],
      ['v4 from this host', 'egress', syn(HOST4, OUT4, 40601, 25), 'drop'],
      // Multicast and broadcast reach the host's stack, so they count as the host's.
      [
        'v4 broadcast',
        'ingress',
        ipFrame({ src: OUT4, dst: '255.255.255.255', l4: udp({ sport: 1, dport: 9 }) }),
        'drop',
      ],
      [
        'v6 all-nodes',
        'ingress',
        ipFrame({ src: OUT6, dst: 'ff02::1', l4: udp({ sport: 1, dport: 9 }) }),
        'drop',
      ],
    ]);
  });
});

// ---------------------------------------------------------------------------

const rateWindow = struct('nw_rate_window', { startNs: u64, count: u64, suppressed: u64 });

describe('drop events', () => {
  let reader: RingBufferReader;
  const events: FwEvent[] = [];

  beforeAll(() => {
    reader = new RingBufferReader(fw.map(FIREWALL_MAPS.events), (data) =>
      events.push(fwEvent.decode(data, 0)),
    );
    reader.drain();
    events.length = 0;
  });

  afterAll(() => {
    maps.setEventsPerSecond(0);
    reader?.close();
  });

  const take = () => {
    reader.drain();
    return events.splice(0);
  };

  it('are off until a rate is set', () => {
    expect(run('ingress', syn(OUT4, HOST4, 41000, 23))).toBe(DROP);
    expect(take()).toEqual([]);
  });

  it('a dropped SYN yields one event with its addresses, ports, direction, verdict and reason', () => {
    maps.setEventsPerSecond(1000);
    const frame = syn(OUT4, HOST4, 41001, 23);
    expect(run('ingress', frame)).toBe(DROP);
    expect(run('ingress', syn(PEER4, HOST4, 41002, 22))).toBe(PASS); // allowed: no event
    const [event, ...rest] = take();
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      ifindex: 1, // BPF_PROG_TEST_RUN runs the program on the loopback device
      rule: 0,
      saddr: new Uint8Array(mappedAddress(OUT4)),
      daddr: new Uint8Array(mappedAddress(HOST4)),
      sport: 41001,
      dport: 23,
      proto: IpProto.tcp,
      direction: Direction.ingress,
      verdict: Verdict.deny,
      reason: Reason.default,
      generation,
      len: frame.length,
    });
    expect(event!.tsNs).toBeGreaterThan(0n);
  });

  it('egress drops, rule drops and malformed drops say so', () => {
    expect(run('egress', syn(HOST6, OUT6, 41003, 25))).toBe(DROP);
    expect(run('ingress', syn(DENIED4, HOST4, 41004, 80))).toBe(DROP);
    expect(run('egress', syn(HOST4, OUT4, 41005, 443))).toBe(DROP);
    const cut = syn(PEER4, HOST4, 41006, 22).subarray(0, 14 + 20 + 10);
    expect(run('ingress', cut)).toBe(DROP);
    const ruleIndex = (description: string) => compiled.rules.findIndex((r) => r.description === description);
    expect(
      take().map((e) => ({
        saddr: Buffer.from(e.saddr).toString('hex'),
        dport: e.dport,
        direction: e.direction,
        reason: e.reason,
        rule: e.rule,
        len: e.len,
      })),
    ).toEqual([
      {
        saddr: mappedAddress(HOST6).toString('hex'),
        dport: 25,
        direction: Direction.egress,
        reason: Reason.default,
        rule: 1,
        len: 14 + 40 + 20,
      },
      {
        saddr: mappedAddress(DENIED4).toString('hex'),
        dport: 80,
        direction: Direction.ingress,
        reason: Reason.rule,
        rule: ruleIndex('fuzz ingressDeny[0]'),
        len: 14 + 20 + 20,
      },
      {
        saddr: mappedAddress(HOST4).toString('hex'),
        dport: 443,
        direction: Direction.egress,
        reason: Reason.rule,
        rule: ruleIndex('fuzz egressDeny[0]'),
        len: 14 + 20 + 20,
      },
      // Parsed up to the IPv4 header; no ports.
      {
        saddr: mappedAddress(PEER4).toString('hex'),
        dport: 0,
        direction: Direction.ingress,
        reason: Reason.malformed,
        rule: 2,
        len: 14 + 20 + 10,
      },
    ]);
  });

  it('the rate limit caps events per second and counts what it suppressed', async () => {
    const LIMIT = 50;
    const BURST = 400;
    const windows = new BpfMap(fw.map(FIREWALL_MAPS.eventRate), u32, rateWindow);
    const suppressed = () => windows.lookupPerCpu(0)!.reduce((sum, w) => sum + w.suppressed, 0n);
    // Let every CPU's one-second window run out.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    maps.setEventsPerSecond(LIMIT);
    take();
    const before = suppressed();
    // One test run, BURST drops in a kernel loop: far less than a second.
    const result = testRun(programs.ingress, { packet: syn(OUT4, HOST4, 41100, 23), repeat: BURST });
    expect(result.retval).toBe(DROP);
    const received = take().length;
    // The limit is per CPU; the loop may move CPU at most at a reschedule point.
    expect(received).toBeGreaterThanOrEqual(LIMIT);
    expect(received).toBeLessThanOrEqual(LIMIT * possibleCpus());
    for (const w of windows.lookupPerCpu(0)!) expect(w.count).toBeLessThanOrEqual(BigInt(LIMIT));
    expect(suppressed() - before).toBe(BigInt(BURST - received));

    // Within the same second, more drops add nothing past the limit of each CPU…
    for (let i = 0; i < 2 * LIMIT; i++) run('ingress', syn(OUT4, HOST4, 41101, 23));
    expect(received + take().length).toBeLessThanOrEqual(LIMIT * possibleCpus());
    // …and a new second opens a new window.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(run('ingress', syn(OUT4, HOST4, 41102, 23))).toBe(DROP);
    expect(take().map((e) => e.sport)).toEqual([41102]);
  });
});

// ---------------------------------------------------------------------------
// A model of the datapath, from bpf/firewall.c and bpf/lib/*.h

const NW_MAX_HDR_OFF = 512;
const EXT_HEADERS = new Set([
  IpProto.hopByHop,
  IpProto.routing,
  IpProto.destOpts,
  IpProto.fragment,
  IpProto.ah,
]);
const CT = { syn: 1, established: 2, closing: 3, other: 4 } as const;

interface ModelPacket {
  saddr: Buffer;
  daddr: Buffer;
  sport: number;
  dport: number;
  proto: number;
  family: number;
  tcpFlags: number;
  fragment: boolean;
  icmpType: number;
  icmpCode: number;
  quoted: boolean;
  l4Off: number;
}

type ParseResult = 'ok' | 'not-ip' | 'malformed';

const newPacket = (): ModelPacket => ({
  saddr: Buffer.alloc(16),
  daddr: Buffer.alloc(16),
  sport: 0,
  dport: 0,
  proto: 0,
  family: 0,
  tcpFlags: 0,
  fragment: false,
  icmpType: 0,
  icmpCode: 0,
  quoted: false,
  l4Off: 0,
});

function mapV4(b: Buffer, at: number): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), b.subarray(at, at + 4)]);
}

function parseL4(b: Buffer, p: ModelPacket): ParseResult {
  p.sport = 0;
  p.dport = 0;
  if (p.fragment) return 'ok';
  const off = p.l4Off;
  if (off > NW_MAX_HDR_OFF) return 'malformed';
  switch (p.proto) {
    case IpProto.tcp:
      // Quoted in an ICMP error: the ports are enough, the flags are not the flow's.
      if (off + (p.quoted ? 8 : 20) > b.length) return 'malformed';
      p.sport = b.readUInt16BE(off);
      p.dport = b.readUInt16BE(off + 2);
      if (!p.quoted) p.tcpFlags = b[off + 13]!;
      return 'ok';
    case IpProto.udp:
    case IpProto.sctp:
      if (off + 8 > b.length) return 'malformed';
      p.sport = b.readUInt16BE(off);
      p.dport = b.readUInt16BE(off + 2);
      return 'ok';
    case IpProto.icmp:
    case IpProto.icmpv6: {
      if (off + 4 > b.length) return 'malformed';
      p.icmpType = b[off]!;
      p.icmpCode = b[off + 1]!;
      if (off + 6 <= b.length) {
        const t = b[off]!;
        const echo = p.proto === IpProto.icmp ? t === 8 || t === 0 : t === 128 || t === 129;
        if (echo) {
          p.sport = b.readUInt16BE(off + 4);
          p.dport = p.sport;
        }
      }
      return 'ok';
    }
  }
  return 'ok';
}

function parseIpv4(b: Buffer, off: number, p: ModelPacket): ParseResult {
  if (off > NW_MAX_HDR_OFF || off + 20 > b.length) return 'malformed';
  const ihl = (b[off]! & 0xf) * 4;
  if (b[off]! >> 4 !== 4 || ihl < 20 || off + ihl > b.length) return 'malformed';
  p.family = 4;
  p.proto = b[off + 9]!;
  p.saddr = mapV4(b, off + 12);
  p.daddr = mapV4(b, off + 16);
  p.fragment = (b.readUInt16BE(off + 6) & 0x1fff) !== 0;
  p.l4Off = off + ihl;
  return parseL4(b, p);
}

function parseIpv6(b: Buffer, off: number, p: ModelPacket): ParseResult {
  if (off > NW_MAX_HDR_OFF || off + 40 > b.length) return 'malformed';
  if (b[off]! >> 4 !== 6) return 'malformed';
  p.family = 6;
  p.saddr = Buffer.from(b.subarray(off + 8, off + 24));
  p.daddr = Buffer.from(b.subarray(off + 24, off + 40));
  let next = b[off + 6]!;
  let l4 = off + 40;
  for (let i = 0; i < 6; i++) {
    if (l4 > NW_MAX_HDR_OFF) return 'malformed';
    if (!EXT_HEADERS.has(next as never)) break;
    if (l4 + 8 > b.length) return 'malformed';
    if (next === IpProto.fragment) {
      if ((b.readUInt16BE(l4 + 2) & 0xfff8) !== 0) p.fragment = true;
      next = b[l4]!;
      l4 += 8;
    } else if (next === IpProto.ah) {
      const len = b[l4 + 1]!;
      next = b[l4]!;
      l4 += (len + 2) * 4;
    } else {
      const len = b[l4 + 1]!;
      next = b[l4]!;
      l4 += (len + 1) * 8;
    }
  }
  if (EXT_HEADERS.has(next as never)) return 'malformed';
  p.proto = next;
  p.l4Off = l4;
  return parseL4(b, p);
}

function parseFrame(b: Buffer, p: ModelPacket): ParseResult {
  if (b.length < 14) return 'malformed';
  const type = b.readUInt16BE(12);
  if (type === EtherType.ipv4) return parseIpv4(b, 14, p);
  if (type === EtherType.ipv6) return parseIpv6(b, 14, p);
  return 'not-ip';
}

type ModelOutcome =
  | 'not-ip'
  | 'malformed'
  | 'always'
  | 'conntrack'
  | 'related'
  | 'forwarded'
  | 'default'
  | 'rule-allow'
  | 'rule-deny';

class DatapathModel {
  private readonly ct = new Map<string, { state: number; origin: string }>();
  private readonly hosts: Set<string>;
  private readonly identities: { shift: bigint; addr: bigint; len: number; set: number }[];
  private readonly entries: CompiledPolicy['entries'];

  constructor(
    private readonly compiled: CompiledPolicy,
    hostAddresses: string[],
  ) {
    this.hosts = new Set(hostAddresses.map((a) => mappedAddress(a).toString('hex')));
    this.identities = compiled.identities.map(({ prefix, set }) => {
      const shift = BigInt(128 - prefix.len);
      return { shift, addr: prefix.addr >> shift, len: prefix.len, set };
    });
    this.entries = compiled.entries;
  }

  clearConntrack(): void {
    this.ct.clear();
  }

  get conntrackSize(): number {
    return this.ct.size;
  }

  decide(frame: Buffer, dir: 'ingress' | 'egress'): { fate: 'pass' | 'drop'; outcome: ModelOutcome } {
    const p = newPacket();
    const parsed = parseFrame(frame, p);
    if (parsed === 'not-ip') return { fate: 'pass', outcome: 'not-ip' };
    const fallback =
      this.compiled.defaults[dir] === Verdict.none ? Verdict.allow : this.compiled.defaults[dir];
    if (parsed === 'malformed')
      return { fate: fallback === Verdict.deny ? 'drop' : 'pass', outcome: 'malformed' };
    if (this.alwaysAllowed(p, dir)) return { fate: 'pass', outcome: 'always' };
    if (!p.fragment && this.ctLookup(p)) return { fate: 'pass', outcome: 'conntrack' };
    if (this.ctRelated(frame, p)) return { fate: 'pass', outcome: 'related' };
    if (!this.isHost(dir === 'ingress' ? p.daddr : p.saddr)) return { fate: 'pass', outcome: 'forwarded' };
    const set = this.identity(dir === 'ingress' ? p.saddr : p.daddr);
    const verdict = this.policy(set, Direction[dir], p.proto, this.policyPort(p));
    const outcome: ModelOutcome =
      verdict === Verdict.none ? 'default' : verdict === Verdict.deny ? 'rule-deny' : 'rule-allow';
    const effective = verdict === Verdict.none ? fallback : verdict;
    if (effective === Verdict.deny) return { fate: 'drop', outcome };
    this.ctCreate(p);
    return { fate: 'pass', outcome };
  }

  private alwaysAllowed(p: ModelPacket, dir: 'ingress' | 'egress'): boolean {
    if (p.fragment) return false;
    if (p.proto === IpProto.icmpv6) {
      const t = p.icmpType;
      return (t >= 133 && t <= 137) || (t >= 130 && t <= 132) || t === 143;
    }
    if (p.proto === IpProto.udp) {
      const client = p.family === 4 ? 68 : 546;
      const server = p.family === 4 ? 67 : 547;
      return dir === 'ingress'
        ? p.sport === server && p.dport === client
        : p.sport === client && p.dport === server;
    }
    return false;
  }

  private policyPort(p: ModelPacket): number {
    if (p.fragment) return 0;
    switch (p.proto) {
      case IpProto.tcp:
      case IpProto.udp:
      case IpProto.sctp:
        return p.dport;
      case IpProto.icmp:
      case IpProto.icmpv6:
        return (p.icmpType << 8) | p.icmpCode;
    }
    return 0;
  }

  private ctKey(p: ModelPacket): { key: string; source: string } {
    const source = `${p.saddr.toString('hex')}.${p.sport}`;
    const dest = `${p.daddr.toString('hex')}.${p.dport}`;
    const key = source <= dest ? `${p.proto}|${source}|${dest}` : `${p.proto}|${dest}|${source}`;
    return { key, source };
  }

  private ctLookup(p: ModelPacket): boolean {
    const { key, source } = this.ctKey(p);
    const entry = this.ct.get(key);
    if (!entry) return false;
    if (p.proto === IpProto.tcp) {
      const f = p.tcpFlags;
      if (f & TcpFlag.rst || f & TcpFlag.fin) entry.state = CT.closing;
      else if (entry.state === CT.syn && f & TcpFlag.ack && source !== entry.origin)
        entry.state = CT.established;
      else if (entry.state === CT.closing && f & TcpFlag.syn && !(f & TcpFlag.ack)) return false;
    }
    return true;
  }

  private ctCreate(p: ModelPacket): void {
    const { key, source } = this.ctKey(p);
    let state: number = CT.other;
    if (p.proto === IpProto.tcp) {
      const f = p.tcpFlags;
      state = f & TcpFlag.syn && !(f & TcpFlag.ack) ? CT.syn : CT.established;
    }
    this.ct.set(key, { state, origin: source });
  }

  private ctRelated(b: Buffer, p: ModelPacket): boolean {
    let isError: boolean;
    if (p.proto === IpProto.icmp) isError = p.icmpType === 3 || p.icmpType === 11 || p.icmpType === 12;
    else if (p.proto === IpProto.icmpv6) isError = p.icmpType >= 1 && p.icmpType <= 4;
    else return false;
    if (!isError || p.fragment) return false;
    const inner = { ...newPacket(), quoted: true };
    const innerOff = p.l4Off + 8;
    const parsed = p.family === 4 ? parseIpv4(b, innerOff, inner) : parseIpv6(b, innerOff, inner);
    if (parsed !== 'ok') return false;
    return this.ctLookup(inner);
  }

  private isHost(addr: Buffer): boolean {
    if (this.hosts.has(addr.toString('hex'))) return true;
    if (addr[0] === 0xff) return true;
    if (addr[10] === 0xff && addr[11] === 0xff && addr[0] === 0 && addr[8] === 0) {
      if ((addr[12]! & 0xf0) === 0xe0) return true;
      if (addr[12] === 0xff && addr[13] === 0xff && addr[14] === 0xff && addr[15] === 0xff) return true;
    }
    return false;
  }

  /** The policy's verdict (Verdict.none when no rule matches) for a new flow's peer. */
  verdictFor(peer: Buffer, dir: number, protocol: number, port: number): number {
    return this.policy(this.identity(peer), dir, protocol, port);
  }

  private identity(addr: Buffer): number {
    const value = BigInt(`0x${addr.toString('hex')}`);
    let best: { len: number; set: number } | undefined;
    for (const id of this.identities)
      if (value >> id.shift === id.addr && (!best || id.len > best.len)) best = { len: id.len, set: id.set };
    return best?.set ?? 0;
  }

  private policy(set: number, dir: number, protocol: number, port: number): number {
    const key = (BigInt(set) << 32n) | (BigInt(dir) << 24n) | (BigInt(protocol) << 16n) | BigInt(port);
    let best: CompiledPolicy['entries'][number] | undefined;
    for (const e of this.entries) {
      if (e.set !== set || e.direction !== dir) continue;
      const shift = BigInt(64 - e.prefixlen);
      const bits =
        (BigInt(e.set) << 32n) | (BigInt(e.direction) << 24n) | (BigInt(e.proto) << 16n) | BigInt(e.port);
      if (key >> shift === bits >> shift && (!best || e.prefixlen > best.prefixlen)) best = e;
    }
    return best?.verdict ?? Verdict.none;
  }
}

// ---------------------------------------------------------------------------
// Packet generation

/** Random rules and packets, reproducible from a seed. */
const Gen = SeededRandom;
type Gen = SeededRandom;

const V4_POOL = [
  HOST4,
  HOST4,
  PEER4,
  DENIED4,
  OTHER4,
  OUT4,
  '198.51.100.7',
  '9.9.9.9',
  '224.0.0.18',
  '255.255.255.255',
  '0.0.0.0',
];
const V6_POOL = [HOST6, HOST6, PEER6, OTHER6, OUT6, 'ff02::1', 'ff02::1:ff00:1', 'fe80::1', '::'];
const MAX_FRAME = 1514;
const PORTS = [22, 23, 25, 53, 67, 68, 80, 443, 546, 547, 3868, 7999, 8000, 8999, 9000, 40000, 65535, 0];

class PacketFactory {
  /** Recent valid IP packets (no Ethernet header), for ICMP errors to quote. */
  private readonly recent: Buffer[] = [];
  /** IP packets that opened a flow, so that ICMP errors about them are related. */
  private readonly flows: Buffer[] = [];

  /** Tells the factory that a frame opened a conntrack entry. */
  opened(frame: Buffer): void {
    if (this.flows.length < 64) this.flows.push(frame.subarray(14));
    else this.flows[this.g.int(0, 63)] = frame.subarray(14);
  }

  /** A packet to quote in an ICMP error: one that opened a flow, one seen recently, or none. */
  private quoted(): Buffer | undefined {
    const g = this.g;
    if (this.flows.length > 0 && g.chance(0.5)) return g.pick(this.flows);
    return this.recent.length > 0 && g.chance(0.6) ? g.pick(this.recent) : undefined;
  }

  constructor(private readonly g: Gen) {}

  private address(family: 4 | 6): string {
    const g = this.g;
    if (g.chance(0.1)) {
      if (family === 4) return [10, 50, 0, g.int(0, 255)].join('.');
      return `fd50::${g.int(0, 0xffff).toString(16)}`;
    }
    return g.pick(family === 4 ? V4_POOL : V6_POOL);
  }

  /** How much of a packet an ICMP error quotes: often the IP header and 8 bytes, as many routers do. */
  private quoteLength(packet: Buffer): number {
    const g = this.g;
    const ipHeader = packet[0]! >> 4 === 4 ? (packet[0]! & 0xf) * 4 : 40;
    if (g.chance(0.4)) return Math.min(packet.length, ipHeader + g.pick([8, 8, 7, 4, 20]));
    return g.int(8, packet.length);
  }

  private port(): number {
    return this.g.chance(0.8) ? this.g.pick(PORTS) : this.g.int(0, 65535);
  }

  private l4(family: 4 | 6): L4 {
    const g = this.g;
    const r = g.random();
    if (r < 0.35) {
      const flags = g.pick([
        TcpFlag.syn,
        TcpFlag.syn | TcpFlag.ack,
        TcpFlag.ack,
        TcpFlag.fin | TcpFlag.ack,
        TcpFlag.rst,
        g.int(0, 255),
      ]);
      const options = g.chance(0.2) ? g.bytes(g.int(1, 40)) : undefined;
      return tcp({ sport: this.port(), dport: this.port(), flags, options, payload: g.bytes(g.int(0, 40)) });
    }
    if (r < 0.55) return udp({ sport: this.port(), dport: this.port(), payload: g.bytes(g.int(0, 40)) });
    if (r < 0.6) return sctp({ sport: this.port(), dport: this.port() });
    if (r < 0.8) {
      const quoted = this.quoted();
      if (family === 4) {
        if (quoted && g.chance(0.7))
          return icmpError({
            type: g.pick([3, 11, 12]),
            code: g.int(0, 4),
            original: quoted.subarray(0, this.quoteLength(quoted)),
          });
        return g.chance(0.5)
          ? icmpEcho({ id: g.int(0, 3), reply: g.chance(0.5) })
          : icmp({ type: g.int(0, 255), code: g.int(0, 3) });
      }
      if (quoted && g.chance(0.7))
        return icmpv6Error({ type: g.int(1, 4), original: quoted.subarray(0, this.quoteLength(quoted)) });
      if (g.chance(0.3)) return icmpv6Echo({ id: g.int(0, 3), reply: g.chance(0.5) });
      if (g.chance(0.3)) return neighborSolicitation(HOST6);
      return icmpv6({ type: g.int(0, 255), code: g.int(0, 3), body: g.bytes(g.int(0, 24)) });
    }
    // Any protocol number, including the ones that mean "extension header" in IPv6.
    return rawL4(
      g.pick([IpProto.vrrp, IpProto.esp, 47, 0, 43, 44, 51, 59, 60, g.int(0, 255)]),
      g.bytes(g.int(0, 64)),
    );
  }

  private extensions(): Ipv6Extension[] {
    const g = this.g;
    const count = g.chance(0.5) ? 0 : g.int(1, 8);
    return Array.from({ length: count }, (): Ipv6Extension => {
      const kind = g.pick(['hop-by-hop', 'routing', 'dest-opts', 'fragment', 'ah', 'raw'] as const);
      const length = g.chance(0.05) ? 255 : g.int(0, 3);
      switch (kind) {
        case 'fragment':
          return { type: 'fragment', offset: g.chance(0.7) ? 0 : g.int(1, 0x1fff), more: g.chance(0.5) };
        case 'ah':
          return { type: 'ah', length: g.chance(0.05) ? 255 : g.int(1, 6) };
        case 'raw':
          return { type: 'raw', protocol: g.pick([0, 43, 60, 44, 51]), bytes: g.bytes(g.pick([8, 16, 4])) };
        default:
          return { type: kind, length };
      }
    });
  }

  /** A well-formed packet (before mutation), as a whole frame. */
  valid(): Buffer {
    const g = this.g;
    const family = g.chance(0.55) ? 4 : 6;
    // Mostly traffic of this host, in either direction.
    const host = family === 4 ? HOST4 : HOST6;
    const toHost = g.chance(0.5);
    const src = toHost ? this.address(family) : g.chance(0.85) ? host : this.address(family);
    const dst = toHost ? (g.chance(0.85) ? host : this.address(family)) : this.address(family);
    const l4 = this.l4(family);
    let ip: Buffer;
    if (family === 4) {
      ip = ipv4({
        src,
        dst,
        l4,
        options: g.chance(0.15) ? g.bytes(g.int(1, 40)) : undefined,
        fragmentOffset: g.chance(0.08) ? g.int(1, 0x1fff) : 0,
        moreFragments: g.chance(0.1),
      });
    } else {
      ip = ipv6({ src, dst, l4, extensions: this.extensions() });
    }
    if (this.recent.length < 64) this.recent.push(ip);
    else this.recent[g.int(0, 63)] = ip;
    return ethernet(family === 4 ? EtherType.ipv4 : EtherType.ipv6, ip);
  }

  /** A valid packet, then zero or more mutations. */
  next(): Buffer {
    const g = this.g;
    const r = g.random();
    if (r < 0.03) {
      // Garbage behind an IP ethertype.
      return ethernet(g.pick([EtherType.ipv4, EtherType.ipv6]), g.bytes(g.int(0, 200)));
    }
    let frame = this.valid();
    if (r >= 0.35) {
      const mutations = g.int(1, 3);
      for (let m = 0; m < mutations; m++) frame = this.mutate(frame);
    }
    // Huge extension headers make huge packets; a link's MTU cuts them (and test runs take at most a page).
    return frame.length > MAX_FRAME ? frame.subarray(0, MAX_FRAME) : frame;
  }

  private mutate(frame: Buffer): Buffer {
    const g = this.g;
    const out = Buffer.from(frame);
    const header = Math.min(out.length, 14 + 120);
    switch (g.int(0, 9)) {
      case 0: // truncate
        return out.subarray(0, g.int(14, out.length));
      case 1: // flip a few bytes in the headers
        for (let i = g.int(1, 4); i > 0; i--) if (header > 14) out[g.int(14, header - 1)] = g.int(0, 255);
        return out;
      case 2: // flip single bits anywhere
        for (let i = g.int(1, 8); i > 0; i--)
          if (out.length > 14) out[g.int(14, out.length - 1)]! ^= 1 << g.int(0, 7);
        return out;
      case 3: // random ihl / version nibble
        if (out.length > 14) out[14] = g.chance(0.7) ? (out[14]! & 0xf0) | g.int(0, 15) : g.int(0, 255);
        return out;
      case 4: // a random protocol / next header in the first IP header
        if (out.length > 14 + 9)
          out[out.readUInt16BE(12) === EtherType.ipv6 ? 14 + 6 : 14 + 9] = g.int(0, 255);
        return out;
      case 5: // huge extension lengths: 0xff where a length byte might be
        for (let i = g.int(1, 3); i > 0; i--)
          if (out.length > 14 + 41) out[g.int(14 + 40, Math.min(out.length, 14 + 200) - 1)] = 0xff;
        return out;
      case 6: // grow: random bytes appended
        return Buffer.concat([out, g.bytes(g.int(1, 300))]);
      case 7: // splice a piece of another packet into the header region
        {
          const other = this.valid();
          const from = g.int(14, Math.max(14, other.length - 1));
          const len = g.int(1, 40);
          other.copy(out, g.int(14, Math.max(14, out.length - 1)), from, from + len);
        }
        return out;
      case 8: // swap the ethertype between IPv4 and IPv6
        out.writeUInt16BE(out.readUInt16BE(12) === EtherType.ipv4 ? EtherType.ipv6 : EtherType.ipv4, 12);
        return out;
      default: // not IP at all: ARP, an in-band VLAN tag, anything
        out.writeUInt16BE(
          g.pick([EtherType.arp, EtherType.vlan, EtherType.qinq, 0x88cc, g.int(0, 0xffff)]),
          12,
        );
        return out;
    }
  }
}

/** Fixed packets whose every truncation and every single-byte change is tried. */
function sweepBases(): Buffer[] {
  const https = ipv4({ src: HOST4, dst: '198.51.100.7', l4: tcp({ sport: 50500, dport: 443 }) });
  const query6 = ipv6({
    src: HOST6,
    dst: OUT6,
    l4: udp({ sport: 34500, dport: 53, payload: Buffer.alloc(8) }),
  });
  return [
    syn(PEER4, HOST4, 40700, 22),
    ipFrame({
      src: PEER4,
      dst: HOST4,
      l4: tcp({ sport: 40701, dport: 22 }),
      options: Buffer.from([0x94, 4, 0, 0, 1, 1, 1, 0]),
    }),
    ipFrame({
      src: PEER6,
      dst: HOST6,
      l4: tcp({ sport: 40702, dport: 22 }),
      extensions: [
        { type: 'hop-by-hop' },
        { type: 'routing', length: 1 },
        { type: 'fragment' },
        { type: 'ah', length: 2 },
        { type: 'dest-opts' },
      ],
    }),
    ethernet(EtherType.ipv4, https),
    ipFrame({ src: OUT4, dst: HOST4, l4: icmpError({ type: 3, code: 4, original: https }) }),
    ethernet(EtherType.ipv6, query6),
    ipFrame({ src: OUT6, dst: HOST6, l4: icmpv6Error({ type: 1, code: 4, original: query6 }) }),
    ipFrame({ src: PEER6, dst: 'ff02::1:ff00:1', l4: neighborSolicitation(HOST6) }),
    ipFrame({
      src: '10.50.0.254',
      dst: '255.255.255.255',
      l4: udp({ sport: 67, dport: 68, payload: Buffer.alloc(16) }),
    }),
    ipFrame({ src: PEER4, dst: '224.0.0.18', l4: rawL4(IpProto.vrrp, Buffer.alloc(20)) }),
    ipFrame({ src: OUT4, dst: HOST4, l4: icmpEcho({ id: 77 }) }),
  ];
}

function* sweep(base: Buffer): Generator<Buffer> {
  for (let len = 14; len <= base.length; len++) yield base.subarray(0, len);
  for (let i = 14; i < base.length; i++)
    for (const value of [0x00, 0xff, base[i]! ^ 0x80, base[i]! + 1]) {
      const out = Buffer.from(base);
      out[i] = value & 0xff;
      yield out;
    }
}

describe('fuzz', () => {
  it('every verdict is pass or drop, and matches the datapath model, over 200k+ random and mutated packets', () => {
    const start = performance.now();
    const conntrack = new BpfMap(fw.map(FIREWALL_MAPS.conntrack), ctKey, ctValue);
    const model = new DatapathModel(compiled, FACTS.hostAddresses);
    const clear = () => {
      const keys = [...conntrack.keys()];
      for (const key of keys) conntrack.delete(key);
      model.clearConntrack();
    };
    maps.setEventsPerSecond(0);
    clear();

    const g = new Gen(0xf122);
    const factory = new PacketFactory(g);
    const retvals = new Map<number, number>();
    const outcomes = new Map<string, number>();
    const mismatches: string[] = [];
    let packets = 0;
    let runs = 0;
    let testRunNs = 0;

    let refused = 0;
    const check = (frame: Buffer) => {
      if (refusedByTestRun(frame)) {
        // Checked on a sample: the kernel refuses them, the program never runs.
        if (refused++ % 64 === 0)
          expect(() => testRun(programs.ingress, { packet: frame })).toThrowError(/EINVAL/);
        return;
      }
      packets++;
      for (const dir of ['ingress', 'egress'] as const) {
        const t0 = performance.now();
        const { retval } = testRun(programs[dir], { packet: frame });
        testRunNs += (performance.now() - t0) * 1e6;
        runs++;
        retvals.set(retval, (retvals.get(retval) ?? 0) + 1);
        const expected = model.decide(frame, dir);
        if (expected.outcome === 'rule-allow') factory.opened(frame);
        const key = `${dir} ${expected.outcome} ${expected.fate}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        if (fate(retval) !== expected.fate && mismatches.length < 10) {
          mismatches.push(
            `${dir}: kernel ${fate(retval)}, model ${expected.fate} (${expected.outcome}): ${frame.toString('hex')}`,
          );
        }
      }
    };

    // Every truncation and many one-byte changes of fixed packets, conntrack fresh for each base.
    for (const base of sweepBases()) {
      clear();
      for (const frame of sweep(base)) check(frame);
    }
    const swept = packets;

    // Random and mutated packets, in chunks that start from an empty conntrack
    // (a chunk takes far less than the shortest conntrack timeout, 10 s).
    const TOTAL = 220_000;
    while (packets < swept + TOTAL) {
      clear();
      for (let i = 0; i < 10_000; i++) check(factory.next());
    }
    const seconds = (performance.now() - start) / 1000;

    console.log(
      `fuzz: ${packets} packets (${swept} from sweeps; ${refused} more refused by test run), ${runs} test runs in ${seconds.toFixed(1)} s ` +
        `(${(testRunNs / runs / 1000).toFixed(1)} µs per run from JS); verdicts ${JSON.stringify(Object.fromEntries(retvals))}`,
    );
    console.log(`model outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);

    expect(mismatches).toEqual([]);
    expect([...retvals.keys()].sort()).toEqual([DROP, PASS]);
    expect(packets).toBeGreaterThanOrEqual(200_000);
    // The generator reached every branch of the datapath, in both directions.
    for (const dir of ['ingress', 'egress'])
      for (const outcome of [
        'not-ip',
        'malformed',
        'always',
        'conntrack',
        'related',
        'forwarded',
        'default',
        'rule-allow',
        'rule-deny',
      ]) {
        expect(
          [...outcomes.keys()].some((k) => k.startsWith(`${dir} ${outcome} `)),
          `${dir} ${outcome}`,
        ).toBe(true);
      }
    expect(model.conntrackSize).toBeGreaterThan(0);
  });
});
