/**
 * FRR's bgpd as a real peer, standalone: no zebra (-Z), no kernel routes, no
 * privilege drop, its vty socket and pid file in a private temp dir; queried
 * with `vtysh --vty_socket DIR -c '... json'`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../lab/index.js';
import {
  byPrefix,
  familyOf,
  numericCommunity,
  type PeerFamily,
  PeerProcess,
  type PeerRoute,
  type PeerSpec,
  privateDir,
  type RealPeer,
} from './types.js';

const BGPD = '/usr/lib/frr/bgpd';

export function frrConfig(spec: PeerSpec, logFile: string): string {
  const lines = [
    'frr defaults traditional',
    `log file ${logFile}`,
    `router bgp ${spec.asn}`,
    ` bgp router-id ${spec.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    ' no bgp network import-check',
  ];
  if (spec.neighbors.some((n) => n.gracefulRestart)) {
    lines.push(' bgp graceful-restart');
    const time = spec.neighbors.find((n) => n.gracefulRestart)?.gracefulRestart?.restartTime;
    lines.push(` bgp graceful-restart restart-time ${time}`);
  }
  for (const n of spec.neighbors) {
    const a = n.address;
    lines.push(` neighbor ${a} remote-as ${n.asn}`);
    if (n.port) lines.push(` neighbor ${a} port ${n.port}`);
    if (n.localAddress) lines.push(` neighbor ${a} update-source ${n.localAddress}`);
    if (n.password !== undefined) lines.push(` neighbor ${a} password ${n.password}`);
    if (n.passive) lines.push(` neighbor ${a} passive`);
    if (n.multihop) lines.push(` neighbor ${a} ebgp-multihop ${n.multihop}`);
    if (n.holdTime !== undefined)
      lines.push(` neighbor ${a} timers ${Math.max(1, Math.floor(n.holdTime / 3))} ${n.holdTime}`);
    // Retry fast after a failure instead of FRR's default 120 s.
    lines.push(` neighbor ${a} timers connect 2`);
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    lines.push(` address-family ${family} unicast`);
    for (const n of spec.neighbors) {
      if (!(n.families ?? ['ipv4']).includes(family)) continue;
      lines.push(`  neighbor ${n.address} activate`);
      // An IPv4 session carrying IPv6 routes needs a next hop it can use.
      if (family === 'ipv6') lines.push(`  neighbor ${n.address} next-hop-self`);
    }
    for (const prefix of new Set(spec.neighbors.flatMap((n) => n.announce ?? []))) {
      if (familyOf(prefix) === family) lines.push(`  network ${prefix}`);
    }
    lines.push(' exit-address-family');
  }
  return `${lines.join('\n')}\n`;
}

interface FrrPath {
  valid?: boolean;
  stale?: boolean;
  bestpath?: { overall?: boolean };
  aspath?: { string: string };
  community?: { string: string };
  largeCommunity?: { string: string };
  locPrf?: number;
  localpref?: number;
  med?: number;
  metric?: number;
  nexthops?: { ip: string; scope?: string }[];
  peer?: { peerId: string };
}

export function parseFrrPath(prefix: string, path: FrrPath): PeerRoute {
  const nextHops = path.nexthops ?? [];
  const global = nextHops.find((h) => h.scope !== 'link-local') ?? nextHops[0];
  const route: PeerRoute = {
    prefix,
    nextHop: global?.ip ?? '',
    asPath: (path.aspath?.string ?? '')
      .split(/\s+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number),
    communities: (path.community?.string ?? '').split(/\s+/).filter(Boolean).map(numericCommunity),
    largeCommunities: (path.largeCommunity?.string ?? '').split(/\s+/).filter(Boolean),
    stale: path.stale ?? false,
  };
  const localPref = path.localpref ?? path.locPrf;
  if (localPref !== undefined) route.localPref = localPref;
  const med = path.med ?? path.metric;
  if (med !== undefined) route.med = med;
  return route;
}

export class FrrPeer extends PeerProcess implements RealPeer {
  readonly implementation = 'frr';

  static async start(host: Host, spec: PeerSpec): Promise<FrrPeer> {
    const dir = privateDir('frr', {});
    const conf = join(dir, 'bgpd.conf');
    writeFileSync(conf, frrConfig(spec, join(dir, 'bgpd.log')));
    const argv = [
      BGPD,
      '-f',
      conf,
      '-i',
      join(dir, 'bgpd.pid'),
      '--vty_socket',
      dir,
      '-z',
      join(dir, 'zserv.api'),
    ];
    argv.push('-Z', '-S', '-P', '0', '-p', String(spec.listenPort ?? 179));
    if (spec.listenAddress) argv.push('-l', spec.listenAddress);
    const peer = new FrrPeer(host, dir, host.spawn(argv));
    await peer.ready(
      'vtysh to answer bgpd',
      () => peer.vtysh('show bgp summary json'),
      (out) => out.trim().startsWith('{'),
    );
    return peer;
  }

  async vtysh(command: string): Promise<string> {
    const { stdout } = await this.host.exec(['vtysh', '--vty_socket', this.dir, '-c', command], {
      timeoutMs: 30_000,
    });
    return stdout;
  }

  async json<T>(command: string): Promise<T> {
    return JSON.parse(await this.vtysh(`${command} json`)) as T;
  }

  async sessionState(neighbor: string): Promise<string> {
    const out = await this.json<Record<string, { bgpState?: string }>>(`show bgp neighbors ${neighbor}`);
    return out[neighbor]?.bgpState ?? 'unknown';
  }

  /** FRR's last reset reason and last NOTIFICATION for the neighbor. */
  async lastError(neighbor: string): Promise<string | undefined> {
    const out = await this.json<Record<string, { lastResetDueTo?: string; lastNotificationReason?: string }>>(
      `show bgp neighbors ${neighbor}`,
    );
    const n = out[neighbor];
    return n?.lastNotificationReason ?? n?.lastResetDueTo;
  }

  async routes(family: PeerFamily, neighbor?: string): Promise<PeerRoute[]> {
    const table = await this.json<{ routes?: Record<string, FrrPath[]> }>(`show bgp ${family} unicast`);
    const routes: PeerRoute[] = [];
    for (const prefix of Object.keys(table.routes ?? {})) {
      // The table view leaves out communities; the per-prefix view has every attribute.
      const detail = await this.json<{ paths?: FrrPath[] }>(`show bgp ${family} unicast ${prefix}`);
      const paths = (detail.paths ?? []).filter((p) => neighbor === undefined || p.peer?.peerId === neighbor);
      const best = paths.find((p) => p.bestpath?.overall) ?? paths[0];
      if (best && best.peer?.peerId !== undefined) routes.push(parseFrrPath(prefix, best));
    }
    return byPrefix(routes);
  }

  async routeCount(family: PeerFamily): Promise<number> {
    type Summary = { peers?: Record<string, { pfxRcd?: number }> };
    const out = await this.json<Summary & Record<string, unknown>>(`show bgp ${family} unicast summary`);
    // FRR nests the summary under the family's name in some versions.
    const summary = out.peers
      ? out
      : (Object.values(out).find((v) => typeof v === 'object') as Summary | undefined);
    return Object.values(summary?.peers ?? {}).reduce((sum, p) => sum + (p.pfxRcd ?? 0), 0);
  }
}
