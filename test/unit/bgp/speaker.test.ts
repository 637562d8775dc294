import { type AddressInfo, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  endOfRibFamily,
  formatCommunity,
} from '../../../announcers/bgp/codec/index.js';
import type { BgpMessage } from '../../../announcers/bgp/codec/messages.js';
import type { UpdateMessage } from '../../../announcers/bgp/codec/update.js';
import {
  BgpSpeaker,
  type PeerConfig,
  type PeerStatus,
  type Route,
  type SpeakerConfig,
  type Transport,
} from '../../../announcers/bgp/index.js';
import { memoryLog, RawPeer, waitFor } from './raw-peer.js';

const running: BgpSpeaker[] = [];
const peersOpen: RawPeer[] = [];

afterEach(async () => {
  for (const p of peersOpen.splice(0)) p.close();
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

function peer(address: string, asn: number, port: number, over: Partial<PeerConfig> = {}): PeerConfig {
  return {
    address,
    asn,
    port,
    holdTime: 30,
    connectRetryTime: 1,
    passive: false,
    families: ['ipv4-unicast', 'ipv6-unicast'],
    ...over,
  };
}

async function speaker(config: SpeakerConfig, restarting = false) {
  const log = memoryLog();
  const s = new BgpSpeaker(config, { log, restarting });
  running.push(s);
  await s.start();
  return { s, log };
}

/** Two speakers on one loopback address, each listening and each connecting to the other (so their connections collide). */
async function pair(address: string, asnA: number, asnB: number, over: Partial<PeerConfig> = {}) {
  const a = await speaker({ asn: asnA, routerId: '10.0.0.1', listen: { address, port: 0 }, peers: [] });
  const portA = a.s.listenPort!;
  const b = await speaker({
    asn: asnB,
    routerId: '10.0.0.2',
    listen: { address, port: 0 },
    peers: [peer(address, asnA, portA, over)],
  });
  a.s.reconfigure({
    asn: asnA,
    routerId: '10.0.0.1',
    listen: { address, port: 0 },
    peers: [peer(address, asnB, b.s.listenPort!, over)],
  });
  const established = (s: BgpSpeaker) => s.peers()[0]?.state === 'Established';
  await waitFor(() => established(a.s) && established(b.s), 10_000, 'both sessions Established');
  return { a, b };
}

const received = (s: BgpSpeaker, address: string) =>
  Object.fromEntries(
    s.receivedRoutes(address).map((r) => [r.prefix, { nextHop: r.nextHop, asPath: r.asPath }]),
  );

const updates = (ms: BgpMessage[]) => ms.filter((m): m is UpdateMessage => m.type === 'update');

describe('two speakers over loopback', { timeout: 60_000 }, () => {
  it('eBGP over 127.0.0.1: exchange, change and withdraw routes, then a shutdown with an RFC 8203 message', async () => {
    const { a, b } = await pair('127.0.0.1', 65001, 4200000002);
    a.s.setRoutes([{ prefix: '198.51.100.1/32' }, { prefix: '2001:db8::1/128', communities: ['no-export'] }]);
    b.s.setRoutes([{ prefix: '203.0.113.0/24', med: 10 }]);
    await waitFor(
      () => b.s.receivedRoutes('127.0.0.1').length === 2 && a.s.receivedRoutes('127.0.0.1').length === 1,
    );
    expect(received(b.s, '127.0.0.1')).toEqual({
      '198.51.100.1/32': { nextHop: '127.0.0.1', asPath: [65001] },
      '2001:db8::1/128': { nextHop: '::ffff:127.0.0.1', asPath: [65001] },
    });
    expect(received(a.s, '127.0.0.1')).toEqual({
      '203.0.113.0/24': { nextHop: '127.0.0.1', asPath: [4200000002] },
    });
    const status = a.s.peers()[0]!;
    expect(status).toMatchObject({
      state: 'Established',
      asn: 4200000002,
      prefixesSent: 2,
      prefixesReceived: 1,
      negotiated: {
        fourOctetAs: true,
        routeRefresh: true,
        families: ['ipv4-unicast', 'ipv6-unicast'],
        holdTime: 30,
      },
    });
    // Collision detection left exactly one session: the speaker with the higher identifier (b) kept its own.
    expect(
      b.log.records.filter((r) => r.m?.includes('Connection Collision Resolution')).length,
    ).toBeGreaterThanOrEqual(0);

    a.s.setRoutes([{ prefix: '198.51.100.2/32' }]);
    await waitFor(
      () =>
        b.s
          .receivedRoutes('127.0.0.1')
          .map((r) => r.prefix)
          .join() === '198.51.100.2/32',
    );
    a.s.setRoutes([]);
    await waitFor(() => b.s.receivedRoutes('127.0.0.1').length === 0);
    expect(a.s.peers()[0]!.prefixesSent).toBe(0);

    const states: PeerStatus[] = [];
    b.s.on('peerState', (s: PeerStatus) => states.push(s));
    await a.s.stop({ message: 'maintenance window 42' });
    await waitFor(() => b.s.peers()[0]!.state !== 'Established');
    expect(b.s.peers()[0]!.lastError).toMatchObject({
      direction: 'received',
      code: 6,
      subcode: 2,
      name: 'Cease/Administrative Shutdown',
      message: 'maintenance window 42',
    });
    expect(states[0]?.lastError?.message).toBe('maintenance window 42');
    expect(b.log.records.some((r) => r.m?.includes('Established ->'))).toBe(true);
  });

  it('iBGP over ::1 with IPv6 routes and the next hop of the session', async () => {
    const { a, b } = await pair('::1', 65010, 65010, { families: ['ipv6-unicast'] });
    a.s.setRoutes([{ prefix: '2001:db8:1::/48', localPref: 200 }, { prefix: '192.0.2.1/32' }]);
    await waitFor(() => b.s.receivedRoutes('::1').length === 1);
    expect(received(b.s, '::1')).toEqual({ '2001:db8:1::/48': { nextHop: '::1', asPath: [] } });
    expect(a.s.peers()[0]!.negotiated?.families).toEqual(['ipv6-unicast']);
  });

  it('reconfigure removes a peer with Cease/Peer De-configured and adds it back', async () => {
    const { a, b } = await pair('127.0.0.1', 65001, 65002);
    const config = { asn: 65001, routerId: '10.0.0.1', listen: { address: '127.0.0.1', port: 0 } };
    const bPeer = peer('127.0.0.1', 65002, b.s.listenPort!);
    a.s.reconfigure({ ...config, peers: [] });
    await waitFor(() => b.s.peers()[0]!.lastError?.subcode === 3, 5000, 'Peer De-configured at b');
    expect(b.s.peers()[0]!.lastError).toMatchObject({
      direction: 'received',
      code: 6,
      name: 'Cease/Peer De-configured',
    });
    expect(a.s.peers()).toEqual([]);
    a.s.reconfigure({ ...config, peers: [bPeer] });
    await waitFor(() => a.s.peers()[0]?.state === 'Established', 10_000, 're-established');
  });
});

describe('what the speaker writes', { timeout: 60_000 }, () => {
  async function withRawPeer(config: Omit<SpeakerConfig, 'listen'>, routes: Route[], restarting = false) {
    const { s, log } = await speaker({ ...config, listen: { address: '127.0.0.1', port: 0 } }, restarting);
    s.setRoutes(routes);
    const raw = await RawPeer.connect(s.listenPort!);
    peersOpen.push(raw);
    return { s, log, raw };
  }

  it('eBGP: AS prepended, next-hop-self, MED, communities by name and number, large communities, no LOCAL_PREF, then End-of-RIB', async () => {
    const { raw } = await withRawPeer(
      { asn: 65001, routerId: '10.0.0.1', peers: [peer('127.0.0.1', 65099, 179, { passive: true })] },
      [
        {
          prefix: '198.51.100.7/32',
          communities: ['65000:100', 'no-export', 'blackhole'],
          largeCommunities: ['65001:1:2'],
          med: 50,
          localPref: 300,
        },
        { prefix: '2001:db8::7/128', communities: ['no-advertise'] },
      ],
    );
    await raw.establish({ asn: 65099 });
    await raw.until(
      (r) => updates(r).filter((u) => endOfRibFamily(u)).length === 2,
      5000,
      'two End-of-RIB markers',
    );
    const ups = updates(raw.received);
    const v4 = ups.find((u) => u.nlri.length > 0)!;
    expect(v4.nlri).toEqual(['198.51.100.7/32']);
    expect(v4.attributes).toEqual({
      origin: 0,
      asPath: [{ type: 2, asns: [65001] }],
      nextHop: '127.0.0.1',
      med: 50,
      communities: [((65000 << 16) | 100) >>> 0, 0xffffff01, 0xffff029a],
      largeCommunities: [[65001, 1, 2]],
    });
    expect(v4.attributes.communities!.map(formatCommunity)).toEqual(['65000:100', 'no-export', 'blackhole']);
    const v6 = ups.find((u) => u.mpReach)!;
    expect(v6.mpReach).toEqual({
      family: 'ipv6-unicast',
      nextHops: ['::ffff:127.0.0.1'],
      nlri: ['2001:db8::7/128'],
    });
    expect(v6.attributes.communities).toEqual([0xffffff02]);
    // The table comes before the End-of-RIB markers.
    const eorAt = ups.findIndex((u) => endOfRibFamily(u));
    expect(ups.indexOf(v4)).toBeLessThan(eorAt);
    expect(ups.indexOf(v6)).toBeLessThan(eorAt);
  });

  it('iBGP: empty AS_PATH and LOCAL_PREF (default 100); a configured next hop', async () => {
    const { raw } = await withRawPeer(
      {
        asn: 65001,
        routerId: '10.0.0.1',
        peers: [
          peer('127.0.0.1', 65001, 179, {
            passive: true,
            families: ['ipv4-unicast'],
            nextHop: { ipv4: '192.0.2.9' },
          }),
        ],
      },
      [{ prefix: '198.51.100.1/32', localPref: 250 }, { prefix: '198.51.100.2/32' }],
    );
    await raw.establish({ asn: 65001 });
    await raw.until((r) => updates(r).some((u) => endOfRibFamily(u) === 'ipv4-unicast'));
    const ups = updates(raw.received).filter((u) => u.nlri.length > 0);
    expect(
      ups.map((u) => [u.nlri, u.attributes.localPref, u.attributes.nextHop, u.attributes.asPath]),
    ).toEqual(
      expect.arrayContaining([
        [['198.51.100.1/32'], 250, '192.0.2.9', []],
        [['198.51.100.2/32'], 100, '192.0.2.9', []],
      ]),
    );
  });

  it('packs 20k /32s with equal attributes densely, answers ROUTE-REFRESH with the table again, and withdraws in bulk', async () => {
    const routes: Route[] = [];
    for (let i = 0; i < 20_000; i++)
      routes.push({ prefix: `10.1.${i >> 8}.${i & 255}/32`, communities: ['65000:1'] });
    const { s, raw } = await withRawPeer(
      {
        asn: 65001,
        routerId: '10.0.0.1',
        peers: [peer('127.0.0.1', 65002, 179, { passive: true, families: ['ipv4-unicast'] })],
      },
      routes,
    );
    await raw.establish({ asn: 65002 });
    const announced = () => updates(raw.received).reduce((n, u) => n + u.nlri.length, 0);
    await raw.until(() => announced() === 20_000, 10_000, '20k prefixes');
    const carrying = updates(raw.received).filter((u) => u.nlri.length > 0);
    // (4096 - 23 - 26 octets of attributes) / 5 octets per /32 = 809 per message.
    expect(carrying.length).toBe(Math.ceil(20_000 / 809));
    await waitFor(() => s.peers()[0]!.prefixesSent === 20_000);

    raw.send(encodeRouteRefresh('ipv4-unicast'));
    await raw.until(() => announced() === 40_000, 10_000, 'the table again after ROUTE-REFRESH');

    s.setRoutes(routes.slice(0, 10));
    const withdrawn = () => updates(raw.received).reduce((n, u) => n + u.withdrawn.length, 0);
    await raw.until(() => withdrawn() === 19_990, 10_000, 'withdrawals');
    expect(updates(raw.received).filter((u) => u.withdrawn.length > 0).length).toBe(Math.ceil(19_990 / 814));
  });

  it('a restarting speaker sets the graceful restart R bit and the F bit per family', async () => {
    const { raw } = await withRawPeer(
      {
        asn: 65001,
        routerId: '10.0.0.1',
        peers: [peer('127.0.0.1', 65002, 179, { passive: true, gracefulRestart: { restartTime: 120 } })],
      },
      [],
      true,
    );
    await raw.establish({ asn: 65002 });
    const open = raw.received.find((m) => m.type === 'open')!;
    expect(open.type === 'open' && open.capabilities.gracefulRestart).toEqual({
      restarting: true,
      restartTime: 120,
      families: [
        { family: 'ipv4-unicast', forwarding: true },
        { family: 'ipv6-unicast', forwarding: true },
      ],
    });
  });

  it('stop({ graceful: true }) closes the connection without a NOTIFICATION', async () => {
    const { s, raw } = await withRawPeer(
      { asn: 65001, routerId: '10.0.0.1', peers: [peer('127.0.0.1', 65002, 179, { passive: true })] },
      [{ prefix: '198.51.100.1/32' }],
    );
    await raw.establish({ asn: 65002 });
    await raw.until((r) => updates(r).some((u) => u.nlri.length > 0));
    await s.stop({ graceful: true });
    await raw.untilClosed();
    expect(raw.received.filter((m) => m.type === 'notification')).toEqual([]);
  });

  it('a silent peer: the hold timer expires and the speaker sends Hold Timer Expired', async () => {
    const { s, raw } = await withRawPeer(
      {
        asn: 65001,
        routerId: '10.0.0.1',
        peers: [peer('127.0.0.1', 65002, 179, { passive: true, holdTime: 3 })],
      },
      [],
    );
    await raw.establish({ asn: 65002, holdTime: 3 });
    // The speaker keeps sending keepalives; we send nothing more.
    await raw.until((r) => r.some((m) => m.type === 'notification'), 6000, 'Hold Timer Expired');
    expect(raw.received.find((m) => m.type === 'notification')).toMatchObject({ code: 4, subcode: 0 });
    await waitFor(() => s.peers()[0]!.state !== 'Established');
    expect(s.peers()[0]!.lastError).toMatchObject({ direction: 'sent', code: 4, name: 'Hold Timer Expired' });
  });

  it('a NOTIFICATION from the peer is shown with its shutdown communication', async () => {
    const { s, raw } = await withRawPeer(
      { asn: 65001, routerId: '10.0.0.1', peers: [peer('127.0.0.1', 65002, 179, { passive: true })] },
      [],
    );
    await raw.establish({ asn: 65002 });
    await waitFor(() => s.peers()[0]!.state === 'Established');
    raw.send(encodeNotification({ code: 6, subcode: 4, shutdownMessage: 'rebooting ✓' }));
    await waitFor(() => s.peers()[0]!.lastError?.direction === 'received');
    expect(s.peers()[0]!.lastError).toMatchObject({
      name: 'Cease/Administrative Reset',
      message: 'rebooting ✓',
    });
  });

  it('refuses connections from addresses that are not peers', async () => {
    const { log, raw } = await withRawPeer(
      { asn: 65001, routerId: '10.0.0.1', peers: [peer('192.0.2.77', 65002, 179, { passive: true })] },
      [],
    );
    await raw.untilClosed();
    expect(log.records.some((r) => r.m?.includes('not a configured peer'))).toBe(true);
  });
});

describe('collision over real sockets', { timeout: 60_000 }, () => {
  it('with the lower identifier the speaker closes its own connection with Cease/Connection Collision Resolution', async () => {
    const accepted: RawPeer[] = [];
    const server = createServer((socket) => accepted.push(new RawPeer(socket)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const { s } = await speaker({
        asn: 65001,
        routerId: '10.0.0.1',
        listen: { address: '127.0.0.1', port: 0 },
        peers: [peer('127.0.0.1', 65002, port)],
      });
      await waitFor(() => accepted.length === 1, 5000, 'the speaker to connect');
      const outgoing = accepted[0]!; // initiated by the speaker
      peersOpen.push(outgoing);
      await outgoing.until((r) => r.some((m) => m.type === 'open'));
      const incoming = await RawPeer.connect(s.listenPort!); // initiated by the peer
      peersOpen.push(incoming);
      await incoming.until((r) => r.some((m) => m.type === 'open'));
      const open = encodeOpen({
        asn: 65002,
        holdTime: 30,
        bgpId: 0x0a0000c8, // 10.0.0.200 > 10.0.0.1: the peer's connection wins
        capabilities: { families: ['ipv4-unicast'], fourOctetAs: 65002 },
      });
      outgoing.send(open);
      await outgoing.until((r) => r.some((m) => m.type === 'keepalive'));
      expect(s.peers()[0]!.state).toBe('OpenConfirm');
      incoming.send(open);
      await outgoing.until((r) => r.some((m) => m.type === 'notification'));
      expect(outgoing.received.find((m) => m.type === 'notification')).toMatchObject({ code: 6, subcode: 7 });
      await outgoing.untilClosed();
      await incoming.until((r) => r.some((m) => m.type === 'keepalive'));
      incoming.send(encodeKeepalive());
      await waitFor(() => s.peers()[0]!.state === 'Established');
      expect(incoming.closed).toBe(false);
    } finally {
      server.close();
    }
  });
});

describe('input errors', { timeout: 60_000 }, () => {
  it('setRoutes refuses a bad route naming it, and keeps the last good table', async () => {
    const { s } = await speaker({ asn: 65001, routerId: '10.0.0.1', peers: [] });
    s.setRoutes([{ prefix: '198.51.100.1/32' }]);
    expect(() => s.setRoutes([{ prefix: '198.51.100.1/32' }, { prefix: '10.0.0.1/8' }])).toThrow(
      'routes[1].prefix: "10.0.0.1/8" has host bits set beyond /8',
    );
    expect(() => s.setRoutes([{ prefix: '10.0.0.0/8', communities: ['1:2', 'bogus'] }])).toThrow(
      /routes\[0\]\.communities\[1\]/,
    );
    expect(() => s.setRoutes([{ prefix: '10.0.0.0/8', largeCommunities: ['1:2'] }])).toThrow(
      /routes\[0\]\.largeCommunities\[0\]/,
    );
    expect(() => s.setRoutes([{ prefix: '10.0.0.0/8', localPref: -1 }])).toThrow(/routes\[0\]\.localPref/);
  });

  it('the constructor refuses a bad router ID, AS number, duplicate peer or hold time', () => {
    const log = memoryLog();
    const base = { asn: 65001, routerId: '10.0.0.1', peers: [] };
    expect(() => new BgpSpeaker({ ...base, routerId: 'x' }, { log })).toThrow(/routerId/);
    expect(() => new BgpSpeaker({ ...base, asn: 0 }, { log })).toThrow(/asn/);
    const p = peer('192.0.2.1', 65002, 179);
    expect(() => new BgpSpeaker({ ...base, peers: [p, { ...p }] }, { log })).toThrow(/peers\[1\]\.address/);
    expect(() => new BgpSpeaker({ ...base, peers: [{ ...p, holdTime: 2 }] }, { log })).toThrow(
      /peers\[0\]\.holdTime/,
    );
    expect(
      () => new BgpSpeaker({ ...base, peers: [{ ...p, nextHop: { ipv4: '2001:db8::1' } }] }, { log }),
    ).toThrow('peers[0].nextHop.ipv4: "2001:db8::1" is not an IPv4 address');
    expect(
      () => new BgpSpeaker({ ...base, peers: [{ ...p, nextHop: { ipv6: 'fe80::1%eth0' } }] }, { log }),
    ).toThrow(/peers\[0\]\.nextHop\.ipv6/);
  });

  it('NodeTransport says the native transport is needed for a password or a TTL', async () => {
    const { s, log } = await speaker({
      asn: 65001,
      routerId: '10.0.0.1',
      peers: [peer('127.0.0.1', 65002, 1, { password: 'secret' })],
    });
    await waitFor(() => s.peers()[0]!.lastError !== undefined);
    expect(s.peers()[0]!.lastError!.message).toMatch(/TCP MD5 password needs the native BGP transport/);
    expect(log.records.length).toBeGreaterThan(0);
  });
});

describe('injected clock', { timeout: 60_000 }, () => {
  /** Timers that fire only when the test advances the clock. */
  function fakeTimers() {
    let now = Date.parse('2026-01-01T00:00:00Z');
    let next = 1;
    const pending = new Map<number, { at: number; fn: () => void }>();
    return {
      setTimeout: (fn: () => void, ms: number) => {
        const id = next++;
        pending.set(id, { at: now + ms, fn });
        return id;
      },
      clearTimeout: (h: unknown) => {
        pending.delete(h as number);
      },
      now: () => now,
      /** Fires due timers in time order, each at its own time, including ones they re-arm. */
      advance(ms: number) {
        const target = now + ms;
        for (;;) {
          const due = [...pending].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
          if (!due) break;
          pending.delete(due[0]);
          now = due[1].at;
          due[1].fn();
        }
        now = target;
      },
    };
  }

  it('the hold timer runs on the injected clock: nothing happens until it is advanced past the hold time', async () => {
    const timers = fakeTimers();
    const log = memoryLog();
    const s = new BgpSpeaker(
      {
        asn: 65001,
        routerId: '10.0.0.1',
        listen: { address: '127.0.0.1', port: 0 },
        peers: [peer('127.0.0.1', 65002, 179, { passive: true, holdTime: 9 })],
      },
      { log, timers },
    );
    running.push(s);
    await s.start();
    const raw = await RawPeer.connect(s.listenPort!);
    peersOpen.push(raw);
    await raw.establish({ asn: 65002, holdTime: 9 });
    await waitFor(() => s.peers()[0]!.state === 'Established');
    timers.advance(8_000);
    // 8 s: two keepalives from the speaker (every 3 s), and still up.
    await raw.until((r) => r.filter((m) => m.type === 'keepalive').length >= 3, 2000, 'keepalives');
    expect(s.peers()[0]!).toMatchObject({ state: 'Established', uptimeSeconds: 8 });
    timers.advance(1_000);
    await raw.until((r) => r.some((m) => m.type === 'notification'), 2000, 'Hold Timer Expired');
    expect(raw.received.find((m) => m.type === 'notification')).toMatchObject({ code: 4, subcode: 0 });
    expect(s.peers()[0]!.state).not.toBe('Established');
  });
});

describe('connect attempts the connect-retry timer gives up on', { timeout: 60_000 }, () => {
  /** A transport whose connects get no answer (SYNs dropped, as with a TCP MD5 mismatch) until aborted. */
  function silentTransport(attempts: string[]): Transport {
    return {
      connect: (o) =>
        new Promise((_, reject) => {
          attempts.push(`${o.address} ${o.port} ttl=${o.ttl}`);
          o.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
      listen: () => Promise.reject(new Error('not listening')),
    };
  }

  for (const [what, over, why] of [
    ['with a password', { password: 'secret' }, /\(wrong or missing TCP MD5 password on either side\?\)$/],
    ['direct eBGP', {}, /\(the peer or the path drops our SYNs; a router between us needs ebgpMultiHop\)$/],
  ] as const) {
    it(`record a last error naming the peer and the wait (${what})`, async () => {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const pending: { at: number; fn: () => void }[] = [];
      const timers = {
        setTimeout: (fn: () => void, ms: number) => pending.push({ at: now + ms, fn }),
        clearTimeout: (h: unknown) => {
          const t = pending[(h as number) - 1];
          if (t) t.fn = () => {};
        },
        now: () => now,
      };
      const attempts: string[] = [];
      const s = new BgpSpeaker(
        {
          asn: 65001,
          routerId: '10.0.0.1',
          peers: [peer('192.0.2.7', 65002, 179, { connectRetryTime: 2, ...over })],
        },
        { log: memoryLog(), timers, transport: silentTransport(attempts), random: () => 0.5 },
      );
      running.push(s);
      await s.start();
      expect(attempts).toEqual(['192.0.2.7 179 ttl=1']);
      expect(s.peers()[0]!.lastError).toBeUndefined();
      const retry = pending.find((t) => t.at > now)!;
      const waited = (retry.at - now) / 1000;
      now = retry.at;
      retry.fn();
      expect(attempts).toHaveLength(2);
      const error = s.peers()[0]!.lastError!;
      expect(error).toMatchObject({ direction: 'local', name: 'Connect failed' });
      expect(
        error.message?.startsWith(`connect to 192.0.2.7 port 179 timed out: no answer in ${waited} s (`),
      ).toBe(true);
      expect(error.message).toMatch(why);
      expect(error.at).toBe(new Date(now).toISOString());
    });
  }
});
