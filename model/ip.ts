/**
 * IP address parsing with Go netip's rules (Cilium's and the Kubernetes API's):
 * dotted quads without leading zeros, IPv6 with "::" and a trailing dotted quad,
 * no zones. Shared by the host policies and the BGP codec; both parse many
 * addresses per config load or UPDATE, so these are scanners without splits.
 */
import { scanIPv6Groups } from './ipv6.js';

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

/**
 * Parses an IPv6 address (with "::" and a trailing dotted quad allowed) into
 * 16 bytes, or undefined. A scanner without allocations per group.
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
