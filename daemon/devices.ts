/**
 * Which host devices to enforce on when the config names none: those that carry
 * a default route, IPv4 or IPv6. Read from /proc, which shows the calling
 * process's network namespace.
 */
import { readFileSync } from 'node:fs';

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(0);
  } catch {
    return [];
  }
}

/** Parses /proc/net/route text: device of every 0.0.0.0/0 entry. */
export function defaultRouteDevicesV4(routeTable: string): string[] {
  return routeTable
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && f[1] === '00000000' && f[7] === '00000000')
    .map((f) => f[0]!);
}

/** Parses /proc/net/ipv6_route text: device of every ::/0 entry that is not unreachable. */
export function defaultRouteDevicesV6(routeTable: string): string[] {
  return routeTable
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 10 && /^0{32}$/.test(f[0]!) && f[1] === '00' && f[9] !== 'lo')
    .map((f) => f[9]!);
}

export function detectDefaultRouteDevices(): string[] {
  const v4 = defaultRouteDevicesV4(readLines('/proc/net/route').join('\n'));
  const v6 = defaultRouteDevicesV6(readLines('/proc/net/ipv6_route').join('\n'));
  return [...new Set([...v4, ...v6])].sort();
}
