/**
 * healthCheckNodePorts from Kubernetes: the real daemon with `source:
 * kubernetes` against the fixture API server in a lab namespace. A
 * LoadBalancer Service with externalTrafficPolicy Local and an EndpointSlice
 * with a ready endpoint on this node → 200 from another namespace; the
 * endpoint turns not ready → 503 within a second; the Service goes → the port
 * closes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointSlice,
  kubernetesModeConfig,
  type LabApi,
  localLoadBalancerService,
  startLabFixture,
} from '../k8s-fixture/lab-api.js';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';

const TOKEN = 'services-test-token';
const NODE_IP = '10.79.0.1';
const HEALTH_PORT = 32100;
let lab: Lab;
let node: Host;
let lb: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let fixture: LabProcess;
let api: LabApi;
let daemon: DaemonInstance;

/** The health port's status code as seen from the other namespace; undefined when nothing listens. */
async function healthStatus(): Promise<number | undefined> {
  const r = await lb.exec(
    [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '1',
      `http://${NODE_IP}:${HEALTH_PORT}/`,
    ],
    { allowFailure: true },
  );
  return r.code === 0 ? Number(r.stdout) : undefined;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
  return performance.now() - start;
}

const slice = (ready: boolean) =>
  endpointSlice('shop', 'web', [
    { nodeName: 'lab-node', ready },
    { nodeName: 'other-node', ready: true },
  ]);

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  [node, lb] = await lab.pair('node', 'lb', [`${NODE_IP}/24`], ['10.79.0.2/24']);
  let server: string;
  ({ process: fixture, server, api } = await startLabFixture(node, TOKEN));
  await api('POST', '/fixture/seed', [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'lab-node' },
      status: { addresses: [{ type: 'InternalIP', address: NODE_IP }] },
    },
  ]);
  files = daemonFiles('');
  files.writeConfig(kubernetesModeConfig('lab-node', server, TOKEN, files.dir).join('\n'));
  daemon = await startDaemon(node, files, bpffs.dir);
});

afterAll(async () => {
  await daemon?.process.stop();
  await fixture?.stop();
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('healthCheckNodePorts from Kubernetes', () => {
  it('serves 200 for a ready local endpoint, 503 within a second of it turning not ready, and closes with the Service', async () => {
    expect(await healthStatus()).toBeUndefined();
    const created = await api(
      'POST',
      '/api/v1/namespaces/shop/services',
      localLoadBalancerService('shop', 'web', HEALTH_PORT),
    );
    expect(created.code).toBe(201);
    expect(
      (await api('POST', '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices', slice(true))).code,
    ).toBe(201);
    await waitFor('200 on the health port', async () => (await healthStatus()) === 200, 5000);
    const r = await lb.exec(['curl', '-s', '--max-time', '1', `http://${NODE_IP}:${HEALTH_PORT}/`]);
    expect(JSON.parse(r.stdout)).toEqual({
      service: { namespace: 'shop', name: 'web' },
      localEndpoints: 1,
      serviceProxyHealthy: true,
    });
    const status = await daemon.status();
    expect(status.services!.healthCheckNodePorts).toEqual([
      expect.objectContaining({ port: HEALTH_PORT, service: 'shop/web', state: 'serving' }),
    ]);
    // The firewall lets the health port in by itself.
    expect(status.firewall.systemAllows).toContain(
      `ingress healthCheckNodePort ${HEALTH_PORT}/TCP of shop/web`,
    );

    const current = await api('GET', '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-abcde');
    const updated = await api('PUT', '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-abcde', {
      ...slice(false),
      metadata: current.body.metadata,
    });
    expect(updated.code).toBe(200);
    const flipMs = await waitFor('503 on the health port', async () => (await healthStatus()) === 503, 3000);
    console.log(`health port 200 → 503 after the EndpointSlice update: ${flipMs.toFixed(0)} ms`);
    expect(flipMs).toBeLessThan(1000);

    expect((await api('DELETE', '/api/v1/namespaces/shop/services/web')).code).toBe(200);
    const closeMs = await waitFor(
      'the health port to close',
      async () => (await healthStatus()) === undefined,
      3000,
    );
    console.log(`health port closed after the Service deletion: ${closeMs.toFixed(0)} ms`);
    const after = await daemon.status();
    expect(after.services!.healthCheckNodePorts).toEqual([]);
    expect(after.firewall.systemAllows.filter((a) => a.includes('healthCheckNodePort'))).toEqual([]);
  });
});
