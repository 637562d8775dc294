/**
 * The end-to-end half of the DSR bench, shared by bench/dsr.ts (on the host)
 * and bench/dsr-ipvs-guest.ts (in the KVM/TCG guest that has IPVS): the DSR
 * lab (test/support/dsr-topology.ts) with nodewarden's DSR on its VIP and
 * each reference on a VIP of its own, all on the same load-balancer node,
 * measured with wrk in alternating runs.
 */
import type { Host } from '../test/lab/index.js';
import { createLab } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import type { DaemonFiles } from '../test/support/daemon.js';
import { ADDR, buildDsrTopology, startDsrDaemons } from '../test/support/dsr-topology.js';
import { median } from './report.js';
import { type WrkRun, wrk } from './wrk.js';

export const WRK_SECONDS = Number(process.env.NODEWARDEN_BENCH_WRK_SECONDS ?? 8);

export const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

/** A load balancer to compare with, set up on the load-balancer node for `vip`. */
export interface Reference {
  name: string;
  vip: string;
  setUp(lb: Host): Promise<void>;
  /** What the node's own counters say it carried (checked non-zero), when it keeps any. */
  carried?(lb: Host): Promise<Record<string, number>>;
}

export interface Summary {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  runs: number[];
}

/** IPVS in DR mode (ipvsadm -g): the VIP local on the node, frames re-addressed to a backend's MAC. */
export function ipvsReference(vip: string, scheduler: 'sh' | 'mh'): Reference {
  const names = { sh: 'source hashing', mh: 'Maglev hashing' };
  return {
    name: `IPVS DR (ipvsadm -s ${scheduler} -b ${scheduler}-port, ${names[scheduler]} of the address and port)`,
    vip,
    async setUp(lb) {
      await lb.ip(['addr', 'add', `${vip}/32`, 'dev', 'lo']);
      // -b *-port: hash the source port too, as nodewarden's Maglev hashes the 5-tuple; on the
      // address alone every connection of the lab's one client would go to one backend.
      await lb.exec(['ipvsadm', '-A', '-t', `${vip}:80`, '-s', scheduler, '-b', `${scheduler}-port`]);
      for (const be of [ADDR.be1.v4, ADDR.be2.v4])
        await lb.exec(['ipvsadm', '-a', '-t', `${vip}:80`, '-r', be, '-g']);
    },
    async carried(lb) {
      // Connections per real server, from the service's --stats lines ("  -> 10.90.0.11:80  Conns ...").
      const { stdout } = await lb.exec(['ipvsadm', '-Ln', '--stats', '-t', `${vip}:80`]);
      const out: Record<string, number> = {};
      for (const m of stdout.matchAll(/->\s+([\d.]+):80\s+(\d+)/g))
        out[`connections to ${m[1]}`] = Number(m[2]);
      return out;
    },
  };
}

/**
 * The kernel's own DR: an ECMP route with an L4 hash (fib_multipath_hash_policy 1)
 * rewrites the MAC per flow towards one of the backends, as IPVS DR does
 * without its connection table.
 */
export function ecmpReference(vip: string): Reference {
  return {
    name: 'kernel ECMP DR (L4-hash multipath route on the load-balancer node)',
    vip,
    async setUp(lb) {
      await lb.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
      await lb.ip([
        'route',
        'add',
        `${vip}/32`,
        'nexthop',
        'via',
        ADDR.be1.v4,
        'nexthop',
        'via',
        ADDR.be2.v4,
      ]);
    },
  };
}

/** Why IPVS cannot run on this kernel (ipvsadm's first line), or undefined when it can. */
export async function ipvsUnavailable(lb: Host): Promise<string | undefined> {
  const probe = await lb.exec(['ipvsadm', '-Ln'], { allowFailure: true });
  if (probe.code === 0) return undefined;
  return (probe.stderr || probe.stdout).trim().split('\n')[0];
}

function summary(runs: WrkRun[]): Summary {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50ms: median(runs.map((r) => r.p50ms)),
    p99ms: median(runs.map((r) => r.p99ms)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    runs: runs.map((r) => Math.round(r.rps)),
  };
}

/**
 * The DSR lab with nodewarden on ADDR.vip and, on the same load-balancer node,
 * the references `choose` returns (it gets the node to probe the kernel with);
 * `rounds` rounds of wrk, each running nodewarden then every reference.
 */
export async function endToEnd(
  rounds: number,
  choose: (lb: Host) => Promise<Reference[]>,
): Promise<{
  nodewarden: Summary & { carried: Record<string, number>; loadBalancerCounters: Record<string, number> };
  references: (Summary & { name: string; vip: string; carried?: Record<string, number> })[];
}> {
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  const files: DaemonFiles[] = [];
  try {
    const topo = await buildDsrTopology(lab);
    try {
      const daemons = await startDsrDaemons(topo, bpffs.dir, files);
      const references = await choose(topo.lb);
      for (const ref of references) {
        // Each reference's VIP: routed to the load-balancer node too, local on both
        // backends, and handed to backend 2's pod like nodewarden's VIP.
        await topo.router.addRoute(`${ref.vip}/32`, ADDR.lb.v4);
        for (const be of [topo.be1, topo.be2])
          await be.ip(['route', 'add', 'local', ref.vip, 'dev', 'lo', 'table', 'local']);
        await topo.be2.exec(
          ['nft', 'add', 'rule', 'inet', 'nwtest', 'pre', 'ip', 'daddr', ref.vip, 'tcp'].concat([
            'dport',
            '80',
            'dnat',
            'ip',
            'to',
            `${ADDR.pod.v4}:8080`,
          ]),
        );
        await ref.setUp(topo.lb);
        log(`reference: ${ref.name} on ${ref.vip}`);
      }
      // One unrecorded run each first: the servers' JIT, neighbours and caches warm up
      // (under emulation the first run is several times slower than the rest).
      for (const vip of [ADDR.vip.v4, ...references.map((ref) => ref.vip)])
        await wrk(topo.client, `http://${vip}:80/`, WRK_SECONDS);
      const dsrRuns: WrkRun[] = [];
      const refRuns: WrkRun[][] = references.map(() => []);
      for (let round = 0; round < rounds; round++) {
        dsrRuns.push(await wrk(topo.client, `http://${ADDR.vip.v4}:80/`, WRK_SECONDS));
        for (const [i, ref] of references.entries())
          refRuns[i]!.push(await wrk(topo.client, `http://${ref.vip}:80/`, WRK_SECONDS));
        log(
          `round ${round + 1}: nodewarden ${dsrRuns.at(-1)!.rps.toFixed(0)} req/s, ${references
            .map((ref, i) => `${ref.name} ${refRuns[i]!.at(-1)!.rps.toFixed(0)} req/s`)
            .join(', ')}`,
        );
      }
      // Each system must really have carried its VIP's traffic, by its own counters.
      const counters = async (i: number) =>
        Object.fromEntries(
          Object.entries((await daemons[i]!.daemon.status()).services?.dsr?.stats ?? {}).map(([k, v]) => [
            k,
            Number(v),
          ]),
        );
      const lbStats = await counters(0);
      const backendsDecapsulated = {
        'packets decapsulated on backend 1': (await counters(1)).decapsulated ?? 0,
        'packets decapsulated on backend 2': (await counters(2)).decapsulated ?? 0,
      };
      const carried = async (name: string, counters: Record<string, number>) => {
        if (Object.keys(counters).length === 0 || Object.values(counters).some((n) => n === 0))
          throw new Error(`${name} did not carry the traffic: ${JSON.stringify(counters)}`);
        return counters;
      };
      return {
        nodewarden: {
          ...summary(dsrRuns),
          carried: await carried('nodewarden', backendsDecapsulated),
          loadBalancerCounters: lbStats,
        },
        references: await Promise.all(
          references.map(async (ref, i) => ({
            name: ref.name,
            vip: ref.vip,
            ...summary(refRuns[i]!),
            ...(ref.carried ? { carried: await carried(ref.name, await ref.carried(topo.lb)) } : {}),
          })),
        ),
      };
    } finally {
      topo.destroy();
    }
  } finally {
    await lab.destroy();
    bpffs.destroy();
    for (const f of files) f.destroy();
  }
}
