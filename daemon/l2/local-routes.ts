/**
 * Owned IPs as local routes (`ip route add local IP dev lo table local`), so
 * services on this node accept traffic for them. nodewarden tags its routes
 * with its own protocol number and only ever lists, adds or deletes routes
 * with that tag: routes anyone else made are never touched.
 */
import { execFileSync } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { canonicalIp } from '../../announcers/l2/addresses.js';

/** rtnetlink route protocol of nodewarden's L2 local routes ('L'); see /etc/iproute2/rt_protos. */
export const L2_ROUTE_PROTO = 76;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function listLocalRoutes(): string[] {
  const out: string[] = [];
  for (const family of ['-4', '-6']) {
    const text = ip(['-j', family, 'route', 'show', 'table', 'local', 'proto', String(L2_ROUTE_PROTO)]);
    const routes = JSON.parse(text || '[]') as { dst: string; type?: string }[];
    for (const r of routes) if (r.type === 'local') out.push(canonicalIp(r.dst.split('/')[0]!));
  }
  return out.sort();
}

export function diffLocalRoutes(live: readonly string[], wanted: readonly string[]) {
  const have = new Set(live);
  const want = new Set(wanted.map(canonicalIp));
  return {
    add: [...want].filter((i) => !have.has(i)).sort(),
    remove: [...have].filter((i) => !want.has(i)).sort(),
  };
}

function routeArgs(verb: 'replace' | 'del', address: string): string[] {
  const family = isIPv4(address) ? '-4' : '-6';
  const prefix = `${address}/${isIPv4(address) ? 32 : 128}`;
  return [
    family,
    'route',
    verb,
    'local',
    prefix,
    'dev',
    'lo',
    'table',
    'local',
    'proto',
    String(L2_ROUTE_PROTO),
  ];
}

export interface RouteSyncResult {
  added: string[];
  removed: string[];
  errors: { ip: string; error: string }[];
}

/** Makes our tagged local routes exactly `wanted`. */
export function syncLocalRoutes(wanted: readonly string[]): RouteSyncResult {
  const result: RouteSyncResult = { added: [], removed: [], errors: [] };
  let live: string[];
  try {
    live = listLocalRoutes();
  } catch (error) {
    result.errors.push({ ip: '*', error: `list local routes: ${errorText(error)}` });
    return result;
  }
  const { add, remove } = diffLocalRoutes(live, wanted);
  for (const [list, verb, done] of [
    [remove, 'del', result.removed],
    [add, 'replace', result.added],
  ] as const) {
    for (const address of list) {
      try {
        ip(routeArgs(verb, address));
        done.push(address);
      } catch (error) {
        result.errors.push({ ip: address, error: `${verb} local route: ${errorText(error)}` });
      }
    }
  }
  return result;
}

function errorText(error: unknown): string {
  const stderr = (error as { stderr?: string }).stderr;
  return (stderr?.trim() || (error instanceof Error ? error.message : String(error))).split('\n')[0]!;
}
