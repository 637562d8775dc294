/**
 * The real-peer harness checked against itself: BIRD announces prefixes with
 * communities to FRR and GoBGP (eBGP, IPv4 and IPv6) and receives theirs, and
 * each peer's own CLI, as the harness reads it, shows what the others sent.
 * The speaker's own tests rely on these readers, so they must be right.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { BirdPeer } from '../peers/bird.js';
import { FrrPeer } from '../peers/frr.js';
import { GobgpPeer } from '../peers/gobgp.js';
import { waitEstablished, waitFor } from '../peers/types.js';

let lab: Lab;
let bird: BirdPeer;
let frr: FrrPeer;
let gobgp: GobgpPeer;
const hosts: Record<string, Host> = {};

const ADDR = {
  bird: ['10.95.0.2', 'fd95::2'],
  frr: ['10.95.0.3', 'fd95::3'],
  gobgp: ['10.95.0.4', 'fd95::4'],
} as const;

beforeAll(async () => {
  lab = await createLab();
  const lan = await lab.bridge('lan');
  for (const name of ['bird', 'frr', 'gobgp'] as const) {
    hosts[name] = await lab.host(name);
    await lan.attach(hosts[name]!, { dev: 'eth0', addrs: [`${ADDR[name][0]}/24`, `${ADDR[name][1]}/64`] });
  }
  bird = await BirdPeer.start(hosts.bird!, {
    asn: 65002,
    routerId: ADDR.bird[0],
    neighbors: [
      { address: ADDR.frr[0], asn: 65003, holdTime: 9, announce: ['10.200.1.0/24'] },
      { address: ADDR.frr[1], asn: 65003, families: ['ipv6'], announce: ['fd00:200:1::/64'] },
      { address: ADDR.gobgp[0], asn: 65004, holdTime: 9, announce: ['10.200.1.0/24'] },
    ],
  });
  frr = await FrrPeer.start(hosts.frr!, {
    asn: 65003,
    routerId: ADDR.frr[0],
    neighbors: [
      { address: ADDR.bird[0], asn: 65002, holdTime: 9, announce: ['10.200.3.0/24'] },
      { address: ADDR.bird[1], asn: 65002, families: ['ipv6'] },
    ],
  });
  gobgp = await GobgpPeer.start(hosts.gobgp!, {
    asn: 65004,
    routerId: ADDR.gobgp[0],
    neighbors: [{ address: ADDR.bird[0], asn: 65002, holdTime: 9, announce: ['10.200.4.0/24'] }],
  });
});

afterAll(async () => {
  for (const peer of [bird, frr, gobgp]) await peer?.stop();
  await lab?.destroy();
});

it('establishes BIRD with FRR and GoBGP, IPv4 and IPv6', async () => {
  await waitEstablished(bird, ADDR.frr[0]);
  await waitEstablished(bird, ADDR.frr[1]);
  await waitEstablished(bird, ADDR.gobgp[0]);
  expect(await frr.sessionState(ADDR.bird[0])).toBe('Established');
  expect(await frr.sessionState(ADDR.bird[1])).toBe('Established');
  expect(await gobgp.sessionState(ADDR.bird[0])).toBe('Established');
});

it('reads what each peer received through its own CLI', async () => {
  const atFrr = await waitFor(
    'FRR to hold BIRD prefix',
    () => frr.routes('ipv4', ADDR.bird[0]),
    (r) => r.length === 1,
  );
  expect(atFrr).toEqual([
    expect.objectContaining({ prefix: '10.200.1.0/24', nextHop: ADDR.bird[0], asPath: [65002] }),
  ]);
  const atFrr6 = await waitFor(
    'FRR IPv6',
    () => frr.routes('ipv6', ADDR.bird[1]),
    (r) => r.length === 1,
  );
  expect(atFrr6).toEqual([
    expect.objectContaining({ prefix: 'fd00:200:1::/64', nextHop: ADDR.bird[1], asPath: [65002] }),
  ]);
  const atGobgp = await waitFor(
    'GoBGP IPv4',
    () => gobgp.routes('ipv4'),
    (r) => r.length === 1,
  );
  expect(atGobgp).toEqual([
    expect.objectContaining({ prefix: '10.200.1.0/24', nextHop: ADDR.bird[0], asPath: [65002] }),
  ]);
  const atBird = await waitFor(
    'BIRD IPv4',
    () => bird.routes('ipv4'),
    (r) => r.length === 2,
  );
  expect(atBird.map((r) => [r.prefix, r.nextHop, r.asPath])).toEqual([
    ['10.200.3.0/24', ADDR.frr[0], [65003]],
    ['10.200.4.0/24', ADDR.gobgp[0], [65004]],
  ]);
  expect(await bird.routeCount('ipv4')).toBe(2);
  expect(await gobgp.routeCount('ipv4')).toBe(2);
  expect(await frr.routeCount('ipv4')).toBe(1);
});
