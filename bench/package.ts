/**
 * The node package's figures, each beside a reference measured in the same run:
 *
 * 1. package sizes: the release build in dist/packages (npm run package), if
 *    present, and the tests' --fast build;
 * 2. start-up of the single executable (`nodewarden --version`) in a chroot of
 *    the Debian 12 rootfs, which has no Node.js, against the plain bundle on
 *    the system's node (`node dist/nodewarden.mjs --version`) and `node -e 0`; median of 15;
 * 3. under systemd as PID 1 (systemd-nspawn in a lab namespace, as in the
 *    install test): start to READY=1 (systemd's own timestamps: ExecMainStart
 *    to ActiveEnter), median of 5 restarts, and the idle daemon's RSS after
 *    10 s, against the bundle on system node started the same way by hand
 *    (spawn to "nodewarden started", RSS after 10 s);
 * 4. the unit's `systemd-analyze security` exposure.
 *
 * Writes bench/results/package-latest.json. Run as root: `npx tsx bench/package.ts`.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLab } from '../test/lab/index.js';
import { buildPackages } from '../test/package/build.js';
import { Container, rootfsTarball } from '../test/package/container.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { CLI_BUNDLE, REPO_ROOT } from '../test/support/paths.js';
import { median } from './report.js';

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function timeRuns(argv: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    // Only PATH: the machine's environment (NODE_EXTRA_CA_CERTS, say) is not the package's.
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'ignore', env: { PATH: process.env.PATH } });
    times.push(performance.now() - start);
  }
  return Math.round(median(times));
}

function rssMb(statusText: string): number {
  return Math.round(Number(statusText.match(/^VmRSS:\s+(\d+) kB/m)?.[1]) / 102.4) / 10;
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
  const fast = await buildPackages();

  // 1. sizes
  const release = join(REPO_ROOT, 'dist/packages');
  const sizes: Record<string, number> = {
    'deb (--fast, gzip -1)': mb(statSync(fast.deb).size),
    'rpm (--fast, zstd -3)': mb(statSync(fast.rpm).size),
  };
  if (existsSync(release)) {
    for (const f of readdirSync(release).filter((n) => n.includes(fast.version))) {
      sizes[`${f} (release)`] = mb(statSync(join(release, f)).size);
    }
  }
  results.sizesMB = sizes;

  // 2. start-up of the executable in a chroot without node
  const dir = mkdtempSync('/var/tmp/nodewarden-bench-');
  try {
    const root = join(dir, 'root');
    mkdirSync(root);
    execFileSync('tar', ['-C', root, '-xf', await rootfsTarball()]);
    // Unpacked by tar, keeping the rootfs's merged-/usr symlinks (/lib -> usr/lib), which dpkg-deb -x replaces.
    execFileSync('sh', [
      '-c',
      'dpkg-deb --fsys-tarfile "$1" | tar -C "$2" -x --keep-directory-symlink',
      'sh',
      fast.deb,
      root,
    ]);
    if (existsSync(join(root, 'usr/bin/node'))) throw new Error('the rootfs has a node; it must not');
    const chrooted = ['unshare', '--mount', '--pid', '--fork', `--mount-proc=${root}/proc`, 'chroot', root];
    const version = execFileSync(chrooted[0]!, [...chrooted.slice(1), '/usr/bin/nodewarden', '--version'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    }).trim();
    if (version !== fast.version)
      throw new Error(`--version says ${version}, the package is ${fast.version}`);
    results.versionStartMs = {
      'single executable, chroot without node': timeRuns(
        [...chrooted, '/usr/bin/nodewarden', '--version'],
        15,
      ),
      'reference: bundle on system node': timeRuns(['node', CLI_BUNDLE, '--version'], 15),
      'reference: node -e 0 (the runtime alone)': timeRuns(['node', '-e', '0'], 15),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // 3. under systemd
  const lab = await createLab();
  const bpffs = mountTempBpffs();
  let machine: Container | undefined;
  try {
    const node = await lab.host('node');
    const peer = await lab.host('peer');
    await lab.link(node, peer, {
      aDev: 'eth0',
      bDev: 'eth0',
      aAddrs: ['10.89.0.1/24'],
      bAddrs: ['10.89.0.2/24'],
    });
    machine = await Container.boot({
      netns: node.netns,
      bpffsDir: bpffs.dir,
      name: `nwbench-${process.pid}`,
    });
    copyFileSync(fast.deb, `${machine.root}/root/nodewarden.deb`);
    await machine.exec(['dpkg', '-i', '/root/nodewarden.deb'], { timeoutMs: 120_000 });
    await machine.sh("echo 'devices: [eth0]' >> /etc/nodewarden/config.yaml");
    const readyMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      await machine.systemctl(['restart', 'nodewarden.service'], { timeoutMs: 60_000 });
      const s = await machine.show('nodewarden.service', [
        'ExecMainStartTimestampMonotonic',
        'ActiveEnterTimestampMonotonic',
      ]);
      readyMs.push(
        (Number(s.ActiveEnterTimestampMonotonic) - Number(s.ExecMainStartTimestampMonotonic)) / 1000,
      );
    }
    await sleep(10_000);
    const pid = (await machine.show('nodewarden.service', ['MainPID'])).MainPID!;
    const unitRss = rssMb((await machine.exec(['cat', `/proc/${pid}/status`])).stdout);
    await machine.systemctl(['stop', 'nodewarden.service']);

    // The reference: the bundle on system node, in the same namespace and pin directory.
    const config = join(bpffs.dir, '..', `nwbench-${process.pid}.yaml`);
    writeFileSync(config, 'devices: [eth0]\n');
    const runDir = mkdtempSync('/tmp/nwbench-run-');
    const args = [
      'node',
      CLI_BUNDLE,
      'daemon',
      '--config',
      config,
      '--pin-dir',
      `${bpffs.dir}/nodewarden`,
      '--run-dir',
      runDir,
    ];
    const start = performance.now();
    const proc = node.spawn(args);
    await proc.waitForOutput(/nodewarden started/, 30_000);
    const refReady = performance.now() - start;
    await sleep(10_000);
    const refRss = rssMb(execFileSync('cat', [`/proc/${proc.pid}/status`], { encoding: 'utf8' }));
    await proc.stop();
    rmSync(config, { force: true });
    rmSync(runDir, { recursive: true, force: true });
    results.readyMs = {
      'single executable under systemd (ExecMainStart to READY=1), median of 5': Math.round(median(readyMs)),
      'reference: bundle on system node, spawn to "nodewarden started"': Math.round(refReady),
    };
    results.idleRssMB = {
      'single executable under systemd': unitRss,
      'reference: bundle on system node': refRss,
    };
    await machine.exec(['nodewarden', 'cleanup']);
  } finally {
    await machine?.destroy();
    await lab.destroy();
    bpffs.destroy();
  }

  // 4. hardening
  const security = execFileSync(
    'systemd-analyze',
    ['security', '--offline=yes', join(REPO_ROOT, 'systemd/nodewarden.service')],
    { encoding: 'utf8' },
  );
  results.systemdAnalyzeSecurity = security.match(
    /Overall exposure level for nodewarden\.service: (.*)$/m,
  )?.[1];

  console.log(JSON.stringify(results, null, 2));
  mkdirSync(join(REPO_ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(REPO_ROOT, 'bench/results/package-latest.json'),
    `${JSON.stringify(results, null, 2)}\n`,
  );
}

await main();
