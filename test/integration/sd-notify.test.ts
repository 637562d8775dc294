/**
 * The daemon's side of systemd's notify protocol, against a real
 * NOTIFY_SOCKET receiver: READY=1 only after the programs are attached and the
 * first sync is done, STATUS=, RELOADING=1/READY=1 around a reload, WATCHDOG=1
 * pings from the event loop that stop while the process is frozen, and
 * STOPPING=1 on SIGTERM. (Running under systemd as PID 1 is issue 8's test.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UnixDatagramReceiver } from '../../bpf/index.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, daemonFiles, startDaemon } from '../support/daemon.js';

let lab: Lab;
let node: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let dir: string;
let receiver: UnixDatagramReceiver;
const received: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function collect(): string[] {
  received.push(...receiver.receive());
  return received;
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  files = daemonFiles('nodeName: notify-node\ndevices: [eth0]\n');
  dir = mkdtempSync(join(tmpdir(), 'nw-notify-'));
  receiver = new UnixDatagramReceiver(join(dir, 'notify.sock'));
  lab = await createLab();
  node = await lab.host('node');
  const peer = await lab.host('peer');
  await lab.link(node, peer, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: ['10.81.0.1/24'],
    bAddrs: ['10.81.0.2/24'],
  });
});

afterAll(async () => {
  await lab?.destroy();
  receiver?.close();
  rmSync(dir, { recursive: true, force: true });
  bpffs?.destroy();
  files?.destroy();
});

it('speaks sd_notify: READY after attach, STATUS, reload, watchdog pings that stop when frozen, STOPPING', async () => {
  const daemon = await startDaemon(node, files, `${bpffs.dir}/notify`, {
    ...process.env,
    NOTIFY_SOCKET: receiver.path,
    WATCHDOG_USEC: '200000',
  });
  // "nodewarden started" is logged after READY=1 was sent.
  const ready = collect().find((m) => m.includes('READY=1'));
  expect(ready).toBeDefined();
  expect(ready).toMatch(/STATUS=devices eth0; policy generation \d+ \(0 policies\)/);
  expect((await daemon.status()).attachments.every((a) => a.state === 'attached')).toBe(true);

  await sleep(600);
  const pings = () => collect().filter((m) => m === 'WATCHDOG=1').length;
  expect(pings()).toBeGreaterThanOrEqual(3);

  // A frozen event loop stops pinging: that is what lets systemd restart it.
  daemon.process.kill('SIGSTOP');
  await sleep(150);
  const frozenAt = pings();
  await sleep(600);
  expect(pings()).toBe(frozenAt);
  daemon.process.kill('SIGCONT');
  await sleep(400);
  expect(pings()).toBeGreaterThan(frozenAt);

  received.length = 0;
  await daemon.reload();
  const reload = collect().filter((m) => m !== 'WATCHDOG=1');
  expect(reload[0]).toBe('RELOADING=1');
  expect(reload[1]).toMatch(/^READY=1\nSTATUS=devices eth0/);

  daemon.process.kill('SIGTERM');
  expect((await daemon.process.exited).code).toBe(0);
  expect(collect()).toContain('STOPPING=1');
  await daemon.cli(['cleanup']);
});
