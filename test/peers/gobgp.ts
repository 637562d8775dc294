/**
 * GoBGP (gobgpd) as a real peer: a generated TOML config, the gRPC API on a
 * loopback port inside the lab namespace, and routes read with `gobgp ... -j`.
 */
import { join } from 'node:path';
import type { Host } from '../lab/index.js';
import {
  byPrefix,
  familyOf,
  type NeighborSpec,
  type PeerFamily,
  PeerProcess,
  type PeerRoute,
  type PeerSpec,
  privateDir,
  type RealPeer,
} from './types.js';

/** gobgpd's API port inside the namespace; each namespace has its own loopback. */
const API_PORT = 50051;

function neighborToml(n: NeighborSpec): string {
  let t = `[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "${n.address}"\n    peer-as = ${n.asn}\n`;
  if (n.password !== undefined) t += `    auth-password = "${n.password}"\n`;
  if (n.holdTime !== undefined) {
    t += `  [neighbors.timers.config]\n    hold-time = ${n.holdTime}\n`;
    t += `    keepalive-interval = ${Math.max(1, Math.floor(n.holdTime / 3))}\n    connect-retry = 2\n`;
  } else {
    t += '  [neighbors.timers.config]\n    connect-retry = 2\n';
  }
  t += '  [neighbors.transport.config]\n';
  if (n.passive) t += '    passive-mode = true\n';
  if (n.localAddress) t += `    local-address = "${n.localAddress}"\n`;
  if (n.port) t += `    remote-port = ${n.port}\n`;
  if (n.multihop)
    t += `  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = ${n.multihop}\n`;
  if (n.gracefulRestart) {
    t += `  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = ${n.gracefulRestart.restartTime}\n`;
  }
  for (const family of n.families ?? ['ipv4']) {
    t += `  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "${family}-unicast"\n`;
    if (n.gracefulRestart)
      t += '    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n';
  }
  return t;
}

export function gobgpConfig(spec: PeerSpec): string {
  let t = `[global.config]\n  as = ${spec.asn}\n  router-id = "${spec.routerId}"\n  port = ${spec.listenPort ?? 179}\n`;
  if (spec.listenAddress) t += `  local-address-list = ["${spec.listenAddress}"]\n`;
  return t + spec.neighbors.map(neighborToml).join('');
}

interface GobgpAttr {
  type: number;
  value?: unknown;
  as_paths?: { asns?: number[] }[];
  nexthop?: string;
  /** MULTI_EXIT_DISC. */
  metric?: number;
  communities?: number[];
  /** MP_REACH_NLRI's next hops (IPv6). */
  nexthops?: string[];
}

interface GobgpPath {
  attrs?: GobgpAttr[];
  best?: boolean;
  stale?: boolean;
  'neighbor-ip'?: string;
}

const ATTR = {
  asPath: 2,
  nextHop: 3,
  med: 4,
  localPref: 5,
  communities: 8,
  mpReach: 14,
  largeCommunities: 32,
};

export function parseGobgpPath(prefix: string, path: GobgpPath): PeerRoute {
  const route: PeerRoute = { prefix, nextHop: '', asPath: [], communities: [], largeCommunities: [] };
  route.stale = path.stale ?? false;
  for (const attr of path.attrs ?? []) {
    if (attr.type === ATTR.asPath) route.asPath = (attr.as_paths ?? []).flatMap((s) => s.asns ?? []);
    else if (attr.type === ATTR.nextHop) route.nextHop = attr.nexthop ?? '';
    else if (attr.type === ATTR.mpReach) route.nextHop = attr.nexthops?.[0] ?? attr.nexthop ?? route.nextHop;
    else if (attr.type === ATTR.med) route.med = Number(attr.metric ?? attr.value);
    else if (attr.type === ATTR.localPref) route.localPref = Number(attr.value);
    else if (attr.type === ATTR.communities) {
      route.communities = (attr.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`);
    } else if (attr.type === ATTR.largeCommunities) {
      const values = (attr.value ?? []) as {
        ASN?: number;
        asn?: number;
        LocalData1?: number;
        LocalData2?: number;
      }[];
      route.largeCommunities = values.map(
        (v) => `${v.ASN ?? v.asn ?? 0}:${v.LocalData1 ?? 0}:${v.LocalData2 ?? 0}`,
      );
    }
  }
  return route;
}

export class GobgpPeer extends PeerProcess implements RealPeer {
  readonly implementation = 'gobgp';

  static async start(host: Host, spec: PeerSpec): Promise<GobgpPeer> {
    const dir = privateDir('gobgp', { 'gobgpd.toml': gobgpConfig(spec) });
    const api = `127.0.0.1:${API_PORT}`;
    const argv = [
      'gobgpd',
      '-f',
      join(dir, 'gobgpd.toml'),
      '-t',
      'toml',
      '-p',
      '--pprof-disable',
      '--api-hosts',
      api,
    ];
    const peer = new GobgpPeer(host, dir, host.spawn(argv));
    await peer.ready(
      'gobgp to answer',
      () => peer.gobgp(['global', '-j']),
      (out) => out.trim().startsWith('{'),
    );
    for (const prefix of new Set(spec.neighbors.flatMap((n) => n.announce ?? [])))
      await peer.addRoute(prefix);
    return peer;
  }

  async gobgp(args: string[]): Promise<string> {
    const { stdout } = await this.host.exec(['gobgp', '-u', '127.0.0.1', '-p', String(API_PORT), ...args], {
      timeoutMs: 60_000,
    });
    return stdout;
  }

  async addRoute(prefix: string, nextHop?: string): Promise<void> {
    const family = familyOf(prefix) === 'ipv4' ? 'ipv4' : 'ipv6';
    await this.gobgp([
      'global',
      'rib',
      'add',
      '-a',
      family,
      prefix,
      ...(nextHop ? ['nexthop', nextHop] : []),
    ]);
  }

  async sessionState(neighbor: string): Promise<string> {
    const out = JSON.parse(await this.gobgp(['neighbor', neighbor, '-j'])) as {
      state?: { session_state?: unknown };
    };
    const state = out.state?.session_state;
    // gobgp prints the enum as a number (6 = established) or as its lowercase name.
    const names = ['unknown', 'Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];
    if (typeof state === 'number') return names[state] ?? String(state);
    const name = String(state ?? 'unknown');
    return names.find((n) => n.toLowerCase() === name.toLowerCase()) ?? name;
  }

  async routes(family: PeerFamily, neighbor?: string): Promise<PeerRoute[]> {
    const args = neighbor === undefined ? ['global', 'rib'] : ['neighbor', neighbor, 'adj-in'];
    const text = await this.gobgp([...args, '-a', family, '-j']);
    const table = JSON.parse(text.trim() || '{}') as Record<string, GobgpPath[]>;
    const routes: PeerRoute[] = [];
    for (const [prefix, paths] of Object.entries(table)) {
      const received = paths.filter((p) => p['neighbor-ip'] !== undefined && p['neighbor-ip'] !== '<nil>');
      const best = received.find((p) => p.best) ?? received[0];
      if (best) routes.push(parseGobgpPath(prefix, best));
    }
    return byPrefix(routes);
  }

  async routeCount(family: PeerFamily): Promise<number> {
    const out = await this.gobgp(['global', 'rib', 'summary', '-a', family]);
    return Number(/Destination:\s*(\d+)/i.exec(out)?.[1] ?? 0);
  }
}
