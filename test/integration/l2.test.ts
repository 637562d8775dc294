/**
 * L2 announcements on a shared segment: a Linux bridge, three node namespaces
 * running the real daemon, and a client. The client's arping, ip neigh and
 * ndisc6 resolve the LoadBalancer IPs to the owner's MAC (answered by the XDP
 * responder), a TCP service on the owner answers, an ownership move by config
 * reload reaches the client's neighbour table from the gratuitous ARP alone,
 * link down withdraws the IP, and a SIGKILLed daemon leaves no gap in replies.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L2Status } from '../../daemon/l2/manager.js';
import { type Bridge, createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { enableNativeXdpTx, l2NodeConfig, waitFor } from '../support/l2.js';

const VIP4 = '10.79.0.50';
const VIP6 = 'fd79::50';
const CLIENT = '10.79.0.100';
const NODES = ['n1', 'n2', 'n3'] as const;

let lab: Lab;
let lan: Bridge;
let bpffs: TempBpffs;
let client: Host;
const hosts = new Map<string, Host>();
const macs = new Map<string, string>();
const files = new Map<string, DaemonFiles>();
const daemons = new Map<string, DaemonInstance>();

// The host firewall's tcx programs run on eth0 too: XDP and tcx are different hooks.
const config = (node: string, ips: string[], extraL2: string[] = []) =>
  l2NodeConfig(node, ips, {
    l2: ['  gratuitous:', '    count: 3', '    intervalMs: 100', ...extraL2],
    top: ['devices: [eth0]'],
  });

async function l2Status(node: string): Promise<L2Status> {
  const { stdout } = await daemons.get(node)!.cli(['l2', 'status', '-o', 'json']);
  return JSON.parse(stdout) as L2Status;
}

async function neighbourMac(ip: string): Promise<string | undefined> {
  const { stdout } = await client.ip(['-j', 'neigh', 'show', ip, 'dev', 'eth0']);
  const [entry] = JSON.parse(stdout || '[]') as { lladdr?: string }[];
  return entry?.lladdr;
}

/** A TCP server on `host` bound to ip:port that answers each connection with the node's name. */
function serve(host: Host, name: string, ip: string, port: number) {
  const script = `require('net').createServer((s)=>s.end('${name}\\n')).listen(${port}, '${ip}', ()=>console.log('listening'))`;
  return host.spawn(['node', '-e', script]);
}

async function tcpAnswer(ip: string, port: number): Promise<string> {
  const script = `const s=require('net').connect(${port},'${ip}');s.setTimeout(2000,()=>process.exit(3));s.on('data',(d)=>process.stdout.write(d));s.on('error',(e)=>{console.error(e.message);process.exit(2)})`;
  return (await client.exec(['node', '-e', script])).stdout.trim();
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  lan = await lab.bridge('lan');
  client = await lab.host('client');
  await lan.attach(client, { dev: 'eth0', addrs: [`${CLIENT}/24`, 'fd79::100/64'] });
  for (const [i, node] of NODES.entries()) {
    const host = await lab.host(node);
    const port = await lan.attach(host, { dev: 'eth0', addrs: [`10.79.0.${i + 1}/24`, `fd79::${i + 1}/64`] });
    hosts.set(node, host);
    macs.set(node, port.mac.toLowerCase());
    // n1 owns the IPs first; the others run with nothing to announce.
    const f = daemonFiles(config(node, node === 'n1' ? [VIP4, VIP6] : []));
    files.set(node, f);
    daemons.set(node, await startDaemon(host, f, `${bpffs.dir}/${node}`));
  }
});

afterAll(async () => {
  await lab?.destroy();
  // Local routes and links lived in the lab's namespaces, which are gone.
  bpffs?.destroy();
  for (const f of files.values()) f.destroy();
});

describe('standalone announcements', () => {
  it('the owner attaches the responder and reports the IPs as announced', async () => {
    const status = await l2Status('n1');
    expect(status.ips.map((i) => [i.ip, i.state, i.owner])).toEqual([
      [VIP4, 'announced', 'n1'],
      [VIP6, 'announced', 'n1'],
    ]);
    expect(status.ips[0]!.interfaces.map((i) => [i.name, i.mac])).toEqual([['eth0', macs.get('n1')]]);
    expect(status.localRoutes).toEqual([VIP4, VIP6]);
    const overall = await daemons.get('n1')!.status();
    expect(overall.attachments).toContainEqual(
      expect.objectContaining({ ifname: 'eth0', hook: 'xdp', program: 'nw_l2_respond', state: 'attached' }),
    );
    expect(overall.attachments.filter((a) => a.ifname === 'eth0' && a.state === 'attached')).toHaveLength(5);
    expect((await l2Status('n2')).ips).toEqual([]);
  });

  it("arping and ip neigh on the client resolve the IPv4 address to the owner's MAC, answered by XDP", async () => {
    const before = (await l2Status('n1')).ips[0]!.interfaces[0]!.replies;
    const { stdout } = await client.exec(['arping', '-c', '3', '-w', '5', '-I', 'eth0', VIP4]);
    const replies = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) =>
      m[1]!.toLowerCase(),
    );
    expect(replies.length).toBe(3);
    expect(new Set(replies)).toEqual(new Set([macs.get('n1')]));
    await client.exec(['ping', '-c', '1', '-W', '2', VIP4]);
    expect(await neighbourMac(VIP4)).toBe(macs.get('n1'));
    // The kernel's ARP stack would answer for the local route as well; the counter shows XDP did.
    expect((await l2Status('n1')).ips[0]!.interfaces[0]!.replies).toBeGreaterThanOrEqual(before + 3);
  });

  it("ndisc6 resolves the IPv6 address to the owner's MAC through NDP", async () => {
    const { stdout } = await client.exec(['ndisc6', '-q', '-r', '3', VIP6, 'eth0']);
    expect(stdout.trim().toLowerCase()).toBe(macs.get('n1'));
    await client.exec(['ping', '-6', '-c', '1', '-W', '2', VIP6]);
    expect(await neighbourMac(VIP6)).toBe(macs.get('n1'));
  });

  it('a TCP service bound to the IP on the owner answers the client (local route)', async () => {
    const server = serve(hosts.get('n1')!, 'n1', VIP4, 8080);
    await server.waitForOutput(/listening/);
    expect(await tcpAnswer(VIP4, 8080)).toBe('n1');
    server.kill('SIGKILL');
  });
});

describe('ownership move by reload', () => {
  it("moves the client's neighbour entry to the new owner from gratuitous ARP alone, and TCP follows", async () => {
    await client.exec(['ping', '-c', '1', '-W', '2', VIP4]);
    expect(await neighbourMac(VIP4)).toBe(macs.get('n1'));
    // Linux ignores an update within locktime (1 s) of the last one.
    await new Promise((r) => setTimeout(r, 1100));
    files.get('n1')!.writeConfig(config('n1', []));
    files.get('n2')!.writeConfig(config('n2', [VIP4, VIP6]));
    const started = performance.now();
    expect((await daemons.get('n1')!.reload()).ok).toBe(true);
    expect((await daemons.get('n2')!.reload()).ok).toBe(true);
    // The client sends nothing: only n2's gratuitous ARP can change its entry.
    await waitFor('the neighbour entry to move to n2', async () =>
      (await neighbourMac(VIP4)) === macs.get('n2') ? true : undefined,
    );
    const moveMs = performance.now() - started;
    console.log(`ownership move: client neighbour entry on n2 after ${moveMs.toFixed(0)} ms`);
    expect(moveMs).toBeLessThan(3000);

    const n1 = await l2Status('n1');
    expect(n1.ips).toEqual([]);
    expect(n1.localRoutes).toEqual([]);
    const n2 = await l2Status('n2');
    expect(n2.ips.map((i) => i.state)).toEqual(['announced', 'announced']);
    expect(n2.ips[0]!.interfaces[0]!.lastAnnouncedAt).toBeDefined();

    const server = serve(hosts.get('n2')!, 'n2', VIP4, 8080);
    await server.waitForOutput(/listening/);
    expect(await tcpAnswer(VIP4, 8080)).toBe('n2');
    server.kill('SIGKILL');
    // n1 no longer answers: only n2's MAC comes back.
    const { stdout } = await client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', VIP4]);
    const replies = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) =>
      m[1]!.toLowerCase(),
    );
    expect(new Set(replies)).toEqual(new Set([macs.get('n2')]));
  });
});

describe('native XDP', () => {
  it('answers ARP and NDP from native (driver) mode once the veth peer has NAPI', async () => {
    const host = await lab.host('n4');
    const port = await lan.attach(host, { dev: 'eth0', addrs: ['10.79.0.4/24', 'fd79::4/64'] });
    enableNativeXdpTx(lan, port, `${bpffs.dir}/peer-n4`);
    const f = daemonFiles(
      l2NodeConfig('n4', ['10.79.0.70', 'fd79::70'], { xdpMode: 'native', metrics: '127.0.0.1:9469' }),
    );
    files.set('n4', f);
    const daemon = await startDaemon(host, f, `${bpffs.dir}/n4`);
    daemons.set('n4', daemon);
    const mac = port.mac.toLowerCase();
    const { stdout } = await client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', '10.79.0.70']);
    expect(stdout.toLowerCase()).toContain(mac);
    expect(
      (await client.exec(['ndisc6', '-q', '-r', '3', 'fd79::70', 'eth0'])).stdout.trim().toLowerCase(),
    ).toBe(mac);
    const status = await l2Status('n4');
    expect(status.ips.map((i) => i.interfaces[0]!.replies)).toEqual(
      [2, 1].map((n) => expect.toSatisfy((r: number) => r >= n)),
    );
    const fetchMetrics =
      "fetch('http://127.0.0.1:9469/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))";
    const metrics = (await host.exec(['node', '-e', fetchMetrics])).stdout;
    expect(metrics).toContain('nodewarden_l2_announced_ips 2');
    expect(metrics).toMatch(/nodewarden_l2_replies\{ip="10\.79\.0\.70",interface="eth0"\} [1-9]/);
    // Three rounds of a request and a reply form for the IPv4 address, one NA each for IPv6.
    expect(metrics).toContain('nodewarden_l2_gratuitous_frames_total{family="ipv4"} 6');
    expect(metrics).toContain('nodewarden_l2_gratuitous_frames_total{family="ipv6"} 3');
    expect((await daemon.status()).attachments).toContainEqual(
      expect.objectContaining({ hook: 'xdp', kind: 'xdp', state: 'attached' }),
    );
  });
});

describe('periodic re-announce', () => {
  it('re-sends gratuitous frames every reannounceSeconds for switches whose FDB ages out', async () => {
    const vip = '10.79.0.60';
    files.get('n3')!.writeConfig(config('n3', [vip], ['  reannounceSeconds: 0.5']));
    expect((await daemons.get('n3')!.reload()).ok).toBe(true);
    const first = (await l2Status('n3')).ips[0]!.interfaces[0]!.lastAnnouncedAt!;
    const capture = client.spawn(['tcpdump', '-l', '-n', '-i', 'eth0', 'arp', 'and', 'host', vip]);
    await new Promise((r) => setTimeout(r, 1800));
    const later = (await l2Status('n3')).ips[0]!.interfaces[0]!.lastAnnouncedAt!;
    expect(Date.parse(later) - Date.parse(first)).toBeGreaterThanOrEqual(1000);
    capture.kill('SIGTERM');
    await capture.exited;
    // Each round is a request and a reply form, sender = target = the IP.
    expect(capture.stdout).toMatch(
      new RegExp(`Request who-has ${vip.replaceAll('.', '\\.')} tell ${vip.replaceAll('.', '\\.')}`),
    );
    expect(capture.stdout).toMatch(new RegExp(`Reply ${vip.replaceAll('.', '\\.')} is-at`));
    files.get('n3')!.writeConfig(config('n3', []));
    expect((await daemons.get('n3')!.reload()).ok).toBe(true);
  });
});

describe('ARP hazards', () => {
  it('reports kube-proxy IPVS without strictARP (kube-ipvs0 and arp_ignore=0) and clears it with strictARP', async () => {
    const n3 = hosts.get('n3')!;
    // Only interfaces that announce something are checked.
    files.get('n3')!.writeConfig(config('n3', ['10.79.0.61']));
    expect((await daemons.get('n3')!.reload()).ok).toBe(true);
    expect((await l2Status('n3')).warnings).toEqual([]);
    // kube-proxy makes a dummy device; this kernel has no dummy module, and only the name counts.
    await n3.ip(['link', 'add', 'kube-ipvs0', 'type', 'veth', 'peer', 'name', 'kube-ipvs0-peer']);
    const warned = await waitFor('the IPVS warning', async () => {
      const s = await l2Status('n3');
      return s.warnings.length > 0 ? s : undefined;
    });
    expect(warned.warnings[0]).toMatch(/IPVS mode without strictARP.*arp_ignore=0 on eth0.*MetalLB #153/);
    const { stdout } = await daemons.get('n3')!.cli(['status']);
    expect(stdout).toMatch(/WARNING: kube-proxy IPVS mode without strictARP/);
    await n3.sysctl('net.ipv4.conf.all.arp_ignore', 1);
    await n3.sysctl('net.ipv4.conf.all.arp_announce', 2);
    expect((await daemons.get('n3')!.reload()).ok).toBe(true);
    expect((await l2Status('n3')).warnings).toEqual([]);
    files.get('n3')!.writeConfig(config('n3', []));
    expect((await daemons.get('n3')!.reload()).ok).toBe(true);
  });
});

describe('link state', () => {
  it('withdraws the IPs from a link that went down and announces them again when it comes back', async () => {
    const n2 = hosts.get('n2')!;
    const pinned = () =>
      JSON.parse(
        execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${bpffs.dir}/n2/nw_l2_owned`], {
          encoding: 'utf8',
        }),
      ) as unknown[];
    expect(pinned()).toHaveLength(2);
    await n2.setDown('eth0');
    const down = await waitFor('n2 to withdraw', async () => {
      const s = await l2Status('n2');
      // Routes follow the map asynchronously.
      return s.ips.every((i) => i.state !== 'announced') && s.localRoutes.length === 0 ? s : undefined;
    });
    expect(down.ips.map((i) => [i.state, i.interfaces])).toEqual([
      ['no-interface', []],
      ['no-interface', []],
    ]);
    expect(down.interfaces).toEqual([{ name: 'eth0', announcing: false, skipped: 'down' }]);
    expect(down.localRoutes).toEqual([]);
    expect(pinned()).toHaveLength(0);

    await n2.setUp('eth0');
    await waitFor('n2 to announce again', async () => {
      const s = await l2Status('n2');
      return s.ips.every((i) => i.state === 'announced') ? s : undefined;
    });
    expect(pinned()).toHaveLength(2);
    const { stdout } = await client.exec(['arping', '-c', '1', '-w', '3', '-I', 'eth0', VIP4]);
    expect(stdout.toLowerCase()).toContain(macs.get('n2'));
  });
});

describe('restart', () => {
  it('keeps answering ARP with no gap while the daemon is SIGKILLed and restarted', async () => {
    const n2 = hosts.get('n2')!;
    const count = 200;
    // This arping takes whole seconds for -i, so one single-probe arping after another, ~20 ms apart.
    const loop = `for i in $(seq ${count}); do arping -c 1 -w 1 -I eth0 ${VIP4} >/dev/null && echo ok || echo miss; sleep 0.02; done`;
    const repliesBefore = (await l2Status('n2')).ips[0]!.interfaces[0]!.replies;
    const probes = client.spawn(['sh', '-c', loop]);
    await probes.waitForOutput(/ok/);
    const old = daemons.get('n2')!;
    old.process.kill('SIGKILL');
    await old.process.exited;
    const restarted = await startDaemon(n2, files.get('n2')!, `${bpffs.dir}/n2`);
    daemons.set('n2', restarted);
    const restartedAt = probes.stdout.split('\n').filter(Boolean).length;
    await probes.exited;
    const results = probes.stdout.split('\n').filter(Boolean);
    console.log(
      `restart: ${results.filter((r) => r === 'ok').length}/${results.length} ARP probes answered; daemon back after probe ${restartedAt}`,
    );
    expect(results).toHaveLength(count);
    // The restart happened while probing, not before or after it.
    expect(restartedAt).toBeLessThan(count);
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
    // XDP answered them (the kernel would for the local route too, but never sees the requests).
    const repliesAfter = (await l2Status('n2')).ips[0]!.interfaces[0]!.replies;
    expect(repliesAfter - repliesBefore).toBeGreaterThanOrEqual(count);
    const s = await l2Status('n2');
    expect(s.ips.map((i) => i.state)).toEqual(['announced', 'announced']);
    expect((await restarted.status()).attachments).toContainEqual(
      expect.objectContaining({ ifname: 'eth0', hook: 'xdp', adopted: true }),
    );
  });
});
