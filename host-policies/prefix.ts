/**
 * Address prefixes in one 128-bit space: IPv6 as is, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, prefix length + 96), the same form the datapath keys by.
 *
 * Besides the BigInt form (`Prefix`), the compiler works on prefixes as four
 * 32-bit words (most significant first) and a length: `parsePrefixWords` fills
 * them without BigInt arithmetic or regular expressions for the usual
 * spellings, and leaves anything unusual to the general parser.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { scanIPv6Groups } from '../model/ipv6.js';

export interface Prefix {
  /** The network address as a 128-bit number, host bits zero. */
  addr: bigint;
  /** 0–128 in the mapped space. */
  len: number;
}

const ALL_ONES = (1n << 128n) - 1n;
const V4_MAPPED = 0xffffn << 32n;

export const ROOT: Prefix = { addr: 0n, len: 0 };

/** mask(len) for every length. */
const MASKS: readonly bigint[] = Array.from({ length: 129 }, (_, len) =>
  len === 0 ? 0n : (ALL_ONES << BigInt(128 - len)) & ALL_ONES,
);

function mask(len: number): bigint {
  return MASKS[len]!;
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

/**
 * The general parser: every spelling node:net accepts (zones, embedded dotted
 * quads, odd lengths). The fast paths fall back to it, and tests hold them to it.
 */
export function parsePrefixSlow(text: string): Prefix {
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

// ---------------------------------------------------------------------------
// Word form

/** The bits a prefix of `len` keeps in the 32-bit word that starts at bit `first`. */
function wordMask(len: number, first: number): number {
  const bits = len - first;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

const CH_0 = 48;
const CH_9 = 57;
const CH_DOT = 46;
const CH_SLASH = 47;

/**
 * The length written from `at` ("/24" or nothing) to the end of the text: `absent` when there
 * is none, -1 when it is not a short run of digits (the general parser then decides).
 */
function lengthAt(text: string, at: number, absent: number): number {
  const n = text.length;
  if (at === n) return absent;
  if (text.charCodeAt(at) !== CH_SLASH || at + 1 === n || n - at > 4) return -1;
  let len = 0;
  for (let j = at + 1; j < n; j++) {
    const c = text.charCodeAt(j);
    if (c < CH_0 || c > CH_9) return -1;
    len = len * 10 + (c - CH_0);
  }
  return len;
}

/** A dotted quad in node:net's strict form, and an optional length: the mapped length, or -1. */
function fastV4(text: string, out: Uint32Array | number[]): number {
  const n = text.length;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= CH_0 && c <= CH_9) {
      if (digits > 0 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - CH_0);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === CH_DOT) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else break;
  }
  if (digits === 0 || dots !== 3) return -1;
  const len = lengthAt(text, i, 32);
  if (len < 0 || len > 32) return -1;
  out[0] = 0;
  out[1] = 0;
  out[2] = 0xffff;
  out[3] = ((value * 256 + part) & wordMask(len, 0)) >>> 0;
  return 96 + len;
}

const groups = [0, 0, 0, 0, 0, 0, 0, 0];

/** Hex groups with at most one "::" (no zone, no dotted quad), and an optional length: the length, or -1. */
function fastV6(text: string, out: Uint32Array | number[]): number {
  const slash = text.indexOf('/');
  const end = slash < 0 ? text.length : slash;
  if (!scanIPv6Groups(text, end, groups)) return -1;
  const len = lengthAt(text, end, 128);
  if (len < 0 || len > 128) return -1;
  out[0] = ((groups[0]! * 65536 + groups[1]!) & wordMask(len, 0)) >>> 0;
  out[1] = ((groups[2]! * 65536 + groups[3]!) & wordMask(len, 32)) >>> 0;
  out[2] = ((groups[4]! * 65536 + groups[5]!) & wordMask(len, 64)) >>> 0;
  out[3] = ((groups[6]! * 65536 + groups[7]!) & wordMask(len, 96)) >>> 0;
  return len;
}

/**
 * parsePrefix into four 32-bit words (most significant first, host bits zero): returns the
 * length in the mapped space. Accepts and rejects exactly what parsePrefix does.
 */
export function parsePrefixWords(text: string, out: Uint32Array | number[]): number {
  const first = text.charCodeAt(0);
  if (first >= CH_0 && first <= CH_9) {
    const len = fastV4(text, out);
    if (len >= 0) return len;
  }
  const len = fastV6(text, out);
  if (len >= 0) return len;
  const p = parsePrefixSlow(text);
  wordsOf(p.addr, out);
  return p.len;
}

/** Four 32-bit words of a 128-bit address, most significant first. */
export function wordsOf(addr: bigint, out: Uint32Array | number[]): void {
  out[0] = Number((addr >> 96n) & 0xffffffffn);
  out[1] = Number((addr >> 64n) & 0xffffffffn);
  out[2] = Number((addr >> 32n) & 0xffffffffn);
  out[3] = Number(addr & 0xffffffffn);
}

const scratch = new DataView(new ArrayBuffer(16));

/** The 128-bit address of four 32-bit words. */
export function addrOfWords(w0: number, w1: number, w2: number, w3: number): bigint {
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0xffff) return V4_MAPPED | BigInt(w3);
    if (w2 === 0) return BigInt(w3);
  }
  scratch.setUint32(0, w0);
  scratch.setUint32(4, w1);
  scratch.setUint32(8, w2);
  scratch.setUint32(12, w3);
  return (scratch.getBigUint64(0) << 64n) | scratch.getBigUint64(8);
}

// ---------------------------------------------------------------------------
// BigInt form

/** Parses an address or CIDR ("10.0.0.0/8", "fd00::1", "::/0"). Host bits are cleared. */
export function parsePrefix(text: string): Prefix {
  const words = [0, 0, 0, 0];
  const len = parsePrefixWords(text, words);
  return { addr: addrOfWords(words[0]!, words[1]!, words[2]!, words[3]!), len };
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

const LOW64 = (1n << 64n) - 1n;

export function toBytes(p: Prefix | bigint): Uint8Array {
  const addr = typeof p === 'bigint' ? p : p.addr;
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  // Like the byte loop it replaces: bits above 128 are dropped.
  view.setBigUint64(0, (addr >> 64n) & LOW64);
  view.setBigUint64(8, addr & LOW64);
  return out;
}

export function fromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== 16) return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return (view.getBigUint64(0) << 64n) | view.getBigUint64(8);
}

/** The address as text: dotted quad for IPv4-mapped, RFC 5952 for IPv6. */
export function formatAddress(addr: bigint): string {
  return formatPrefix({ addr, len: 128 })
    .replace(/\/\d+$/, '')
    .replace(/\/32$/, '');
}
