/**
 * DSR VIPs on a backend node are local: a `local` route in the local table
 * (no address on any device, so nothing announces them, and the decap program
 * drops ARP requests for them). The routes carry protocol 78 ("NW") so that we
 * find and remove only our own. iproute2 does the netlink work.
 */
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';

export const ROUTE_PROTOCOL = 78;

const familyOf = (vip: string) => (isIP(vip) === 6 ? '-6' : '-4');

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ours(family: '-4' | '-6'): string[] {
  const out = ip([family, '-j', 'route', 'show', 'table', 'local', 'proto', String(ROUTE_PROTOCOL)]);
  return (JSON.parse(out || '[]') as { dst: string }[]).map((r) => r.dst.replace(/\/(32|128)$/, ''));
}

function route(action: 'replace' | 'del', vip: string): void {
  const where = ['dev', 'lo', 'table', 'local', 'proto', String(ROUTE_PROTOCOL)];
  ip([familyOf(vip), 'route', action, 'local', vip, ...where]);
}

/** Makes our local routes exactly these VIPs. Throws with iproute2's message on failure. */
export function syncLocalRoutes(vips: readonly string[]): void {
  const wanted = new Set(vips);
  const live = [...ours('-4'), ...ours('-6')];
  for (const vip of wanted) if (!live.includes(vip)) route('replace', vip);
  for (const vip of live) if (!wanted.has(vip)) route('del', vip);
}

/** Removes every local VIP route of ours (cleanup); returns what it removed. */
export function removeLocalRoutes(): string[] {
  const live = [...ours('-4'), ...ours('-6')];
  for (const vip of live) route('del', vip);
  return live.map((vip) => `local route ${vip} (DSR VIP)`);
}
