/**
 * One watcher process for bench/k8s.ts, so that its RSS is its own:
 *   --mode nodewarden  the Kubernetes source's reflectors (slim projections)
 *   --mode informer    the reference: client-node informers that keep whole Services and EndpointSlices
 * Prints one JSON line when synced; then, for each `expect N` line on stdin,
 * one JSON line after N more change notifications, with the CPU time they took.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  ADD,
  CoreV1Api,
  DiscoveryV1Api,
  type Informer,
  KubeConfig,
  type KubernetesObject,
  makeInformer,
  UPDATE,
} from '@kubernetes/client-node';
import { KubeClient } from '../daemon/sources/kubernetes/client.js';
import { KubernetesWatcher } from '../daemon/sources/kubernetes/watcher.js';

const { values } = parseArgs({
  options: { mode: { type: 'string' }, kubeconfig: { type: 'string' } },
});

let changes = 0;
let waiter: { target: number; cpu: NodeJS.CpuUsage; wall: number } | undefined;

function changed(): void {
  changes++;
  if (waiter && changes >= waiter.target) {
    const cpu = process.cpuUsage(waiter.cpu);
    const wallMs = performance.now() - waiter.wall;
    waiter = undefined;
    console.log(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs, rssMB: rss() }));
  }
}

const rss = () => Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10;
global.gc?.();
/** Node and the loaded modules (client-node alone is ~40 MB), before any object: what every mode pays. */
const baseRssMB = rss();
const baseHeapMB = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
const started = performance.now();
const config = new KubeConfig();
config.loadFromFile(values.kubeconfig!);

if (values.mode === 'nodewarden') {
  const watcher = new KubernetesWatcher({
    client: new KubeClient({ config, qps: 50, burst: 100 }),
    nodeName: 'bench-node-0',
    namespace: 'nodewarden',
    idleTimeoutMs: 90_000,
    onChange: changed,
  });
  watcher.start();
  await watcher.waitForSync();
} else {
  const core = config.makeApiClient(CoreV1Api);
  const discovery = config.makeApiClient(DiscoveryV1Api);
  const informers: Informer<KubernetesObject>[] = [
    makeInformer(config, '/api/v1/services', () => core.listServiceForAllNamespaces()),
    makeInformer(config, '/apis/discovery.k8s.io/v1/endpointslices', () =>
      discovery.listEndpointSliceForAllNamespaces(),
    ),
  ];
  for (const informer of informers) {
    informer.on(UPDATE, changed);
    informer.on(ADD, changed);
  }
  await Promise.all(informers.map((i) => i.start()));
}
const syncMs = performance.now() - started;
global.gc?.();
console.log(
  JSON.stringify({
    syncMs,
    rssMB: rss(),
    baseRssMB,
    baseHeapMB,
    heapUsedMB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  }),
);
changes = 0;

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, n] = line.split(' ');
  if (command === 'expect')
    waiter = { target: changes + Number(n), cpu: process.cpuUsage(), wall: performance.now() };
  if (command === 'rss') {
    global.gc?.();
    console.log(JSON.stringify({ rssMB: rss() }));
  }
});
