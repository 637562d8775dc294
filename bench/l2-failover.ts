/**
 * L2 failover in Kubernetes mode, with 1, 100 and 1000 LoadBalancer IPs: three
 * real daemons and the fixture API server on one bridge, and a client
 * (test/support/l2-cluster.ts). Each run takes the node that owns the first IP
 * off the segment (its link goes down, as a node that loses power) and measures,
 * from that instant:
 *
 * - until the client's neighbour entry of every IP the dead node owned points at
 *   a surviving node, learned from gratuitous ARP alone (the entries exist before,
 *   resolved to the dead node; the client sends nothing for the other IPs);
 * - until a TCP connect reaches the new owner, for up to 10 of those IPs, from a
 *   prober in the client that connects every 20 ms.
 *
 * Then the link comes back, the node takes its share again, and the next run
 * starts. Default heartbeat timing and a tuned one; targets from the issue:
 * under 3 s with the defaults and under 2 s tuned (MetalLB and kube-vip take
 * about 3 s; Cilium 10–20 s by default). No reference system runs here: those
 * need a real cluster. Results go to bench/results/l2-failover-latest.json.
 * Run as root: `npm run bench:l2-failover` (about five minutes).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEARTBEAT_DEFAULTS } from '../daemon/config/schema.js';
import { waitFor } from '../test/support/l2.js';
import {
  clientNeighbours,
  clusterL2Status,
  L2_CLUSTER_NODES,
  type L2Cluster,
  proberMoves,
  settledOwners,
  startL2Cluster,
  startTcpProber,
  stopL2Cluster,
} from '../test/support/l2-cluster.js';
import { machineFacts, median } from './report.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results', 'l2-failover-latest.json');
const SIZES = (process.env.SIZES ?? '1,100,1000').split(',').map(Number);
const RUNS = 3;
const TCP_SAMPLE = 10;
const ALL_SETTINGS = [
  { label: 'default', ...HEARTBEAT_DEFAULTS, targetMs: 3000 },
  { label: 'tuned', renewIntervalMs: 300, expirySeconds: 1, targetMs: 2000 },
  // The default before 2026-11: a longer tolerance of API trouble; shown for the trade-off, no target.
  { label: 'conservative', renewIntervalMs: 1000, expirySeconds: 3, targetMs: undefined },
];
/** `SETTINGS=default,tuned` runs only those rows. */
const SETTINGS = ALL_SETTINGS.filter(
  (s) => !process.env.SETTINGS || process.env.SETTINGS.split(',').includes(s.label),
);

const epochMs = () => performance.timeOrigin + performance.now();

interface RunResult {
  victim: string;
  ipsMoved: number;
  /** Until the client's entries for every IP of the dead node moved. */
  allNeighboursMovedMs: number;
  /** Until TCP reached a new owner, worst of the sampled IPs. */
  tcpMaxMs: number;
}

/**
 * The client's entries for `ips` point at `node` and are stale, as after earlier traffic.
 * Its other entries go: the kernel's neighbour table limit (gc_thresh3, 1024 by default)
 * is one for all namespaces, and a full table leaves the returning node unable to
 * resolve the client.
 */
async function resolveAt(c: L2Cluster, ips: readonly string[], node: string): Promise<void> {
  await c.client.ip(['neigh', 'flush', 'dev', 'eth0']);
  const batch = ips.map((ip) => `neigh replace ${ip} lladdr ${c.macs.get(node)} nud stale dev eth0`);
  await c.client.exec(['ip', '-batch', '-'], { input: `${batch.join('\n')}\n` });
  await new Promise((r) => setTimeout(r, 1100)); // past the neighbour locktime (1 s)
}

async function failOnce(c: L2Cluster): Promise<RunResult> {
  const owners = await settledOwners(c, L2_CLUSTER_NODES, 60_000);
  const victim = owners.get(c.vips[0]!)!;
  const theirs = [...owners].filter(([, n]) => n === victim).map(([ip]) => ip);
  await resolveAt(c, theirs, victim);
  const sample = theirs.slice(0, TCP_SAMPLE);
  const prober = startTcpProber(c, sample);
  try {
    await waitFor(
      'the prober to reach every sampled IP at its owner',
      async () => (sample.every((ip) => prober.stdout.includes(` ${ip} ${victim}\n`)) ? true : undefined),
      10_000,
    ).catch(async (error) => {
      const table = await clientNeighbours(c);
      console.error('prober output:\n', prober.stdout, prober.stderr);
      console.error('client entries:', sample.map((ip) => `${ip} ${table.get(ip)}`).join(', '));
      console.error('owners:', sample.map((ip) => owners.get(ip)).join(', '), [...c.macs]);
      throw error;
    });
    await c.hosts.get(victim)!.ip(['link', 'set', 'eth0', 'down']);
    const since = epochMs();
    const victimMac = c.macs.get(victim);
    await waitFor(
      `the client's entries of ${theirs.length} IPs to leave ${victim}`,
      async () => {
        const table = await clientNeighbours(c);
        return theirs.every((ip) => (table.get(ip) ?? victimMac) !== victimMac) ? true : undefined;
      },
      30_000,
    );
    const allNeighboursMovedMs = epochMs() - since;
    const moves = await waitFor(
      'TCP to reach a new owner for every sampled IP',
      async () => {
        const m = proberMoves(prober.stdout, since, victim);
        return sample.every((ip) => m.has(ip)) ? m : undefined;
      },
      10_000,
    ).catch(async (error) => {
      const m = proberMoves(prober.stdout, since, victim);
      const table = await clientNeighbours(c);
      const missing = sample.filter((ip) => !m.has(ip));
      console.error(
        'since',
        since,
        'missing',
        missing.map((ip) => `${ip} ${table.get(ip)}`),
      );
      console.error(
        prober.stdout
          .split('\n')
          .filter((l) => missing.some((ip) => l.includes(` ${ip} `)))
          .join('\n'),
      );
      for (const n of L2_CLUSTER_NODES) {
        const st = await clusterL2Status(c, n).catch(() => undefined);
        const routes = (await c.hosts.get(n)!.ip(['route', 'show', 'table', 'local', 'proto', '76'])).stdout;
        console.error(
          n,
          missing.map(
            (ip) =>
              `${ip}:${st?.ips.find((i) => i.ip === ip)?.state}/${st?.ips.find((i) => i.ip === ip)?.owner}/${routes.includes(`${ip} `)}`,
          ),
        );
      }
      throw error;
    });
    const tcpMaxMs = Math.max(...sample.map((ip) => moves.get(ip)!.at - since));
    return {
      victim,
      ipsMoved: theirs.length,
      allNeighboursMovedMs: Math.round(allNeighboursMovedMs),
      tcpMaxMs: Math.round(tcpMaxMs),
    };
  } finally {
    prober.kill('SIGKILL');
    await c.hosts.get(victim)!.ip(['link', 'set', 'eth0', 'up']);
    // Back when the node holds its lease again and has taken its share back (rendezvous: the same IPs).
    const same = (m: Map<string, string>) => [...owners].every(([ip, n]) => m.get(ip) === n);
    await waitFor(
      'the node to take its IPs back',
      async () => {
        const now = await settledOwners(c, L2_CLUSTER_NODES, 60_000);
        return same(now) ? true : undefined;
      },
      60_000,
    );
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const watchdog = setTimeout(() => {
    console.error('bench:l2-failover took over 15 minutes; stopping');
    process.exit(1);
  }, 900_000);
  const results = [];
  try {
    for (const setting of SETTINGS) {
      for (const ips of SIZES) {
        let cluster: L2Cluster | undefined;
        try {
          cluster = await startL2Cluster({ ...setting, vips: ips });
          const runs: RunResult[] = [];
          for (let i = 0; i < RUNS; i++) {
            const run = await failOnce(cluster);
            console.log(setting.label, ips, JSON.stringify(run));
            runs.push(run);
          }
          results.push({
            setting: setting.label,
            renewIntervalMs: setting.renewIntervalMs,
            expirySeconds: setting.expirySeconds,
            ips,
            runs,
            medianTcpMs: median(runs.map((r) => r.tcpMaxMs)),
            worstTcpMs: Math.max(...runs.map((r) => r.tcpMaxMs)),
            worstNeighboursMs: Math.max(...runs.map((r) => r.allNeighboursMovedMs)),
            targetMs: setting.targetMs,
          });
        } finally {
          await stopL2Cluster(cluster);
        }
      }
    }
    const summary = results.map((r) => ({
      check: `failover, ${r.ips} IPs, ${r.setting} (renew ${r.renewIntervalMs} ms, expiry ${r.expirySeconds} s)${r.targetMs ? ` < ${r.targetMs} ms` : ''}`,
      measured: `TCP worst ${r.worstTcpMs} ms (median ${r.medianTcpMs}); all neighbour entries worst ${r.worstNeighboursMs} ms`,
      result:
        r.targetMs === undefined
          ? 'reference'
          : r.worstTcpMs < r.targetMs && r.worstNeighboursMs < r.targetMs
            ? 'pass'
            : 'FAIL',
    }));
    const json = {
      benchmark: 'bench/l2-failover.ts',
      command: 'npm run bench:l2-failover',
      startedAt: startedAt.toISOString(),
      machine: machineFacts(),
      death: 'the owner node’s link set down (a node losing power)',
      results,
      summary,
    };
    writeFileSync(RESULTS, `${JSON.stringify(json, null, 2)}\n`);
    console.table(summary);
    console.log(`results in ${RESULTS}`);
  } finally {
    clearTimeout(watchdog);
  }
}

await main();
