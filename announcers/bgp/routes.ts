import { type LargeCommunity, parseCommunity, parseLargeCommunity } from './codec/communities.js';
import { formatAddress, formatPrefix, type Prefix, parseAddress, parsePrefix } from './codec/prefix.js';
import type { Route } from './types.js';

/** A route validated and parsed once, shared by every peer's RIB-out. */
export interface PreparedRoute {
  /** Canonical prefix text, the RIB key. */
  key: string;
  prefix: Prefix;
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
    let prefix: Prefix;
    try {
      prefix = parsePrefix(route.prefix);
    } catch (error) {
      throw new RouteError(`routes[${i}].prefix`, (error as Error).message);
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
    const v4 = prefix.family === 'ipv4-unicast';
    // parsePrefix accepted the text, so an IPv4 prefix with a length is already canonical.
    const key = v4
      ? route.prefix.includes('/')
        ? route.prefix
        : `${route.prefix}/32`
      : formatPrefix(prefix);
    const prepared: PreparedRoute = {
      key,
      prefix,
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
