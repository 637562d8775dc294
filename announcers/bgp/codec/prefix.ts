import { parseIPv4, parseIPv6 } from '../../../model/ip.js';
import { formatIPv6Groups } from '../../../model/ipv6.js';
import type { Family } from '../types.js';
import { BgpMessageError, ErrorCode, UpdateSubcode } from './errors.js';

export { parseIPv4, parseIPv6 };

/** An IP prefix with its host bits cleared; addr is 4 or 16 bytes. */
export interface Prefix {
  family: Family;
  length: number;
  addr: Uint8Array;
}

/** A route prefix or address string that cannot be announced. */
export class PrefixError extends Error {
  override name = 'PrefixError';
}

export function parseAddress(text: string): { family: Family; addr: Uint8Array } | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 'ipv4-unicast', addr: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: 'ipv6-unicast', addr: v6 };
  return undefined;
}

export function formatIPv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

const words8 = new Uint16Array(8);

/** RFC 5952 text: lower case, longest run of two or more zero groups as "::". */
export function formatIPv6(b: Uint8Array, offset = 0): string {
  const words = words8;
  for (let i = 0; i < 8; i++) words[i] = (b[offset + 2 * i]! << 8) | b[offset + 2 * i + 1]!;
  if (
    words[0] === 0 &&
    words[1] === 0 &&
    words[2] === 0 &&
    words[3] === 0 &&
    words[4] === 0 &&
    words[5] === 0xffff
  ) {
    return `::ffff:${formatIPv4(b, offset + 12)}`; // IPv4-mapped (RFC 5952 5)
  }
  return formatIPv6Groups(words);
}

export function formatAddress(family: Family, b: Uint8Array, offset = 0): string {
  return family === 'ipv4-unicast' ? formatIPv4(b, offset) : formatIPv6(b, offset);
}

export function addressBits(family: Family): number {
  return family === 'ipv4-unicast' ? 32 : 128;
}

/**
 * "192.0.2.0/24", "2001:db8::/64", or a bare address for a host route. Host
 * bits must be zero, so that a typo does not silently announce a wider range.
 */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseAddress(addressText);
  if (!parsed) throw new PrefixError(`"${text}" is not an IPv4 or IPv6 prefix`);
  const bits = addressBits(parsed.family);
  let length = bits;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) {
      throw new PrefixError(`"${text}": prefix length must be 0..${bits}`);
    }
    length = Number(lengthText);
  }
  const addr = parsed.addr;
  for (let bit = length; bit < bits; bit++) {
    if (addr[bit >> 3]! & (0x80 >> (bit & 7))) {
      throw new PrefixError(`"${text}" has host bits set beyond /${length}`);
    }
  }
  return { family: parsed.family, length, addr };
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.family, p.addr)}/${p.length}`;
}

/** Bytes one prefix takes in an NLRI field. */
export function nlriSize(length: number): number {
  return 1 + ((length + 7) >> 3);
}

/** Writes one NLRI entry at offset and returns the offset after it. */
export function writeNlri(buf: Uint8Array, offset: number, length: number, addr: Uint8Array): number {
  buf[offset++] = length;
  const n = (length + 7) >> 3;
  for (let i = 0; i < n; i++) buf[offset++] = addr[i]!;
  return offset;
}

/**
 * Reads an NLRI field (RFC 4271 4.3) into prefix strings. Host bits past the
 * length are cleared rather than refused, as other implementations do. A
 * length beyond the family's width, or a prefix running past the end, is a
 * syntax error: RFC 7606 5.3 says session reset.
 */
export function readNlri(
  buf: Uint8Array,
  start: number,
  end: number,
  family: Family,
  subcode: number = UpdateSubcode.INVALID_NETWORK_FIELD,
): string[] {
  const out: string[] = [];
  const bits = addressBits(family);
  const addr = new Uint8Array(bits / 8);
  let offset = start;
  while (offset < end) {
    const length = buf[offset]!;
    if (length > bits) {
      throw new BgpMessageError(
        ErrorCode.UPDATE_MESSAGE,
        subcode,
        `${family} prefix length ${length} > ${bits}`,
      );
    }
    const n = (length + 7) >> 3;
    if (offset + 1 + n > end) {
      throw new BgpMessageError(
        ErrorCode.UPDATE_MESSAGE,
        subcode,
        `${family} prefix runs past the end of its field`,
      );
    }
    addr.fill(0);
    for (let i = 0; i < n; i++) addr[i] = buf[offset + 1 + i]!;
    if (length & 7) addr[n - 1] = addr[n - 1]! & (0xff << (8 - (length & 7)));
    out.push(`${formatAddress(family, addr)}/${length}`);
    offset += 1 + n;
  }
  return out;
}
