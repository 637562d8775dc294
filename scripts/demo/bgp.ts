/**
 * The BGP part of the README demo: a BIRD 2 router joins the lab's LAN, the
 * running daemon gets a `bgp` section (one peer, two service addresses with a
 * community) on reload, BIRD's own CLI shows the routes, and
 * `nodewarden bgp peers` shows the session. The host firewall's default-deny
 * ingress stays in force: the daemon allows TCP 179 with its peers by itself.
 */
import { readFileSync } from 'node:fs';
import type { Bridge, Host, Lab } from '../../test/lab/index.js';
import { BirdPeer } from '../../test/peers/bird.js';
import { waitEstablished, waitFor } from '../../test/peers/types.js';
import type { DaemonFiles, DaemonInstance } from '../../test/support/daemon.js';

const ROUTER = '10.99.0.30';
const ROUTER6 = 'fd99::30';

export interface BgpDemoContext {
  lab: Lab;
  lan: Bridge;
  node: Host;
  /** The node's address on the LAN. */
  nodeAddress: string;
  nodeAddress6: string;
  daemon: DaemonInstance;
  files: DaemonFiles;
}

function say(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Runs the BGP part; the router keeps running until the returned stop(). */
export async function demoBgp(ctx: BgpDemoContext): Promise<{ stop(): Promise<void> }> {
  say('\n=== BGP: announce two service addresses to a BIRD router on the LAN');
  const routerHost = await ctx.lab.host('router');
  await ctx.lan.attach(routerHost, { dev: 'eth0', addrs: [`${ROUTER}/24`, `${ROUTER6}/64`] });
  const bird = await BirdPeer.start(routerHost, {
    asn: 64512,
    routerId: ROUTER,
    neighbors: [{ address: ctx.nodeAddress, asn: 64513, holdTime: 9, families: ['ipv4', 'ipv6'] }],
  });
  try {
    const bgp = `bgp:
  asn: 64513
  peers:
    - name: tor
      peerAddress: ${ROUTER}
      peerASN: 64512
      holdTime: 9s
      families: [ipv4-unicast, ipv6-unicast]
      nextHop: { ipv6: "${ctx.nodeAddress6}" }
  advertisements:
    - name: services
      prefixes: [203.0.113.10, "2001:db8:99::10"]
      communities: ["64513:100"]
      largeCommunities: ["64513:1:1"]
`;
    say(`config.yaml gets:\n${bgp}`);
    ctx.files.writeConfig(`${readFileSync(ctx.files.configPath, 'utf8')}${bgp}`);
    const reload = await ctx.daemon.reload();
    if (!reload.ok) throw new Error(`demo: reload rejected: ${reload.error}`);
    await waitEstablished(bird, ctx.nodeAddress);
    await waitFor(
      'BIRD to hold both routes',
      async () => {
        return (await bird.routeCount('ipv4')) + (await bird.routeCount('ipv6'));
      },
      (n) => n === 2,
    );
    say(`ok: BIRD (AS 64512) established a session with the node (AS 64513)`);
    say(`\n$ birdc show route all  (on the router)`);
    for (const table of ['master4', 'master6']) {
      say((await bird.birdc(`show route all table ${table} protocol n0`)).replace(/^BIRD .* ready\.\n/, ''));
    }
    say('$ nodewarden bgp peers');
    say((await ctx.daemon.cli(['bgp', 'peers'])).stdout);
  } catch (error) {
    await bird.stop();
    throw error;
  }
  return { stop: () => bird.stop() };
}
