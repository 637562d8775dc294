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
  localPref?: number;
  med?: number;
  /** Canonical peer addresses; undefined = every peer. */
  peers?: ReadonlySet<string>;
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
  const attributeSets = new Map<string, Omit<PreparedRoute, 'key' | 'prefix' | 'groupKey'>>();
  const groupKeys = new Map<string, string>();
  routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    let prefix: Prefix;
    try {
      prefix = parsePrefix(route.prefix);
    } catch (error) {
      throw new RouteError(`${at}.prefix`, (error as Error).message);
    }
    const rawKey = `${route.communities?.join(',') ?? ''}|${route.largeCommunities?.join(',') ?? ''}|${route.localPref ?? ''}|${route.med ?? ''}|${route.peers?.join(',') ?? ''}`;
    let attributes = attributeSets.get(rawKey);
    if (!attributes) {
      attributes = parseAttributes(route, at);
      attributeSets.set(rawKey, attributes);
    }
    const groupKey = `${prefix.family}#${attributes.attrKey}`;
    const key = formatPrefix(prefix);
    byKey.set(key, {
      key,
      prefix,
      groupKey: groupKeys.get(groupKey) ?? setGet(groupKeys, groupKey),
      ...attributes,
    });
  });
  return [...byKey.values()];
}

function setGet(map: Map<string, string>, value: string): string {
  map.set(value, value);
  return value;
}

function parseAttributes(route: Route, at: string): Omit<PreparedRoute, 'key' | 'prefix' | 'groupKey'> {
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
    communities,
    largeCommunities,
    ...(localPref !== undefined ? { localPref } : {}),
    ...(med !== undefined ? { med } : {}),
    ...(peers ? { peers: new Set(peers) } : {}),
  };
}
