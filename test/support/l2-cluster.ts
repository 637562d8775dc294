/**
 * An L2 segment in Kubernetes mode, for tests and the failover benchmark: a
 * bridge, the fixture API server in its own namespace, three nodes running the
 * real daemon against it, and a client. One LoadBalancer Service per VIP and a
 * CiliumL2AnnouncementPolicy for every node; every node serves TCP on PORT and
 * answers with its name, but only the owner has a VIP as a local route.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { L2Status } from '../../daemon/l2/manager.js';
import { writeFixtureKubeconfig } from '../k8s-fixture/kubeconfig.js';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from './bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from './daemon.js';
import { waitFor } from './l2.js';

export const L2_CLUSTER_NODES = ['n1', 'n2', 'n3'] as const;
export const L2_CLUSTER_PORT = 8080;
const TOKEN = 'l2-k8s-token';
const API_IP = '10.79.0.200';
const CLIENT_IP = '10.79.0.100';
/** The segment is a /16 so that up to ~16k VIPs sit on-link beside the nodes. */
const PREFIX = 16;

/** The i-th VIP, from 10.79.1.1 up (10.79.0.0/24 holds the nodes, the API and the client). */
export const clusterVip = (i: number) => `10.79.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;

export interface L2ClusterOptions {
  renewIntervalMs: number;
  expirySeconds: number;
  /** How many Services, one VIP each. */
  vips?: number;
}

export interface L2Cluster {
  lab: Lab;
  bpffs: TempBpffs;
  client: Host;
  api: Host;
  fixture: LabProcess;
  server: string;
  vips: string[];
  hosts: Map<string, Host>;
  macs: Map<string, string>;
  files: Map<string, DaemonFiles>;
  daemons: Map<string, DaemonInstance>;
}

export async function startL2Cluster(options: L2ClusterOptions): Promise<L2Cluster> {
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  try {
    return await populate(lab, bpffs, options);
  } catch (error) {
    await lab.destroy();
    bpffs.destroy();
    throw error;
  }
}

async function populate(lab: Lab, bpffs: TempBpffs, options: L2ClusterOptions): Promise<L2Cluster> {
  const lan = await lab.bridge('lan');
  const client = await lab.host('client');
  await lan.attach(client, { dev: 'eth0', addrs: [`${CLIENT_IP}/${PREFIX}`] });
  const api = await lab.host('api');
  await lan.attach(api, { dev: 'eth0', addrs: [`${API_IP}/${PREFIX}`] });
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
  const vips = Array.from({ length: options.vips ?? 1 }, (_, i) => clusterVip(i));
  const cluster: L2Cluster = {
    lab,
    bpffs,
    client,
    api,
    fixture,
    server,
    vips,
    hosts: new Map(),
    macs: new Map(),
    files: new Map(),
    daemons: new Map(),
  };
  await clusterApi(cluster, 'POST', '/fixture/seed', [
    ...L2_CLUSTER_NODES.map((name, i) => ({
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
        serviceSelector: { matchLabels: { app: 'web' } },
        nodeSelector: { matchLabels: { role: 'lan' } },
        interfaces: ['^eth[0-9]+$'],
        loadBalancerIPs: true,
      },
    },
    ...vips.map((ip, i) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name: i === 0 ? 'web' : `web-${i}`, labels: { app: 'web' } },
      spec: { type: 'LoadBalancer', ports: [{ port: L2_CLUSTER_PORT, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip }] } },
    })),
  ]);
  const kubeconfig = writeFixtureKubeconfig(server, TOKEN);
  for (const [i, node] of L2_CLUSTER_NODES.entries()) {
    const host = await lab.host(node);
    const port = await lan.attach(host, { dev: 'eth0', addrs: [`10.79.0.${i + 1}/${PREFIX}`] });
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
        `    renewIntervalMs: ${options.renewIntervalMs}`,
        `    expirySeconds: ${options.expirySeconds}`,
        `policies: { directory: ${join(f.dir, 'policies.d')} }`,
        'l2:',
        '  gratuitous:',
        '    count: 3',
        '    intervalMs: 100',
      ].join('\n'),
    );
    cluster.files.set(node, f);
    // Every node serves; only the owner has the VIP as a local route, so only it accepts.
    // A prober's reset must not end the server (an unhandled socket error would).
    host.spawn([
      'node',
      '-e',
      `require('net').createServer((s)=>{s.on('error',()=>{});s.end('${node}\\n')}).listen(${L2_CLUSTER_PORT}, '0.0.0.0')`,
    ]);
  }
  for (const node of L2_CLUSTER_NODES)
    cluster.daemons.set(
      node,
      await startDaemon(cluster.hosts.get(node)!, cluster.files.get(node)!, `${bpffs.dir}/${node}`),
    );
  return cluster;
}

export async function stopL2Cluster(c: L2Cluster | undefined): Promise<void> {
  if (!c) return;
  await c.lab.destroy();
  c.bpffs.destroy();
  for (const f of c.files.values()) f.destroy();
}

/** A request to the fixture API server, from the client's namespace. */
export async function clusterApi(
  c: Pick<L2Cluster, 'client' | 'server'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<void> {
  const args = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', method];
  args.push('-H', `authorization: Bearer ${TOKEN}`);
  // The body goes through stdin: a thousand Services are more than one argument may hold.
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
  const input = body === undefined ? undefined : JSON.stringify(body);
  const code = Number(
    (await c.client.exec([...args, c.server + path], input ? { input } : {})).stdout.trim(),
  );
  if (code >= 300) throw new Error(`${method} ${path}: HTTP ${code}`);
}

export async function clusterL2Status(c: L2Cluster, node: string): Promise<L2Status> {
  const { stdout } = await c.daemons.get(node)!.cli(['l2', 'status', '-o', 'json']);
  return JSON.parse(stdout) as L2Status;
}

/**
 * Each IP's owner (the cluster's VIPs by default), once every one is announced by
 * exactly one of `among` and all of them agree on it.
 */
export async function settledOwners(
  c: L2Cluster,
  among: readonly string[] = L2_CLUSTER_NODES,
  timeoutMs = 20_000,
  ips: readonly string[] = c.vips,
): Promise<Map<string, string>> {
  return waitFor(
    'every VIP announced by one agreed node',
    async () => {
      const states = await Promise.all(among.map(async (n) => [n, await clusterL2Status(c, n)] as const));
      const owners = new Map<string, string>();
      for (const vip of ips) {
        const announcing = states.filter(([, s]) =>
          s.ips.some((i) => i.ip === vip && i.state === 'announced'),
        );
        if (announcing.length !== 1) return undefined;
        const owner = announcing[0]![0];
        if (!states.every(([, s]) => s.ips.find((i) => i.ip === vip)?.owner === owner)) return undefined;
        owners.set(vip, owner);
      }
      return owners;
    },
    timeoutMs,
  );
}

/** The client's neighbour table: IP → MAC (lower case). */
export async function clientNeighbours(c: L2Cluster): Promise<Map<string, string>> {
  const { stdout } = await c.client.ip(['-j', 'neigh', 'show', 'dev', 'eth0']);
  const entries = JSON.parse(stdout || '[]') as { dst: string; lladdr?: string }[];
  return new Map(entries.flatMap((e) => (e.lladdr ? [[e.dst, e.lladdr.toLowerCase()] as const] : [])));
}

/** The node name a TCP connect to `vip` answers with ('' when nothing answers within a second). */
export async function tcpAnswer(c: L2Cluster, vip = c.vips[0]!): Promise<string> {
  const script = `const s=require('net').connect(${L2_CLUSTER_PORT},'${vip}');s.setTimeout(1000,()=>process.exit(3));s.on('data',(d)=>process.stdout.write(d));s.on('error',()=>process.exit(2))`;
  return (await c.client.exec(['node', '-e', script], { allowFailure: true })).stdout.trim();
}

/**
 * A TCP prober in the client's namespace: every VIP is connected to every
 * `intervalMs` (each attempt gives up after 150 ms, so a SYN lost to a stale
 * neighbour entry does not wait for the 1 s retransmission) and every change of
 * the answering node is printed as `<epoch ms> <vip> <node>`, where the node is
 * `-` for a timeout and `!CODE` for an error.
 */
export function startTcpProber(c: L2Cluster, vips: readonly string[], intervalMs = 20): LabProcess {
  const script = `
const net = require('net');
const now = () => (performance.timeOrigin + performance.now()).toFixed(1);
for (const vip of process.argv.slice(1)) {
  let last;
  const report = (who) => { if (who !== last) { last = who; process.stdout.write(now() + ' ' + vip + ' ' + who + '\\n'); } };
  const probe = () => {
    const s = net.connect(${L2_CLUSTER_PORT}, vip);
    let done = false;
    const timer = setTimeout(() => finish('-'), 150);
    const finish = (who) => { if (done) return; done = true; clearTimeout(timer); s.destroy(); report(who); setTimeout(probe, ${intervalMs}); };
    s.on('data', (d) => finish(String(d).trim()));
    s.on('error', (e) => finish('!' + e.code));
  };
  probe();
}`;
  return c.client.spawn(['node', '-e', script, ...vips]);
}

/** Epoch ms (as the prober prints it) at which each VIP first answered from a node other than `from`, after `since`. */
export function proberMoves(
  output: string,
  since: number,
  from: string,
): Map<string, { at: number; node: string }> {
  const moves = new Map<string, { at: number; node: string }>();
  for (const line of output.split('\n')) {
    const [at, vip, node] = line.trim().split(' ');
    if (!at || !vip || !node || node === '-' || node.startsWith('!') || node === from) continue;
    const t = Number(at);
    if (t >= since && !moves.has(vip)) moves.set(vip, { at: t, node });
  }
  return moves;
}
