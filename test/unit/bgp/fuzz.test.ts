/**
 * Fuzzing the decoder and a live session with random and mutated messages.
 * BGP_FUZZ_COUNT sets the decoder count (default 1e6: 6-20 s depending on load); the live session
 * runs for 6 s (tens of thousands of messages).
 * BGP_FUZZ_SEED picks another seed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  parsePrefix,
  type UpdateContext,
} from '../../../announcers/bgp/codec/index.js';
import { BgpSpeaker } from '../../../announcers/bgp/index.js';
import { SeededRandom } from '../../support/random.js';
import { memoryLog, RawPeer, waitFor } from './raw-peer.js';
import { attr, rawUpdate, VALID_ATTRIBUTES } from './wire.js';

const COUNT = Number(process.env.BGP_FUZZ_COUNT ?? 1_000_000);
const SEED = Number(process.env.BGP_FUZZ_SEED ?? 20261122);
const ctx4: UpdateContext = { fourOctetAs: true, ebgp: true };

const updateSeeds: Buffer[] = [
  encodeUpdate(
    {
      withdrawn: ['10.9.0.0/16'],
      nlri: ['198.51.100.0/24', '203.0.113.7/32'],
      attributes: {
        origin: 0,
        asPath: [
          { type: 2, asns: [65001, 4200000000] },
          { type: 1, asns: [7, 8] },
        ],
        nextHop: '192.0.2.1',
        med: 5,
        localPref: 100,
        atomicAggregate: true,
        aggregator: { asn: 65001, address: '192.0.2.9' },
        communities: [0xffffff01, 1],
        largeCommunities: [[1, 2, 3]],
      },
    },
    ctx4,
  ),
  encodeUpdate(
    {
      attributes: { origin: 2, asPath: [{ type: 2, asns: [65001] }], communities: [5] },
      mpReach: {
        family: 'ipv6-unicast',
        nextHops: ['2001:db8::1', 'fe80::1'],
        nlri: ['2001:db8:1::/48', '2001:db8::7/128'],
      },
      mpUnreach: { family: 'ipv6-unicast', withdrawn: ['2001:db8:9::/64'] },
    },
    ctx4,
  ),
  encodeUpdate(
    {
      attributes: { origin: 0, asPath: [], med: 1 },
      mpReach: { family: 'ipv4-unicast', nextHops: ['192.0.2.1'], nlri: ['10.0.0.0/8'] },
    },
    ctx4,
  ),
  encodeUpdate(
    {
      attributes: { origin: 0, asPath: [{ type: 2, asns: [1, 2, 3] }], nextHop: '192.0.2.1' },
      nlri: ['0.0.0.0/0'],
    },
    { fourOctetAs: false },
  ),
  rawUpdate({ attributes: [...VALID_ATTRIBUTES, ...attr(0xd0, 99, [1, 2, 3])], nlri: [32, 10, 0, 0, 1] }),
  encodeEndOfRib('ipv4-unicast'),
  encodeEndOfRib('ipv6-unicast'),
];

const otherSeeds: Buffer[] = [
  encodeOpen({
    asn: 4200000001,
    holdTime: 90,
    bgpId: 0x01020304,
    capabilities: {
      families: ['ipv4-unicast', 'ipv6-unicast'],
      routeRefresh: true,
      fourOctetAs: 4200000001,
      gracefulRestart: {
        restarting: true,
        restartTime: 120,
        families: [{ family: 'ipv4-unicast', forwarding: true }],
      },
    },
  }),
  encodeKeepalive(),
  encodeNotification({ code: 6, subcode: 2, shutdownMessage: 'fuzz' }),
  encodeRouteRefresh('ipv4-unicast'),
];

/** Rewrites the header length to the buffer's length, so that the body, not the header, is what is broken. */
function fixLength(b: Buffer): Buffer {
  if (b.length >= 19 && b.length <= 0xffff) b.writeUInt16BE(b.length, 16);
  return b;
}

function mutate(rnd: SeededRandom, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  const body = (): number => rnd.int(19, Math.max(19, b.length - 1));
  switch (rnd.int(0, 8)) {
    case 8: {
      // a 16- or 32-bit field set to 0, 1 or 2 (hold times, identifiers, lengths)
      if (b.length < 23) return b;
      const at = rnd.int(19, b.length - 4);
      const value = rnd.int(0, 2);
      if (rnd.chance(0.5)) b.writeUInt16BE(value, at);
      else b.writeUInt32BE(value, at);
      return b;
    }
    case 0: // bit flips in the body
      for (let i = rnd.int(1, 3); i > 0; i--) if (b.length > 19) b[body()]! ^= 1 << rnd.int(0, 7);
      return b;
    case 1: // one body byte set to a boundary or random value
      if (b.length > 19) b[body()] = rnd.pick([0, 1, 0x7f, 0x80, 0xff, rnd.int(0, 255)]);
      return b;
    case 2: // truncated body, consistent header
      return fixLength(b.subarray(0, rnd.int(19, b.length)));
    case 3: // extra bytes, consistent header
      return fixLength(Buffer.concat([b, rnd.bytes(rnd.int(1, 40))]));
    case 4: {
      // random bytes spliced into the body
      const at = body();
      return fixLength(Buffer.concat([b.subarray(0, at), rnd.bytes(rnd.int(1, 8)), b.subarray(at)]));
    }
    case 5: // random body under a valid header of a random type
      return fixLength(
        Buffer.concat([b.subarray(0, 18), Buffer.of(rnd.int(1, 6)), rnd.bytes(rnd.int(0, 80))]),
      );
    case 6: // header damage: marker, length or type
      b[rnd.int(0, 18)] = rnd.int(0, 255);
      return b;
    default: // pure noise
      return rnd.bytes(rnd.int(0, 90));
  }
}

/** The header check, written independently of the decoder: code 1 subcode, or 0 for a good header. */
function expectedHeaderSubcode(b: Buffer): number {
  if (b.length < 19) return 2;
  const fromHeader = headerOnlySubcode(b);
  if (fromHeader !== 0) return fromHeader;
  return b.readUInt16BE(16) !== b.length ? 2 : 0;
}

/** What the first 19 octets alone show (all a stream reader can know before the body arrives). */
function headerOnlySubcode(b: Buffer): number {
  for (let i = 0; i < 16; i++) if (b[i] !== 0xff) return 1;
  const length = b.readUInt16BE(16);
  if (length < 19 || length > 4096) return 2;
  const type = b[18]!;
  if (type < 1 || type > 5) return 3;
  const min = [0, 29, 23, 21, 19, 23][type]!;
  if (length < min || ((type === 4 || type === 5) && length !== min)) return 2;
  return 0;
}

/** A message the stream splits exactly as decodeMessage sees it. */
function streamable(b: Buffer): boolean {
  return b.length >= 19 && (headerOnlySubcode(b) !== 0 || b.readUInt16BE(16) === b.length);
}

const allowed = new Set([
  '1/1',
  '1/2',
  '1/3',
  '2/0',
  '2/1',
  '2/3',
  '2/4',
  '2/6',
  '3/1',
  '3/2',
  '3/4',
  '3/9',
  '3/10',
]);

describe('fuzz', () => {
  it(`the decoder: ${COUNT} random and mutated messages, only typed errors with the right codes`, {
    timeout: 120_000,
  }, () => {
    const rnd = new SeededRandom(SEED);
    const seeds = [...updateSeeds, ...otherSeeds];
    const seen = new Map<string, number>();
    let decoded = 0;
    for (let i = 0; i < COUNT; i++) {
      const input = mutate(rnd, rnd.pick(seeds));
      const ctx: UpdateContext = { fourOctetAs: rnd.chance(0.7), ebgp: rnd.chance(0.5) };
      let r: ReturnType<typeof decodeMessage>;
      try {
        r = decodeMessage(input, ctx);
      } catch (error) {
        throw new Error(
          `decoder threw ${String(error)} on ${input.toString('hex')} (iteration ${i}, seed ${SEED})`,
        );
      }
      const headerSubcode = expectedHeaderSubcode(input);
      if (!r.ok) {
        const key = `${r.error.code}/${r.error.subcode}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (
          !allowed.has(key) ||
          (headerSubcode !== 0) !== (r.error.code === 1) ||
          (headerSubcode && r.error.subcode !== headerSubcode)
        ) {
          throw new Error(`got ${key} (header check says ${headerSubcode}) for ${input.toString('hex')}`);
        }
        continue;
      }
      if (headerSubcode !== 0)
        throw new Error(`decoded a message with a bad header: ${input.toString('hex')}`);
      decoded++;
      const m = r.message;
      if (m.type === 'update') {
        for (const p of [
          ...m.nlri,
          ...m.withdrawn,
          ...(m.mpReach?.nlri ?? []),
          ...(m.mpUnreach?.withdrawn ?? []),
        ]) {
          parsePrefix(p); // every prefix handed out is canonical and valid
        }
        if (!m.treatAsWithdraw && m.nlri.length > 0) {
          expect(
            m.attributes.origin !== undefined && m.attributes.asPath && m.attributes.nextHop,
          ).toBeTruthy();
        }
      }
    }
    // Every class of error was reached, and so were successful decodes.
    console.info(
      `decoder fuzz: ${COUNT} messages, ${decoded} decoded, errors ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    expect([...seen.keys()].sort()).toEqual([...allowed].sort());
    expect(decoded).toBeGreaterThan(COUNT / 20);
  });

  describe('a live session', () => {
    let speaker: BgpSpeaker;
    const log = memoryLog();
    const problems: unknown[] = [];
    const onProblem = (e: unknown): void => {
      problems.push(e);
    };

    beforeAll(async () => {
      process.on('uncaughtException', onProblem);
      process.on('unhandledRejection', onProblem);
      speaker = new BgpSpeaker(
        {
          asn: 65001,
          routerId: '10.0.0.1',
          listen: { address: '127.0.0.1', port: 0 },
          peers: [
            {
              address: '127.0.0.1',
              asn: 65002,
              port: 179,
              holdTime: 90,
              connectRetryTime: 1,
              passive: true,
              families: ['ipv4-unicast', 'ipv6-unicast'],
            },
          ],
        },
        { log },
      );
      await speaker.start();
      speaker.setRoutes([{ prefix: '192.0.2.1/32' }]);
    });

    afterAll(async () => {
      await speaker.stop();
      process.off('uncaughtException', onProblem);
      process.off('unhandledRejection', onProblem);
    });

    it('streams of mutated UPDATEs: good and treat-as-withdraw ones keep the session, the first bad one resets it with its NOTIFICATION', {
      timeout: 120_000,
    }, async () => {
      const rnd = new SeededRandom(SEED + 1);
      const deadline = Date.now() + 6_000;
      let sent = 0;
      let resets = 0;
      while (Date.now() < deadline && resets < 100) {
        const peer = await RawPeer.connect(speaker.listenPort!);
        try {
          await peer.establish({ asn: 65002 });
          await waitFor(() => speaker.peers()[0]!.state === 'Established', 5000, 'Established');
          // A stream of messages that decode (many as treat-as-withdraw), then one that must reset.
          const stream: Buffer[] = [];
          let bad: { bytes: Buffer; code: number; subcode: number; data: number[] } | undefined;
          const length = rnd.int(0, 3000);
          while (!bad || stream.length < length) {
            const m = mutate(rnd, rnd.pick(updateSeeds));
            if (!streamable(m)) continue;
            const r = decodeMessage(m, ctx4);
            if (!r.ok) {
              bad ??= { bytes: m, code: r.error.code, subcode: r.error.subcode, data: [...r.error.data] };
              continue;
            }
            const type = r.message.type;
            const keeps = type === 'update' || type === 'keepalive' || type === 'route-refresh';
            if (keeps && stream.length < length) stream.push(m);
          }
          peer.send(Buffer.concat(stream));
          sent += stream.length;
          if (!bad) continue;
          peer.send(bad.bytes);
          sent++;
          await peer.until(
            (ms) => ms.some((x) => x.type === 'notification'),
            5000,
            `NOTIFICATION for ${bad.bytes.toString('hex')}`,
          );
          const n = peer.received.find((x) => x.type === 'notification');
          expect(n).toMatchObject({ code: bad.code, subcode: bad.subcode, data: Uint8Array.from(bad.data) });
          await peer.untilClosed();
          resets++;
          await waitFor(() => speaker.peers()[0]!.state !== 'Established', 2000, 'the session reset');
          expect(speaker.peers()[0]!.lastError).toMatchObject({
            direction: 'sent',
            code: bad.code,
            subcode: bad.subcode,
          });
        } finally {
          peer.close();
        }
      }
      expect(resets).toBeGreaterThan(5);
      expect(sent).toBeGreaterThan(5_000);
      expect(problems).toEqual([]);
      expect(log.records.filter((r) => r.level === 'error')).toEqual([]);
      console.info(`live fuzz: ${sent} messages over ${resets} sessions`);
    });
  });
});
