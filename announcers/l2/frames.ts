/**
 * The frames an owner sends unasked: gratuitous ARP (RFC 5227 announcement,
 * request form, and the reply form some older stacks only learn from) and an
 * unsolicited neighbour advertisement to all-nodes (RFC 4861 7.2.6: Override
 * set, Solicited clear).
 */
import { isIPv4 } from 'node:net';
import { ipBytes } from './addresses.js';

const BROADCAST = Buffer.alloc(6, 0xff);
const ALL_NODES_MAC = Buffer.from([0x33, 0x33, 0, 0, 0, 1]);
const ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');

export function macBytes(mac: string): Buffer {
  const bytes = Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  if (bytes.length !== 6 || bytes.some((b) => Number.isNaN(b)))
    throw new RangeError(`not a MAC address: ${mac}`);
  return bytes;
}

function ethernet(dst: Buffer, src: Buffer, etherType: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  dst.copy(header, 0);
  src.copy(header, 6);
  header.writeUInt16BE(etherType, 12);
  return Buffer.concat([header, payload]);
}

/** op 1: request form (target MAC zero); op 2: reply form (target MAC broadcast). */
export function gratuitousArp(mac: string, ip: string, op: 1 | 2): Buffer {
  const ours = macBytes(mac);
  const addr = ipBytes(ip);
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0);
  arp.writeUInt16BE(0x0800, 2);
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(op, 6);
  ours.copy(arp, 8);
  addr.copy(arp, 14);
  if (op === 2) BROADCAST.copy(arp, 18);
  addr.copy(arp, 24);
  // Padded to the 60-byte Ethernet minimum, as a NIC would.
  return Buffer.concat([ethernet(BROADCAST, ours, 0x0806, arp), Buffer.alloc(18)]);
}

export function icmpv6Checksum(src: Buffer, dst: Buffer, message: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo.writeUInt32BE(58, 36);
  let sum = 0;
  for (const part of [pseudo, message])
    for (let i = 0; i < part.length; i += 2) sum += (part[i]! << 8) | (part[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function unsolicitedAdvertisement(mac: string, ip: string): Buffer {
  const ours = macBytes(mac);
  const target = ipBytes(ip);
  const na = Buffer.alloc(32);
  na[0] = 136;
  na[4] = 0x20; // Override; not Solicited, not Router
  target.copy(na, 8);
  na[24] = 2; // target link-layer address
  na[25] = 1;
  ours.copy(na, 26);
  na.writeUInt16BE(icmpv6Checksum(target, ALL_NODES, na), 2);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(na.length, 4);
  ip6[6] = 58;
  ip6[7] = 255;
  target.copy(ip6, 8);
  ALL_NODES.copy(ip6, 24);
  return ethernet(ALL_NODES_MAC, ours, 0x86dd, Buffer.concat([ip6, na]));
}

/** Everything an owner sends for one address in one round of a burst. */
export function announcementFrames(mac: string, ip: string): Buffer[] {
  return isIPv4(ip)
    ? [gratuitousArp(mac, ip, 1), gratuitousArp(mac, ip, 2)]
    : [unsolicitedAdvertisement(mac, ip)];
}
