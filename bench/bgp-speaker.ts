/**
 * The nodewarden side of bench/bgp.ts: the speaker on the native transport and
 * nothing else, in a process of its own (bundled and run with plain node, so
 * that its RSS is the speaker's). Prints JSON lines: its baseline RSS, then
 * every 100 ms its RSS and how many prefixes it sent, and once the table is
 * sent and the heap collected, the steady RSS.
 *
 * Usage: node --expose-gc bgp-speaker.mjs COUNT LOCAL_ASN ROUTER_ID PEER PEER_ASN
 */
import { BgpSpeaker } from '../announcers/bgp/index.js';
import { NativeTcpTransport } from '../bpf/tcp-socket.js';

/** The i-th /32 of 100.64.0.0/10, the set both senders announce. */
export function benchPrefixes(count: number): string[] {
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const n = (100 << 24) | (64 << 16) | (i + 1);
    out[i] = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/32`;
  }
  return out;
}

async function run(argv: string[]): Promise<void> {
  const [count, asn, routerId, peer, peerAsn] = argv as [string, string, string, string, string];
  const report = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const quiet = {
    debug() {},
    info() {},
    warn() {},
    error: (o: object, m?: string) => report({ error: m, o }),
  };
  report({ baselineRss: process.memoryUsage().rss });
  const speaker = new BgpSpeaker(
    {
      asn: Number(asn),
      routerId,
      peers: [
        {
          address: peer,
          asn: Number(peerAsn),
          port: 179,
          holdTime: 90,
          connectRetryTime: 1,
          passive: false,
          families: ['ipv4-unicast'],
        },
      ],
    },
    { log: quiet, transport: new NativeTcpTransport() },
  );
  speaker.setRoutes(benchPrefixes(Number(count)).map((prefix) => ({ prefix })));
  let steadyReported = false;
  setInterval(() => {
    const sent = speaker.peers()[0]?.prefixesSent ?? 0;
    report({ rss: process.memoryUsage().rss, sent });
    if (sent >= Number(count) && !steadyReported) {
      steadyReported = true;
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      setTimeout(
        () => report({ steadyRss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed }),
        500,
      );
    }
  }, 100);
  process.once('SIGTERM', () => {
    void speaker.stop().then(() => process.exit(0));
  });
  await speaker.start();
}

if (process.argv[1]?.includes('bgp-speaker')) await run(process.argv.slice(2));
