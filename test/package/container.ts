/**
 * A Debian 12 machine booted with systemd as PID 1 (systemd-nspawn --boot)
 * for the package install test. It lives in a network namespace the test
 * created (so the daemon it runs only ever sees that namespace's interfaces),
 * has a private bpffs bound at its /sys/fs/bpf, and its rootfs is a fresh copy
 * of the cached debootstrap tarball (test/package/rootfs.sh).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LabProcess, type RunOptions, type RunResult, run } from '../lab/index.js';
import { REPO_ROOT } from '../support/paths.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cached rootfs tarball, debootstrapped on the first call (a few minutes, once per machine). */
export async function rootfsTarball(): Promise<string> {
  const { stdout } = await run([join(REPO_ROOT, 'test/package/rootfs.sh')], { timeoutMs: 900_000 });
  return stdout.trim();
}

export interface ContainerOptions {
  /** Full name of the network namespace (under /run/netns) the machine lives in. */
  netns: string;
  /** A bpffs mounted on the host; the machine sees it as /sys/fs/bpf. */
  bpffsDir: string;
  name: string;
}

export class Container {
  private constructor(
    readonly root: string,
    readonly name: string,
    private readonly nspawn: LabProcess,
    /** Host pid of the machine's PID 1 (systemd). */
    readonly leaderPid: number,
  ) {}

  static async boot(options: ContainerOptions): Promise<Container> {
    const tarball = await rootfsTarball();
    const dir = mkdtempSync('/var/tmp/nodewarden-machine-');
    const root = join(dir, 'root');
    let nspawn: LabProcess | undefined;
    try {
      await run(['mkdir', root]);
      await run(['tar', '-C', root, '-xf', tarball], { timeoutMs: 120_000 });
      nspawn = new LabProcess([
        'systemd-nspawn',
        '--boot',
        '--quiet',
        '--register=no',
        '--keep-unit',
        `--machine=${options.name}`,
        `--directory=${root}`,
        `--network-namespace-path=/run/netns/${options.netns}`,
        // Beyond nspawn's default set: what the daemon needs to load and attach BPF.
        '--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN',
        // nspawn's own seccomp filter refuses bpf() to everything the machine starts.
        '--system-call-filter=bpf',
        `--bind=${options.bpffsDir}:/sys/fs/bpf`,
        '--console=pipe',
      ]);
      const leaderPid = await waitForLeader(nspawn);
      const container = new Container(root, options.name, nspawn, leaderPid);
      await container.waitForBoot();
      return container;
    } catch (error) {
      if (nspawn) await stopNspawn(nspawn);
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Runs a command inside the machine (its mount, PID, UTS, IPC and network namespaces). */
  exec(cmd: string[], opts?: RunOptions): Promise<RunResult> {
    return run(
      ['nsenter', `--target=${this.leaderPid}`, '--mount', '--uts', '--ipc', '--net', '--pid', '--', ...cmd],
      opts,
    );
  }

  async sh(script: string, opts?: RunOptions): Promise<RunResult> {
    return this.exec(['/bin/sh', '-c', script], opts);
  }

  async systemctl(args: string[], opts?: RunOptions): Promise<RunResult> {
    return this.exec(['systemctl', '--no-pager', ...args], opts);
  }

  /** `systemctl show -p` values of a unit, by property name. */
  async show(unit: string, properties: string[]): Promise<Record<string, string>> {
    const { stdout } = await this.systemctl(['show', unit, ...properties.map((p) => `--property=${p}`)]);
    return Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** The unit's journal, for failure messages. */
  async journal(unit: string): Promise<string> {
    const { stdout } = await this.exec(['journalctl', '--no-pager', '-o', 'cat', '-n', '60', '-u', unit], {
      allowFailure: true,
    });
    return stdout;
  }

  /** Waits until `check` holds, polling; throws with `describe()` on timeout. */
  async waitFor(
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 20_000,
    describe?: () => Promise<string>,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}${describe ? `\n${await describe()}` : ''}`,
        );
      }
      await sleep(200);
    }
  }

  /** Powers the machine off, and removes its rootfs. */
  async destroy(): Promise<void> {
    await stopNspawn(this.nspawn);
    rmSync(join(this.root, '..'), { recursive: true, force: true });
  }

  private async waitForBoot(): Promise<void> {
    await this.waitFor(
      'systemd to finish booting',
      async () => {
        if (!this.nspawn.running) throw new Error(`systemd-nspawn exited: ${this.nspawn.output}`);
        const { stdout } = await this.systemctl(['is-system-running'], { allowFailure: true });
        return ['running', 'degraded'].includes(stdout.trim());
      },
      60_000,
      async () => (await this.systemctl(['list-jobs'], { allowFailure: true })).stdout,
    );
  }
}

/** nspawn forks the machine's PID 1 as its child; that child's host pid is what nsenter needs. */
async function waitForLeader(nspawn: LabProcess): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (!nspawn.running) throw new Error(`systemd-nspawn exited before booting:\n${nspawn.output}`);
    for (const child of childPids(nspawn.pid)) {
      const comm = readFileSync(`/proc/${child}/comm`, 'utf8').trim();
      if (comm === 'systemd') return child;
    }
    await sleep(100);
  }
  throw new Error(`systemd did not start inside systemd-nspawn (pid ${nspawn.pid}):\n${nspawn.output}`);
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** SIGTERM asks nspawn to power the machine off; a second one ends it at once. */
async function stopNspawn(nspawn: LabProcess): Promise<void> {
  nspawn.kill('SIGTERM');
  const done = await Promise.race([nspawn.exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!done) {
    nspawn.kill('SIGTERM');
    await Promise.race([nspawn.exited, sleep(5_000)]);
    nspawn.kill('SIGKILL');
    await nspawn.exited;
  }
}
