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
 * The guest has no network device; it sees the repository and node_modules
 * read-only and an exchange directory over virtio 9p, and powers off when done.
 * KVM when the host has a hardware-virtualisation KVM (kvm_intel, kvm_amd);
 * otherwise (a PVM host KVM boots only PVM guest kernels, not Debian's) qemu's
 * TCG emulation, where both systems run emulated and only their ratio means
 * something. NODEWARDEN_BENCH_ACCEL=kvm|tcg overrides the choice.
 *
 * Results go to bench/results/dsr-ipvs-latest.json. Run as root:
 * `npm run bench:dsr-ipvs`.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from './dsr-e2e.js';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const RESULTS = join(REPO, 'bench', 'results', 'dsr-ipvs-latest.json');
const GUEST_TIMEOUT_MS = 30 * 60_000;
const SMP = 2;
const MEMORY = '2G';

interface Accelerator {
  name: 'kvm' | 'tcg';
  args: string[];
  why: string;
}

function accelerator(): Accelerator {
  const kvm: Accelerator = { name: 'kvm', args: ['-enable-kvm', '-cpu', 'host'], why: 'hardware KVM' };
  const hardwareKvm = ['kvm_intel', 'kvm_amd'].filter((m) => existsSync(`/sys/module/${m}`));
  const tcg = (why: string): Accelerator => ({
    name: 'tcg',
    args: ['-accel', 'tcg,thread=multi', '-cpu', 'max'],
    why,
  });
  const forced = process.env.NODEWARDEN_BENCH_ACCEL;
  if (forced === 'kvm') return { ...kvm, why: 'NODEWARDEN_BENCH_ACCEL=kvm' };
  if (forced === 'tcg') return tcg('NODEWARDEN_BENCH_ACCEL=tcg');
  if (forced) throw new Error(`NODEWARDEN_BENCH_ACCEL=${forced}: expected kvm or tcg`);
  if (existsSync('/dev/kvm') && hardwareKvm.length > 0)
    return { ...kvm, why: `hardware KVM (${hardwareKvm[0]})` };
  if (existsSync('/sys/module/kvm_pvm'))
    return tcg("the host's KVM is PVM (kvm_pvm), which boots only PVM guest kernels, not Debian's");
  return tcg('no hardware KVM on the host');
}

/** Boots the guest on `image` with the exchange directory `exchange`; resolves with qemu's exit code. */
function bootGuest(image: string, exchange: string, accel: Accelerator): Promise<number | null> {
  const modules = realpathSync(join(REPO, 'node_modules'));
  const share = (path: string, tag: string, ro: boolean) => [
    '-virtfs',
    `local,path=${path},mount_tag=${tag},security_model=none${ro ? ',readonly=on' : ''}`,
  ];
  const args = [
    ...accel.args,
    '-smp',
    String(SMP),
    '-m',
    MEMORY,
    '-kernel',
    join(image, 'vmlinuz'),
    '-initrd',
    join(image, 'initrd.img'),
    '-append',
    `root=/dev/vda rw console=ttyS0 quiet panic=-1 init=/sbin/nw-guest-init nw.repo=${REPO} nw.modules=${modules}`,
    // snapshot=on: the guest's writes go to a temporary overlay, the cached image stays as built.
    '-drive',
    `file=${join(image, 'rootfs.img')},format=raw,if=virtio,snapshot=on`,
    ...share(exchange, 'out', false),
    ...share(REPO, 'repo', true),
    ...share(modules, 'modules', true),
    // No network device: the guest's links are all inside its own namespaces.
    '-nic',
    'none',
    '-nographic',
    '-no-reboot',
  ];
  const consoleFile = openSync(join(exchange, 'console'), 'w');
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', consoleFile, consoleFile] });
  log(`guest: qemu pid ${qemu.pid}, ${accel.name} (${accel.why})`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      log(`guest: no power-off after ${GUEST_TIMEOUT_MS / 60_000} min, killing qemu pid ${qemu.pid}`);
      qemu.kill('SIGKILL');
    }, GUEST_TIMEOUT_MS);
    qemu.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    qemu.on('exit', (code) => {
      clearTimeout(timer);
      closeSync(consoleFile);
      resolve(code);
    });
  });
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  log('build (BPF objects, bundle)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  log('guest image (bench/vm/image.sh, cached)');
  const image = execFileSync(join(REPO, 'bench', 'vm', 'image.sh'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const accel = accelerator();
  const exchange = mkdtempSync(join(tmpdir(), 'nw-bench-vm-'));
  try {
    const env = ['NODEWARDEN_BENCH_ROUNDS', 'NODEWARDEN_BENCH_WRK_SECONDS']
      .filter((k) => process.env[k])
      .map((k) => `${k}=${process.env[k]} `)
      .join('');
    writeFileSync(
      join(exchange, 'run.sh'),
      `cd ${REPO} && ${env}NODEWARDEN_DAEMON_START_MS=180000 exec node node_modules/.bin/tsx bench/dsr-ipvs-guest.ts /mnt/out/result.json\n`,
    );
    const bootedAt = Date.now();
    const code = await bootGuest(image, exchange, accel);
    const guestSeconds = Math.round((Date.now() - bootedAt) / 1000);
    const read = (f: string) =>
      existsSync(join(exchange, f)) ? readFileSync(join(exchange, f), 'utf8') : '';
    process.stderr.write(read('log'));
    if (!existsSync(join(exchange, 'result.json')))
      throw new Error(
        `guest (qemu exit ${code}, run.sh rc ${read('rc').trim() || 'none'}) left no result; console:\n${read('console').slice(-3000)}`,
      );
    const guest = JSON.parse(read('result.json')) as {
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
        guestSeconds,
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
  } finally {
    rmSync(exchange, { recursive: true, force: true });
  }
}

await main();
