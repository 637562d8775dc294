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

function routeCommand(verb: 'replace' | 'del', address: string): string {
  const prefix = `${address}/${isIPv4(address) ? 32 : 128}`;
  return `route ${verb} local ${prefix} dev lo table local proto ${L2_ROUTE_PROTO}`;
}

export interface RouteSyncResult {
  added: string[];
  removed: string[];
  errors: { ip: string; error: string }[];
}

/**
 * Makes our tagged local routes exactly `wanted`: one `ip -batch` for all
 * changes (a thousand IPs must not cost a thousand processes), then a fresh
 * listing tells which changes did not take.
 */
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
  if (add.length + remove.length === 0) return result;
  const commands = [
    ...remove.map((a) => routeCommand('del', a)),
    ...add.map((a) => routeCommand('replace', a)),
  ];
  let batchError = '';
  try {
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: `${commands.join('\n')}\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    batchError = errorText(error);
  }
  let after: Set<string>;
  try {
    after = new Set(listLocalRoutes());
  } catch (error) {
    result.errors.push({ ip: '*', error: `list local routes: ${errorText(error)}` });
    return result;
  }
  for (const address of remove) {
    if (after.has(address))
      result.errors.push({ ip: address, error: `del local route: ${batchError || 'still present'}` });
    else result.removed.push(address);
  }
  for (const address of add) {
    if (after.has(address)) result.added.push(address);
    else result.errors.push({ ip: address, error: `add local route: ${batchError || 'missing after add'}` });
  }
  return result;
}

function errorText(error: unknown): string {
  const stderr = (error as { stderr?: Buffer | string }).stderr?.toString();
  return (stderr?.trim() || (error instanceof Error ? error.message : String(error))).split('\n')[0]!;
}
