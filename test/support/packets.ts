/**
 * Packet builders for BPF_PROG_TEST_RUN: Ethernet (optionally 802.1Q tagged),
 * ARP, IPv4 (with options, any ihl, fragments), IPv6 (with chains of extension
 * headers: hop-by-hop, routing, destination options, fragment, AH), and TCP,
 * UDP, SCTP, ICMP and ICMPv6. Checksums are filled in (SCTP's CRC32c excepted)
 * so a packet could also go on a wire; the builders never validate, because
 * tests need broken packets too.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const EtherType = { ipv4: 0x0800, arp: 0x0806, vlan: 0x8100, qinq: 0x88a8, ipv6: 0x86dd } as const;
export const IpProto = {
  hopByHop: 0,
  icmp: 1,
  tcp: 6,
  udp: 17,
  routing: 43,
  fragment: 44,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  noNext: 59,
  destOpts: 60,
  vrrp: 112,
  sctp: 132,
} as const;
export const TcpFlag = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20 } as const;

export const HOST_MAC = '02:00:00:00:00:01';
export const PEER_MAC = '02:00:00:00:00:02';

// ---------------------------------------------------------------------------
// Addresses

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
}

/** 4 bytes for an IPv4 address, 16 for IPv6. */
export function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new RangeError(`not an IP address: ${address}`);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (text: string | undefined) => (text ? text.split(':') : []);
  const expand = (parts: string[]) =>
    parts.flatMap((g) => {
      if (!g.includes('.')) return [Number.parseInt(g, 16)];
      const v4 = g.split('.').map(Number);
      return [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    });
  const left = expand(groups(head));
  const right = expand(groups(tail));
  const all =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  return out;
}

/** The datapath's form of an address: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
export function mappedAddress(address: string): Buffer {
  const bytes = addressBytes(address);
  if (bytes.length === 16) return bytes;
  return Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), bytes]);
}

// ---------------------------------------------------------------------------
// Checksums

function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += buf[buf.length - 1]! << 8;
  return sum;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

export function internetChecksum(buf: Buffer): number {
  return fold(sum16(buf));
}

// ---------------------------------------------------------------------------
// L4

/** An L4 header and payload, with where its checksum goes once the IP addresses are known. */
export interface L4 {
  protocol: number;
  bytes: Buffer;
  /** Offset of the 16-bit checksum, if any. */
  checksumAt?: number;
  /** Whether the checksum covers the IP pseudo-header (TCP, UDP, ICMPv6), not the bytes alone (ICMP). */
  pseudoHeader?: boolean;
}

export interface TcpOptions {
  sport: number;
  dport: number;
  flags?: number;
  seq?: number;
  ack?: number;
  window?: number;
  /** TCP options, padded to a multiple of 4. */
  options?: Buffer;
  payload?: Buffer;
}

export function tcp(o: TcpOptions): L4 {
  const options = o.options ?? Buffer.alloc(0);
  const optLen = Math.ceil(options.length / 4) * 4;
  const header = Buffer.alloc(20 + optLen);
  header.writeUInt16BE(o.sport, 0);
  header.writeUInt16BE(o.dport, 2);
  header.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  header.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  header[12] = ((20 + optLen) / 4) << 4;
  header[13] = o.flags ?? TcpFlag.syn;
  header.writeUInt16BE(o.window ?? 64240, 14);
  options.copy(header, 20);
  return {
    protocol: IpProto.tcp,
    bytes: Buffer.concat([header, o.payload ?? Buffer.alloc(0)]),
    checksumAt: 16,
    pseudoHeader: true,
  };
}

export function udp(o: { sport: number; dport: number; payload?: Buffer }): L4 {
  const payload = o.payload ?? Buffer.alloc(0);
  const header = Buffer.alloc(8);
  header.writeUInt16BE(o.sport, 0);
  header.writeUInt16BE(o.dport, 2);
  header.writeUInt16BE((8 + payload.length) & 0xffff, 4);
  return {
    protocol: IpProto.udp,
    bytes: Buffer.concat([header, payload]),
    checksumAt: 6,
    pseudoHeader: true,
  };
}

/** An SCTP common header and one INIT-sized chunk of zeros; the CRC32c stays zero. */
export function sctp(o: { sport: number; dport: number; vtag?: number; chunks?: Buffer }): L4 {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.sport, 0);
  header.writeUInt16BE(o.dport, 2);
  header.writeUInt32BE(o.vtag ?? 0, 4);
  const chunks = o.chunks ?? Buffer.from([1, 0, 0, 20, ...Array(16).fill(0)]);
  return { protocol: IpProto.sctp, bytes: Buffer.concat([header, chunks]) };
}

/** ICMP (IPv4): type, code, and the 4 bytes after the checksum (echo id and sequence, or unused). */
export function icmp(o: { type: number; code?: number; rest?: number; payload?: Buffer }): L4 {
  const header = Buffer.alloc(8);
  header[0] = o.type;
  header[1] = o.code ?? 0;
  header.writeUInt32BE((o.rest ?? 0) >>> 0, 4);
  return {
    protocol: IpProto.icmp,
    bytes: Buffer.concat([header, o.payload ?? Buffer.alloc(0)]),
    checksumAt: 2,
  };
}

export function icmpEcho(o: { id: number; seq?: number; reply?: boolean; payload?: Buffer }): L4 {
  return icmp({
    type: o.reply ? 0 : 8,
    rest: ((o.id & 0xffff) << 16) | ((o.seq ?? 1) & 0xffff),
    payload: o.payload ?? Buffer.alloc(32, 0x61),
  });
}

/** An ICMP error (3 unreachable, 11 time exceeded, 12 parameter problem) quoting `original` from its IP header on. */
export function icmpError(o: { type: number; code: number; original: Buffer; rest?: number }): L4 {
  return icmp({ type: o.type, code: o.code, rest: o.rest ?? 0, payload: o.original });
}

export function icmpv6(o: { type: number; code?: number; body?: Buffer }): L4 {
  const header = Buffer.alloc(4);
  header[0] = o.type;
  header[1] = o.code ?? 0;
  return {
    protocol: IpProto.icmpv6,
    bytes: Buffer.concat([header, o.body ?? Buffer.alloc(4)]),
    checksumAt: 2,
    pseudoHeader: true,
  };
}

export function icmpv6Echo(o: { id: number; seq?: number; reply?: boolean }): L4 {
  const body = Buffer.alloc(4 + 32, 0x62);
  body.writeUInt16BE(o.id & 0xffff, 0);
  body.writeUInt16BE((o.seq ?? 1) & 0xffff, 2);
  return icmpv6({ type: o.reply ? 129 : 128, body });
}

/** ICMPv6 errors: 1 unreachable, 2 packet too big, 3 time exceeded, 4 parameter problem. */
export function icmpv6Error(o: { type: number; code?: number; original: Buffer; rest?: number }): L4 {
  const body = Buffer.alloc(4);
  body.writeUInt32BE((o.rest ?? 0) >>> 0, 0);
  return icmpv6({ type: o.type, code: o.code ?? 0, body: Buffer.concat([body, o.original]) });
}

/** Neighbour solicitation for `target`, with a source link-layer address option. */
export function neighborSolicitation(target: string, mac = PEER_MAC): L4 {
  const body = Buffer.concat([Buffer.alloc(4), addressBytes(target), Buffer.from([1, 1]), macBytes(mac)]);
  return icmpv6({ type: 135, body });
}

export function neighborAdvertisement(target: string, mac = HOST_MAC): L4 {
  const flags = Buffer.from([0x60, 0, 0, 0]); // solicited, override
  const body = Buffer.concat([flags, addressBytes(target), Buffer.from([2, 1]), macBytes(mac)]);
  return icmpv6({ type: 136, body });
}

/** Any protocol number with an opaque payload (VRRP, GRE, ESP, ...). */
export function rawL4(protocol: number, payload: Buffer): L4 {
  return { protocol, bytes: payload };
}

// ---------------------------------------------------------------------------
// IP

function fillChecksum(l4: L4, pseudo: Buffer | undefined): Buffer {
  const bytes = Buffer.from(l4.bytes);
  if (l4.checksumAt === undefined || l4.checksumAt + 2 > bytes.length) return bytes;
  bytes.writeUInt16BE(0, l4.checksumAt);
  const initial = l4.pseudoHeader && pseudo ? sum16(pseudo) : 0;
  let sum = fold(sum16(bytes, initial));
  if (sum === 0 && l4.protocol === IpProto.udp) sum = 0xffff;
  bytes.writeUInt16BE(sum, l4.checksumAt);
  return bytes;
}

export interface Ipv4Options {
  src: string;
  dst: string;
  l4: L4;
  /** Options, padded with end-of-options to a multiple of 4 bytes. */
  options?: Buffer;
  /** Overrides the computed header length (in 32-bit words); for malformed packets. */
  ihl?: number;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** Overrides the L4 protocol number in the header. */
  protocol?: number;
  version?: number;
}

/** An IPv4 packet (no Ethernet header). */
export function ipv4(o: Ipv4Options): Buffer {
  const options = o.options ?? Buffer.alloc(0);
  const optLen = Math.ceil(options.length / 4) * 4;
  const header = Buffer.alloc(20 + optLen);
  const src = addressBytes(o.src);
  const dst = addressBytes(o.dst);
  const protocol = o.protocol ?? o.l4.protocol;
  const pseudo = Buffer.alloc(12);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 4);
  pseudo[9] = o.l4.protocol;
  pseudo.writeUInt16BE(o.l4.bytes.length & 0xffff, 10);
  // Only a first fragment carries the L4 header whose checksum we can compute.
  const payload = (o.fragmentOffset ?? 0) === 0 ? fillChecksum(o.l4, pseudo) : Buffer.from(o.l4.bytes);
  header[0] = ((o.version ?? 4) << 4) | ((o.ihl ?? (20 + optLen) / 4) & 0xf);
  header.writeUInt16BE((header.length + payload.length) & 0xffff, 2);
  header.writeUInt16BE(o.id ?? 0x1234, 4);
  const flags = (o.dontFragment ? 0x4000 : 0) | (o.moreFragments ? 0x2000 : 0);
  header.writeUInt16BE(flags | ((o.fragmentOffset ?? 0) & 0x1fff), 6);
  header[8] = o.ttl ?? 64;
  header[9] = protocol;
  src.copy(header, 12);
  dst.copy(header, 16);
  options.copy(header, 20);
  header.writeUInt16BE(internetChecksum(header), 10);
  return Buffer.concat([header, payload]);
}

export type Ipv6Extension =
  | {
      type: 'hop-by-hop' | 'routing' | 'dest-opts';
      /** Hdr Ext Len: the header is (length + 1) * 8 bytes. */
      length?: number;
      /** Overrides the next-header field. */
      next?: number;
    }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number; next?: number }
  /** Payload Len: the header is (length + 2) * 4 bytes. */
  | { type: 'ah'; length?: number; next?: number }
  /** Any bytes, announced by `protocol` in the previous header; they must say what follows themselves. */
  | { type: 'raw'; protocol: number; bytes: Buffer };

const EXT_PROTO = {
  'hop-by-hop': IpProto.hopByHop,
  routing: IpProto.routing,
  'dest-opts': IpProto.destOpts,
  fragment: IpProto.fragment,
  ah: IpProto.ah,
} as const;

function extProtocol(ext: Ipv6Extension): number {
  return ext.type === 'raw' ? ext.protocol : EXT_PROTO[ext.type];
}

function extBytes(ext: Ipv6Extension, next: number): Buffer {
  switch (ext.type) {
    case 'raw':
      return ext.bytes;
    case 'fragment': {
      const b = Buffer.alloc(8);
      b[0] = ext.next ?? next;
      b.writeUInt16BE((((ext.offset ?? 0) & 0x1fff) << 3) | (ext.more ? 1 : 0), 2);
      b.writeUInt32BE(ext.id ?? 0xabcdef, 4);
      return b;
    }
    case 'ah': {
      const length = ext.length ?? 4;
      const b = Buffer.alloc((length + 2) * 4);
      b[0] = ext.next ?? next;
      b[1] = length;
      b.writeUInt32BE(0x100, 4); // SPI
      return b;
    }
    default: {
      const length = ext.length ?? 0;
      const b = Buffer.alloc((length + 1) * 8);
      b[0] = ext.next ?? next;
      b[1] = length;
      // PadN over the rest, so the options are well formed.
      b[2] = 1;
      b[3] = b.length - 4;
      return b;
    }
  }
}

export interface Ipv6Options {
  src: string;
  dst: string;
  l4: L4;
  extensions?: Ipv6Extension[];
  hopLimit?: number;
  /** Overrides the first next-header field. */
  nextHeader?: number;
  version?: number;
  flowLabel?: number;
}

/** An IPv6 packet (no Ethernet header). */
export function ipv6(o: Ipv6Options): Buffer {
  const exts = o.extensions ?? [];
  const src = addressBytes(o.src);
  const dst = addressBytes(o.dst);
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(o.l4.bytes.length, 32);
  pseudo[39] = o.l4.protocol;
  const fragmented = exts.some((e) => e.type === 'fragment' && (e.offset ?? 0) !== 0);
  const payload = fragmented ? Buffer.from(o.l4.bytes) : fillChecksum(o.l4, pseudo);
  const chain = exts.map((ext, i) =>
    extBytes(ext, i + 1 < exts.length ? extProtocol(exts[i + 1]!) : o.l4.protocol),
  );
  const body = Buffer.concat([...chain, payload]);
  const header = Buffer.alloc(40);
  header.writeUInt32BE((((o.version ?? 6) & 0xf) << 28) | ((o.flowLabel ?? 0) & 0xfffff), 0);
  header.writeUInt16BE(body.length & 0xffff, 4);
  header[6] = o.nextHeader ?? (exts.length > 0 ? extProtocol(exts[0]!) : o.l4.protocol);
  header[7] = o.hopLimit ?? 64;
  src.copy(header, 8);
  dst.copy(header, 24);
  return Buffer.concat([header, body]);
}

// ---------------------------------------------------------------------------
// Ethernet

export interface EthernetOptions {
  src?: string;
  dst?: string;
  /** 802.1Q tags (outermost first): VLAN ids; the outermost uses `outerTpid`. */
  vlans?: number[];
  outerTpid?: number;
}

export function ethernet(etherType: number, payload: Buffer, o: EthernetOptions = {}): Buffer {
  const tags = (o.vlans ?? []).map((vid, i) => {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(i === 0 && o.outerTpid !== undefined ? o.outerTpid : EtherType.vlan, 0);
    tag.writeUInt16BE(vid & 0xfff, 2);
    return tag;
  });
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etherType, 0);
  return Buffer.concat([macBytes(o.dst ?? HOST_MAC), macBytes(o.src ?? PEER_MAC), ...tags, type, payload]);
}

/** An Ethernet frame around an IPv4 or IPv6 packet, by the addresses' family. */
export function ipFrame(
  o: (Omit<Ipv4Options, 'src' | 'dst'> & Omit<Ipv6Options, 'src' | 'dst' | 'version'>) & {
    src: string;
    dst: string;
    eth?: EthernetOptions;
  },
): Buffer {
  if (isIPv4(o.src)) return ethernet(EtherType.ipv4, ipv4(o), o.eth);
  return ethernet(EtherType.ipv6, ipv6(o), o.eth);
}

/** An ARP request (op 1) or reply (op 2), as a whole frame. */
export function arpFrame(o: {
  op?: 1 | 2;
  senderMac?: string;
  senderIp: string;
  targetMac?: string;
  targetIp: string;
  eth?: EthernetOptions;
}): Buffer {
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); // Ethernet
  arp.writeUInt16BE(EtherType.ipv4, 2);
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(o.op ?? 1, 6);
  macBytes(o.senderMac ?? PEER_MAC).copy(arp, 8);
  addressBytes(o.senderIp).copy(arp, 14);
  macBytes(o.targetMac ?? '00:00:00:00:00:00').copy(arp, 18);
  addressBytes(o.targetIp).copy(arp, 24);
  return ethernet(EtherType.arp, arp, { dst: 'ff:ff:ff:ff:ff:ff', ...o.eth });
}

/** Splits an IPv4 packet's payload into fragments of `size` bytes (a multiple of 8), each a full IPv4 packet. */
export function fragmentIpv4(o: Ipv4Options, size: number): Buffer[] {
  const whole = ipv4(o);
  const headerLen = (whole[0]! & 0xf) * 4;
  const payload = whole.subarray(headerLen);
  const out: Buffer[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const part = payload.subarray(off, off + size);
    out.push(
      ipv4({
        ...o,
        l4: rawL4(o.l4.protocol, part),
        fragmentOffset: off / 8,
        moreFragments: off + size < payload.length,
      }),
    );
  }
  return out;
}
