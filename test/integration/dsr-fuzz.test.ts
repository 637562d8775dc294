/**
 * DSR's programs through BPF_PROG_TEST_RUN, inside a lab namespace whose
 * routes and neighbours the XDP program's FIB lookups use: known answers for
 * VIP traffic (IPIP and IP6IP6 encapsulation, byte for byte), flows keeping
 * their backend, everything else passing untouched; the decapsulation on
 * backends; and a fuzz of random and mutated packets that must all get a
 * defined verdict, with non-VIP packets always passed unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { u64 } from '../../bpf/codec.js';
import { DSR_MAPS, dsrFlow, flowKey64 } from '../../bpf/codecs/dsr.js';
import { BpfMap, BpfObject, type BpfProgram, inNetns, testRun } from '../../bpf/index.js';
import { DsrMaps } from '../../daemon/services/dsr-maps.js';
import { planDsr } from '../../services/dsr-plan.js';
import type { Service } from '../../services/model.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import {
  addressBytes,
  arpFrame,
  EtherType,
  ethernet,
  internetChecksum,
  ipFrame,
  ipv4,
  ipv6,
  TcpFlag,
  tcp,
  udp,
} from '../support/packets.js';
import { BPF_OBJECT } from '../support/paths.js';
import { SeededRandom } from '../support/random.js';
import { sampleService } from '../support/services.js';

const XDP = { drop: 1, pass: 2, tx: 3, redirect: 4 } as const;
const TC_UNSPEC = 0xffffffff;
const TC_SHOT = 2;
const IPPROTO_IPIP = 4;

const LB = { v4: '10.81.0.1', v6: 'fd81::1' };
const B1 = { v4: '10.81.0.2', v6: 'fd81::2', mac: '02:81:00:00:00:02' };
const B2 = { v4: '10.81.0.3', v6: 'fd81::3', mac: '02:81:00:00:00:03' };
const NOMAC = '10.81.0.9'; // a backend without a neighbour entry
const VIP = { v4: '192.0.2.10', v6: '2001:db8::10' };
const EMPTY_VIP = '192.0.2.11';
const CLIENT = { v4: '198.51.100.7', v6: '2001:db8:1::7' };

const service = (over: Partial<Service>): Service =>
  sampleService({ loadBalancerIPs: [VIP.v4, VIP.v6], backendNodes: [B1.v4, B2.v4, B1.v6, B2.v6], ...over });

let lab: Lab;
let lb: Host;
let bpffs: TempBpffs;
let dsr: BpfObject;
let maps: DsrMaps;
let xdp: BpfProgram;
let decap: BpfProgram;
let lbMac: string;

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  lb = await lab.host('lb');
  const peer = await lab.host('peer');
  await lab.link(lb, peer, { aDev: 'eth0', bDev: 'eth0', aAddrs: [`${LB.v4}/24`, `${LB.v6}/64`] });
  lbMac = await lb.mac('eth0');
  // bpf_fib_lookup answers only on devices that forward: a load-balancer node forwards.
  await lb.sysctl('net.ipv4.conf.all.forwarding', 1);
  await lb.sysctl('net.ipv6.conf.all.forwarding', 1);
  for (const b of [B1, B2]) {
    for (const ip of [b.v4, b.v6])
      await lb.ip(['neigh', 'replace', ip, 'lladdr', b.mac, 'dev', 'eth0', 'nud', 'permanent']);
  }
  dsr = BpfObject.load(BPF_OBJECT('dsr'), { pinDir: `${bpffs.dir}/dsr` });
  xdp = dsr.program('nw_dsr_xdp');
  decap = dsr.program('nw_dsr_decap');
  maps = new DsrMaps(dsr);
  applyDefault();
});

/** The web service on both backends, and a service whose VIP has none. */
function applyDefault(): void {
  maps.apply(
    planDsr([service({}), service({ name: 'empty', loadBalancerIPs: [EMPTY_VIP], backendNodes: [] })], {
      addresses: [LB.v4, LB.v6],
      loadBalancerNodes: [LB.v4, LB.v6],
    }),
  );
}

afterAll(async () => {
  dsr?.close();
  await lab?.destroy();
  bpffs?.destroy();
});

const runXdp = (packet: Buffer) => inNetns(lb.netns, () => testRun(xdp, { packet }));
const runTc = (packet: Buffer) => testRun(decap, { packet });

const tcpFrame = (src: string, dst: string, sport: number, dport = 80, flags: number = TcpFlag.syn) =>
  ipFrame({ src, dst, l4: tcp({ sport, dport, flags }) });

describe('nw_dsr_xdp known answers', () => {
  it('wraps a TCP packet to the VIP in IPIP towards a backend, MACs from the FIB, DF set, checksum valid', () => {
    const inner = tcpFrame(CLIENT.v4, VIP.v4, 40000);
    const r = runXdp(inner);
    expect(r.retval).toBe(XDP.redirect); // test runs enter on lo; the backend is out of eth0
    const out = r.output;
    expect(out).toHaveLength(inner.length + 20);
    const dstMac = [...out.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    expect([B1.mac, B2.mac]).toContain(dstMac);
    expect([...out.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':')).toBe(lbMac);
    expect(out.readUInt16BE(12)).toBe(EtherType.ipv4);
    const outer = out.subarray(14, 34);
    expect(outer[0]).toBe(0x45);
    expect(outer.readUInt16BE(2)).toBe(inner.length - 14 + 20);
    expect(outer.readUInt16BE(6)).toBe(0x4000);
    expect(outer[9]).toBe(IPPROTO_IPIP);
    expect(internetChecksum(outer)).toBe(0);
    expect(outer.subarray(12, 16)).toEqual(addressBytes(LB.v4));
    const backend = dstMac === B1.mac ? B1.v4 : B2.v4;
    expect(outer.subarray(16, 20)).toEqual(addressBytes(backend));
    expect(out.subarray(34)).toEqual(inner.subarray(14));
  });

  it('wraps IPv6 in IP6IP6, and UDP like TCP', () => {
    const inner = ipFrame({ src: CLIENT.v6, dst: VIP.v6, l4: udp({ sport: 5353, dport: 53 }) });
    const r = runXdp(inner);
    expect(r.retval).toBe(XDP.redirect);
    const out = r.output;
    expect(out).toHaveLength(inner.length + 40);
    expect(out.readUInt16BE(12)).toBe(EtherType.ipv6);
    const outer = out.subarray(14, 54);
    expect(outer[0]! >> 4).toBe(6);
    expect(outer.readUInt16BE(4)).toBe(inner.length - 14);
    expect(outer[6]).toBe(41);
    expect(outer.subarray(8, 24)).toEqual(addressBytes(LB.v6));
    expect([addressBytes(B1.v6), addressBytes(B2.v6)]).toContainEqual(outer.subarray(24, 40));
    expect(out.subarray(54)).toEqual(inner.subarray(14));
    const udp4 = runXdp(ipFrame({ src: CLIENT.v4, dst: VIP.v4, l4: udp({ sport: 5353, dport: 53 }) }));
    expect(udp4.retval).toBe(XDP.redirect);
  });

  it('spreads flows over both backends, and a flow keeps its backend while that backend stays', () => {
    const backendOf = (sport: number) => {
      const out = runXdp(tcpFrame(CLIENT.v4, VIP.v4, sport)).output;
      return out.subarray(30, 34).join('.');
    };
    const first = Array.from({ length: 200 }, (_, i) => backendOf(20000 + i));
    expect(new Set(first)).toEqual(new Set([B1.v4, B2.v4]));
    const share = first.filter((b) => b === B1.v4).length / first.length;
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    expect(Array.from({ length: 200 }, (_, i) => backendOf(20000 + i))).toEqual(first);

    // B2 leaves: its flows move to B1, B1's flows stay (from the flow table).
    const flows = new BpfMap(dsr.map(DSR_MAPS.flows), u64, dsrFlow);
    const before = BigInt(maps.readStats().flowHit);
    maps.apply(
      planDsr([service({ backendNodes: [B1.v4, B1.v6] })], {
        addresses: [LB.v4],
        loadBalancerNodes: [],
      }),
    );
    expect(Array.from({ length: 200 }, (_, i) => backendOf(20000 + i))).toEqual(first.map(() => B1.v4));
    expect(BigInt(maps.readStats().flowHit) - before).toBeGreaterThanOrEqual(
      BigInt(first.filter((b) => b === B1.v4).length),
    );
    expect([...flows.keys()].length).toBeGreaterThanOrEqual(200);

    // B2 comes back: the flows now pinned to B1 stay there; new flows spread again.
    maps.apply(planDsr([service({})], { addresses: [LB.v4, LB.v6], loadBalancerNodes: [LB.v4, LB.v6] }));
    expect(Array.from({ length: 200 }, (_, i) => backendOf(20000 + i))).toEqual(first.map(() => B1.v4));
    const fresh = Array.from({ length: 200 }, (_, i) => backendOf(30000 + i));
    expect(new Set(fresh)).toEqual(new Set([B1.v4, B2.v4]));
  });

  it('a flow entry under the same 64-bit key but for another tuple is not followed, and is taken over', () => {
    applyDefault();
    const flows = new BpfMap(dsr.map(DSR_MAPS.flows), u64, dsrFlow);
    const sport = 41234;
    const tuple = {
      saddr: addressBytes(`::ffff:${CLIENT.v4}`),
      daddr: addressBytes(`::ffff:${VIP.v4}`),
      sport,
      dport: 80,
      proto: 6,
      pad: new Uint8Array(3),
    };
    const key = flowKey64(tuple);
    const backendOf = () =>
      runXdp(tcpFrame(CLIENT.v4, VIP.v4, sport))
        .output.subarray(30, 34)
        .join('.');
    const maglevPick = backendOf();
    const otherBackend = maglevPick === B1.v4 ? B2.v4 : B1.v4;
    const backend = { addr: addressBytes(`::ffff:${otherBackend}`) };
    // Control: an entry with this very tuple is followed (the key function matches the C one).
    flows.update(key, { tuple, backend });
    expect(backendOf()).toBe(otherBackend);
    // A colliding flow's entry: another source port under the same key. Not followed; overwritten.
    flows.update(key, { tuple: { ...tuple, sport: sport + 1 }, backend });
    expect(backendOf()).toBe(maglevPick);
    expect(flows.lookup(key)?.tuple.sport).toBe(sport);
    expect(Buffer.from(flows.lookup(key)!.backend.addr)).toEqual(addressBytes(`::ffff:${maglevPick}`));
  });

  it('passes everything that is not VIP traffic it can forward, unchanged', () => {
    applyDefault();
    const stats = maps.readStats();
    const cases: [string, Buffer][] = [
      ['another address', tcpFrame(CLIENT.v4, '192.0.2.99', 1000)],
      ['the VIP on another port', tcpFrame(CLIENT.v4, VIP.v4, 1000, 443)],
      ['UDP to the TCP port', ipFrame({ src: CLIENT.v4, dst: VIP.v4, l4: udp({ sport: 1, dport: 80 }) })],
      [
        'a non-first fragment',
        ethernet(
          EtherType.ipv4,
          ipv4({ src: CLIENT.v4, dst: VIP.v4, l4: tcp({ sport: 1, dport: 80 }), fragmentOffset: 8 }),
        ),
      ],
      [
        'a first fragment',
        ethernet(
          EtherType.ipv4,
          ipv4({ src: CLIENT.v4, dst: VIP.v4, l4: tcp({ sport: 1, dport: 80 }), moreFragments: true }),
        ),
      ],
      ['a VIP without backends', tcpFrame(CLIENT.v4, EMPTY_VIP, 1000)],
      ['ARP', arpFrame({ senderIp: CLIENT.v4, targetIp: VIP.v4 })],
      [
        'IPv4 version 5',
        ethernet(
          EtherType.ipv4,
          ipv4({ src: CLIENT.v4, dst: VIP.v4, l4: tcp({ sport: 1, dport: 80 }), version: 5 }),
        ),
      ],
      ['a truncated TCP header', tcpFrame(CLIENT.v4, VIP.v4, 1000).subarray(0, 14 + 20 + 10)],
      [
        'IPv6 with a truncated extension chain',
        ethernet(
          EtherType.ipv6,
          ipv6({ src: CLIENT.v6, dst: VIP.v6, l4: tcp({ sport: 1, dport: 80 }) }).subarray(0, 44),
        ),
      ],
    ];
    const results = cases.map(([name, packet]) => {
      const r = runXdp(packet);
      return [name, r.retval, r.output.equals(packet)];
    });
    expect(results).toEqual(cases.map(([name]) => [name, XDP.pass, true]));
    expect(BigInt(maps.readStats().noBackend)).toBeGreaterThan(BigInt(stats.noBackend));
  });

  it('drops when the backend has no neighbour entry yet, and passes to the stack when the backend is this node', () => {
    maps.apply(
      planDsr(
        [
          service({ name: 'nomac', loadBalancerIPs: ['192.0.2.20'], backendNodes: [NOMAC] }),
          service({ name: 'self', loadBalancerIPs: ['192.0.2.21'], backendNodes: [LB.v4] }),
        ],
        {
          addresses: [LB.v4],
          loadBalancerNodes: [],
        },
      ),
    );
    const before = maps.readStats();
    expect(runXdp(tcpFrame(CLIENT.v4, '192.0.2.20', 1000)).retval).toBe(XDP.drop);
    expect(runXdp(tcpFrame(CLIENT.v4, '192.0.2.21', 1000)).retval).toBe(XDP.pass);
    const after = maps.readStats();
    expect(BigInt(after.fibFailed) - BigInt(before.fibFailed)).toBe(1n);
    expect(BigInt(after.local) - BigInt(before.local)).toBe(1n);
    maps.apply(planDsr([service({})], { addresses: [LB.v4], loadBalancerNodes: [LB.v4, LB.v6] }));
  });
});

describe('nw_dsr_decap known answers', () => {
  const encap4 = (outerSrc: string, inner: Buffer) =>
    ethernet(
      EtherType.ipv4,
      Buffer.concat([ipv4Header(outerSrc, B1.v4, inner.length - 14), inner.subarray(14)]),
    );

  it('strips IPIP and IP6IP6 from a known load-balancer node, leaving the client packet to the VIP', () => {
    maps.apply(planDsr([service({})], { addresses: [B1.v4], loadBalancerNodes: [LB.v4, LB.v6] }));
    const inner = tcpFrame(CLIENT.v4, VIP.v4, 40000);
    const r = runTc(encap4(LB.v4, inner));
    expect(r.retval).toBe(TC_UNSPEC);
    expect(r.output.subarray(12)).toEqual(inner.subarray(12));

    const inner6 = tcpFrame(CLIENT.v6, VIP.v6, 40000);
    const outer6 = ipv6({ src: LB.v6, dst: B1.v6, l4: { protocol: 41, bytes: inner6.subarray(14) } });
    const r6 = runTc(ethernet(EtherType.ipv6, outer6));
    expect(r6.retval).toBe(TC_UNSPEC);
    expect(r6.output.subarray(12)).toEqual(inner6.subarray(12));
  });

  it('leaves IPIP from anyone else alone, drops ARP requests for its DSR VIPs and no other ARP', () => {
    const stranger = encap4('10.81.0.66', tcpFrame(CLIENT.v4, VIP.v4, 40000));
    const r = runTc(stranger);
    expect(r.retval).toBe(TC_UNSPEC);
    expect(r.output).toEqual(stranger);
    expect(runTc(arpFrame({ senderIp: '10.81.0.254', targetIp: VIP.v4 })).retval).toBe(TC_SHOT);
    expect(runTc(arpFrame({ senderIp: '10.81.0.254', targetIp: B1.v4 })).retval).toBe(TC_UNSPEC);
    expect(runTc(arpFrame({ op: 2, senderIp: VIP.v4, targetIp: B1.v4 })).retval).toBe(TC_UNSPEC);
  });
});

describe('fuzz', () => {
  it('every random or mutated packet gets a defined verdict; non-VIP packets pass unchanged', () => {
    maps.apply(planDsr([service({})], { addresses: [LB.v4], loadBalancerNodes: [LB.v4, LB.v6] }));
    const rng = new SeededRandom(0xd5a);
    const seeds = [
      tcpFrame(CLIENT.v4, VIP.v4, 1234),
      tcpFrame(CLIENT.v6, VIP.v6, 1234),
      ipFrame({ src: CLIENT.v4, dst: VIP.v4, l4: udp({ sport: 9, dport: 53 }) }),
      ethernet(
        EtherType.ipv4,
        Buffer.concat([ipv4Header(LB.v4, B1.v4, 40), tcpFrame(CLIENT.v4, VIP.v4, 1).subarray(14)]),
      ),
      arpFrame({ senderIp: CLIENT.v4, targetIp: VIP.v4 }),
    ];
    const xdpVerdicts = new Map<number, number>();
    const tcVerdicts = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      let packet: Buffer;
      if (rng.chance(0.2)) {
        packet = rng.bytes(rng.int(60, 200));
        packet.writeUInt16BE(rng.pick([EtherType.ipv4, EtherType.ipv6, EtherType.arp]), 12);
      } else {
        packet = Buffer.from(rng.pick(seeds));
        for (let m = rng.int(1, 4); m > 0; m--) packet[rng.int(14, packet.length - 1)] = rng.int(0, 255);
        if (rng.chance(0.2)) packet = packet.subarray(0, rng.int(14, packet.length));
      }
      const type = packet.readUInt16BE(12);
      if ((type === EtherType.ipv4 && packet.length < 34) || (type === EtherType.ipv6 && packet.length < 54))
        continue; // BPF_PROG_TEST_RUN refuses these before the program runs
      const x = runXdp(packet);
      xdpVerdicts.set(x.retval, (xdpVerdicts.get(x.retval) ?? 0) + 1);
      if (x.retval === XDP.pass) expect(x.output.equals(packet)).toBe(true);
      else {
        expect(x.retval).toBe(XDP.redirect);
        expect(toVip(packet)).toBe(true);
      }
      const t = runTc(packet);
      tcVerdicts.set(t.retval, (tcVerdicts.get(t.retval) ?? 0) + 1);
      expect([TC_UNSPEC, TC_SHOT]).toContain(t.retval);
    }
    expect(xdpVerdicts.get(XDP.redirect)).toBeGreaterThan(100);
    expect(xdpVerdicts.get(XDP.pass)).toBeGreaterThan(100);
    expect([...xdpVerdicts.keys()].sort()).toEqual([XDP.pass, XDP.redirect]);
    expect(tcVerdicts.get(TC_UNSPEC)).toBeGreaterThan(100);
  });
});

/** A 20-byte IPv4 header carrying IPIP. */
function ipv4Header(src: string, dst: string, payloadLength: number): Buffer {
  const h = ipv4({ src, dst, l4: { protocol: IPPROTO_IPIP, bytes: Buffer.alloc(payloadLength) } });
  return h.subarray(0, 20);
}

/** Whether a frame is addressed to a VIP on one of its ports (what may be forwarded). */
function toVip(frame: Buffer): boolean {
  const type = frame.readUInt16BE(12);
  if (type === EtherType.ipv4) {
    const dst = frame.subarray(30, 34).join('.');
    return dst === VIP.v4;
  }
  if (type === EtherType.ipv6) return frame.subarray(38, 54).equals(addressBytes(VIP.v6));
  return false;
}
