/**
 * BGP encoding cost for 100k IPv4 /32 announcements (and 100k IPv6 /128s):
 * - prepareRoutes: validating and parsing the desired table;
 * - RibOut.setDesired: handing the table to one peer's RIB-out (before Established);
 * - RibOut.takeUpdates: packing and encoding the whole table into socket-sized
 *   chunks (what happens for one peer when it reaches Established);
 * - the reference, measured in the same run: the generic encodeUpdate, which
 *   builds each message from strings (what a straightforward encoder does);
 * - decoding the stream back (what the receiving side of our own speaker pays).
 * Median of 5 runs each. No privileges needed: `npx tsx bench/bgp-encode.ts`.
 */
import { performance } from 'node:perf_hooks';
import { encodeUpdate, MessageReader } from '../announcers/bgp/codec/index.js';
import { RibOut, type RibOutContext } from '../announcers/bgp/rib-out.js';
import { prepareRoutes } from '../announcers/bgp/routes.js';
import type { Route } from '../announcers/bgp/types.js';

const N = Number(process.env.BGP_BENCH_PREFIXES ?? 100_000);
const RUNS = 5;

function median(f: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[RUNS >> 1]!;
}

const ctx: RibOutContext = {
  localAsn: 65001,
  ibgp: false,
  fourOctetAs: true,
  families: ['ipv4-unicast', 'ipv6-unicast'],
  nextHopIPv4: '192.0.2.1',
  nextHopsIPv6: ['2001:db8::1'],
};

const rows: string[] = [];
for (const family of ['ipv4', 'ipv6'] as const) {
  const routes: Route[] = [];
  for (let i = 0; i < N; i++) {
    const prefix =
      family === 'ipv4'
        ? `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`
        : `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}/128`;
    routes.push({ prefix, communities: ['65000:100'], largeCommunities: ['65001:1:1'] });
  }
  let prepared = prepareRoutes(routes);
  const prepareMs = median(() => {
    prepared = prepareRoutes(routes);
  });
  let bytes = 0;
  let messages = 0;
  let chunks: Buffer[] = [];
  const ribs = Array.from({ length: RUNS }, () => new RibOut());
  let r = 0;
  const desiredMs = median(() => ribs[r++]!.setDesired(prepared));
  r = 0;
  const encodeMs = median(() => {
    const batch = ribs[r++]!.takeUpdates(ctx, { endOfRib: ['ipv4-unicast'] });
    chunks = batch.chunks;
    messages = batch.messages;
    bytes = batch.chunks.reduce((n, c) => n + c.length, 0);
  });
  // Reference: one encodeUpdate per message, with as many prefixes per message as the RIB-out packs.
  const perMessage = Math.ceil(N / (messages - 1));
  const attributes = {
    origin: 0,
    asPath: [{ type: 2, asns: [65001] }],
    communities: [(65000 << 16) | 100],
    largeCommunities: [[65001, 1, 1] as const],
  };
  const referenceMs = median(() => {
    for (let i = 0; i < N; i += perMessage) {
      const nlri = routes.slice(i, i + perMessage).map((r) => r.prefix);
      if (family === 'ipv4') encodeUpdate({ nlri, attributes: { ...attributes, nextHop: '192.0.2.1' } }, ctx);
      else
        encodeUpdate(
          { attributes, mpReach: { family: 'ipv6-unicast', nextHops: ['2001:db8::1'], nlri } },
          ctx,
        );
    }
  });
  let decoded = 0;
  const decodeMs = median(() => {
    const reader = new MessageReader();
    decoded = 0;
    for (const c of chunks) {
      reader.push(c);
      for (let r = reader.next(ctx); r; r = reader.next(ctx)) {
        if (r.ok && r.message.type === 'update')
          decoded += r.message.nlri.length + (r.message.mpReach?.nlri.length ?? 0);
      }
    }
  });
  if (decoded !== N) throw new Error(`decoded ${decoded} prefixes, expected ${N}`);
  rows.push(
    `${family} ${N} prefixes: prepare ${prepareMs.toFixed(1)} ms, setDesired ${desiredMs.toFixed(1)} ms, RIB-out encode ${encodeMs.toFixed(1)} ms ` +
      `(${messages} messages, ${bytes} bytes in ${chunks.length} writes), reference encodeUpdate ${referenceMs.toFixed(1)} ms, ` +
      `decode ${decodeMs.toFixed(1)} ms`,
  );
}
process.stdout.write(`BGP encoding (median of ${RUNS}, Node ${process.version})\n${rows.join('\n')}\n`);
