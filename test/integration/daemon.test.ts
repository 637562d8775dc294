/**
 * The real daemon in a lab namespace: it loads and pins its programs, a second
 * daemon process adopts the first one's pinned map and links after SIGKILL
 * (counters keep their values, links keep their ids), a bad reload keeps the
 * last good state, and cleanup removes everything.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CounterSlot, packetCounter, packetCounterKey } from '../../bpf/codecs/packet-counters.js';
import { BpfMap, openPinnedMap, pinnedLinkInfo } from '../../bpf/index.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, daemonFiles, startDaemon } from '../support/daemon.js';
import { CLI_BUNDLE } from '../support/paths.js';

let lab: Lab;
let node: Host;
let peer: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;

const CONFIG = 'nodeName: lab-node\ndevices: [eth0]\nlog:\n  level: info\n';

beforeAll(async () => {
  bpffs = mountTempBpffs();
  files = daemonFiles(CONFIG);
  lab = await createLab();
  node = await lab.host('node');
  peer = await lab.host('peer');
  await lab.link(node, peer, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: ['10.78.0.1/24'],
    bAddrs: ['10.78.0.2/24'],
  });
});

afterAll(async () => {
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

const ping = (count: number) =>
  peer.exec(['ping', '-c', String(count), '-i', '0.05', '-W', '1', '10.78.0.1']);

describe('daemon restart and adoption', () => {
  it('a second daemon adopts the pinned map and links of a SIGKILLed first one; counters keep counting', async () => {
    const pinDir = `${bpffs.dir}/adopt`;
    const first = await startDaemon(node, files, pinDir);
    const status1 = await first.status();
    expect(status1.devices).toEqual(['eth0']);
    expect(status1.attachments).toHaveLength(4);
    for (const a of status1.attachments)
      expect(a).toMatchObject({ state: 'attached', kind: 'tcx', adopted: false });

    await ping(5);
    const afterFirst = BigInt((await first.status()).packetCounters.tcIngress.packets);
    expect(afterFirst).toBeGreaterThanOrEqual(5n);
    const mapId = pinnedCounters(pinDir).id;
    const linkIds = status1.attachments.map(
      (a) => pinnedLinkInfo(`${pinDir}/links/${a.hook}-eth0-${a.program}`).id,
    );

    first.process.kill('SIGKILL');
    await first.process.exited;

    // Nobody is running, yet the pinned link keeps counting into the pinned map.
    await ping(3);
    const whileDown = pinnedCounters(pinDir).tcIngress;
    expect(whileDown).toBeGreaterThanOrEqual(afterFirst + 3n);

    const second = await startDaemon(node, files, pinDir);
    const status2 = await second.status();
    for (const a of status2.attachments)
      expect(a).toMatchObject({ state: 'attached', kind: 'tcx', adopted: true });
    expect(pinnedCounters(pinDir).id).toBe(mapId);
    expect(
      status2.attachments.map((a) => pinnedLinkInfo(`${pinDir}/links/${a.hook}-eth0-${a.program}`).id),
    ).toEqual(linkIds);
    expect(BigInt(status2.packetCounters.tcIngress.packets)).toBeGreaterThanOrEqual(whileDown);

    await ping(2);
    expect(BigInt((await second.status()).packetCounters.tcIngress.packets)).toBeGreaterThanOrEqual(
      whileDown + 2n,
    );

    // A clean stop leaves the datapath in force as well.
    second.process.kill('SIGTERM');
    expect((await second.process.exited).code).toBe(0);
    expect(existsSync(`${pinDir}/links/tc-ingress-eth0-nw_tc_count_ingress`)).toBe(true);

    const cleanup = await second.cli(['cleanup', '-o', 'json']);
    expect(JSON.parse(cleanup.stdout).removed).toContain('link tc-ingress-eth0-nw_tc_count_ingress');
    expect(existsSync(pinDir)).toBe(false);
    const bpftool = await node.exec(['bpftool', 'net', 'show', 'dev', 'eth0']);
    expect(bpftool.stdout).not.toContain('nw_tc_count');
  });
});

describe('configuration', () => {
  it('a reload with invalid config keeps the last good state and says why', async () => {
    const pinDir = `${bpffs.dir}/reload`;
    const daemon = await startDaemon(node, files, pinDir);
    try {
      files.writeConfig('nodeName: lab-node\ndevices: [eth0]\nbogus: 1\n');
      const reload = await daemon.cli(['status', '-o', 'json']);
      expect(JSON.parse(reload.stdout).lastReload.ok).toBe(true);
      daemon.process.kill('SIGHUP');
      await daemon.process.waitForOutput(/reload rejected/);
      const status = await daemon.status();
      expect(status.lastReload.ok).toBe(false);
      expect(status.lastReload.error).toBe(
        `${files.configPath}:3: bogus: unknown field; nodewarden does not support it`,
      );
      expect(status.attachments.every((a) => a.state === 'attached')).toBe(true);
      const text = await daemon.cli(['status']);
      expect(text.stdout).toContain('last reload rejected');
    } finally {
      files.writeConfig(CONFIG);
      daemon.process.kill('SIGTERM');
      await daemon.process.exited;
      await daemon.cli(['cleanup']);
    }
  });

  it('refuses to start on invalid config with exit code 1 and the field path', async () => {
    const bad = daemonFiles('devices: [this-name-is-far-too-long]\n');
    try {
      const result = await node.exec(
        [
          'node',
          CLI_BUNDLE,
          'daemon',
          '--config',
          bad.configPath,
          '--pin-dir',
          `${bpffs.dir}/bad`,
          '--run-dir',
          bad.runDir,
        ],
        { allowFailure: true },
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${bad.configPath}:1: devices[0]:`);
    } finally {
      bad.destroy();
    }
  });

  it('reports a device that does not exist as a failed attachment and keeps the others', async () => {
    const two = daemonFiles('devices: [eth0, nw-absent0]\n');
    const daemon = await startDaemon(node, two, `${bpffs.dir}/absent`);
    try {
      const status = await daemon.status();
      const failed = status.attachments.filter((a) => a.state === 'failed');
      expect(failed).toHaveLength(4);
      expect(failed[0]!.error).toBe(
        'resolve interface nw-absent0: ENODEV (no such interface in this network namespace)',
      );
      expect(status.attachments.filter((a) => a.state === 'attached')).toHaveLength(4);
    } finally {
      daemon.process.kill('SIGTERM');
      await daemon.process.exited;
      await daemon.cli(['cleanup']);
      two.destroy();
    }
  });
});

/** Reads the pinned counter map directly, as any other process could. */
describe('devices', () => {
  it('follows netlink: attaches to a device once it carries a default route, detaches when it no longer does', async () => {
    const auto = daemonFiles('nodeName: lab-node\n');
    const pinDir = `${bpffs.dir}/auto`;
    const daemon = await startDaemon(node, auto, pinDir);
    try {
      expect((await daemon.status()).devices).toEqual([]);
      const uplink = await lab.host('uplink');
      await lab.link(node, uplink, {
        aDev: 'up0',
        bDev: 'eth0',
        aAddrs: ['10.79.0.1/24'],
        bAddrs: ['10.79.0.2/24'],
      });
      await node.addRoute('default', '10.79.0.2');
      const attached = await eventually(async () => {
        const status = await daemon.status();
        return (
          status.devices.includes('up0') &&
          status.attachments.filter((a) => a.ifname === 'up0' && a.state === 'attached').length === 4
        );
      });
      expect(attached).toBe(true);
      await node.ip(['route', 'del', 'default']);
      expect(await eventually(async () => (await daemon.status()).devices.length === 0)).toBe(true);
      const links = await node.exec(['bpftool', 'net', 'show', 'dev', 'up0']);
      expect(links.stdout).not.toContain('nw_fw_ingress');
    } finally {
      daemon.process.kill('SIGTERM');
      await daemon.process.exited;
      await daemon.cli(['cleanup']);
      auto.destroy();
    }
  });
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function pinnedCounters(pinDir: string): { id: number; tcIngress: bigint } {
  const map = openPinnedMap(`${pinDir}/nw_pkt_counters`);
  try {
    const counters = new BpfMap(map, packetCounterKey, packetCounter);
    return { id: map.id, tcIngress: counters.lookup(CounterSlot.tcIngress)?.packets ?? 0n };
  } finally {
    map.close();
  }
}
