/**
 * The XDP L2 responder through BPF_PROG_TEST_RUN: known answers (ARP reply and
 * neighbour advertisement checked byte for byte, the ICMPv6 checksum verified
 * here, independently of the C code), the defined verdict for every malformed
 * or foreign frame (truncated, wrong hardware or protocol types, not-owned
 * addresses, VLAN tags, bad ND options, DAD probes), and a seeded fuzz of
 * mutated frames: every one either passes untouched or gets a well-formed reply.
 * Without ctx_in the test run receives on the loopback device (ifindex 1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  L2_MAPS,
  type L2Entry,
  type L2Key,
  type L2Stats,
  l2Entry,
  l2Key,
  l2Stats,
} from '../../bpf/codecs/l2.js';
import { BpfMap, BpfObject, type BpfProgram, bootTimeNs, testRun } from '../../bpf/index.js';
import {
  addressBytes,
  arpFrame,
  EtherType,
  ethernet,
  IpProto,
  icmpv6,
  internetChecksum,
  ipv6,
  mappedAddress,
  PEER_MAC,
} from '../support/packets.js';
import { BPF_OBJECT } from '../support/paths.js';
import { SeededRandom } from '../support/random.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_TX = 3;
const LO = 1;
const OUR_MAC = '02:aa:bb:cc:dd:01';
const OWNED_V4 = '192.0.2.10';
const OWNED_V6 = '2001:db8::10';
const OTHER_V4 = '192.0.2.99';
const OTHER_V6 = '2001:db8::99';
const CLIENT_V4 = '192.0.2.1';
const CLIENT_V6 = '2001:db8::1';

const mac = (text: string) => Buffer.from(text.split(':').map((h) => Number.parseInt(h, 16)));

let object: BpfObject;
let program: BpfProgram;
let owned: BpfMap<L2Key, L2Entry>;
let stats: BpfMap<L2Key, L2Stats>;

beforeAll(() => {
  object = BpfObject.load(BPF_OBJECT('l2_responder'));
  program = object.program('nw_l2_respond');
  owned = new BpfMap(object.map(L2_MAPS.owned), l2Key, l2Entry);
  stats = new BpfMap(object.map(L2_MAPS.stats), l2Key, l2Stats);
  for (const ip of [OWNED_V4, OWNED_V6])
    owned.update({ ifindex: LO, addr: mappedAddress(ip) }, { mac: mac(OUR_MAC), flags: 0, expires_ns: 0n });
  // Owned, but on another interface: must not be answered on this one.
  owned.update(
    { ifindex: 999, addr: mappedAddress(OTHER_V4) },
    { mac: mac(OUR_MAC), flags: 0, expires_ns: 0n },
  );
});

afterAll(() => object?.close());

function run(frame: Buffer) {
  return testRun(program, { packet: frame });
}

/** A neighbour solicitation with chosen options, hop limit and addresses. */
function solicitation(o: {
  target: string;
  src?: string;
  dst?: string;
  hopLimit?: number;
  options?: Buffer;
  ethSrc?: string;
  vlans?: number[];
}): Buffer {
  const body = Buffer.concat([
    Buffer.alloc(4),
    addressBytes(o.target),
    o.options ?? Buffer.concat([Buffer.from([1, 1]), mac(PEER_MAC)]),
  ]);
  const packet = ipv6({
    src: o.src ?? CLIENT_V6,
    dst: o.dst ?? 'ff02::1:ff00:10',
    hopLimit: o.hopLimit ?? 255,
    l4: icmpv6({ type: 135, body }),
  });
  return ethernet(EtherType.ipv6, packet, {
    dst: '33:33:ff:00:00:10',
    src: o.ethSrc ?? PEER_MAC,
    vlans: o.vlans,
  });
}

/** Checks a neighbour advertisement the way a receiving host would (RFC 4861 7.1.2). */
function expectAdvertisement(out: Buffer, target: string, toMac: string, toIp: string): void {
  expect(out.length).toBe(86);
  expect(out.subarray(0, 6)).toEqual(mac(toMac));
  expect(out.subarray(6, 12)).toEqual(mac(OUR_MAC));
  expect(out.readUInt16BE(12)).toBe(EtherType.ipv6);
  expect(out.readUInt32BE(14)).toBe(0x60000000);
  expect(out.readUInt16BE(18)).toBe(32); // payload length
  expect(out[20]).toBe(IpProto.icmpv6);
  expect(out[21]).toBe(255);
  expect(out.subarray(22, 38)).toEqual(addressBytes(target));
  expect(out.subarray(38, 54)).toEqual(addressBytes(toIp));
  const icmp = out.subarray(54);
  expect(icmp[0]).toBe(136);
  expect(icmp[1]).toBe(0);
  expect(icmp.readUInt32BE(4)).toBe(0x60000000); // S and O, not R
  expect(icmp.subarray(8, 24)).toEqual(addressBytes(target));
  expect([...icmp.subarray(24, 26)]).toEqual([2, 1]);
  expect(icmp.subarray(26, 32)).toEqual(mac(OUR_MAC));
  const pseudo = Buffer.alloc(40);
  out.copy(pseudo, 0, 22, 54);
  pseudo.writeUInt32BE(icmp.length, 32);
  pseudo.writeUInt32BE(IpProto.icmpv6, 36);
  expect(internetChecksum(Buffer.concat([pseudo, icmp]))).toBe(0);
}

function expectArpReply(out: Buffer, ip: string, toMac: string, toIp: string): void {
  expect(out.subarray(0, 6)).toEqual(mac(toMac));
  expect(out.subarray(6, 12)).toEqual(mac(OUR_MAC));
  expect(out.readUInt16BE(12)).toBe(EtherType.arp);
  const arp = out.subarray(14);
  expect(arp.readUInt16BE(0)).toBe(1);
  expect(arp.readUInt16BE(2)).toBe(EtherType.ipv4);
  expect([arp[4], arp[5]]).toEqual([6, 4]);
  expect(arp.readUInt16BE(6)).toBe(2);
  expect(arp.subarray(8, 14)).toEqual(mac(OUR_MAC));
  expect(arp.subarray(14, 18)).toEqual(addressBytes(ip));
  expect(arp.subarray(18, 24)).toEqual(mac(toMac));
  expect(arp.subarray(24, 28)).toEqual(addressBytes(toIp));
}

function expectEveryTruncationPasses(full: Buffer): void {
  for (let len = 14; len < full.length; len++) {
    const frame = full.subarray(0, len);
    const { retval, output } = run(frame);
    expect(retval, `${len} bytes`).toBe(XDP_PASS);
    expect(output).toEqual(frame);
  }
}

describe('ARP', () => {
  const request = () => arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4 });

  it('answers a request for an owned address with our MAC by XDP_TX, and counts it', () => {
    const key = { ifindex: LO, addr: mappedAddress(OWNED_V4) };
    const before = stats.lookup(key)?.replies ?? 0n;
    const { retval, output } = run(request());
    expect(retval).toBe(XDP_TX);
    expect(output.length).toBe(42);
    expectArpReply(output, OWNED_V4, PEER_MAC, CLIENT_V4);
    expect(stats.lookup(key)?.replies).toBe(before + 1n);
  });

  it('also answers padded frames (60-byte minimum on the wire) and keeps the padding', () => {
    const frame = Buffer.concat([request(), Buffer.alloc(18)]);
    const { retval, output } = run(frame);
    expect(retval).toBe(XDP_TX);
    expect(output.length).toBe(60);
    expectArpReply(output, OWNED_V4, PEER_MAC, CLIENT_V4);
  });

  const passes: [string, () => Buffer][] = [
    ['a request for an address we do not own', () => arpFrame({ senderIp: CLIENT_V4, targetIp: OTHER_V4 })],
    [
      'an address owned only on another interface',
      () => arpFrame({ senderIp: CLIENT_V4, targetIp: OTHER_V4 }),
    ],
    ['a reply (op 2)', () => arpFrame({ op: 2, senderIp: CLIENT_V4, targetIp: OWNED_V4 })],
    [
      'a gratuitous ARP for the owned address (sender = target)',
      () => arpFrame({ senderIp: OWNED_V4, targetIp: OWNED_V4 }),
    ],
    [
      'a VLAN-tagged request',
      () => arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4, eth: { vlans: [100] } }),
    ],
    [
      'a QinQ-tagged request',
      () =>
        arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4, eth: { vlans: [100, 200], outerTpid: 0x88a8 } }),
    ],
    ...(
      [
        ['hardware type 6 (IEEE 802)', 14, 0x0006],
        ['protocol type IPv6', 16, 0x86dd],
      ] as const
    ).map(([name, at, value]): [string, () => Buffer] => [
      `wrong ${name}`,
      () => {
        const f = request();
        f.writeUInt16BE(value, at);
        return f;
      },
    ]),
    ...([18, 19] as const).map((at): [string, () => Buffer] => [
      `a wrong address length at byte ${at}`,
      () => {
        const f = request();
        f[at] = 16;
        return f;
      },
    ]),
  ];
  it.each(passes)('passes %s untouched', (_name, build) => {
    const frame = build();
    const { retval, output } = run(frame);
    expect(retval).toBe(XDP_PASS);
    expect(output).toEqual(frame);
  });

  it('passes every truncation of an owned request untouched', () => {
    expectEveryTruncationPasses(request());
  });
});

describe('NDP', () => {
  it('answers a solicitation for an owned address with S+O flags, TLLA and a valid checksum', () => {
    const key = { ifindex: LO, addr: mappedAddress(OWNED_V6) };
    const before = stats.lookup(key)?.replies ?? 0n;
    const { retval, output } = run(solicitation({ target: OWNED_V6 }));
    expect(retval).toBe(XDP_TX);
    expectAdvertisement(output, OWNED_V6, PEER_MAC, CLIENT_V6);
    expect(stats.lookup(key)?.replies).toBe(before + 1n);
  });

  it('answers a unicast solicitation without SLLA option to the Ethernet source', () => {
    const frame = solicitation({
      target: OWNED_V6,
      dst: OWNED_V6,
      options: Buffer.alloc(0),
      ethSrc: '02:00:00:00:00:77',
    });
    const { retval, output } = run(frame);
    expect(retval).toBe(XDP_TX);
    expectAdvertisement(output, OWNED_V6, '02:00:00:00:00:77', CLIENT_V6);
  });

  it('answers with the SLLA option even after a nonce option, shrinking the frame', () => {
    const nonce = Buffer.from([14, 1, 1, 2, 3, 4, 5, 6]);
    const sll = Buffer.concat([Buffer.from([1, 1]), mac('02:00:00:00:00:55')]);
    const { retval, output } = run(solicitation({ target: OWNED_V6, options: Buffer.concat([nonce, sll]) }));
    expect(retval).toBe(XDP_TX);
    expectAdvertisement(output, OWNED_V6, '02:00:00:00:00:55', CLIENT_V6);
  });

  const passes: [string, () => Buffer][] = [
    ['a solicitation for an address we do not own', () => solicitation({ target: OTHER_V6 })],
    [
      'a DAD probe (unspecified source)',
      () => solicitation({ target: OWNED_V6, src: '::', options: Buffer.alloc(0) }),
    ],
    ['a hop limit below 255 (off-link)', () => solicitation({ target: OWNED_V6, hopLimit: 64 })],
    [
      'a zero-length option',
      () => solicitation({ target: OWNED_V6, options: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]) }),
    ],
    [
      'an option running past the packet',
      () => solicitation({ target: OWNED_V6, options: Buffer.concat([Buffer.from([1, 2]), mac(PEER_MAC)]) }),
    ],
    [
      'options that do not fill whole 8-byte units',
      () => solicitation({ target: OWNED_V6, options: Buffer.from([1, 1, 0, 0]) }),
    ],
    [
      'too many options',
      () =>
        solicitation({
          target: OWNED_V6,
          options: Buffer.alloc(9 * 8, 0).fill(Buffer.from([14, 1, 0, 0, 0, 0, 0, 0])),
        }),
    ],
    ['a VLAN-tagged solicitation', () => solicitation({ target: OWNED_V6, vlans: [100] })],
    [
      'an advertisement (type 136)',
      () => {
        const f = solicitation({ target: OWNED_V6 });
        f[54] = 136;
        return f;
      },
    ],
    [
      'a solicitation with code 1',
      () => {
        const f = solicitation({ target: OWNED_V6 });
        f[55] = 1;
        return f;
      },
    ],
    [
      'a solicitation behind a hop-by-hop header',
      () =>
        ethernet(
          EtherType.ipv6,
          ipv6({
            src: CLIENT_V6,
            dst: 'ff02::1:ff00:10',
            hopLimit: 255,
            extensions: [{ type: 'hop-by-hop' }],
            l4: icmpv6({ type: 135, body: Buffer.concat([Buffer.alloc(4), addressBytes(OWNED_V6)]) }),
          }),
        ),
    ],
    [
      'an IPv4-mapped target (the v4 owned key reached through NDP)',
      () => solicitation({ target: `::ffff:${OWNED_V4}` }),
    ],
  ];
  it.each(passes)('passes %s untouched', (_name, build) => {
    const frame = build();
    const { retval, output } = run(frame);
    expect(retval).toBe(XDP_PASS);
    expect(output).toEqual(frame);
  });

  it('passes every truncation of an owned solicitation untouched', () => {
    expectEveryTruncationPasses(solicitation({ target: OWNED_V6 }));
  });
});

describe('fuzz', () => {
  it('every mutated ARP or NS frame either passes untouched or gets a well-formed reply', () => {
    const rng = new SeededRandom(0x12c0de);
    const seeds = [
      arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4 }),
      solicitation({ target: OWNED_V6 }),
      solicitation({ target: OWNED_V6, options: Buffer.alloc(0) }),
    ];
    const verdicts = { [XDP_PASS]: 0, [XDP_TX]: 0 } as Record<number, number>;
    for (let i = 0; i < 10_000; i++) {
      const frame = Buffer.from(rng.pick(seeds));
      const flips = rng.int(1, 4);
      for (let f = 0; f < flips; f++) frame[rng.int(12, frame.length - 1)] = rng.int(0, 255);
      const cut = rng.chance(0.2) ? frame.subarray(0, rng.int(14, frame.length)) : frame;
      const { retval, output } = run(cut);
      expect([XDP_PASS, XDP_TX], `verdict ${retval} for ${cut.toString('hex')}`).toContain(retval);
      verdicts[retval] = (verdicts[retval] ?? 0) + 1;
      if (retval === XDP_PASS) {
        expect(output).toEqual(cut);
        continue;
      }
      expect(output.subarray(6, 12)).toEqual(mac(OUR_MAC));
      if (output.readUInt16BE(12) === EtherType.arp) {
        expect(output.readUInt16BE(20)).toBe(2);
        expect(output.subarray(28, 32)).toEqual(addressBytes(OWNED_V4));
      } else {
        // The destination is the NS's SLLA or Ethernet source, whatever mutation left there.
        const dstMac = [...output.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
        const srcIp = output.subarray(38, 54);
        expectAdvertisement(output, OWNED_V6, dstMac, formatV6(srcIp));
      }
    }
    // Both outcomes happen: the fuzz reaches the reply path, not only the early exits.
    expect(verdicts[XDP_PASS]).toBeGreaterThan(500);
    expect(verdicts[XDP_TX]).toBeGreaterThan(50);
  });
});

function formatV6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

describe('deadline', () => {
  // Each case sets the owned entries' deadline, then restores "forever" for the other tests.
  function withDeadline(expires_ns: bigint, check: () => void): void {
    const keys = [OWNED_V4, OWNED_V6].map((ip) => ({ ifindex: LO, addr: mappedAddress(ip) }));
    try {
      for (const key of keys) owned.update(key, { mac: mac(OUR_MAC), flags: 0, expires_ns });
      check();
    } finally {
      for (const key of keys) owned.update(key, { mac: mac(OUR_MAC), flags: 0, expires_ns: 0n });
    }
  }

  // Dropped, not passed: the dead daemon's local route would make the kernel answer instead.
  it('drops requests for an entry whose deadline has passed, uncounted', () => {
    withDeadline(bootTimeNs() - 1n, () => {
      const key = { ifindex: LO, addr: mappedAddress(OWNED_V4) };
      const before = stats.lookup(key)?.replies ?? 0n;
      for (const frame of [
        arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4 }),
        solicitation({ target: OWNED_V6 }),
      ]) {
        expect(run(frame).retval).toBe(XDP_DROP);
      }
      expect(stats.lookup(key)?.replies ?? 0n).toBe(before);
    });
  });

  it('answers an entry whose deadline is still ahead', () => {
    withDeadline(bootTimeNs() + 60_000_000_000n, () => {
      const arp = run(arpFrame({ senderIp: CLIENT_V4, targetIp: OWNED_V4 }));
      expect(arp.retval).toBe(XDP_TX);
      expectArpReply(arp.output, OWNED_V4, PEER_MAC, CLIENT_V4);
      const nd = run(solicitation({ target: OWNED_V6 }));
      expect(nd.retval).toBe(XDP_TX);
      expectAdvertisement(nd.output, OWNED_V6, PEER_MAC, CLIENT_V6);
    });
  });
});
