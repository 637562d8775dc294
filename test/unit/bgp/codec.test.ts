import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AS_TRANS,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  endOfRibFamily,
  flattenAsPath,
  formatCommunity,
  formatIPv6,
  MessageReader,
  type PathAttributes,
  parseCommunity,
  parseIPv4,
  parseIPv6,
  parseLargeCommunity,
  parsePrefix,
  type UpdateContext,
  type UpdateMessage,
} from '../../../announcers/bgp/codec/index.js';
import { parseIPv4Reference, parseIPv6Reference } from '../../support/ip-reference.js';
import {
  AS_PATH_65001,
  attr,
  message,
  NEXT_HOP_192_0_2_1,
  NLRI_198_51_100,
  ORIGIN_IGP,
  open,
  rawUpdate,
  VALID_ATTRIBUTES,
} from './wire.js';

const four: UpdateContext = { fourOctetAs: true };
const two: UpdateContext = { fourOctetAs: false };

function decodeOk(buf: Uint8Array, ctx: UpdateContext = four) {
  const r = decodeMessage(buf, ctx);
  if (!r.ok) throw new Error(`unexpected error ${r.error.message}`);
  return r.message;
}

function decodeUpdateOk(buf: Uint8Array, ctx: UpdateContext = four): UpdateMessage {
  const m = decodeOk(buf, ctx);
  if (m.type !== 'update') throw new Error(`expected an update, got ${m.type}`);
  return m;
}

function decodeError(buf: Uint8Array, ctx: UpdateContext = four) {
  const r = decodeMessage(buf, ctx);
  if (r.ok) throw new Error(`expected an error, decoded ${r.message.type}`);
  return { code: r.error.code, subcode: r.error.subcode, data: [...r.error.data] };
}

// ---- arbitraries ----

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

function maskedPrefix(addr: Uint8Array, length: number): string {
  const a = Uint8Array.from(addr);
  for (let bit = length; bit < a.length * 8; bit++) a[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return a.length === 4 ? `${a.join('.')}/${length}` : `${formatIPv6(a)}/${length}`;
}

const v4Prefix = fc.tuple(bytes(4), fc.integer({ min: 0, max: 32 })).map(([a, l]) => maskedPrefix(a, l));
const v6Prefix = fc.tuple(bytes(16), fc.integer({ min: 0, max: 128 })).map(([a, l]) => maskedPrefix(a, l));
const unicastV4 = fc
  .tuple(fc.integer({ min: 1, max: 223 }), bytes(3))
  .map(([first, rest]) => `${first}.${rest.join('.')}`);
const v6Address = bytes(16).map((b) => formatIPv6(b));

const segments = (asn: fc.Arbitrary<number>) =>
  fc.array(
    fc.record({ type: fc.integer({ min: 1, max: 4 }), asns: fc.array(asn, { minLength: 1, maxLength: 8 }) }),
    {
      maxLength: 3,
    },
  );

const attributes = (asn: fc.Arbitrary<number>, withNextHop: boolean): fc.Arbitrary<PathAttributes> =>
  fc
    .record(
      {
        origin: fc.integer({ min: 0, max: 2 }),
        asPath: segments(asn),
        nextHop: unicastV4,
        med: u32,
        localPref: u32,
        atomicAggregate: fc.constant(true),
        communities: fc.array(u32, { minLength: 1, maxLength: 6 }),
        largeCommunities: fc.array(fc.tuple(u32, u32, u32), { minLength: 1, maxLength: 4 }),
      },
      { requiredKeys: withNextHop ? ['origin', 'asPath', 'nextHop'] : ['origin', 'asPath'] },
    )
    .map((a) => a as PathAttributes);

describe('addresses and prefixes', { timeout: 60_000 }, () => {
  it('parses IPv4 like the reference parser for any input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 5 }).map((p) => p.join('.')),
          bytes(4).map((b) => b.join('.')),
        ),
        (text) => {
          expect(parseIPv4(text)).toEqual(parseIPv4Reference(text));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('parses IPv6 like the reference parser for any input', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF:.:::g'.split(''));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: alphabet, maxLength: 45 }),
          bytes(16).map((b) => formatIPv6(b)),
          fc
            .tuple(bytes(16), fc.integer({ min: 0, max: 15 }), fc.constantFrom(':', '::', '.', '1', 'fffff'))
            .map(([b, at, junk]) => {
              const t = formatIPv6(b);
              return t.slice(0, at) + junk + t.slice(at);
            }),
        ),
        (text) => {
          expect(parseIPv6(text)).toEqual(parseIPv6Reference(text));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('formats IPv6 so that it parses back to the same bytes', () => {
    fc.assert(
      fc.property(bytes(16), (b) => {
        expect(parseIPv6(formatIPv6(b))).toEqual(b);
      }),
    );
    expect(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(parseIPv6('::ffff:192.0.2.1')!)).toBe('::ffff:192.0.2.1');
    expect(formatIPv6(parseIPv6('fe80::1')!)).toBe('fe80::1');
  });

  it('parses route prefixes, bare addresses as host routes, and refuses host bits and bad lengths', () => {
    expect(parsePrefix('192.0.2.1').length).toBe(32);
    expect(parsePrefix('2001:db8::1').length).toBe(128);
    expect(parsePrefix('10.0.0.0/8').addr).toEqual(Uint8Array.of(10, 0, 0, 0));
    expect(() => parsePrefix('10.0.0.1/8')).toThrow(/host bits/);
    expect(() => parsePrefix('10.0.0.0/33')).toThrow(/0\.\.32/);
    expect(() => parsePrefix('10.0.0.256/32')).toThrow(/not an IPv4 or IPv6 prefix/);
    expect(() => parsePrefix('2001:db8::/129')).toThrow(/0\.\.128/);
  });
});

describe('communities', { timeout: 60_000 }, () => {
  it('parses asn:value and well-known names in any case', () => {
    expect(parseCommunity('65000:100')).toBe(((65000 << 16) | 100) >>> 0);
    expect(parseCommunity('no-export')).toBe(0xffffff01);
    expect(parseCommunity('NO_EXPORT')).toBe(0xffffff01);
    expect(parseCommunity('no-advertise')).toBe(0xffffff02);
    expect(parseCommunity('no-export-subconfed')).toBe(0xffffff03);
    expect(parseCommunity('blackhole')).toBe(0xffff029a);
    expect(formatCommunity(0xffffff01)).toBe('no-export');
    expect(formatCommunity(((65000 << 16) | 7) >>> 0)).toBe('65000:7');
    expect(() => parseCommunity('65536:1')).toThrow(/asn:value/);
    expect(() => parseCommunity('nope')).toThrow(/well-known name/);
  });

  it('parses large communities a:b:c', () => {
    expect(parseLargeCommunity('4200000000:1:2')).toEqual([4200000000, 1, 2]);
    expect(() => parseLargeCommunity('1:2')).toThrow(/a:b:c/);
    expect(() => parseLargeCommunity('1:2:4294967296')).toThrow(/a:b:c/);
  });
});

describe('round trips', { timeout: 60_000 }, () => {
  it('OPEN with capabilities', () => {
    const families = fc.subarray(['ipv4-unicast', 'ipv6-unicast'] as const);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
        fc.integer({ min: 1, max: 0xffffffff }),
        families,
        fc.boolean(),
        fc.option(
          fc.record({
            restarting: fc.boolean(),
            restartTime: fc.integer({ min: 0, max: 4095 }),
            forwarding: fc.boolean(),
          }),
          { nil: undefined },
        ),
        (asn, holdTime, bgpId, fams, routeRefresh, gr) => {
          const capabilities = {
            families: [...fams],
            routeRefresh,
            fourOctetAs: asn,
            ...(gr
              ? {
                  gracefulRestart: {
                    restarting: gr.restarting,
                    restartTime: gr.restartTime,
                    families: fams.map((family) => ({ family, forwarding: gr.forwarding })),
                  },
                }
              : {}),
          };
          const m = decodeOk(encodeOpen({ asn, holdTime, bgpId, capabilities }));
          expect(m).toEqual({
            type: 'open',
            version: 4,
            myAs: asn > 0xffff ? AS_TRANS : asn,
            holdTime,
            bgpId,
            capabilities: {
              ...(fams.length > 0 ? { families: [...fams] } : {}),
              ...(routeRefresh ? { routeRefresh } : {}),
              fourOctetAs: asn,
              ...(gr ? { gracefulRestart: capabilities.gracefulRestart } : {}),
            },
          });
        },
      ),
    );
  });

  it('UPDATE with IPv4 body NLRI and 4-octet AS paths', () => {
    fc.assert(
      fc.property(
        fc.array(v4Prefix, { maxLength: 20 }),
        fc.array(v4Prefix, { minLength: 1, maxLength: 20 }),
        attributes(u32, true),
        (withdrawn, nlri, attrs) => {
          const m = decodeUpdateOk(encodeUpdate({ withdrawn, nlri, attributes: attrs }, four));
          expect(m.withdrawn).toEqual(withdrawn);
          expect(m.nlri).toEqual(nlri);
          expect(m.attributes).toEqual(attrs);
          expect(m.treatAsWithdraw).toBeUndefined();
          expect(m.discarded).toBeUndefined();
        },
      ),
    );
  });

  it('UPDATE with MP_REACH/MP_UNREACH for IPv6, with global and link-local next hops', () => {
    fc.assert(
      fc.property(
        fc.array(v6Prefix, { minLength: 1, maxLength: 20 }),
        fc.array(v6Prefix, { maxLength: 20 }),
        fc.array(v6Address, { minLength: 1, maxLength: 2 }),
        attributes(u32, false),
        (nlri, withdrawn, nextHops, attrs) => {
          const u = {
            attributes: attrs,
            mpReach: { family: 'ipv6-unicast' as const, nextHops, nlri },
            ...(withdrawn.length > 0 ? { mpUnreach: { family: 'ipv6-unicast' as const, withdrawn } } : {}),
          };
          const m = decodeUpdateOk(encodeUpdate(u, four));
          expect(m.mpReach).toEqual(u.mpReach);
          expect(m.mpUnreach).toEqual(u.mpUnreach);
          expect(m.attributes).toEqual(attrs);
          expect(m.treatAsWithdraw).toBeUndefined();
        },
      ),
    );
  });

  it('2-octet AS sessions: AS_TRANS in AS_PATH and the real path in AS4_PATH (RFC 6793)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 10 }),
        (asns) => {
          const attrs: PathAttributes = { origin: 0, asPath: [{ type: 2, asns }], nextHop: '192.0.2.1' };
          const m = decodeUpdateOk(encodeUpdate({ nlri: ['10.0.0.0/8'], attributes: attrs }, two), two);
          expect(m.attributes.asPath).toEqual([
            { type: 2, asns: asns.map((a) => (a > 0xffff ? AS_TRANS : a)) },
          ]);
          expect(flattenAsPath(m.attributes, false)).toEqual(asns);
        },
      ),
    );
  });

  it('NOTIFICATION with an RFC 8203 shutdown communication, truncated to 128 octets on a character boundary', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => {
        const m = decodeOk(encodeNotification({ code: 6, subcode: 2, shutdownMessage: text }));
        if (m.type !== 'notification') throw new Error('expected a notification');
        const sent = Buffer.from(text, 'utf8');
        if (sent.length === 0) expect(m.shutdownMessage).toBeUndefined();
        else {
          expect(Buffer.from(m.shutdownMessage!, 'utf8').length).toBeLessThanOrEqual(128);
          expect(text.startsWith(m.shutdownMessage!)).toBe(true);
          if (sent.length <= 128) expect(m.shutdownMessage).toBe(text);
        }
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 100 }),
        (code, subcode, data) => {
          const m = decodeOk(encodeNotification({ code, subcode, data }));
          expect(m).toMatchObject({ type: 'notification', code, subcode, data: Uint8Array.from(data) });
        },
      ),
    );
  });

  it('KEEPALIVE, ROUTE-REFRESH and End-of-RIB for both families', () => {
    expect(decodeOk(encodeKeepalive())).toEqual({ type: 'keepalive' });
    expect(decodeOk(encodeRouteRefresh('ipv6-unicast'))).toEqual({
      type: 'route-refresh',
      afi: 2,
      safi: 1,
      family: 'ipv6-unicast',
    });
    expect(endOfRibFamily(decodeUpdateOk(encodeEndOfRib('ipv4-unicast')))).toBe('ipv4-unicast');
    expect(endOfRibFamily(decodeUpdateOk(encodeEndOfRib('ipv6-unicast')))).toBe('ipv6-unicast');
    expect(encodeEndOfRib('ipv4-unicast').length).toBe(23);
    const withRoute = decodeUpdateOk(rawUpdate({ attributes: VALID_ATTRIBUTES, nlri: NLRI_198_51_100 }));
    expect(endOfRibFamily(withRoute)).toBeUndefined();
  });

  it('the stream reader splits messages at any chunk boundary', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        const stream = Buffer.concat([
          encodeOpen({ asn: 65001, holdTime: 90, bgpId: 1, capabilities: { routeRefresh: true } }),
          encodeKeepalive(),
          encodeUpdate(
            { nlri: ['10.0.0.0/8'], attributes: { origin: 0, asPath: [], nextHop: '192.0.2.1' } },
            four,
          ),
          encodeNotification({ code: 6, subcode: 2, shutdownMessage: 'bye' }),
        ]);
        const reader = new MessageReader();
        const types: string[] = [];
        let offset = 0;
        for (const cut of [...cuts, stream.length]) {
          reader.push(stream.subarray(offset, Math.min(stream.length, offset + cut)));
          offset = Math.min(stream.length, offset + cut);
          for (let r = reader.next(four); r; r = reader.next(four)) {
            if (!r.ok) throw r.error;
            types.push(r.message.type);
          }
          if (offset === stream.length) break;
        }
        expect(types).toEqual(['open', 'keepalive', 'update', 'notification']);
      }),
    );
  });
});

describe('malformed messages give the RFC 4271 NOTIFICATION code and subcode', { timeout: 60_000 }, () => {
  const keepalive = [...encodeKeepalive()];
  it.each([
    ['a marker that is not all ones', [0, ...keepalive.slice(1)], { code: 1, subcode: 1, data: [] }],
    ['length 18', [...keepalive.slice(0, 16), 0, 18, 4], { code: 1, subcode: 2, data: [0, 18] }],
    ['length 4097', [...keepalive.slice(0, 16), 0x10, 0x01, 4], { code: 1, subcode: 2, data: [0x10, 0x01] }],
    ['type 7', [...keepalive.slice(0, 16), 0, 19, 7], { code: 1, subcode: 3, data: [7] }],
    [
      'a KEEPALIVE of 20 octets',
      [...keepalive.slice(0, 16), 0, 20, 4, 0],
      { code: 1, subcode: 2, data: [0, 20] },
    ],
    [
      'an OPEN shorter than 29',
      [...message(1, [4, 0, 1, 0, 90, 1, 2, 3, 4])],
      { code: 1, subcode: 2, data: [0, 28] },
    ],
    ['OPEN version 3', [...open({ version: 3 })], { code: 2, subcode: 1, data: [0, 4] }],
    ['OPEN hold time 2', [...open({ hold: 2 })], { code: 2, subcode: 6, data: [] }],
    ['OPEN BGP identifier 0', [...open({ id: [0, 0, 0, 0] })], { code: 2, subcode: 3, data: [] }],
    ['OPEN optional parameter type 1', [...open({ params: [1, 0] })], { code: 2, subcode: 4, data: [] }],
    [
      'OPEN capability running past its parameter',
      [...open({ params: [2, 2, 65, 4] })],
      { code: 2, subcode: 0, data: [] },
    ],
    [
      'UPDATE withdrawn length past the end',
      [...rawUpdate({}).subarray(0, 19), 0, 9, 0, 0],
      { code: 3, subcode: 1, data: [] },
    ],
    [
      'UPDATE attribute length past the end',
      [...message(2, [0, 0, 0, 40, ...ORIGIN_IGP])],
      { code: 3, subcode: 1, data: [] },
    ],
    [
      'NLRI prefix length 33',
      [...rawUpdate({ attributes: VALID_ATTRIBUTES, nlri: [33, 1, 2, 3, 4, 5] })],
      { code: 3, subcode: 10, data: [] },
    ],
    [
      'withdrawn prefix running past its field',
      [...rawUpdate({ withdrawn: [24, 10, 0] })],
      { code: 3, subcode: 10, data: [] },
    ],
    [
      'an unrecognized well-known attribute',
      [...rawUpdate({ attributes: [...VALID_ATTRIBUTES, ...attr(0x40, 99, [1])], nlri: NLRI_198_51_100 })],
      { code: 3, subcode: 2, data: [0x40, 99, 1, 1] },
    ],
    [
      'MP_REACH_NLRI twice',
      [
        ...rawUpdate({
          attributes: [...attr(0x80, 15, [0, 2, 1]), ...attr(0x80, 15, [0, 2, 1])],
        }),
      ],
      { code: 3, subcode: 1, data: [] },
    ],
    [
      'an IPv6 next hop of 8 octets',
      [
        ...rawUpdate({
          attributes: [
            ...attr(0x80, 14, [0, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ...ORIGIN_IGP,
            ...AS_PATH_65001,
          ],
        }),
      ],
      { code: 3, subcode: 9, data: [0x80, 14, 13, 0, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0] },
    ],
    [
      'MP_REACH_NLRI with transitive flags',
      [...rawUpdate({ attributes: attr(0xc0, 14, [0, 2, 1, 16, ...new Array(16).fill(1), 0]) })],
      { code: 3, subcode: 4, data: [0xc0, 14, 21, 0, 2, 1, 16, ...new Array(16).fill(1), 0] },
    ],
  ])('%s', (_name, bytes, expected) => {
    expect(decodeError(Uint8Array.from(bytes as number[]))).toEqual(expected);
  });
});

describe('RFC 7606: treat-as-withdraw and attribute discard', { timeout: 60_000 }, () => {
  const cases: [string, number[], number, number][] = [
    ['ORIGIN value 3', [...attr(0x40, 1, [3]), ...AS_PATH_65001, ...NEXT_HOP_192_0_2_1], 3, 6],
    ['ORIGIN with the optional flag', [...attr(0xc0, 1, [0]), ...AS_PATH_65001, ...NEXT_HOP_192_0_2_1], 3, 4],
    ['ORIGIN of two octets', [...attr(0x40, 1, [0, 0]), ...AS_PATH_65001, ...NEXT_HOP_192_0_2_1], 3, 5],
    [
      'an AS_PATH segment running past the attribute',
      [...ORIGIN_IGP, ...attr(0x40, 2, [2, 3, 0, 0, 0, 1]), ...NEXT_HOP_192_0_2_1],
      3,
      11,
    ],
    [
      'an AS_PATH segment of type 9',
      [...ORIGIN_IGP, ...attr(0x40, 2, [9, 1, 0, 0, 0, 1]), ...NEXT_HOP_192_0_2_1],
      3,
      11,
    ],
    ['no NEXT_HOP', [...ORIGIN_IGP, ...AS_PATH_65001], 3, 3],
    ['no ORIGIN', [...AS_PATH_65001, ...NEXT_HOP_192_0_2_1], 3, 3],
    ['NEXT_HOP 0.0.0.0', [...ORIGIN_IGP, ...AS_PATH_65001, ...attr(0x40, 3, [0, 0, 0, 0])], 3, 8],
    ['NEXT_HOP 224.0.0.1', [...ORIGIN_IGP, ...AS_PATH_65001, ...attr(0x40, 3, [224, 0, 0, 1])], 3, 8],
    ['NEXT_HOP of 5 octets', [...ORIGIN_IGP, ...AS_PATH_65001, ...attr(0x40, 3, [1, 2, 3, 4, 5])], 3, 5],
    ['MED of 3 octets', [...VALID_ATTRIBUTES, ...attr(0x80, 4, [0, 0, 1])], 3, 5],
    ['COMMUNITIES of 5 octets', [...VALID_ATTRIBUTES, ...attr(0xc0, 8, [0, 0, 0, 1, 2])], 3, 9],
    ['LARGE_COMMUNITY of 13 octets', [...VALID_ATTRIBUTES, ...attr(0xc0, 32, new Array(13).fill(0))], 3, 9],
    ['an attribute running past the attribute list', [...VALID_ATTRIBUTES, 0xc0, 8, 200, 1, 2], 3, 1],
    ['two octets left after the last attribute', [...VALID_ATTRIBUTES, 0xc0, 8], 3, 1],
  ];
  it.each(cases)('%s: the routes are withdrawn, the session stays', (_name, attributes, code, subcode) => {
    const m = decodeUpdateOk(rawUpdate({ attributes, nlri: NLRI_198_51_100 }));
    expect(m.nlri).toEqual(['198.51.100.0/24']);
    expect(m.treatAsWithdraw).toMatchObject({ code, subcode });
  });

  it('discards a malformed ATOMIC_AGGREGATE, AGGREGATOR or AS4_PATH, and a LOCAL_PREF from eBGP', () => {
    const m = decodeUpdateOk(
      rawUpdate({
        attributes: [
          ...VALID_ATTRIBUTES,
          ...attr(0x40, 5, [0, 0, 0, 100]),
          ...attr(0x40, 6, [1]),
          ...attr(0xc0, 7, [1, 2, 3]),
          ...attr(0xc0, 17, [2, 5, 0]),
        ],
        nlri: NLRI_198_51_100,
      }),
      { fourOctetAs: true, ebgp: true },
    );
    expect(m.treatAsWithdraw).toBeUndefined();
    expect(m.discarded).toEqual([5, 6, 7, 17]);
    expect(m.attributes.localPref).toBeUndefined();
  });

  it('keeps the first of repeated attributes', () => {
    const m = decodeUpdateOk(
      rawUpdate({ attributes: [...VALID_ATTRIBUTES, ...attr(0x40, 1, [2])], nlri: NLRI_198_51_100 }),
    );
    expect(m.attributes.origin).toBe(0);
    expect(m.discarded).toEqual([1]);
  });

  it('keeps unknown optional attributes and ignores families it does not speak', () => {
    const m = decodeUpdateOk(
      rawUpdate({
        attributes: [...VALID_ATTRIBUTES, ...attr(0xc0, 99, [1, 2]), ...attr(0x80, 15, [0, 1, 128, 1, 2])],
        nlri: NLRI_198_51_100,
      }),
    );
    expect(m.attributes.other).toEqual([{ flags: 0xc0, type: 99, value: Uint8Array.of(1, 2) }]);
    expect(m.ignoredFamilies).toEqual(['1/128']);
    expect(m.treatAsWithdraw).toBeUndefined();
  });
});
