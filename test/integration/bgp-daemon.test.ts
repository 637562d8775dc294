/**
 * The real daemon peering with a real BIRD in a lab: routes with their
 * attributes as birdc shows them, `nodewarden bgp peers` and status, a reload
 * that withdraws one prefix, TCP MD5 (a wrong password never establishes and
 * says so; the right one does), graceful restart across SIGKILL (BIRD keeps
 * every route, as stale, through the gap), and a clean stop that withdraws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BgpPeerRow } from '../../daemon/bgp/manager.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { BirdPeer } from '../peers/bird.js';
import { waitEstablished, waitFor } from '../peers/types.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';

let lab: Lab;
let node: Host;
let birdHost: Host;
let bird: BirdPeer;
let bpffs: TempBpffs;
let files: DaemonFiles;
let daemon: DaemonInstance | undefined;

const NODE = '10.97.0.1';
const BIRD = '10.97.0.2';
const PASSWORD = 'md5-secret';

function config(
  o: { password?: string; prefixes?: string[]; gracefulRestart?: boolean; passive?: boolean } = {},
): string {
  const prefixes = o.prefixes ?? ['198.51.100.10', '198.51.100.11', '2001:db8:97::10'];
  return `nodeName: bgp-node
devices: [eth0]
bgp:
  asn: 65001
  routerID: ${NODE}
  peers:
    - name: bird
      peerAddress: ${BIRD}
      peerASN: 65002
      holdTime: 9s
      connectTime: 10s
      password: ${o.password ?? PASSWORD}
      enableGracefulRestart: ${o.gracefulRestart ?? true}
      passive: ${o.passive ?? false}
      families: [ipv4-unicast, ipv6-unicast]
      nextHop: { ipv6: "fd97::1" }
  advertisements:
    - prefixes: [${prefixes.map((p) => JSON.stringify(p)).join(', ')}]
      communities: ["65001:100", no-export]
      largeCommunities: ["65001:7:7"]
`;
}

async function peers(d: DaemonInstance): Promise<BgpPeerRow[]> {
  return JSON.parse((await d.cli(['bgp', 'peers', '-o', 'json'])).stdout) as BgpPeerRow[];
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  files = daemonFiles(config());
  lab = await createLab();
  [node, birdHost] = await lab.pair(
    'node',
    'bird',
    [`${NODE}/24`, 'fd97::1/64'],
    [`${BIRD}/24`, 'fd97::2/64'],
  );
  bird = await BirdPeer.start(birdHost, {
    asn: 65002,
    routerId: BIRD,
    neighbors: [
      {
        address: NODE,
        asn: 65001,
        password: PASSWORD,
        holdTime: 9,
        gracefulRestart: { restartTime: 120 },
        families: ['ipv4', 'ipv6'],
        announce: ['192.0.2.0/24'],
      },
    ],
  });
});

afterAll(async () => {
  await bird?.stop();
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('the daemon announces to BIRD', () => {
  it('establishes with TCP MD5 and BIRD holds every prefix with its attributes', async () => {
    daemon = await startDaemon(node, files, `${bpffs.dir}/bgp`);
    await waitEstablished(bird, NODE);
    const v4 = await waitFor(
      'BIRD IPv4 routes',
      () => bird.routes('ipv4'),
      (r) => r.length === 2,
    );
    const attributes = {
      asPath: [65001],
      communities: ['65001:100', '65535:65281'],
      largeCommunities: ['65001:7:7'],
    };
    expect(v4.sort((a, b) => a.prefix.localeCompare(b.prefix))).toEqual([
      expect.objectContaining({ prefix: '198.51.100.10/32', nextHop: NODE, ...attributes }),
      expect.objectContaining({ prefix: '198.51.100.11/32', nextHop: NODE, ...attributes }),
    ]);
    const v6 = await waitFor(
      'BIRD IPv6 routes',
      () => bird.routes('ipv6'),
      (r) => r.length === 1,
    );
    expect(v6).toEqual([
      expect.objectContaining({ prefix: '2001:db8:97::10/128', nextHop: 'fd97::1', ...attributes }),
    ]);
  });

  it('shows the peer in `bgp peers`, in status and in metrics', async () => {
    const d = daemon!;
    const [row] = await peers(d);
    expect(row).toMatchObject({
      name: 'bird',
      address: BIRD,
      asn: 65002,
      state: 'Established',
      prefixesSent: 3,
      prefixesReceived: 1,
      md5: true,
      negotiated: { holdTime: 9, gracefulRestart: true, families: ['ipv4-unicast', 'ipv6-unicast'] },
    });
    const text = (await d.cli(['bgp', 'peers'])).stdout;
    expect(text).toMatch(/^PEER\s+ADDRESS\s+ASN\s+STATE\s+UPTIME\s+SENT\s+RECEIVED/m);
    expect(text).toMatch(new RegExp(`^bird\\s+${BIRD}\\s+65002\\s+Established\\s+\\S+\\s+3\\s+1`, 'm'));
    // What BIRD sends us is shown, never installed.
    const received = JSON.parse((await d.cli(['bgp', 'received', 'bird', '-o', 'json'])).stdout);
    expect(received).toEqual([{ prefix: '192.0.2.0/24', nextHop: BIRD, asPath: [65002] }]);
    expect((await d.cli(['bgp', 'received', 'bird'])).stdout).toMatch(
      /^192\.0\.2\.0\/24\s+via 10\.97\.0\.2 {2}AS path 65002$/m,
    );
    expect((await node.exec(['ip', 'route', 'show', '192.0.2.0/24'])).stdout).toBe('');
    const unknown = await d.cli(['bgp', 'received', 'nobody'], true);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no BGP peer named "nobody" in the configuration/);
    const status = await d.status();
    expect(status.bgp).toMatchObject({ asn: 65001, routerId: NODE, routes: 3, restarting: false });
    expect((await d.cli(['status'])).stdout).toMatch(
      /bgp: +AS 65001, router ID 10\.97\.0\.1; 3 routes; 1\/1 peers established/,
    );
    const metrics = await node.exec([
      'node',
      '-e',
      'fetch("http://127.0.0.1:9469/metrics").then(r => r.text()).then(t => process.stdout.write(t))',
    ]);
    expect(metrics.stdout).toContain('nodewarden_bgp_session_state{peer="bird",address="10.97.0.2"} 6');
    expect(metrics.stdout).toContain('nodewarden_bgp_prefixes_sent{peer="bird",address="10.97.0.2"} 3');
    // The firewall lets the session through whatever the policies say.
    expect(status.firewall.systemAllows.join('\n')).toMatch(/BGP session to peer bird/);
  });

  it('withdraws a prefix removed from the config on reload, keeping the session', async () => {
    const d = daemon!;
    const before = (await peers(d))[0]!.establishedAt;
    files.writeConfig(config({ prefixes: ['198.51.100.10', '2001:db8:97::10'] }));
    expect(await d.reload()).toMatchObject({ ok: true });
    const v4 = await waitFor(
      'BIRD to drop 198.51.100.11',
      () => bird.routes('ipv4'),
      (r) => r.length === 1,
    );
    expect(v4.map((r) => r.prefix)).toEqual(['198.51.100.10/32']);
    expect((await bird.routes('ipv6')).map((r) => r.prefix)).toEqual(['2001:db8:97::10/128']);
    expect((await peers(d))[0]!.establishedAt).toBe(before);
  });

  it('keeps the last good config when the bgp section is invalid', async () => {
    const d = daemon!;
    files.writeConfig(config().replace('peerASN: 65002', 'peerASN: 0'));
    const reload = await d.reload();
    expect(reload.ok).toBe(false);
    expect(reload.error).toMatch(/config\.yaml:\d+: bgp\.peers\[0\]\.peerASN: /);
    expect((await peers(d))[0]).toMatchObject({ state: 'Established', prefixesSent: 2 });
  });
});

describe('TCP MD5', () => {
  it('never establishes with a wrong password, and `bgp peers` says why', async () => {
    const d = daemon!;
    files.writeConfig(
      config({ password: 'not-the-password', prefixes: ['198.51.100.10', '2001:db8:97::10'] }),
    );
    expect(await d.reload()).toMatchObject({ ok: true });
    // The wrong key is silent on the wire: BIRD's kernel drops our SYNs, and our connect times out.
    const started = Date.now();
    const states = new Set<string>();
    const row = await waitFor(
      'the connect timeout to show in bgp peers',
      async () => {
        const [current] = await peers(d);
        states.add(current!.state);
        states.add(await bird.sessionState(NODE));
        return current!;
      },
      (current) => current.lastError?.message?.includes('ETIMEDOUT') === true && Date.now() - started > 8_000,
      30_000,
      500,
    );
    expect(states).not.toContain('Established');
    expect(row.lastError).toMatchObject({ direction: 'local', name: 'Connect failed' });
    const text = (await d.cli(['bgp', 'peers'])).stdout;
    expect(text).toMatch(
      /bird: last error: Connect failed: connect 10\.97\.0\.2 port 179: ETIMEDOUT \(no answer in 5 s; a TCP MD5 key is set: the peer drops segments whose key differs or is missing\)/,
    );
  });

  it('establishes again with the right password', async () => {
    files.writeConfig(config({ prefixes: ['198.51.100.10', '2001:db8:97::10'] }));
    expect(await daemon!.reload()).toMatchObject({ ok: true });
    await waitEstablished(bird, NODE);
    await waitFor(
      'routes back at BIRD',
      () => bird.routes('ipv4'),
      (r) => r.length === 1,
    );
  });
});

describe('a passive peer', () => {
  it('accepts BIRD on the listener, whose socket carries the MD5 key', async () => {
    const d = daemon!;
    files.writeConfig(config({ passive: true, prefixes: ['198.51.100.10', '2001:db8:97::10'] }));
    expect(await d.reload()).toMatchObject({ ok: true });
    expect((await d.status()).bgp?.listen).toEqual({ address: '::', port: 179 });
    await waitFor(
      'BIRD to connect in',
      () => peers(d),
      (rows) => rows[0]?.state === 'Established',
      30_000,
    );
    const listening = await node.exec(['ss', '-Htln', 'sport = :179']);
    expect(listening.stdout).toMatch(/\[::\]:179|\*:179/);
    await waitFor(
      'routes back at BIRD',
      () => bird.routeCount('ipv4'),
      (n) => n === 1,
    );
    files.writeConfig(config({ prefixes: ['198.51.100.10', '2001:db8:97::10'] }));
    expect(await d.reload()).toMatchObject({ ok: true });
    await waitFor(
      'active again',
      () => peers(d),
      (rows) => rows[0]?.state === 'Established',
      30_000,
    );
  });
});

describe('graceful restart with BIRD as the helper', () => {
  it('BIRD keeps every route through a SIGKILL and restart of the daemon', async () => {
    const first = daemon!;
    await waitFor(
      'GR negotiated',
      () => peers(first),
      (rows) => rows[0]?.negotiated?.gracefulRestart === true,
    );
    expect(await bird.routeCount('ipv4')).toBe(1);
    first.process.kill('SIGKILL');
    await first.process.exited;
    let samples = 0;
    let sawGracefulRestart = false;
    const poll = async (until: () => boolean) => {
      while (!until()) {
        const [v4, v6] = [await bird.routeCount('ipv4'), await bird.routeCount('ipv6')];
        expect([v4, v6]).toEqual([1, 1]);
        const protocol = await bird.birdc('show protocols all n0');
        if (/graceful restart/i.test(protocol) && !/BGP state:\s+Established/.test(protocol))
          sawGracefulRestart = true;
        samples++;
      }
    };
    // The gap: nobody speaks for us, yet BIRD must not withdraw.
    const gapEnd = Date.now() + 3_000;
    await poll(() => Date.now() > gapEnd);
    let second: DaemonInstance | undefined;
    const starting = startDaemon(node, files, `${bpffs.dir}/bgp`).then((d) => {
      second = d;
    });
    await poll(() => second !== undefined);
    await starting;
    daemon = second!;
    await waitEstablished(bird, NODE);
    // BIRD ends the restart when we send End-of-RIB; poll a little longer across it.
    const after = Date.now() + 2_000;
    await poll(() => Date.now() > after);
    expect(samples).toBeGreaterThan(10);
    expect(sawGracefulRestart).toBe(true);
    expect((await daemon.status()).bgp?.restarting).toBe(true);
    expect((await bird.routes('ipv4')).map((r) => [r.prefix, r.nextHop])).toEqual([
      ['198.51.100.10/32', NODE],
    ]);
  });

  it('a clean stop without graceful restart sends a Cease with our message and BIRD withdraws', async () => {
    files.writeConfig(config({ gracefulRestart: false, prefixes: ['198.51.100.10', '2001:db8:97::10'] }));
    expect(await daemon!.reload()).toMatchObject({ ok: true });
    await waitFor(
      'session back without GR',
      () => peers(daemon!),
      (rows) => rows[0]?.state === 'Established' && rows[0].negotiated?.gracefulRestart === false,
    );
    await waitFor(
      'routes back',
      () => bird.routeCount('ipv4'),
      (n) => n === 1,
    );
    daemon!.process.kill('SIGTERM');
    await daemon!.process.exited;
    daemon = undefined;
    await waitFor(
      'BIRD to withdraw',
      () => bird.routeCount('ipv4'),
      (n) => n === 0,
      5_000,
    );
    expect(await bird.lastError(NODE)).toMatch(/Received: Administrative shutdown/);
  });
});
