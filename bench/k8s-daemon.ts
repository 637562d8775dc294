/**
 * The real daemon in Kubernetes mode (dist/nodewarden.mjs in a lab namespace,
 * the fixture API server next to it), with 1k and 10k LoadBalancer Services and
 * their EndpointSlices:
 *
 * - CPU while idle: its heartbeat renews every second and every renewal is a
 *   watch event, so this is the cost of a reconcile pass that has nothing to do;
 *   target: flat in the number of Services (10k within 2× of 1k, plus 10 ms/s);
 * - CPU for 200 Service label updates (20 bursts of 10, every 100 ms, as a
 *   rollout): projected changes, so the planners that read Services re-plan;
 * - RSS after both.
 *
 * No reference system runs here (kube-proxy and Cilium need a real cluster); the
 * 1k run is the reference for the 10k one. Before the reconcile pass used
 * version stamps (daemon/reconcile.ts) the same machine measured, idle, 82 ms/s
 * at 2k Services and 399 ms/s at 10k. Results go to
 * bench/results/k8s-daemon-latest.json. Run as root after `npm run build`:
 * `npm run bench:k8s-daemon` (about three minutes).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, type Host } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { daemonFiles } from '../test/support/daemon.js';
import { startLabFixture, writeKubernetesDaemonConfig } from '../test/support/k8s-lab.js';
import { CLI_BUNDLE } from '../test/support/paths.js';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const TOKEN = 'bench';
const SIZES = [1000, 10_000];
const IDLE_WINDOW_S = 20;
/** Objects per seed request: the lab API passes bodies on curl's command line. */
const SEED_BATCH = 100;

/** User plus system CPU of a process, in ms (clock ticks are 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return Math.round(kb / 1024);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function serviceAndSlice(k: number): object[] {
  const namespace = `ns-${k % 20}`;
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `svc-${k}`, namespace, labels: { app: `app-${k}` } },
      spec: {
        type: 'LoadBalancer',
        ports: [{ port: 80, protocol: 'TCP', nodePort: 30000 + (k % 2000) }],
        externalTrafficPolicy: 'Cluster',
      },
      status: { loadBalancer: { ingress: [{ ip: `198.18.${k >> 8}.${k & 255}` }] } },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `svc-${k}-x`, namespace, labels: { 'kubernetes.io/service-name': `svc-${k}` } },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: [`10.244.${k >> 8}.${k & 255}`],
          nodeName: k % 2 ? 'lab-node' : 'other-node',
          conditions: { ready: true },
        },
      ],
    },
  ];
}

async function patchLabel(host: Host, server: string, k: number): Promise<void> {
  const body = JSON.stringify({ metadata: { labels: { revision: String(Date.now()) } } });
  await host.exec([
    'curl',
    '-sf',
    '-X',
    'PATCH',
    '-H',
    `authorization: Bearer ${TOKEN}`,
    '-H',
    'content-type: application/merge-patch+json',
    '--data-binary',
    body,
    `${server}/api/v1/namespaces/ns-${k % 20}/services/svc-${k}`,
  ]);
}

async function measure(services: number) {
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  const files = daemonFiles('');
  try {
    const node = await lab.host('node');
    // No traffic is measured: one device for the datapath to attach to is enough.
    await node.ip(['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    await node.ip(['address', 'add', '10.79.0.1/24', 'dev', 'eth0']);
    for (const dev of ['eth0', 'eth1']) await node.ip(['link', 'set', dev, 'up']);
    const { server, api } = await startLabFixture(node, TOKEN);
    await api('POST', '/fixture/seed', [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'lab-node' },
        status: { addresses: [{ type: 'InternalIP', address: '10.79.0.1' }] },
      },
    ]);
    for (let i = 0; i < services; i += SEED_BATCH / 2) {
      const batch = Array.from({ length: Math.min(SEED_BATCH / 2, services - i) }, (_, k) => i + k);
      await api('POST', '/fixture/seed', batch.flatMap(serviceAndSlice));
    }
    writeKubernetesDaemonConfig(files, server, TOKEN, ['eth0']);
    const daemon = node.spawn([
      'node',
      CLI_BUNDLE,
      'daemon',
      ...['--config', files.configPath, '--pin-dir', bpffs.dir, '--run-dir', files.runDir],
    ]);
    await daemon.waitForOutput(/nodewarden started/, 120_000);
    await sleep(5000);
    const idleStart = cpuMs(daemon.pid);
    await sleep(IDLE_WINDOW_S * 1000);
    const idleCpuMsPerSecond = Math.round((cpuMs(daemon.pid) - idleStart) / IDLE_WINDOW_S);
    const updatesStart = cpuMs(daemon.pid);
    const idleBaseline = idleCpuMsPerSecond;
    const t0 = performance.now();
    for (let i = 0; i < 200; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => patchLabel(node, server, i + k)));
      await sleep(100);
    }
    await sleep(3000);
    const seconds = (performance.now() - t0) / 1000;
    // Less what it would have spent idle in the same time.
    const cpuMsFor200Updates = Math.round(cpuMs(daemon.pid) - updatesStart - idleBaseline * seconds);
    const result = { services, idleCpuMsPerSecond, cpuMsFor200Updates, rssMB: rssMB(daemon.pid) };
    await daemon.stop(5000);
    return result;
  } finally {
    await lab.destroy();
    bpffs.destroy();
    files.destroy();
  }
}

const runs = [];
for (const size of SIZES) {
  const r = await measure(size);
  console.log(r);
  runs.push(r);
}
const [small, large] = runs as [Awaited<ReturnType<typeof measure>>, Awaited<ReturnType<typeof measure>>];
const summary = {
  at: new Date().toISOString(),
  machine: { loadavg: loadavg() },
  runs,
  targets: {
    idleCpuFlatInServices: large.idleCpuMsPerSecond <= small.idleCpuMsPerSecond * 2 + 10,
  },
};
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/k8s-daemon-latest.json'), `${JSON.stringify(summary, null, 2)}\n`);
console.table(Object.fromEntries(runs.map((r) => [`${r.services} Services`, r])));
console.log('targets', summary.targets);
