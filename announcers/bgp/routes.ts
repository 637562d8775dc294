import { type LargeCommunity, parseCommunity, parseLargeCommunity } from './codec/communities.js';
import { formatAddress, formatPrefix, type Prefix, parseAddress, parsePrefix } from './codec/prefix.js';
import type { Family, Route } from './types.js';

/** A route validated and parsed once, shared by every peer's RIB-out. */
export interface PreparedRoute {
  /** Canonical prefix text, the RIB key. */
  key: string;
  family: Family;
  /** Prefix length. */
  length: number;
  /**
   * The address: an unsigned 32-bit number for IPv4 (no object per route:
   * tables of 100k host routes are the common case), 16 bytes for IPv6.
   */
  ipv4: number;
  ipv6: Uint8Array | undefined;
  /** Equal for routes whose attributes are equal: they can share UPDATEs. */
  attrKey: string;
  /** Family and attrKey: routes with equal groupKey go in the same UPDATEs. */
  groupKey: string;
  communities: number[];
  largeCommunities: LargeCommunity[];
  localPref: number | undefined;
  med: number | undefined;
  /** Canonical peer addresses; undefined = every peer. */
  peers: ReadonlySet<string> | undefined;
}

/** A route the speaker cannot announce, naming the route and the field. */
export class RouteError extends Error {
  override name = 'RouteError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** "::ffff:192.0.2.1" → "192.0.2.1"; IPv6 in RFC 5952 form; anything else unchanged. */
export function canonicalAddress(text: string): string {
  const bare = text.toLowerCase().startsWith('::ffff:') && text.includes('.') ? text.slice(7) : text;
  const parsed = parseAddress(bare);
  if (!parsed) return text;
  return formatAddress(parsed.family, parsed.addr);
}

function u32Field(value: number | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RouteError(path, `${value} is not an integer 0..4294967295`);
  }
  return value;
}

/**
 * Validates and parses the desired table. Throws RouteError for the first bad
 * route before anything changes, so the last good table stays announced. A
 * prefix listed twice keeps its last entry.
 */
export function prepareRoutes(routes: readonly Route[]): PreparedRoute[] {
  const byKey = new Map<string, PreparedRoute>();
  // Tables are large and their attribute sets few: parse each distinct set once.
  const attributeSets = new Map<string, AttributeSet>();
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    const text = route.prefix;
    let length = typeof text === 'string' ? scanIPv4Prefix(text) : -1;
    let ipv4 = scannedIPv4;
    let prefix: Prefix | undefined;
    if (length < 0) {
      try {
        prefix = parsePrefix(text);
      } catch (error) {
        throw new RouteError(`routes[${i}].prefix`, (error as Error).message);
      }
      length = prefix.length;
      const a = prefix.addr;
      ipv4 =
        prefix.family === 'ipv4-unicast' ? ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0 : 0;
    }
    const plain =
      route.communities === undefined &&
      route.largeCommunities === undefined &&
      route.localPref === undefined &&
      route.med === undefined &&
      route.peers === undefined;
    const rawKey = plain
      ? ''
      : `${route.communities?.join(',')}|${route.largeCommunities?.join(',')}|${route.localPref}|${route.med}|${route.peers?.join(',')}`;
    let set = attributeSets.get(rawKey);
    if (!set) {
      set = parseAttributes(route, `routes[${i}]`);
      attributeSets.set(rawKey, set);
    }
    const v4 = prefix === undefined || prefix.family === 'ipv4-unicast';
    // The scanner and parsePrefix accepted the text, so an IPv4 prefix with a length is already canonical.
    const key = v4 ? (text.includes('/') ? text : `${text}/32`) : formatPrefix(prefix!);
    const prepared: PreparedRoute = {
      key,
      family: v4 ? 'ipv4-unicast' : 'ipv6-unicast',
      length,
      ipv4,
      ipv6: v4 ? undefined : prefix!.addr,
      attrKey: set.attrKey,
      groupKey: v4 ? set.groupKeyIPv4 : set.groupKeyIPv6,
      communities: set.communities,
      largeCommunities: set.largeCommunities,
      localPref: set.localPref,
      med: set.med,
      peers: set.peers,
    };
    byKey.set(key, prepared);
  }
  return [...byKey.values()];
}

let scannedIPv4 = 0;

/**
 * The common case without allocation: "a.b.c.d/len" or "a.b.c.d" with host
 * bits clear. Returns the length and leaves the address in scannedIPv4, or
 * -1 for anything else (parsePrefix then decides, with its error messages).
 */
function scanIPv4Prefix(text: string): number {
  let addr = 0;
  let part = 0;
  let value = 0;
  let digits = 0;
  let i = 0;
  const n = text.length;
  for (; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 47;
    if (c === 46 || c === 47) {
      if (digits === 0 || part > 3) return -1;
      addr = addr * 256 + value;
      part++;
      value = 0;
      digits = 0;
      if (c === 47) break;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return -1;
      value = value * 10 + (c - 48);
      if (value > 255) return -1;
      digits++;
    } else return -1;
  }
  if (part !== 4) return -1;
  let length = 32;
  if (i < n) {
    if (i + 1 === n || n - i - 1 > 2) return -1;
    length = 0;
    for (let j = i + 1; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c < 48 || c > 57 || (j > i + 1 && length === 0)) return -1;
      length = length * 10 + (c - 48);
    }
    if (length > 32) return -1;
  }
  const hostBits = length === 0 ? addr : addr % 2 ** (32 - length);
  if (hostBits !== 0) return -1;
  scannedIPv4 = addr;
  return length;
}

interface AttributeSet {
  attrKey: string;
  groupKeyIPv4: string;
  groupKeyIPv6: string;
  communities: number[];
  largeCommunities: LargeCommunity[];
  localPref: number | undefined;
  med: number | undefined;
  peers: ReadonlySet<string> | undefined;
}

function parseAttributes(route: Route, at: string): AttributeSet {
  const communities = (route.communities ?? []).map((c, j) => {
    try {
      return parseCommunity(c);
    } catch (error) {
      throw new RouteError(`${at}.communities[${j}]`, (error as Error).message);
    }
  });
  const largeCommunities = (route.largeCommunities ?? []).map((c, j) => {
    try {
      return parseLargeCommunity(c);
    } catch (error) {
      throw new RouteError(`${at}.largeCommunities[${j}]`, (error as Error).message);
    }
  });
  const localPref = u32Field(route.localPref, `${at}.localPref`);
  const med = u32Field(route.med, `${at}.med`);
  const peers = route.peers?.map(canonicalAddress);
  const attrKey = `${communities.join(',')}|${largeCommunities.map((l) => l.join(':')).join(',')}|${localPref ?? ''}|${med ?? ''}`;
  return {
    attrKey,
    groupKeyIPv4: `ipv4-unicast#${attrKey}`,
    groupKeyIPv6: `ipv6-unicast#${attrKey}`,
    communities,
    largeCommunities,
    localPref,
    med,
    peers: peers ? new Set(peers) : undefined,
  };
}
