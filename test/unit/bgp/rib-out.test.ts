import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endOfRibFamily, MessageReader, type UpdateMessage } from '../../../announcers/bgp/codec/index.js';
import { RibOut, type RibOutContext } from '../../../announcers/bgp/rib-out.js';
import { prepareRoutes } from '../../../announcers/bgp/routes.js';
import type { Route } from '../../../announcers/bgp/types.js';

function decodeAll(chunks: Buffer[], fourOctetAs = true): { updates: UpdateMessage[]; sizes: number[] } {
  const reader = new MessageReader();
  const updates: UpdateMessage[] = [];
  const sizes: number[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let r = reader.next({ fourOctetAs }); r; r = reader.next({ fourOctetAs })) {
      if (!r.ok) throw r.error;
      if (r.message.type !== 'update') throw new Error(`unexpected ${r.message.type}`);
      updates.push(r.message);
    }
  }
  for (const chunk of chunks) {
    for (let p = 0; p < chunk.length; p += chunk.readUInt16BE(p + 16)) sizes.push(chunk.readUInt16BE(p + 16));
  }
  return { updates, sizes };
}

/** What the peer holds after applying the updates: prefix → attributes seen. */
function apply(table: Map<string, UpdateMessage['attributes']>, updates: UpdateMessage[]): void {
  for (const u of updates) {
    expect(u.treatAsWithdraw).toBeUndefined();
    for (const p of [...u.withdrawn, ...(u.mpUnreach?.withdrawn ?? [])]) table.delete(p);
    for (const p of [...u.nlri, ...(u.mpReach?.nlri ?? [])]) table.set(p, u.attributes);
  }
}

const ctxEbgp: RibOutContext = {
  localAsn: 65001,
  ibgp: false,
  fourOctetAs: true,
  families: ['ipv4-unicast', 'ipv6-unicast'],
  nextHopIPv4: '192.0.2.1',
  nextHopsIPv6: ['2001:db8::1', 'fe80::1'],
};

const route = fc.record(
  {
    prefix: fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
        .map(([a, b]) => `10.${a}.${b}.1/32`),
      fc.integer({ min: 0, max: 0xffff }).map((n) => `2001:db8::${n.toString(16)}/128`),
      fc.integer({ min: 8, max: 24 }).map((l) => `172.${16 + (l % 16)}.0.0/16`),
    ),
    communities: fc.constantFrom(['65000:1'], ['no-export', '1:2'], []),
    med: fc.constantFrom(undefined, 5),
    localPref: fc.constantFrom(undefined, 200),
  },
  { requiredKeys: ['prefix'] },
) as fc.Arbitrary<Route>;

describe('RIB-out', { timeout: 60_000 }, () => {
  it('the UPDATE stream takes the peer from any table to any other, in messages of at most 4096 octets', () => {
    fc.assert(
      fc.property(
        fc.array(route, { maxLength: 300 }),
        fc.array(route, { maxLength: 300 }),
        fc.boolean(),
        (first, second, ibgp) => {
          const ctx = { ...ctxEbgp, ibgp };
          const rib = new RibOut();
          const peerTable = new Map<string, UpdateMessage['attributes']>();
          for (const routes of [first, second, []]) {
            const prepared = prepareRoutes(routes);
            rib.setDesired(prepared);
            const { updates, sizes } = decodeAll(rib.takeUpdates(ctx).chunks);
            expect(Math.max(0, ...sizes)).toBeLessThanOrEqual(4096);
            apply(peerTable, updates);
            expect([...peerTable.keys()].sort()).toEqual(prepared.map((r) => r.key).sort());
            for (const r of prepared) {
              const a = peerTable.get(r.key)!;
              expect(a.med).toBe(r.med);
              expect(a.localPref).toBe(ibgp ? (r.localPref ?? 100) : undefined);
              expect(a.asPath).toEqual(ibgp ? [] : [{ type: 2, asns: [65001] }]);
              expect(a.communities ?? []).toEqual(r.communities);
            }
            expect(rib.advertisedCount).toBe(prepared.length);
            expect(rib.pending).toBe(false);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('packs 100k IPv4 /32s and 10k IPv6 /128s densely and ends with End-of-RIB for each family', () => {
    const routes: Route[] = [];
    for (let i = 0; i < 100_000; i++)
      routes.push({ prefix: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32` });
    for (let i = 0; i < 10_000; i++) routes.push({ prefix: `2001:db8::${i.toString(16)}/128` });
    const rib = new RibOut();
    rib.setDesired(prepareRoutes(routes));
    const batch = rib.takeUpdates(ctxEbgp, { endOfRib: ['ipv4-unicast', 'ipv6-unicast'] });
    const { updates, sizes } = decodeAll(batch.chunks);
    expect(batch.announced).toBe(110_000);
    // IPv4: 4096 - 19 - 4 - 21 octets of ORIGIN, AS_PATH and NEXT_HOP = 4052 → 810 /32s of 5 octets.
    const v4 = updates.filter((u) => u.nlri.length > 0);
    expect(v4.length).toBe(Math.ceil(100_000 / 810));
    // IPv6 with a 32-octet next hop: 17 octets per /128.
    const v6 = updates.filter((u) => u.mpReach);
    expect(Math.min(...v6.slice(0, -1).map((u) => u.mpReach!.nlri.length))).toBeGreaterThanOrEqual(230);
    expect(v6[0]!.mpReach!.nextHops).toEqual(['2001:db8::1', 'fe80::1']);
    expect(updates.slice(-2).map(endOfRibFamily)).toEqual(['ipv4-unicast', 'ipv6-unicast']);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4096);
    expect(batch.messages).toBe(updates.length);
  });

  it('route refresh resends the family; reset resends everything; unsendable families wait', () => {
    const rib = new RibOut();
    rib.setDesired(prepareRoutes([{ prefix: '10.0.0.1/32' }, { prefix: '2001:db8::1/128' }]));
    const noV6: RibOutContext = { ...ctxEbgp, families: ['ipv4-unicast'] };
    let { updates } = decodeAll(rib.takeUpdates(noV6).chunks);
    expect(updates.flatMap((u) => [...u.nlri, ...(u.mpReach?.nlri ?? [])])).toEqual(['10.0.0.1/32']);
    rib.requestRefresh('ipv4-unicast');
    ({ updates } = decodeAll(rib.takeUpdates(noV6).chunks));
    expect(updates.flatMap((u) => u.nlri)).toEqual(['10.0.0.1/32']);
    rib.reset();
    expect(rib.advertisedCount).toBe(0);
    ({ updates } = decodeAll(rib.takeUpdates(ctxEbgp).chunks));
    expect(updates.flatMap((u) => [...u.nlri, ...(u.mpReach?.nlri ?? [])]).sort()).toEqual([
      '10.0.0.1/32',
      '2001:db8::1/128',
    ]);
  });

  it('a 2-octet AS peer gets AS_TRANS and AS4_PATH for a 4-octet local AS', () => {
    const rib = new RibOut();
    rib.setDesired(prepareRoutes([{ prefix: '10.0.0.1/32' }]));
    const { updates } = decodeAll(
      rib.takeUpdates({ ...ctxEbgp, localAsn: 4200000001, fourOctetAs: false }).chunks,
      false,
    );
    expect(updates[0]!.attributes.asPath).toEqual([{ type: 2, asns: [23456] }]);
    expect(updates[0]!.attributes.as4Path).toEqual([{ type: 2, asns: [4200000001] }]);
  });
});
