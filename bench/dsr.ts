/**
 * DSR forwarding against the targets, with the reference measured in
 * the same run:
 *
 * 1. ns per packet of nw_dsr_xdp with BPF_PROG_TEST_RUN: a packet of an
 *    established flow (VIP lookup, flow-table hit, backend check, cached next
 *    hop, encapsulation) and a packet that is not VIP traffic (passed).
 *    The kernel's repeat loop keeps the head a program moved, so the production
 *    program would see its own output from the second run on: the hot figure
 *    (target ≤ 100 ns) uses the bench build (test/fixtures/bpf/dsr_bench.c),
 *    which moves the head back after encapsulating (one extra helper call,
 *    counted), repeat 1e6, median of 3, and checks that every run forwarded.
 *    The cold figure is the production program's median over 3000 single
 *    runs less an empty XDP program's (the test-run machinery's own cost).
 * 2. end to end in the DSR lab (client, router, load-balancer node, two
 *    backends, test/support/dsr-topology.ts) with wrk: requests per second
 *    through nodewarden's DSR against the reference on the same
 *    load-balancer node, alternating runs. The reference is IPVS in DR mode
 *    (ipvsadm) when the kernel has IPVS; this bench records why when it does
 *    not, and then measures the kernel's own DR: an L4-hashed ECMP route to
 *    the backends (a MAC rewrite per flow, what IPVS DR does without its
 *    connection table). Target: ≥ the reference. `npm run bench:dsr-ipvs`
 *    (bench/dsr-ipvs.ts) runs the same lab against IPVS in a Debian guest.
 *
 * Results go to bench/results/dsr-latest.json. Run as root: `npm run bench:dsr`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, inNetns, testRun } from '../bpf/index.js';
import { bpfObjectPath } from '../bpf/paths.js';
import { DsrMaps } from '../daemon/services/dsr-maps.js';
import { planDsr } from '../services/dsr-plan.js';
import { createLab } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { ipFrame, TcpFlag, tcp } from '../test/support/packets.js';
import { sampleService } from '../test/support/services.js';
import { ecmpReference, endToEnd, ipvsReference, ipvsUnavailable, log, WRK_SECONDS } from './dsr-e2e.js';
import { median } from './report.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results', 'dsr-latest.json');
const TARGET_NS = 100;
const SINGLE_RUNS = 3000;
const XDP_REDIRECT = 4;
const FIXTURE_XDP_PASS = join(REPO, 'test', 'fixtures', 'bpf', 'out', 'xdp_pass.o');
const FIXTURE_DSR_BENCH = join(REPO, 'test', 'fixtures', 'bpf', 'out', 'dsr_bench.o');
const REPEAT = 1_000_000;
const ROUNDS = 3;
const REF_VIP = '192.0.2.81';

async function perPacket(): Promise<Record<string, number>> {
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  try {
    const lb = await lab.host('lb');
    const peer = await lab.host('peer');
    await lab.link(lb, peer, { aDev: 'eth0', bDev: 'eth0', aAddrs: ['10.91.0.1/24'] });
    await lb.sysctl('net.ipv4.conf.all.forwarding', 1);
    for (const [ip, mac] of [
      ['10.91.0.2', '02:91:00:00:00:02'],
      ['10.91.0.3', '02:91:00:00:00:03'],
    ] as const)
      await lb.ip(['neigh', 'replace', ip, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    const object = BpfObject.load(bpfObjectPath('dsr'), { pinDir: `${bpffs.dir}/dsr` });
    try {
      loadBenchService(object);
      const program = object.program('nw_dsr_xdp');
      const empty = BpfObject.load(FIXTURE_XDP_PASS, {});
      try {
        const vip = ipFrame({
          src: '198.51.100.7',
          dst: '192.0.2.10',
          l4: tcp({ sport: 40000, dport: 80, flags: TcpFlag.ack }),
        });
        const other = ipFrame({
          src: '198.51.100.7',
          dst: '192.0.2.99',
          l4: tcp({ sport: 40000, dport: 80, flags: TcpFlag.ack }),
        });
        // One run per call: with repeat > 1 the kernel keeps the head the program moved, so
        // from the second run on it would measure its own encapsulated output.
        const single = (p: typeof program, packet: Buffer) =>
          median(
            Array.from({ length: 3 }, () =>
              median(
                inNetns(lb.netns, () =>
                  Array.from({ length: SINGLE_RUNS }, () => testRun(p, { packet }).durationNs),
                ),
              ),
            ),
          );
        const first = inNetns(lb.netns, () => testRun(program, { packet: vip }));
        if (first.retval !== XDP_REDIRECT)
          throw new Error(`nw_dsr_xdp returned ${first.retval} for VIP traffic`);
        const vipNs = single(program, vip);
        const hotVipNs = hotLoop(bpffs.dir, lb.netns, vip);
        const passNs = single(program, other);
        const emptyNs = single(empty.program('xdp_pass'), vip);
        return {
          singleRunVipNs: vipNs,
          singleRunPassNs: passNs,
          singleRunEmptyProgramNs: emptyNs,
          establishedFlowNs: vipNs - emptyNs,
          establishedFlowHotLoopNs: hotVipNs,
          passNs: passNs - emptyNs,
          passRepeatNs: median(
            Array.from(
              { length: 3 },
              () => inNetns(lb.netns, () => testRun(program, { packet: other, repeat: REPEAT })).durationNs,
            ),
          ),
        };
      } finally {
        empty.close();
      }
    } finally {
      object.close();
    }
  } finally {
    await lab.destroy();
    bpffs.destroy();
  }
}

/** One DSR service, VIP 192.0.2.10, on the two backends the lab has neighbour entries for. */
function loadBenchService(object: BpfObject): DsrMaps {
  const maps = new DsrMaps(object);
  const service = sampleService({
    loadBalancerIPs: ['192.0.2.10'],
    backendNodes: ['10.91.0.2', '10.91.0.3'],
  });
  maps.apply(planDsr([service], { addresses: ['10.91.0.1'], loadBalancerNodes: [] }));
  return maps;
}

/**
 * The same path in the kernel's repeat loop (hot caches), with the bench build
 * of the program that gives the packet its head back after encapsulating.
 * Every one of the REPEAT runs must have forwarded.
 */
function hotLoop(pinRoot: string, netns: string, packet: Buffer): number {
  const object = BpfObject.load(FIXTURE_DSR_BENCH, { pinDir: `${pinRoot}/dsr-bench` });
  try {
    const maps = loadBenchService(object);
    const program = object.program('nw_dsr_xdp');
    const runs = Array.from({ length: 3 }, () => {
      const before = BigInt(maps.readStats().forwarded);
      const r = inNetns(netns, () => testRun(program, { packet, repeat: REPEAT }));
      const forwarded = BigInt(maps.readStats().forwarded) - before;
      if (r.retval !== XDP_REDIRECT || forwarded !== BigInt(REPEAT))
        throw new Error(`bench build: retval ${r.retval}, ${forwarded} of ${REPEAT} runs forwarded`);
      return r.durationNs;
    });
    return median(runs);
  } finally {
    object.close();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const load = loadavg();
  log('per-packet cost with BPF_PROG_TEST_RUN');
  const testRunNs = await perPacket();
  const vipNs = testRunNs.establishedFlowHotLoopNs ?? Number.NaN;
  log(
    `established flow ${testRunNs.establishedFlowHotLoopNs} ns in the repeat loop, ${testRunNs.establishedFlowNs} ns cold (single runs); passed ${testRunNs.passNs} ns`,
  );
  log('end to end with wrk');
  let ipvsError: string | undefined;
  const measured = await endToEnd(ROUNDS, async (lb) => {
    ipvsError = await ipvsUnavailable(lb);
    return [ipvsError === undefined ? ipvsReference(REF_VIP, 'sh') : ecmpReference(REF_VIP)];
  });
  const { name: reference, vip: _vip, ...referenceResult } = measured.references[0]!;
  const e2e = { reference, ipvsUnavailable: ipvsError, nodewarden: measured.nodewarden, referenceResult };
  const nw = e2e.nodewarden.rps;
  const ref = referenceResult.rps;
  const result = {
    benchmark: 'bench/dsr.ts',
    command: 'npm run bench:dsr',
    startedAt,
    machine: {
      kernel: release(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      node: process.version,
      loadAvgAtStart: load,
    },
    targets: { perPacketNs: TARGET_NS, endToEnd: '>= reference req/s' },
    testRun: { singleRuns: SINGLE_RUNS, medianOf: 3, passRepeat: REPEAT, ...testRunNs },
    endToEnd: { wrk: `-t2 -c32 -d${WRK_SECONDS}s`, rounds: ROUNDS, ...e2e },
    verdict: {
      perPacket: vipNs <= TARGET_NS ? 'met' : 'missed',
      endToEnd: nw >= ref ? 'met' : `missed (${((nw / ref) * 100).toFixed(0)} % of the reference)`,
    },
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
