/**
 * Failures with a real BIRD: a peer frozen with SIGSTOP makes our hold timer
 * expire (we send Hold Timer Expired and the session comes back once it
 * thaws); a peer that restarts gets our routes again; and a connection
 * collision (BIRD's OPEN on our connection held back by an nft rule in the lab
 * until BIRD opens its own connection to us) resolves to one session.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { BgpSpeaker, PeerStatus } from '../../announcers/bgp/index.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { BirdPeer } from '../peers/bird.js';
import { type NeighborSpec, waitEstablished, waitFor } from '../peers/types.js';
import { RecordingLogger, speakerIn } from '../support/bgp.js';

const NODE = '10.120.0.1';
const BIRD = '10.120.0.2';

let lab: Lab;
let node: Host;
let birdHost: Host;
let bird: BirdPeer | undefined;
let speaker: BgpSpeaker | undefined;

const ROUTES = [{ prefix: '198.51.100.20/32' }, { prefix: '198.51.100.21/32' }];

function startBird(neighbor: Partial<NeighborSpec> = {}): Promise<BirdPeer> {
  return BirdPeer.start(birdHost, {
    asn: 65002,
    routerId: BIRD,
    neighbors: [{ address: NODE, asn: 65001, holdTime: 3, ...neighbor }],
  });
}

function startSpeaker(log: RecordingLogger, o: { listen?: boolean; holdTime?: number } = {}): BgpSpeaker {
  const s = speakerIn(
    node,
    {
      asn: 65001,
      routerId: NODE,
      ...(o.listen ? { listen: { address: NODE, port: 179 } } : {}),
      peers: [
        {
          address: BIRD,
          asn: 65002,
          port: 179,
          holdTime: o.holdTime ?? 3,
          connectRetryTime: 1,
          passive: false,
          families: ['ipv4-unicast'],
        },
      ],
    },
    { log },
  );
  s.setRoutes(ROUTES);
  return s;
}

const state = (s: BgpSpeaker): PeerStatus => s.peers()[0]!;

beforeAll(async () => {
  lab = await createLab();
  [node, birdHost] = await lab.pair('node', 'bird', [`${NODE}/24`], [`${BIRD}/24`]);
});

afterEach(async () => {
  if (bird?.process.running) bird.process.kill('SIGCONT');
  await speaker?.stop();
  await bird?.stop();
  speaker = undefined;
  bird = undefined;
});

afterAll(async () => {
  await lab?.destroy();
});

it('a frozen peer: our hold timer expires, we send Hold Timer Expired, and the session returns after it thaws', async () => {
  const log = new RecordingLogger();
  bird = await startBird();
  speaker = startSpeaker(log);
  await speaker.start();
  await waitEstablished(bird, NODE);
  await waitFor(
    'routes at BIRD',
    () => bird!.routeCount('ipv4'),
    (n) => n === 2,
  );
  const s = speaker;
  bird.process.kill('SIGSTOP');
  const frozenAt = Date.now();
  const after = await waitFor(
    'hold timer expiry',
    async () => state(s),
    (p) => p.state !== 'Established',
    10_000,
    100,
  );
  const elapsed = Date.now() - frozenAt;
  // The hold time is 3 s: not before it, and not much after it.
  expect(elapsed).toBeGreaterThanOrEqual(2_000);
  expect(elapsed).toBeLessThan(6_000);
  expect(after.lastError).toMatchObject({ direction: 'sent', code: 4, subcode: 0 });
  bird.process.kill('SIGCONT');
  await waitFor(
    're-established',
    async () => state(s).state,
    (st) => st === 'Established',
    30_000,
  );
  await waitFor(
    'routes back at BIRD',
    () => bird!.routeCount('ipv4'),
    (n) => n === 2,
  );
});

it('a peer that restarts gets the routes again', async () => {
  const log = new RecordingLogger();
  bird = await startBird();
  speaker = startSpeaker(log, { holdTime: 9 });
  await speaker.start();
  await waitEstablished(bird, NODE);
  await waitFor(
    'routes at BIRD',
    () => bird!.routeCount('ipv4'),
    (n) => n === 2,
  );
  const s = speaker;
  await bird.stop();
  const down = await waitFor(
    'session down',
    async () => state(s),
    (p) => p.state !== 'Established',
    10_000,
    100,
  );
  expect(down.lastError).toBeDefined();
  bird = await startBird();
  await waitEstablished(bird, NODE);
  expect(
    await waitFor(
      'routes at the new BIRD',
      () => bird!.routes('ipv4'),
      (r) => r.length === 2,
    ),
  ).toEqual([
    expect.objectContaining({ prefix: '198.51.100.20/32', nextHop: NODE }),
    expect.objectContaining({ prefix: '198.51.100.21/32', nextHop: NODE }),
  ]);
  expect(state(s).state).toBe('Established');
});

it('a connection collision resolves to one session: the connection of the higher router ID wins', async () => {
  const log = new RecordingLogger();
  // Hold back BIRD's messages on the connection we open (its OPEN never reaches us),
  // so that ours waits in OpenSent when BIRD opens its own connection to us 3 s
  // after it starts: both connections then carry OPENs at once, which is a collision.
  const held = `ip saddr ${BIRD} tcp sport 179 ip length > 100 drop`;
  await node.exec([
    'nft',
    `add table inet nwtest; add chain inet nwtest in { type filter hook input priority 0; }; add rule inet nwtest in ${held}`,
  ]);
  try {
    bird = await startBird({ connectDelay: 3, holdTime: 9 });
    speaker = startSpeaker(log, { listen: true, holdTime: 9 });
    await speaker.start();
    const s = speaker;
    await waitFor(
      'our OPEN sent',
      async () => state(s).state,
      (st) => st === 'OpenSent',
      10_000,
      50,
    );
    await waitEstablished(bird, NODE);
    await waitFor(
      'our side established',
      async () => state(s).state,
      (st) => st === 'Established',
      20_000,
    );
    // Our router ID (10.120.0.1) is lower: we close the connection we opened with Cease 6/7.
    expect(log.text()).toMatch(/Connection Collision Resolution/);
    expect(state(s).lastError).toMatchObject({ direction: 'sent', code: 6, subcode: 7 });
  } finally {
    await node.exec(['nft', 'delete table inet nwtest']);
  }
  // One session: it carries the routes and stays up across a few keepalives.
  const s = speaker;
  const establishedAt = state(s).establishedAt;
  await waitFor(
    'routes at BIRD',
    () => bird!.routeCount('ipv4'),
    (n) => n === 2,
  );
  await new Promise((r) => setTimeout(r, 4_000));
  expect(state(s)).toMatchObject({ state: 'Established', establishedAt });
  expect(await bird.sessionState(NODE)).toBe('Established');
});
