/**
 * Address prefixes in one 128-bit space: IPv6 as is, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, prefix length + 96), the same form the datapath keys by.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix {
  /** The network address as a 128-bit number, host bits zero. */
  addr: bigint;
  /** 0–128 in the mapped space. */
  len: number;
}

const ALL_ONES = (1n << 128n) - 1n;
const V4_MAPPED = 0xffffn << 32n;

export const ROOT: Prefix = { addr: 0n, len: 0 };

function mask(len: number): bigint {
  return len === 0 ? 0n : (ALL_ONES << BigInt(128 - len)) & ALL_ONES;
}

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint {
  let head = text;
  let tail = '';
  // A trailing dotted quad (::ffff:1.2.3.4) is two groups.
  const dotted = text.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const v4 = parseV4(dotted[2]!);
    head = `${dotted[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  [head, tail = ''] = head.includes('::') ? (head.split('::') as [string, string]) : [head, ''];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = text.includes('::')
    ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/** Parses an address or CIDR ("10.0.0.0/8", "fd00::1", "::/0"). Host bits are cleared. */
export function parsePrefix(text: string): Prefix {
  const [addrText, lenText] = text.split('/') as [string, string | undefined];
  if (isIPv4(addrText)) {
    const len = lenText === undefined ? 32 : Number(lenText);
    if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`bad prefix length in ${text}`);
    const mapped = 96 + len;
    return { addr: (V4_MAPPED | parseV4(addrText)) & mask(mapped), len: mapped };
  }
  if (isIPv6(addrText)) {
    const len = lenText === undefined ? 128 : Number(lenText);
    if (!Number.isInteger(len) || len < 0 || len > 128) throw new RangeError(`bad prefix length in ${text}`);
    return { addr: parseV6(addrText) & mask(len), len };
  }
  throw new RangeError(`not an IP address or CIDR: ${text}`);
}

export function isV4Mapped(p: Prefix): boolean {
  return p.len >= 96 && p.addr >> 32n === 0xffffn;
}

export function formatPrefix(p: Prefix): string {
  if (isV4Mapped(p)) {
    const v4 = Number(p.addr & 0xffffffffn);
    return `${[v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join('.')}/${p.len - 96}`;
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((p.addr >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { start: i, len: j - i };
    i = j;
  }
  const text =
    best.start < 0
      ? groups.join(':')
      : `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.len).join(':')}`;
  return `${text}/${p.len}`;
}

export function contains(outer: Prefix, inner: Prefix): boolean {
  return outer.len <= inner.len && (inner.addr & mask(outer.len)) === outer.addr;
}

export function prefixKey(p: Prefix): string {
  return `${p.addr.toString(16)}/${p.len}`;
}

/** Sorts so that every prefix comes after the prefixes that contain it. */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.addr !== b.addr) return a.addr < b.addr ? -1 : 1;
  return a.len - b.len;
}

export function toBytes(p: Prefix | bigint): Uint8Array {
  let addr = typeof p === 'bigint' ? p : p.addr;
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(addr & 0xffn);
    addr >>= 8n;
  }
  return out;
}

export function fromBytes(bytes: Uint8Array): bigint {
  return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

/** The address as text: dotted quad for IPv4-mapped, RFC 5952 for IPv6. */
export function formatAddress(addr: bigint): string {
  return formatPrefix({ addr, len: 128 })
    .replace(/\/\d+$/, '')
    .replace(/\/32$/, '');
}
