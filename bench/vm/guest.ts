/**
 * Boots the Debian 12 guest of bench/vm (image.sh builds it, guest-init.sh is
 * its PID 1) on one command and collects what the command left behind. Used by
 * the DSR-against-IPVS bench and by the Debian 12 kernel integration test.
 *
 * The guest has no network device; it sees the repository and node_modules
 * read-only at their host paths and an exchange directory over virtio 9p, and
 * powers off when the command returns. KVM when the host has a
 * hardware-virtualisation KVM (kvm_intel, kvm_amd); otherwise (a PVM host KVM
 * boots only PVM guest kernels, not Debian's) qemu's TCG emulation.
 * NODEWARDEN_BENCH_ACCEL=kvm|tcg overrides the choice.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export interface Accelerator {
  name: 'kvm' | 'tcg';
  args: string[];
  why: string;
}

export function accelerator(): Accelerator {
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

/** Builds the guest image once (cached, see image.sh) and returns its directory. */
export function guestImage(): string {
  return execFileSync(join(REPO, 'bench', 'vm', 'image.sh'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface GuestRunOptions {
  image: string;
  accel: Accelerator;
  /** Shell script run in the guest as root (out/run.sh); the exchange directory is /mnt/out. */
  script: string;
  /** Files the script writes to /mnt/out, read back before the exchange directory is removed. */
  outputs?: readonly string[];
  smp?: number;
  memory?: string;
  timeoutMs: number;
  /** Aborting kills the qemu this run started (a test's afterAll, a timed-out test). */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface GuestRun {
  /** qemu's exit code; null when it was killed. */
  qemuExit: number | null;
  /** run.sh's exit code as the guest recorded it; undefined if the guest never got that far. */
  rc: number | undefined;
  /** run.sh's stdout and stderr. */
  log: string;
  /** The guest's serial console (kernel messages, guest-init.sh). */
  console: string;
  outputs: Record<string, string | undefined>;
  seconds: number;
}

/** Boots the guest on `script`, waits for its power-off (or kills qemu at the timeout). */
export async function runInGuest(options: GuestRunOptions): Promise<GuestRun> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const exchange = mkdtempSync(join(tmpdir(), 'nw-guest-'));
  try {
    writeFileSync(join(exchange, 'run.sh'), options.script);
    const startedAt = Date.now();
    const qemuExit = await bootGuest(exchange, options, log);
    const read = (f: string) =>
      existsSync(join(exchange, f)) ? readFileSync(join(exchange, f), 'utf8') : undefined;
    const rc = read('rc')?.trim();
    return {
      qemuExit,
      rc: rc ? Number(rc) : undefined,
      log: read('log') ?? '',
      console: read('console') ?? '',
      outputs: Object.fromEntries((options.outputs ?? []).map((f) => [f, read(f)])),
      seconds: Math.round((Date.now() - startedAt) / 1000),
    };
  } finally {
    rmSync(exchange, { recursive: true, force: true });
  }
}

function bootGuest(
  exchange: string,
  options: GuestRunOptions,
  log: (line: string) => void,
): Promise<number | null> {
  const { image, accel, timeoutMs, signal } = options;
  const modules = realpathSync(join(REPO, 'node_modules'));
  const share = (path: string, tag: string, ro: boolean) => [
    '-virtfs',
    `local,path=${path},mount_tag=${tag},security_model=none${ro ? ',readonly=on' : ''}`,
  ];
  const args = [
    ...accel.args,
    '-smp',
    String(options.smp ?? 2),
    '-m',
    options.memory ?? '2G',
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
  if (signal?.aborted) return Promise.reject(new Error('guest run aborted before qemu started'));
  const consoleFile = openSync(join(exchange, 'console'), 'w');
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', consoleFile, consoleFile] });
  log(`guest: qemu pid ${qemu.pid}, ${accel.name} (${accel.why})`);
  const kill = (why: string) => {
    if (qemu.exitCode !== null || qemu.signalCode !== null) return;
    log(`guest: ${why}, killing qemu pid ${qemu.pid}`);
    qemu.kill('SIGKILL');
  };
  const onAbort = () => kill('run aborted');
  signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => kill(`no power-off after ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      closeSync(consoleFile);
    };
    qemu.on('error', (e) => {
      done();
      reject(e);
    });
    qemu.on('exit', (code) => {
      done();
      resolve(code);
    });
  });
}
