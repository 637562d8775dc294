/**
 * One node is both the L2 owner of a VIP and its DSR load balancer, with the
 * real daemon: the client on the LAN resolves the VIP by ARP and NDP to that
 * node, whose single XDP program (nw_dsr_xdp: the responder, then DSR) answers
 * the neighbour requests and hands the client's TCP flows to two backends in
 * IPIP/IP6IP6; the replies come straight back from the backends. Also: a node
 * upgraded from the two-program layout (a pinned link named after the L2
 * responder) has its link taken over in place and its 40-byte-key DSR flow
 * table unpinned; a restarted daemon adopts the link; switching DSR off swaps
 * the program in the same link and the node keeps answering ARP.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachXdp, BpfObject, inNetns, pinnedLinkInfo } from '../../bpf/index.js';
import { bpfObjectPath } from '../../bpf/paths.js';
import type { L2Status } from '../../daemon/l2/manager.js';
import { type Bridge, type BridgePort, createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { captureOnPort, getAnswer, serve, serverScriptDir } from '../support/dsr-topology.js';
import { enableNativeXdpTx, l2NodeConfig } from '../support/l2.js';

const ADDR = {
  client: { v4: '10.93.0.2', v6: 'fd93::2' },
  lb: { v4: '10.93.0.10', v6: 'fd93::10' },
  be1: { v4: '10.93.0.11', v6: 'fd93::11' },
  be2: { v4: '10.93.0.12', v6: 'fd93::12' },
  vip: { v4: '10.93.0.80', v6: 'fd93::80' },
} as const;
const BACKENDS = [ADDR.be1.v4, ADDR.be2.v4, ADDR.be1.v6, ADDR.be2.v6];

let lab: Lab;
let lan: Bridge;
let bpffs: TempBpffs;
let scriptDir: string;
let client: Host;
let lb: Host;
let lbPort: BridgePort;
let lbMac: string;
let lbDaemon: DaemonInstance;
let lbFiles: DaemonFiles;
const files: DaemonFiles[] = [];

const services = (backends: readonly string[]) => [
  'devices: [eth0]',
  'services:',
  '  dsr:',
  '    enabled: true',
  `    loadBalancerNodes: [${ADDR.lb.v4}, "${ADDR.lb.v6}"]`,
  '  items:',
  '    - name: web',
  `      loadBalancerIPs: [${ADDR.vip.v4}, "${ADDR.vip.v6}"]`,
  '      ports: [{ port: 80 }]',
  `      backendNodes: [${backends.map((b) => `"${b}"`).join(', ')}]`,
];

/** The owner and load balancer: announces the VIPs on eth0 and forwards them by DSR (native XDP). */
const lbConfig = (dsr: boolean) =>
  l2NodeConfig('lb', [ADDR.vip.v4, `"${ADDR.vip.v6}"`], {
    xdpMode: 'native',
    top: dsr ? services(BACKENDS) : ['devices: [eth0]'],
  });

const lbPinDir = () => `${bpffs.dir}/lb`;
const xdpLinkPin = () => join(lbPinDir(), 'links', 'xdp-eth0');

async function l2Status(): Promise<L2Status> {
  return JSON.parse((await lbDaemon.cli(['l2', 'status', '-o', 'json'])).stdout) as L2Status;
}

async function neighbourMac(ip: string): Promise<string | undefined> {
  const { stdout } = await client.ip(['-j', 'neigh', 'show', ip, 'dev', 'eth0']);
  const [entry] = JSON.parse(stdout || '[]') as { lladdr?: string }[];
  return entry?.lladdr?.toLowerCase();
}

const httpGet = (url: string) => getAnswer(client, url);

/** Packets matching `filter` that tcpdump saw on the switch port towards the load balancer. */
async function captureAtLb(filter: string, during: () => Promise<void>): Promise<number> {
  return captureOnPort(lan, lbPort.port, filter, during);
}

const xdpAttachments = async () => (await lbDaemon.status()).attachments.filter((a) => a.hook === 'xdp');

beforeAll(async () => {
  bpffs = mountTempBpffs();
  scriptDir = serverScriptDir();
  lab = await createLab();
  lan = await lab.bridge('lan');
  client = await lab.host('client');
  lb = await lab.host('lb');
  await lan.attach(client, { dev: 'eth0', addrs: [`${ADDR.client.v4}/24`, `${ADDR.client.v6}/64`] });
  lbPort = await lan.attach(lb, { dev: 'eth0', addrs: [`${ADDR.lb.v4}/24`, `${ADDR.lb.v6}/64`] });
  lbMac = lbPort.mac.toLowerCase();
  // veth leaves checksums to the receiver (CHECKSUM_PARTIAL); XDP_TX sends what it has.
  await client.exec(['ethtool', '-K', 'eth0', 'tx', 'off']);
  // bpf_fib_lookup answers only on forwarding devices; native XDP_TX on a veth needs NAPI on the peer.
  await lb.sysctl('net.ipv4.conf.all.forwarding', 1);
  await lb.sysctl('net.ipv6.conf.all.forwarding', 1);
  enableNativeXdpTx(lan, lbPort, join(bpffs.dir, 'switch-lb-port'));

  for (const [name, addr] of [
    ['be1', ADDR.be1],
    ['be2', ADDR.be2],
  ] as const) {
    const host = await lab.host(name);
    await lan.attach(host, { dev: 'eth0', addrs: [`${addr.v4}/24`, `${addr.v6}/64`] });
    // A backend on the clients' segment must not ARP from the VIP, or the client's entry
    // for the VIP would move to the backend (the LVS-DR rule).
    await host.sysctl('net.ipv4.conf.all.arp_announce', 2);
    const f = daemonFiles(
      [
        `nodeName: ${name}`,
        'metrics:',
        "  listen: ''",
        'datapath:',
        '  xdpMode: generic',
        ...services(BACKENDS),
      ].join('\n'),
    );
    files.push(f);
    await startDaemon(host, f, `${bpffs.dir}/${name}`);
    await serve(scriptDir, host, name, '5300@0.0.0.0', [80]);
  }

  // The two-program layout of the previous version: the responder's link pinned under its program's name.
  const responder = BpfObject.load(bpfObjectPath('l2_responder'), { pinDir: lbPinDir() });
  try {
    inNetns(lb.netns, () =>
      attachXdp({
        program: responder.program('nw_l2_respond'),
        ifname: 'eth0',
        mode: 'native',
        pinPath: join(lbPinDir(), 'links', 'xdp-eth0-nw_l2_respond'),
      }),
    );
  } finally {
    responder.close();
  }
  // And the previous version's DSR flow table (40-byte tuple keys), which the 64-bit-key table replaced.
  execFileSync('bpftool', [
    'map',
    'create',
    join(lbPinDir(), 'nw_dsr_flows'),
    'type',
    'lru_hash',
    'key',
    '40',
    'value',
    '16',
    'entries',
    '16',
    'name',
    'nw_dsr_flows',
  ]);
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
  bpffs?.destroy();
  for (const f of files) f.destroy();
  lbFiles?.destroy();
  if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
});

describe('one node is the L2 owner and the DSR load balancer of a VIP', () => {
  it("takes over the previous version's responder link in place: one XDP program, both jobs", async () => {
    const legacy = join(lbPinDir(), 'links', 'xdp-eth0-nw_l2_respond');
    const before = pinnedLinkInfo(legacy);
    const legacyFlows = join(lbPinDir(), 'nw_dsr_flows');
    expect(existsSync(legacyFlows)).toBe(true);
    lbFiles = daemonFiles(lbConfig(true));
    lbDaemon = await startDaemon(lb, lbFiles, lbPinDir());
    expect(existsSync(legacyFlows)).toBe(false);

    expect(existsSync(legacy)).toBe(false);
    expect(pinnedLinkInfo(xdpLinkPin()).id).toBe(before.id);
    expect(pinnedLinkInfo(xdpLinkPin()).progId).not.toBe(before.progId);
    expect(await xdpAttachments()).toEqual([
      expect.objectContaining({ ifname: 'eth0', program: 'nw_dsr_xdp', state: 'attached', adopted: true }),
    ]);
    const status = await l2Status();
    expect(status.ips.map((i) => [i.ip, i.state])).toEqual([
      [ADDR.vip.v4, 'announced'],
      [ADDR.vip.v6, 'announced'],
    ]);
  });

  it("the client resolves the VIP by ARP and NDP to the load balancer's MAC, answered by XDP", async () => {
    const before = (await l2Status()).ips[0]!.interfaces[0]!.replies;
    const { stdout } = await client.exec(['arping', '-c', '3', '-w', '5', '-I', 'eth0', ADDR.vip.v4]);
    const replies = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) =>
      m[1]!.toLowerCase(),
    );
    expect(replies).toEqual([lbMac, lbMac, lbMac]);
    expect((await l2Status()).ips[0]!.interfaces[0]!.replies).toBeGreaterThanOrEqual(before + 3);
    const ndisc = await client.exec(['ndisc6', '-q', '-r', '3', ADDR.vip.v6, 'eth0']);
    expect(ndisc.stdout.trim().toLowerCase()).toBe(lbMac);
  });

  it('TCP to the VIP reaches both backends through the load balancer; replies come straight back', async () => {
    const answers: string[] = [];
    const tunnelled = await captureAtLb('ip proto 4 or ip6 proto 41', async () => {
      const repliesViaLb = await captureAtLb(
        `tcp and (src host ${ADDR.vip.v4} or src host ${ADDR.vip.v6})`,
        async () => {
          for (let i = 0; i < 12; i++) {
            const a = await httpGet(`http://${ADDR.vip.v4}/`);
            expect(a.client).toBe(ADDR.client.v4);
            answers.push(a.backend);
            const a6 = await httpGet(`http://[${ADDR.vip.v6}]/`);
            expect(a6.client).toBe(ADDR.client.v6);
            answers.push(a6.backend);
          }
        },
      );
      expect(repliesViaLb).toBe(0);
    });
    expect(new Set(answers)).toEqual(new Set(['be1', 'be2']));
    expect(tunnelled).toBeGreaterThan(0);
    // The client still sends VIP traffic to the load balancer: no backend took the VIP over.
    expect(await neighbourMac(ADDR.vip.v4)).toBe(lbMac);
    expect(await neighbourMac(ADDR.vip.v6)).toBe(lbMac);
    const stats = (await lbDaemon.status()).services!.dsr!.stats!;
    expect(Number(stats.forwarded)).toBeGreaterThan(0);
  });

  it('a SIGKILLed daemon leaves the program answering; the restarted one adopts the same link', async () => {
    const linkId = pinnedLinkInfo(xdpLinkPin()).id;
    lbDaemon.process.kill('SIGKILL');
    await lbDaemon.process.exited;
    const { stdout } = await client.exec(['arping', '-c', '2', '-w', '5', '-I', 'eth0', ADDR.vip.v4]);
    expect([...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)]).toHaveLength(2);
    expect((await httpGet(`http://${ADDR.vip.v4}/`)).client).toBe(ADDR.client.v4);

    lbDaemon = await startDaemon(lb, lbFiles, lbPinDir());
    expect(await xdpAttachments()).toEqual([
      expect.objectContaining({ program: 'nw_dsr_xdp', state: 'attached', adopted: true }),
    ]);
    expect(pinnedLinkInfo(xdpLinkPin()).id).toBe(linkId);
    expect((await httpGet(`http://${ADDR.vip.v4}/`)).client).toBe(ADDR.client.v4);
  });

  it('switching DSR off swaps the responder into the same link, which keeps answering ARP', async () => {
    const linkId = pinnedLinkInfo(xdpLinkPin()).id;
    lbFiles.writeConfig(lbConfig(false));
    expect((await lbDaemon.reload()).ok).toBe(true);
    expect(await xdpAttachments()).toEqual([
      expect.objectContaining({ program: 'nw_l2_respond', state: 'attached', adopted: true }),
    ]);
    expect(pinnedLinkInfo(xdpLinkPin()).id).toBe(linkId);
    const { stdout } = await client.exec(['arping', '-c', '2', '-w', '5', '-I', 'eth0', ADDR.vip.v4]);
    const replies = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) =>
      m[1]!.toLowerCase(),
    );
    expect(replies).toEqual([lbMac, lbMac]);
  });
});
