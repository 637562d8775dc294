/**
 * BIRD 2 as a real peer: a generated config, the daemon in the foreground
 * inside a lab namespace (`bird -f`), its control socket in a private temp
 * dir, and routes read back with `birdc show route all`.
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

export function birdProtocolName(index: number): string {
  return `n${index}`;
}

function staticProtocol(name: string, family: PeerFamily, prefixes: string[]): string {
  if (prefixes.length === 0) return '';
  return `protocol static ${name} {\n  ${family};\n${prefixes.map((p) => `  route ${p} blackhole;\n`).join('')}}\n`;
}

function channel(family: PeerFamily, n: NeighborSpec): string {
  const own = (n.announce ?? []).filter((p) => familyOf(p) === family);
  const exportRule = own.length ? `export where net ~ [ ${own.join(', ')} ];` : 'export none;';
  // Routes from a directly connected neighbor resolve on the link; multihop ones through the table.
  const gateway = n.multihop ? 'gateway recursive;' : 'gateway direct;';
  return `  ${family} { import all; ${exportRule} ${gateway} };\n`;
}

export function birdConfig(spec: PeerSpec): string {
  const all = spec.neighbors.flatMap((n) => n.announce ?? []);
  let text = `router id ${spec.routerId};\nlog stderr { info, remote, warning, error, auth, fatal, bug };\n`;
  // Millisecond state-change times, so that benchmarks can time from Established.
  text += 'timeformat protocol iso long ms;\n';
  text += 'protocol device { scan time 10; }\nprotocol direct { ipv4; ipv6; interface "*"; }\n';
  text += staticProtocol(
    'announce4',
    'ipv4',
    all.filter((p) => familyOf(p) === 'ipv4'),
  );
  text += staticProtocol(
    'announce6',
    'ipv6',
    all.filter((p) => familyOf(p) === 'ipv6'),
  );
  spec.neighbors.forEach((n, i) => {
    text += `protocol bgp ${birdProtocolName(i)} {\n`;
    const localPort = spec.listenPort ? ` port ${spec.listenPort}` : '';
    text += `  local ${n.localAddress ?? ''}${localPort} as ${spec.asn};\n`;
    text += `  neighbor ${n.address}${n.port ? ` port ${n.port}` : ''} as ${n.asn};\n`;
    if (n.holdTime !== undefined) text += `  hold time ${n.holdTime};\n`;
    if (n.password !== undefined) text += `  password "${n.password}";\n`;
    if (n.passive) text += '  passive on;\n';
    if (n.multihop) text += `  multihop ${n.multihop};\n`;
    // BIRD treats iBGP as multihop unless told the neighbor is on the link.
    else if (n.asn === spec.asn) text += '  direct;\n';
    if (n.gracefulRestart) {
      text += `  graceful restart on;\n  graceful restart time ${n.gracefulRestart.restartTime};\n`;
    }
    // Retry fast, so that tests need not wait BIRD's default two minutes after a failure.
    text += '  connect retry time 2;\n  error wait time 1, 5;\n';
    if (n.connectDelay !== undefined) text += `  connect delay time ${n.connectDelay};\n`;
    for (const family of n.families ?? ['ipv4']) text += channel(family, n);
    text += '}\n';
  });
  return text;
}

/** Parses `birdc show route all` output into one route per prefix (the best, first, one). */
export function parseBirdRoutes(text: string): PeerRoute[] {
  const routes: PeerRoute[] = [];
  let current: PeerRoute | undefined;
  let started = false;
  for (const line of text.split('\n')) {
    const head = /^(\S+\/\d+)\s+\S+\s+\[/.exec(line);
    const alternative = /^\s+\S+\s+\[\S+ [^\]]*\]/.test(line) && !line.includes(':');
    if (head) {
      current = { prefix: head[1]!, nextHop: '', asPath: [], communities: [], largeCommunities: [] };
      routes.push(current);
      started = true;
      continue;
    }
    if (!started || !current || alternative) {
      if (alternative) current = undefined;
      continue;
    }
    const attr = /^\s+(BGP\.\w+|via|Type):?\s*(.*)$/.exec(line);
    if (!attr) continue;
    const [, key, value = ''] = attr;
    if (key === 'BGP.next_hop') current.nextHop = value.split(' ')[0] ?? '';
    else if (key === 'BGP.as_path') current.asPath = value.split(/\s+/).filter(Boolean).map(Number);
    else if (key === 'BGP.local_pref') current.localPref = Number(value);
    else if (key === 'BGP.med') current.med = Number(value);
    else if (key === 'BGP.community') {
      current.communities = [...value.matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
    } else if (key === 'BGP.large_community') {
      current.largeCommunities = [...value.matchAll(/\((\d+), (\d+), (\d+)\)/g)].map(
        (m) => `${m[1]}:${m[2]}:${m[3]}`,
      );
    }
  }
  return routes;
}

export class BirdPeer extends PeerProcess implements RealPeer {
  readonly implementation = 'bird';
  spec!: PeerSpec;

  get socket(): string {
    return join(this.dir, 'bird.ctl');
  }

  static async start(host: Host, spec: PeerSpec): Promise<BirdPeer> {
    const dir = privateDir('bird', { 'bird.conf': birdConfig(spec) });
    const argv = [
      'bird',
      '-f',
      '-c',
      join(dir, 'bird.conf'),
      '-s',
      join(dir, 'bird.ctl'),
      '-P',
      join(dir, 'bird.pid'),
    ];
    const peer = new BirdPeer(host, dir, host.spawn(argv));
    peer.spec = spec;
    await peer.ready(
      'birdc to answer',
      () => peer.birdc('show status'),
      (out) => out.includes('Daemon is up'),
    );
    return peer;
  }

  /** Runs one birdc command; throws on BIRD's error replies (lines starting with a digit code 8xxx/9xxx). */
  async birdc(command: string): Promise<string> {
    const { stdout } = await this.host.exec(['birdc', '-s', this.socket, ...command.split(' ')], {
      timeoutMs: 30_000,
    });
    return stdout;
  }

  protocolOf(neighbor: string): string {
    const index = this.spec.neighbors.findIndex((n) => n.address === neighbor);
    if (index < 0) throw new Error(`bird has no neighbor ${neighbor}`);
    return birdProtocolName(index);
  }

  async sessionState(neighbor: string): Promise<string> {
    const out = await this.birdc(`show protocols all ${this.protocolOf(neighbor)}`);
    return /BGP state:\s+(\S+)/.exec(out)?.[1] ?? 'unknown';
  }

  /** When the session with `neighbor` last became Established, by BIRD's clock (ms since the epoch). */
  async establishedSince(neighbor: string): Promise<number | undefined> {
    const name = this.protocolOf(neighbor);
    const out = await this.birdc(`show protocols ${name}`);
    const m = new RegExp(`^${name}\\s+BGP\\s+\\S+\\s+up\\s+(\\S+ \\S+)\\s+Established`, 'm').exec(out);
    return m ? new Date(m[1]!.replace(' ', 'T')).getTime() : undefined;
  }

  /** BIRD's "Last error" line of the neighbor's protocol, e.g. "Received: Hold timer expired". */
  async lastError(neighbor: string): Promise<string | undefined> {
    const out = await this.birdc(`show protocols all ${this.protocolOf(neighbor)}`);
    return /Last error:\s+(.*)/.exec(out)?.[1]?.trim();
  }

  async routes(family: PeerFamily, neighbor?: string): Promise<PeerRoute[]> {
    const table = family === 'ipv4' ? 'master4' : 'master6';
    const filter =
      neighbor === undefined ? 'where source = RTS_BGP' : `protocol ${this.protocolOf(neighbor)}`;
    return byPrefix(parseBirdRoutes(await this.birdc(`show route all table ${table} ${filter}`)));
  }

  async routeCount(family: PeerFamily): Promise<number> {
    const table = family === 'ipv4' ? 'master4' : 'master6';
    const out = await this.birdc(`show route count table ${table} where source = RTS_BGP`);
    return Number(/(\d+) of \d+ routes/.exec(out)?.[1] ?? 0);
  }
}
