/**
 * L2 announcements with `source: kubernetes`: three real daemons and one
 * fixture API server process on a shared bridge, and a client. The IP comes
 * from a LoadBalancer Service's ingress, the interfaces from a
 * CiliumL2AnnouncementPolicy, the owner from heartbeat rendezvous hashing.
 * The client resolves the IP to the owner's MAC and reaches a TCP service
 * there; when the owner's link goes down (a node powered off), another node
 * takes the IP over after the lease expiry and its gratuitous ARP moves the
 * client's neighbour entry without the client asking. Measured with the
 * default timing (renew 1 s, expiry 3 s) and a tuned one (300 ms, 1 s).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L2Status } from '../../daemon/l2/manager.js';
import { writeFixtureKubeconfig } from '../k8s-fixture/kubeconfig.js';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { waitFor } from '../support/l2.js';

const TOKEN = 'l2-k8s-token';
const VIP = '10.79.0.50';
const API_IP = '10.79.0.200';
const CLIENT = '10.79.0.100';
const NODES = ['n1', 'n2', 'n3'] as const;
const PORT = 8080;

interface Cluster {
  lab: Lab;
  bpffs: TempBpffs;
  client: Host;
  api: Host;
  fixture: LabProcess;
  server: string;
  hosts: Map<string, Host>;
  macs: Map<string, string>;
  files: Map<string, DaemonFiles>;
  daemons: Map<string, DaemonInstance>;
}

async function startCluster(renewIntervalMs: number, expirySeconds: number): Promise<Cluster> {
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  const lan = await lab.bridge('lan');
  const client = await lab.host('client');
  await lan.attach(client, { dev: 'eth0', addrs: [`${CLIENT}/24`] });
  const api = await lab.host('api');
  await lan.attach(api, { dev: 'eth0', addrs: [`${API_IP}/24`] });
  const fixture = api.spawn([
    'node',
    '--import',
    'tsx',
    'test/k8s-fixture/main.ts',
    '--host',
    API_IP,
    '--token',
    TOKEN,
    '--bookmark-ms',
    '500',
  ]);
  const server = (await fixture.waitForOutput(/listening on (http:\S+)/, 20_000))[1]!;
  const cluster: Cluster = {
    lab,
    bpffs,
    client,
    api,
    fixture,
    server,
    hosts: new Map(),
    macs: new Map(),
    files: new Map(),
    daemons: new Map(),
  };
  await apiCall(cluster, 'POST', '/fixture/seed', [
    ...NODES.map((name, i) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { role: 'lan' } },
      status: { addresses: [{ type: 'InternalIP', address: `10.79.0.${i + 1}` }] },
    })),
    {
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumL2AnnouncementPolicy',
      metadata: { name: 'lan' },
      spec: {
        nodeSelector: { matchLabels: { role: 'lan' } },
        interfaces: ['^eth[0-9]+$'],
        loadBalancerIPs: true,
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name: 'web', labels: { app: 'web' } },
      spec: { type: 'LoadBalancer', ports: [{ port: PORT, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip: VIP }] } },
    },
  ]);
  const kubeconfig = writeFixtureKubeconfig(server, TOKEN);
  for (const [i, node] of NODES.entries()) {
    const host = await lab.host(node);
    const port = await lan.attach(host, { dev: 'eth0', addrs: [`10.79.0.${i + 1}/24`] });
    cluster.hosts.set(node, host);
    cluster.macs.set(node, port.mac.toLowerCase());
    const f = daemonFiles('');
    writeFileSync(
      f.configPath,
      [
        `nodeName: ${node}`,
        'devices: [eth0]',
        'datapath:',
        '  xdpMode: generic',
        'source: kubernetes',
        'kubernetes:',
        `  kubeconfig: ${kubeconfig}`,
        '  idleTimeoutSeconds: 5',
        '  heartbeat:',
        `    renewIntervalMs: ${renewIntervalMs}`,
        `    expirySeconds: ${expirySeconds}`,
        `policies: { directory: ${join(f.dir, 'policies.d')} }`,
        'l2:',
        '  gratuitous:',
        '    count: 3',
        '    intervalMs: 100',
      ].join('\n'),
    );
    cluster.files.set(node, f);
    // Every node serves; only the owner has the VIP as a local route, so only it accepts.
    host.spawn([
      'node',
      '-e',
      `require('net').createServer((s)=>s.end('${node}\\n')).listen(${PORT}, '0.0.0.0')`,
    ]);
  }
  for (const node of NODES)
    cluster.daemons.set(
      node,
      await startDaemon(cluster.hosts.get(node)!, cluster.files.get(node)!, `${bpffs.dir}/${node}`),
    );
  return cluster;
}

async function stopCluster(c: Cluster | undefined): Promise<void> {
  if (!c) return;
  await c.lab.destroy();
  c.bpffs.destroy();
  for (const f of c.files.values()) f.destroy();
}

async function apiCall(c: Pick<Cluster, 'client' | 'server'>, method: string, path: string, body?: unknown) {
  const args = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', method];
  args.push('-H', `authorization: Bearer ${TOKEN}`);
  if (body !== undefined)
    args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const code = Number((await c.client.exec([...args, c.server + path])).stdout.trim());
  if (code >= 300) throw new Error(`${method} ${path}: HTTP ${code}`);
}

async function l2Status(c: Cluster, node: string): Promise<L2Status> {
  const { stdout } = await c.daemons.get(node)!.cli(['l2', 'status', '-o', 'json']);
  return JSON.parse(stdout) as L2Status;
}

/** The node announcing the VIP, once exactly one node does and the others name it as owner. */
async function announcer(c: Cluster, among: readonly string[] = NODES): Promise<string> {
  return waitFor(
    'one announcing node',
    async () => {
      const states = await Promise.all(among.map(async (n) => [n, await l2Status(c, n)] as const));
      const owners = states.filter(([, s]) => s.ips.some((i) => i.ip === VIP && i.state === 'announced'));
      if (owners.length !== 1) return undefined;
      const owner = owners[0]![0];
      const agree = states.every(([, s]) => s.ips.find((i) => i.ip === VIP)?.owner === owner);
      return agree ? owner : undefined;
    },
    15_000,
  );
}

async function neighbourMac(c: Cluster): Promise<string | undefined> {
  const { stdout } = await c.client.ip(['-j', 'neigh', 'show', VIP, 'dev', 'eth0']);
  const [entry] = JSON.parse(stdout || '[]') as { lladdr?: string }[];
  return entry?.lladdr;
}

async function tcpAnswer(c: Cluster): Promise<string> {
  const script = `const s=require('net').connect(${PORT},'${VIP}');s.setTimeout(1000,()=>process.exit(3));s.on('data',(d)=>process.stdout.write(d));s.on('error',()=>process.exit(2))`;
  return (await c.client.exec(['node', '-e', script], { allowFailure: true })).stdout.trim();
}

async function arpingMacs(c: Cluster): Promise<Set<string>> {
  const { stdout } = await c.client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', VIP], {
    allowFailure: true,
  });
  return new Set([...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()));
}

/** Owner's link down (node powered off): ms until the client's entry moves by GARP, and until TCP reaches the new owner. */
async function linkDownFailover(c: Cluster, owner: string, survivors: readonly string[]) {
  await c.hosts.get(owner)!.ip(['link', 'set', 'eth0', 'down']);
  const start = performance.now();
  const moved = await waitFor(
    'the neighbour entry to move',
    async () => {
      const mac = await neighbourMac(c);
      return mac && mac !== c.macs.get(owner) ? mac : undefined;
    },
    15_000,
  );
  const neighbourMs = performance.now() - start;
  const answer = await waitFor('TCP via the new owner', async () => (await tcpAnswer(c)) || undefined, 5000);
  const tcpMs = performance.now() - start;
  const next = survivors.find((n) => c.macs.get(n) === moved);
  return { next, answer, neighbourMs, tcpMs };
}

function describeCluster(label: string, renewMs: number, expiryS: number, budgetMs: number) {
  describe(`L2 from the Kubernetes API (${label}: renew ${renewMs} ms, expiry ${expiryS} s)`, () => {
    let c: Cluster | undefined;
    beforeAll(async () => {
      c = await startCluster(renewMs, expiryS);
    }, 90_000);
    afterAll(async () => stopCluster(c), 30_000);

    it("resolves the Service's ingress IP to the rendezvous owner's MAC and reaches its TCP service", async () => {
      const cl = c!;
      const owner = await announcer(cl);
      const status = await l2Status(cl, owner);
      expect(status.ips).toEqual([
        expect.objectContaining({ ip: VIP, state: 'announced', owner, localRoute: true }),
      ]);
      expect(await arpingMacs(cl)).toEqual(new Set([cl.macs.get(owner)]));
      // arping does not touch the neighbour table; a TCP connect resolves through it.
      expect(await tcpAnswer(cl)).toBe(owner);
      expect(await neighbourMac(cl)).toBe(cl.macs.get(owner));
      const text = (await cl.daemons.get(NODES.find((n) => n !== owner)!)!.cli(['l2', 'status'])).stdout;
      expect(text).toContain(`owner ${owner}`);
    });

    it('keeps answering ARP with no gap while the owner’s daemon is SIGKILLed and restarted', async () => {
      const cl = c!;
      const owner = await announcer(cl);
      const count = 200;
      // Single-probe arpings ~20 ms apart (arping's -i takes whole seconds).
      const loop = `for i in $(seq ${count}); do arping -c 1 -w 1 -I eth0 ${VIP} >/dev/null && echo ok || echo miss; sleep 0.02; done`;
      const probes = cl.client.spawn(['sh', '-c', loop]);
      await probes.waitForOutput(/ok/);
      const old = cl.daemons.get(owner)!;
      old.process.kill('SIGKILL');
      await old.process.exited;
      // The entries' deadline is at most `expiry` ahead: the new daemon must renew them before it passes.
      const restarted = await startDaemon(
        cl.hosts.get(owner)!,
        cl.files.get(owner)!,
        `${cl.bpffs.dir}/${owner}`,
      );
      cl.daemons.set(owner, restarted);
      const restartedAt = probes.stdout.split('\n').filter(Boolean).length;
      await probes.exited;
      const results = probes.stdout.split('\n').filter(Boolean);
      console.log(
        `restart (${label}): ${results.filter((r) => r === 'ok').length}/${results.length} ARP probes answered; daemon back after probe ${restartedAt}`,
      );
      expect(results).toHaveLength(count);
      expect(restartedAt).toBeLessThan(count);
      expect(results.filter((r) => r !== 'ok')).toEqual([]);
      expect(await announcer(cl)).toBe(owner);
      expect(await arpingMacs(cl)).toEqual(new Set([cl.macs.get(owner)]));
    });

    it('moves to another node when the owner’s link goes down, by gratuitous ARP', async () => {
      const cl = c!;
      const owner = await announcer(cl);
      expect(await tcpAnswer(cl)).toBe(owner);
      const survivors = NODES.filter((n) => n !== owner);
      const result = await linkDownFailover(cl, owner, survivors);
      expect(result.next).toBeDefined();
      expect(result.answer).toBe(result.next);
      expect(await announcer(cl, survivors)).toBe(result.next);
      console.log(
        `failover (${label}, renew ${renewMs} ms, expiry ${expiryS} s): neighbour moved after ${Math.round(result.neighbourMs)} ms, TCP reached ${result.next} after ${Math.round(result.tcpMs)} ms`,
      );
      expect(result.tcpMs).toBeLessThan(budgetMs);
    });

    it('a SIGKILLed owner is replaced after the expiry, and its pinned responder falls silent', async () => {
      const cl = c!;
      // The node whose link is down (previous test) is out: two nodes remain.
      const up = [] as string[];
      for (const n of NODES) {
        const { stdout } = await cl.hosts.get(n)!.ip(['-j', 'link', 'show', 'eth0']);
        if (!(JSON.parse(stdout) as { flags: string[] }[])[0]!.flags.includes('UP')) continue;
        up.push(n);
      }
      expect(up).toHaveLength(2);
      const owner = await announcer(cl, up);
      const last = up.find((n) => n !== owner)!;
      cl.daemons.get(owner)!.process.kill('SIGKILL');
      const start = performance.now();
      await waitFor(
        'the neighbour entry to move to the last node',
        async () => ((await neighbourMac(cl)) === cl.macs.get(last) ? true : undefined),
        15_000,
      );
      const movedMs = performance.now() - start;
      expect(await tcpAnswer(cl)).toBe(last);
      // The killed daemon's entries carry a deadline at most `expiry` after its last renewal
      // of them, which came before the kill: past that, only the new owner answers.
      const silentAfter = start + expiryS * 1000 + 200;
      await new Promise((r) => setTimeout(r, Math.max(0, silentAfter - performance.now())));
      const replies = await arpingMacs(cl);
      expect(replies).toEqual(new Set([cl.macs.get(last)]));
      console.log(
        `SIGKILL (${label}): neighbour moved to ${last} after ${Math.round(movedMs)} ms; ARP replies now from ${[...replies].join(', ')} (killed ${owner} = ${cl.macs.get(owner)})`,
      );
    });
  });
}

describeCluster('defaults', 1000, 3, 6000);
describeCluster('tuned', 300, 1, 2000);
