/**
 * The native BGP transport between real sockets in lab namespaces: TCP MD5
 * (the right key connects, a wrong or missing key never does, for IPv4 and
 * IPv6, on the connecting and on the listening side), the TTL that eBGP relies
 * on (TTL 1 dies at a router, TTL 2 gets through) and the source address bind.
 * Then two speakers on either side of the router: a directly connected eBGP
 * session (TTL 1, outgoing and accepted sockets alike) never establishes
 * through it; with ebgpMultihop 2 it does.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BgpSpeaker, PeerConfig } from '../../announcers/bgp/index.js';
import { NativeTcpTransport, type TcpListener } from '../../bpf/tcp-socket.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { speakerIn } from '../support/bgp.js';

let lab: Lab;
let a: Host;
let b: Host;
let c: Host;
const listeners: TcpListener[] = [];

beforeAll(async () => {
  lab = await createLab();
  a = await lab.host('a');
  b = await lab.host('b');
  const router = await lab.host('router');
  c = await lab.host('c');
  await lab.link(a, b, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: ['10.90.0.1/24', '10.90.0.11/24', 'fd90::1/64'],
    bAddrs: ['10.90.0.2/24', 'fd90::2/64'],
  });
  await lab.link(a, router, {
    aDev: 'eth1',
    bDev: 'eth0',
    aAddrs: ['10.91.0.1/24'],
    bAddrs: ['10.91.0.254/24'],
  });
  await lab.link(router, c, {
    aDev: 'eth1',
    bDev: 'eth0',
    aAddrs: ['10.92.0.254/24'],
    bAddrs: ['10.92.0.3/24'],
  });
  await router.sysctl('net.ipv4.ip_forward', 1);
  await a.addRoute('10.92.0.0/24', '10.91.0.254');
  await c.addRoute('10.91.0.0/24', '10.92.0.254');
});

afterAll(async () => {
  for (const listener of listeners) await listener.close();
  await lab?.destroy();
});

interface Accepted {
  remote: string[];
}

/** A listener in `host` that answers "pong" to whatever each connection sends first. */
async function echoServer(host: Host, address: string, port: number, passwords: Map<string, string>) {
  const accepted: Accepted = { remote: [] };
  const listener = await new NativeTcpTransport({ netns: host.netns }).listen({
    address,
    port,
    passwords,
    onConnection: (socket: Socket) => {
      accepted.remote.push(socket.remoteAddress ?? '?');
      socket.once('data', () => socket.end('pong'));
      socket.on('error', () => {});
    },
  });
  listeners.push(listener);
  return { listener, accepted };
}

/** Connects and exchanges one message; resolves 'pong', or the error's message. */
async function ping(
  from: Host,
  o: { address: string; port: number; password?: string; ttl?: number; localAddress?: string },
) {
  const transport = new NativeTcpTransport({ netns: from.netns });
  let socket: Socket;
  try {
    socket = await transport.connect({ ...o, signal: AbortSignal.timeout(2500) });
  } catch (error) {
    return (error as Error).message;
  }
  return new Promise<string>((resolve) => {
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', (error) => resolve(error.message));
    socket.write('ping');
  });
}

describe('TCP MD5', () => {
  it('connects with the right key and never with a wrong or missing one (IPv4)', async () => {
    await echoServer(b, '0.0.0.0', 1790, new Map([['10.90.0.1', 'rightkey']]));
    expect(await ping(a, { address: '10.90.0.2', port: 1790, password: 'rightkey' })).toBe('pong');
    expect(await ping(a, { address: '10.90.0.2', port: 1790, password: 'wrongkey' })).toMatch(
      /aborted|timeout/i,
    );
    expect(await ping(a, { address: '10.90.0.2', port: 1790 })).toMatch(/aborted|timeout/i);
  });

  it('connects with the right key and never with a wrong one (IPv6, dual-stack listener)', async () => {
    await echoServer(
      b,
      '::',
      1791,
      new Map([
        ['fd90::1', 'six'],
        ['10.90.0.1', 'four'],
      ]),
    );
    expect(await ping(a, { address: 'fd90::2', port: 1791, password: 'six' })).toBe('pong');
    expect(await ping(a, { address: 'fd90::2', port: 1791, password: 'four' })).toMatch(/aborted|timeout/i);
    // An IPv4 peer of an IPv6 socket is keyed by its IPv4-mapped address.
    expect(await ping(a, { address: '10.90.0.2', port: 1791, password: 'four' })).toBe('pong');
  });

  it('changes the listening keys in place: the old key stops working, the new one works', async () => {
    const { listener } = await echoServer(b, '10.90.0.2', 1792, new Map([['10.90.0.1', 'old']]));
    expect(await ping(a, { address: '10.90.0.2', port: 1792, password: 'old' })).toBe('pong');
    listener.setPasswords(new Map([['10.90.0.1', 'new']]));
    expect(await ping(a, { address: '10.90.0.2', port: 1792, password: 'old' })).toMatch(/aborted|timeout/i);
    expect(await ping(a, { address: '10.90.0.2', port: 1792, password: 'new' })).toBe('pong');
    listener.setPasswords(new Map());
    expect(await ping(a, { address: '10.90.0.2', port: 1792 })).toBe('pong');
  });

  it('rejects a key longer than the kernel allows, naming the peer', async () => {
    const message = await ping(a, { address: '10.90.0.2', port: 1790, password: 'x'.repeat(81) });
    expect(message).toMatch(/set TCP MD5 key 10\.90\.0\.2: EINVAL .*1–80 bytes/);
  });
});

describe('TTL and source address', () => {
  it('TTL 1 never crosses a router; TTL 2 and the default do', async () => {
    await echoServer(c, '10.92.0.3', 1793, new Map());
    expect(await ping(a, { address: '10.92.0.3', port: 1793, ttl: 1 })).toMatch(
      /aborted|timeout|EHOSTUNREACH/i,
    );
    expect(await ping(a, { address: '10.92.0.3', port: 1793, ttl: 2 })).toBe('pong');
    expect(await ping(a, { address: '10.92.0.3', port: 1793 })).toBe('pong');
  });

  it('binds the configured local address', async () => {
    const { accepted } = await echoServer(b, '10.90.0.2', 1794, new Map());
    expect(await ping(a, { address: '10.90.0.2', port: 1794, localAddress: '10.90.0.11' })).toBe('pong');
    expect(accepted.remote).toEqual(['10.90.0.11']);
  });

  it('reports a refused connection with its errno', async () => {
    expect(await ping(a, { address: '10.90.0.2', port: 1799 })).toBe(
      'connect 10.90.0.2 port 1799: ECONNREFUSED',
    );
  });
});

describe('eBGP TTL between two speakers with a router between them', () => {
  const speakers: BgpSpeaker[] = [];
  afterAll(async () => {
    for (const s of speakers) await s.stop();
  });

  function peer(address: string, asn: number, o: Partial<PeerConfig>): PeerConfig {
    return {
      address,
      asn,
      port: 179,
      holdTime: 9,
      connectRetryTime: 1,
      passive: false,
      families: ['ipv4-unicast'],
      ...o,
    };
  }

  async function pair(o: {
    port: number;
    active: Host;
    activeAddress: string;
    activeMultihop?: number;
    passive: Host;
    passiveAddress: string;
    passiveListen: string;
    passiveMultihop?: number;
  }) {
    const passive = speakerIn(o.passive, {
      asn: 65002,
      routerId: '10.0.0.2',
      listen: { address: o.passiveListen, port: o.port },
      peers: [
        peer(o.activeAddress, 65001, {
          passive: true,
          ...(o.passiveMultihop ? { ebgpMultihop: o.passiveMultihop } : {}),
        }),
      ],
    });
    const active = speakerIn(o.active, {
      asn: 65001,
      routerId: '10.0.0.1',
      peers: [
        peer(o.passiveAddress, 65002, {
          port: o.port,
          ...(o.activeMultihop ? { ebgpMultihop: o.activeMultihop } : {}),
        }),
      ],
    });
    speakers.push(passive, active);
    await passive.start();
    await active.start();
    return { active, passive };
  }

  async function waitEstablished(speakers: BgpSpeaker[], ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (speakers.every((s) => s.peers()[0]?.state === 'Established')) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** a (10.91.0.1) connects to c (10.92.0.3) through the router; c always allows 2 hops. */
  const outgoing = (port: number, multihop?: number) =>
    pair({
      port,
      active: a,
      activeAddress: '10.91.0.1',
      ...(multihop ? { activeMultihop: multihop } : {}),
      passive: c,
      passiveAddress: '10.92.0.3',
      passiveListen: '10.92.0.3',
      passiveMultihop: 2,
    });

  /**
   * c connects with TTL 2, so its SYN reaches a; a replies on the accepted socket. The
   * listener is dual-stack, so the IPv4 peer arrives on an IPv6 socket (IPv4-mapped).
   */
  const accepted = (port: number, multihop?: number) =>
    pair({
      port,
      active: c,
      activeAddress: '10.92.0.3',
      activeMultihop: 2,
      passive: a,
      passiveAddress: '10.91.0.1',
      passiveListen: '::',
      ...(multihop ? { passiveMultihop: multihop } : {}),
    });

  it('an outgoing direct eBGP session (TTL 1) never crosses it; with ebgpMultihop 2 it does', async () => {
    const direct = await outgoing(1795);
    expect(await waitEstablished([direct.active, direct.passive], 4000)).toBe(false);
    // The router answers the TTL-1 SYN with ICMP time exceeded.
    expect(direct.active.peers()[0]?.lastError?.message).toMatch(
      /^connect 10\.92\.0\.3 port 1795: EHOSTUNREACH|^connect to 10\.92\.0\.3 port 1795 timed out/,
    );
    await Promise.all([direct.active.stop(), direct.passive.stop()]);
    const multihop = await outgoing(1796, 2);
    expect(await waitEstablished([multihop.active, multihop.passive], 15_000)).toBe(true);
  }, 30_000);

  it('an accepted direct eBGP connection (TTL 1 set on the accepted socket) never establishes; with ebgpMultihop 2 it does', async () => {
    const direct = await accepted(1797);
    expect(await waitEstablished([direct.active, direct.passive], 5000)).toBe(false);
    await Promise.all([direct.active.stop(), direct.passive.stop()]);
    const multihop = await accepted(1798, 2);
    expect(await waitEstablished([multihop.active, multihop.passive], 15_000)).toBe(true);
  }, 30_000);
});
