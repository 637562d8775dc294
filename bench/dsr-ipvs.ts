/**
 * nodewarden's DSR against IPVS in DR mode, end to end, in the same run.
 *
 * The host kernel may have no IPVS (no ip_vs module: "Can't initialize ipvs:
 * Protocol not available"), so this bench boots a Debian 12 guest with
 * Debian's kernel, which has it (bench/vm/image.sh builds the guest once and
 * caches it), and runs bench/dsr-ipvs-guest.ts there: the DSR lab of
 * bench/dsr-e2e.ts with nodewarden, IPVS DR (ipvsadm -s mh) and the kernel's
 * ECMP DR on the same load-balancer node, wrk runs alternating.
 *
 * bench/vm/guest.ts boots the guest (no network device, the repository
 * shared read-only over 9p; KVM or, on a host without hardware KVM, qemu's TCG
 * emulation, where both systems run emulated and only their ratio means
 * something). NODEWARDEN_BENCH_ACCEL=kvm|tcg overrides the choice.
 *
 * Results go to bench/results/dsr-ipvs-latest.json. Run as root:
 * `npm run bench:dsr-ipvs`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { log } from './dsr-e2e.js';
import { accelerator, guestImage, REPO, runInGuest } from './vm/guest.js';

const RESULTS = join(REPO, 'bench', 'results', 'dsr-ipvs-latest.json');
const GUEST_TIMEOUT_MS = 30 * 60_000;
const SMP = 2;
const MEMORY = '2G';

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  log('build (BPF objects, bundle)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  log('guest image (bench/vm/image.sh, cached)');
  const image = guestImage();
  const accel = accelerator();
  const env = ['NODEWARDEN_BENCH_ROUNDS', 'NODEWARDEN_BENCH_WRK_SECONDS']
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]} `)
    .join('');
  const run = await runInGuest({
    image,
    accel,
    script: `cd ${REPO} && ${env}NODEWARDEN_DAEMON_START_MS=180000 exec node node_modules/.bin/tsx bench/dsr-ipvs-guest.ts /mnt/out/result.json\n`,
    outputs: ['result.json'],
    smp: SMP,
    memory: MEMORY,
    timeoutMs: GUEST_TIMEOUT_MS,
    log,
  });
  process.stderr.write(run.log);
  const resultJson = run.outputs['result.json'];
  if (!resultJson)
    throw new Error(
      `guest (qemu exit ${run.qemuExit}, run.sh rc ${run.rc ?? 'none'}) left no result; console:\n${run.console.slice(-3000)}`,
    );
  const guest = JSON.parse(resultJson) as {
    endToEnd: { nodewarden: { rps: number }; references: { name: string; rps: number }[] };
  };
  const nw = guest.endToEnd.nodewarden.rps;
  const ipvs = guest.endToEnd.references.find((r) => r.name.startsWith('IPVS'))!;
  const result = {
    benchmark: 'bench/dsr-ipvs.ts',
    command: 'npm run bench:dsr-ipvs',
    startedAt,
    host: {
      kernel: release(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      loadAvgAtStart: loadAtStart,
      loadAvgAtEnd: loadavg(),
    },
    vm: {
      accelerator: accel.name,
      why: accel.why,
      smp: SMP,
      memory: MEMORY,
      image,
      guestSeconds: run.seconds,
    },
    ...guest,
    targets: { endToEnd: '>= IPVS DR req/s' },
    verdict: {
      endToEnd: nw >= ipvs.rps ? 'met' : `missed (${((nw / ipvs.rps) * 100).toFixed(0)} % of IPVS DR)`,
    },
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
