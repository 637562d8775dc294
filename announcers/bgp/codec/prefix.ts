import { formatIPv6Groups, scanIPv6Groups } from '../../../model/ipv6.js';
import type { Family } from '../types.js';
import { BgpMessageError, ErrorCode, UpdateSubcode } from './errors.js';

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

/** Parses a dotted quad into 4 bytes, or undefined (no leading zeros, each part 0..255). */
export function parseIPv4(text: string): Uint8Array | undefined {
  // A hand-written scanner: route tables of 100k host routes are parsed on every change.
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else return undefined;
  }
  return part === 4 ? out : undefined;
}

/** The regular-expression form of parseIPv4, kept as its reference in the tests. */
export function parseIPv4Reference(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part[0] === '0')) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/**
 * Parses an IPv6 address (with "::" and a trailing dotted quad allowed) into
 * 16 bytes, or undefined. A scanner without allocations per group, for the
 * same reason as parseIPv4.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  const n = text.length;
  if (n < 2 || n > 45) return undefined;
  const words = new Uint16Array(8);
  const dottedQuad = (start: number): number => {
    const v4 = parseIPv4(text.slice(start));
    return v4 ? ((v4[0]! << 24) | (v4[1]! << 16) | (v4[2]! << 8) | v4[3]!) >>> 0 : -1;
  };
  if (!scanIPv6Groups(text, n, words, dottedQuad)) return undefined;
  const out = new Uint8Array(16);
  for (let w = 0; w < 8; w++) {
    out[2 * w] = words[w]! >> 8;
    out[2 * w + 1] = words[w]! & 0xff;
  }
  return out;
}

/** The split-and-regular-expression form of parseIPv6, kept as its reference in the tests. */
export function parseIPv6Reference(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45 || text.includes('%')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIPv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
        out.push(Number.parseInt(part, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const words = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
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
