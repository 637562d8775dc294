/**
 * CIDR parsing with Cilium's (Go netip) rules: dotted-quad IPv4 without leading
 * zeros, IPv6 with `::` and an embedded IPv4 tail, no zones, and a prefix length
 * that fits the family. Host bits are allowed and masked off, as Cilium does; a
 * bare address is a /32 or /128. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes IPv4.
 */
import { parseIPv4, parseIPv6 } from '../model/ip.js';
import { formatIPv6Groups } from '../model/ipv6.js';

export interface Cidr {
  family: 4 | 6;
  /** Network address, host bits zero: 4 or 16 bytes. */
  bytes: Uint8Array;
  prefix: number;
}

export type CidrParse =
  | {
      ok: true;
      cidr: Cidr;
      /** The text had host bits set; `cidr` has them cleared. */
      hostBits: boolean;
      /** The text was an IPv4-mapped IPv6 prefix; `cidr` is its IPv4 form. */
      mapped: boolean;
    }
  | { ok: false; error: string };

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function isMapped(bytes: Uint8Array): boolean {
  return (
    bytes.length === 16 &&
    bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff
  );
}

/** Clears the bits after `prefix`; returns whether any was set. */
function mask(bytes: Uint8Array, prefix: number): boolean {
  let changed = false;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const m = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((bytes[i]! & ~m & 0xff) !== 0) changed = true;
    bytes[i] = bytes[i]! & m;
  }
  return changed;
}

export function parseCidr(text: string): CidrParse {
  const slash = text.lastIndexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let bytes: Uint8Array | undefined;
  let family: 4 | 6;
  if (addrText.includes(':')) {
    bytes = parseIPv6(addrText);
    family = 6;
  } else {
    bytes = parseIPv4(addrText);
    family = 4;
  }
  if (!bytes) return { ok: false, error: `"${text}" is not an IP address or CIDR` };
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!DECIMAL.test(lenText) || lenText.length > 3) {
      return { ok: false, error: `"${text}" is not an IP address or CIDR` };
    }
    prefix = Number(lenText);
    if (prefix > max)
      return { ok: false, error: `"${text}": prefix length /${prefix} is too long for IPv${family}` };
  }
  let mapped = false;
  if (family === 6 && isMapped(bytes)) {
    if (prefix < 96) {
      return {
        ok: false,
        error: `"${text}": an IPv4-mapped prefix must be /96 or longer (shorter ones mix IPv4 and IPv6)`,
      };
    }
    bytes = bytes.slice(12);
    family = 4;
    prefix -= 96;
    mapped = true;
  }
  const hostBits = mask(bytes, prefix);
  return { ok: true, cidr: { family, bytes, prefix }, hostBits, mapped };
}

/** RFC 5952 text: lower case, no leading zeros, the first longest run of two or more zero groups as `::`. */
function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  return formatIPv6Groups(groups);
}

export function formatCidr(c: Cidr): string {
  const addr = c.family === 4 ? Array.from(c.bytes).join('.') : formatIPv6(c.bytes);
  return `${addr}/${c.prefix}`;
}

/** Whether `inner` lies inside `outer` (same family, prefix at least as long, same network bits). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const copy = inner.bytes.slice();
  mask(copy, outer.prefix);
  return copy.every((b, i) => b === outer.bytes[i]);
}
