/**
 * BGP announcement speed, side by side in one run: nodewarden's speaker and
 * gobgpd each announce 10k and 100k IPv4 /32s to one BIRD 2 peer in a lab
 * namespace. The figure is the time from Established (BIRD's own timestamp of
 * the state change, so both senders are timed by the same clock) until
 * `birdc show route count` reports every prefix. Also: the RSS of the
 * nodewarden speaker process holding 100k prefixes (plain node, bundled with
 * esbuild: the peak while sending, and at rest after a GC).
 *
 * Both senders hold the whole table before the session comes up:
 * - nodewarden: a child process (the speaker on the native transport, nothing
 *   else, bench/bgp-speaker.ts) calls setRoutes() with every prefix and then start();
 * - gobgpd: the table is loaded into its global RIB with one
 *   `gobgp mrt inject global` of an MRT TABLE_DUMP_V2 file (the fastest bulk
 *   load its CLI offers; per-route `gobgp global rib add` would take minutes),
 *   and only then is the neighbor added with `gobgp neighbor add`.
 *
 * Run as root: `npm run bench:bgp` (about a minute). Results:
 * bench/results/bgp-latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createLab, type Host, type Lab, type LabProcess } from '../test/lab/index.js';
import { BirdPeer } from '../test/peers/bird.js';
import { GobgpPeer } from '../test/peers/gobgp.js';
import { waitFor } from '../test/peers/types.js';
import { benchPrefixes } from './bgp-speaker.js';
import { mrtTableDump } from './mrt.js';

const SPEAKER_BUNDLE = join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'bench-bgp-speaker.mjs');

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results', 'bgp-latest.json');
const NODE = '10.130.0.1';
const BIRD = '10.130.0.2';
const NODE_ASN = 65001;
const BIRD_ASN = 65002;
const COUNTS = [10_000, 100_000];
const TARGETS = { '10000': 0.5, '100000': 3, rssMB: 150 };
const POLL_MS = 20;

// ---------------------------------------------------------------------------
// Parent mode

interface Run {
  sender: 'nodewarden' | 'gobgpd';
  prefixes: number;
  /** Seconds from Established (BIRD's clock) until BIRD held every prefix. */
  seconds: number;
  /** Seconds until BIRD held 99% of them. */
  seconds99: number;
  /** Time to load the table into the sender before the session (gobgpd: mrt inject). */
  loadSeconds?: number;
  /** RSS right after the table went out, and after a GC once it has (the speaker at rest). */
  rssMB?: number;
  steadyRssMB?: number;
  /** RSS of the same process before it built the table and started the speaker. */
  baselineRssMB?: number;
}

async function timeUntilBirdHolds(bird: BirdPeer, count: number): Promise<{ doneAt: number; at99: number }> {
  let at99 = 0;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const held = await bird.routeCount('ipv4');
    const now = Date.now();
    if (at99 === 0 && held >= count * 0.99) at99 = now;
    if (held >= count) return { doneAt: now, at99 };
    if (now > deadline) throw new Error(`BIRD holds ${held} of ${count} prefixes after 180 s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function startBird(host: Host): Promise<BirdPeer> {
  return BirdPeer.start(host, {
    asn: BIRD_ASN,
    routerId: BIRD,
    neighbors: [{ address: NODE, asn: NODE_ASN, passive: true, holdTime: 90 }],
  });
}

async function establishedAt(bird: BirdPeer): Promise<number> {
  return waitFor(
    'BIRD Established',
    () => bird.establishedSince(NODE),
    (t) => t !== undefined,
    60_000,
    10,
  ).then((t) => t as number);
}

async function benchNodewarden(node: Host, birdHost: Host, count: number): Promise<Run> {
  const bird = await startBird(birdHost);
  let child: LabProcess | undefined;
  try {
    child = node.spawn([
      'node',
      '--expose-gc',
      SPEAKER_BUNDLE,
      String(count),
      String(NODE_ASN),
      NODE,
      BIRD,
      String(BIRD_ASN),
    ]);
    const since = await establishedAt(bird);
    const { doneAt, at99 } = await timeUntilBirdHolds(bird, count);
    const proc = child;
    await waitFor(
      'the speaker to report its steady RSS',
      async () => proc.stdout,
      (out) => out.includes('steadyRss'),
      30_000,
      100,
    );
    const reports = proc.stdout
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            rss?: number;
            steadyRss?: number;
            baselineRss?: number;
            error?: string;
            sent?: number;
          },
      );
    const errors = reports.filter((r) => r.error);
    if (errors.length) throw new Error(`speaker errors: ${JSON.stringify(errors)}`);
    const peak = Math.max(...reports.map((r) => r.rss ?? 0));
    const steady = reports.find((r) => r.steadyRss !== undefined)?.steadyRss ?? 0;
    const baseline = reports.find((r) => r.baselineRss !== undefined)?.baselineRss ?? 0;
    return {
      sender: 'nodewarden',
      prefixes: count,
      seconds: (doneAt - since) / 1000,
      seconds99: (at99 - since) / 1000,
      rssMB: peak / 2 ** 20,
      steadyRssMB: steady / 2 ** 20,
      baselineRssMB: baseline / 2 ** 20,
    };
  } finally {
    await child?.stop(3_000);
    await bird.stop();
  }
}

async function benchGobgpd(node: Host, birdHost: Host, count: number, dir: string): Promise<Run> {
  const bird = await startBird(birdHost);
  const gobgp = await GobgpPeer.start(node, { asn: NODE_ASN, routerId: NODE, neighbors: [] });
  try {
    const mrt = join(dir, `table-${count}.mrt`);
    const all = benchPrefixes(count);
    writeFileSync(
      mrt,
      mrtTableDump({
        peer: { routerId: NODE, address: NODE, asn: NODE_ASN },
        // `gobgp mrt inject` drops the last few hundred entries of a file (its last batch
        // is never sent); repeating the first prefixes at the end, which changes nothing
        // for prefixes already injected, makes sure every prefix of the set gets in.
        prefixes: [...all, ...all.slice(0, 5_000)],
        nextHop: NODE,
        asPath: [],
      }),
    );
    const loadStart = Date.now();
    await gobgp.gobgp(['mrt', 'inject', 'global', mrt]);
    await waitFor(
      'gobgpd to hold the table',
      () => gobgp.routeCount('ipv4'),
      (n) => n >= count,
      120_000,
      200,
    );
    const loadSeconds = (Date.now() - loadStart) / 1000;
    await gobgp.gobgp(['neighbor', 'add', BIRD, 'as', String(BIRD_ASN)]);
    const since = await establishedAt(bird);
    const { doneAt, at99 } = await timeUntilBirdHolds(bird, count);
    return {
      sender: 'gobgpd',
      prefixes: count,
      seconds: (doneAt - since) / 1000,
      seconds99: (at99 - since) / 1000,
      loadSeconds,
    };
  } finally {
    await gobgp.stop();
    await bird.stop();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:bgp needs root (network namespaces)');
  const startedAt = new Date();
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  // Plain node runs the speaker: tsx's loader would add its own memory to the figure.
  await build({
    entryPoints: [join(REPO, 'bench', 'bgp-speaker.ts')],
    outfile: SPEAKER_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['koffi'],
    logLevel: 'warning',
  });
  const scratch = mkdtempSync(join(tmpdir(), 'nw-bench-bgp-'));
  let lab: Lab | undefined;
  const runs: Run[] = [];
  const guard = setTimeout(() => {
    process.stderr.write('bench:bgp: still running after 9 minutes; giving up\n');
    void lab?.destroy().finally(() => process.exit(1));
  }, 540_000);
  try {
    lab = await createLab();
    const node = await lab.host('node');
    const birdHost = await lab.host('bird');
    await lab.link(node, birdHost, {
      aDev: 'eth0',
      bDev: 'eth0',
      aAddrs: [`${NODE}/24`],
      bAddrs: [`${BIRD}/24`],
    });
    for (const count of COUNTS) {
      for (const sender of ['nodewarden', 'gobgpd'] as const) {
        const run =
          sender === 'nodewarden'
            ? await benchNodewarden(node, birdHost, count)
            : await benchGobgpd(node, birdHost, count, scratch);
        runs.push(run);
        process.stdout.write(
          `${sender.padEnd(10)} ${String(count).padStart(6)} prefixes: all at BIRD ${run.seconds.toFixed(3)} s after Established (99% ${run.seconds99.toFixed(3)} s)${run.rssMB ? `; speaker RSS ${run.rssMB.toFixed(0)} MB peak, ${run.steadyRssMB?.toFixed(0)} MB at rest (${run.baselineRssMB?.toFixed(0)} MB before the table)` : ''}${run.loadSeconds ? `; table load ${run.loadSeconds.toFixed(1)} s (not timed)` : ''}\n`,
        );
      }
    }
  } finally {
    clearTimeout(guard);
    await lab?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
  const of = (sender: Run['sender'], count: number) =>
    runs.find((r) => r.sender === sender && r.prefixes === count)!;
  const summary = COUNTS.map((count) => {
    const nw = of('nodewarden', count);
    const go = of('gobgpd', count);
    const target = TARGETS[String(count) as '10000' | '100000'];
    return {
      prefixes: count,
      nodewardenSeconds: nw.seconds,
      gobgpdSeconds: go.seconds,
      targetSeconds: target,
      meetsTarget: nw.seconds <= target,
      fasterThanGobgpd: nw.seconds < go.seconds,
    };
  });
  const rss = of('nodewarden', 100_000).rssMB ?? 0;
  const steadyRss = of('nodewarden', 100_000).steadyRssMB ?? 0;
  const result = {
    benchmark: 'bgp',
    command: 'npm run bench:bgp',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      kernel: release(),
      cpus: cpus().length,
      model: cpus()[0]?.model,
      node: process.version,
      loadavg: loadavg(),
    },
    method:
      "Time from BIRD's Established timestamp until `birdc show route count` (polled every 20 ms) reports every prefix. nodewarden: speaker in a child process with the table set before start. gobgpd: table loaded with one `gobgp mrt inject global` (TABLE_DUMP_V2) before `gobgp neighbor add`.",
    targets: TARGETS,
    runs,
    summary,
    rss: {
      nodewardenPeakAt100kMB: rss,
      nodewardenAtRestAt100kMB: steadyRss,
      targetMB: TARGETS.rssMB,
      meetsTarget: rss < TARGETS.rssMB,
    },
  };
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  for (const s of summary) {
    process.stdout.write(
      `${s.prefixes} prefixes: nodewarden ${s.nodewardenSeconds.toFixed(3)} s (target ${s.targetSeconds} s: ${s.meetsTarget ? 'met' : 'MISSED'}), gobgpd ${s.gobgpdSeconds.toFixed(3)} s (${s.fasterThanGobgpd ? 'faster' : 'SLOWER'})\n`,
    );
  }
  process.stdout.write(
    `speaker RSS at 100k: ${rss.toFixed(0)} MB peak, ${steadyRss.toFixed(0)} MB at rest (target < ${TARGETS.rssMB} MB: ${rss < TARGETS.rssMB ? 'met' : 'MISSED'}); JSON: bench/results/bgp-latest.json\n`,
  );
}

await main();
