/**
 * fromEndpoints with the real daemon (`source: kubernetes`) and the fixture API
 * server: a host policy allows TCP 8022 only from pods labelled app=admin. A
 * Pod object whose podIPs are the admin namespace's addresses opens the port to
 * that namespace (IPv4 and IPv6); relabelling or deleting it closes it again;
 * a pod that does not match is never watched and stays refused; changing the
 * policy's selector re-plans the pod watches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { type FixtureApi, startLabFixture, writeKubernetesDaemonConfig } from '../support/k8s-lab.js';
import { startTcpServer, tcpConnects } from '../support/net.js';

const TOKEN = 'endpoints-test-token';
const PORT = 8022;
const POLICIES = '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies';
let lab: Lab;
let node: Host;
let admin: Host;
let other: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let fixture: LabProcess;
let tcpServer: LabProcess;
let server: string;
let daemon: DaemonInstance;
let api: FixtureApi;

const policy = (app: string) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumClusterwideNetworkPolicy',
  metadata: { name: 'ssh-from-admin-pods' },
  spec: {
    nodeSelector: {},
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { 'k8s:app': app, 'k8s:io.kubernetes.pod.namespace': 'ops' } }],
        toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }],
      },
    ],
  },
});

/** A running Pod in namespace ops with these labels and addresses (status through its subresource). */
async function createPod(name: string, labels: Record<string, string>, addresses: string[]): Promise<void> {
  const created = await api('POST', '/api/v1/namespaces/ops/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ops', labels },
    spec: { containers: [{ name: 'c', image: 'registry.example/c:1' }] },
  });
  expect(created.code).toBe(201);
  const status = await api('PUT', `/api/v1/namespaces/ops/pods/${name}/status`, {
    ...created.body,
    status: { phase: 'Running', podIP: addresses[0], podIPs: addresses.map((ip) => ({ ip })) },
  });
  expect(status.code).toBe(200);
}

async function relabel(name: string, labels: Record<string, string>): Promise<void> {
  const current = await api('GET', `/api/v1/namespaces/ops/pods/${name}`);
  const updated = await api('PUT', `/api/v1/namespaces/ops/pods/${name}`, {
    ...current.body,
    metadata: { ...current.body.metadata, labels },
  });
  expect(updated.code).toBe(200);
}

/** Waits until every probe gives its expected answer (the daemon coalesces changes for 250 ms). */
async function eventually(probes: [Host, string, boolean][], withinMs = 8000): Promise<void> {
  const start = performance.now();
  for (;;) {
    const got = await Promise.all(probes.map(([host, ip]) => tcpConnects(host, ip, PORT)));
    if (got.every((g, i) => g === probes[i]![2])) return;
    if (performance.now() - start > withinMs)
      throw new Error(
        `connections ${JSON.stringify(got)}, expected ${JSON.stringify(probes.map((p) => p[2]))}`,
      );
  }
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  node = await lab.host('node');
  admin = await lab.host('admin');
  other = await lab.host('other');
  await lab.link(node, admin, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: ['10.81.0.1/24', 'fd81::1/64'],
    bAddrs: ['10.81.0.2/24', 'fd81::2/64'],
  });
  await lab.link(node, other, {
    aDev: 'eth1',
    bDev: 'eth0',
    aAddrs: ['10.81.1.1/24'],
    bAddrs: ['10.81.1.2/24'],
  });
  tcpServer = await startTcpServer(node, PORT);
  ({ process: fixture, server, api } = await startLabFixture(node, TOKEN));
  await api('POST', '/fixture/seed', [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'lab-node' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops' } },
    policy('admin'),
  ]);
  files = daemonFiles('');
  writeKubernetesDaemonConfig(files, server, TOKEN, ['eth0', 'eth1']);
  daemon = await startDaemon(node, files, bpffs.dir);
});

afterAll(async () => {
  await daemon?.process.stop();
  await tcpServer?.stop();
  await fixture?.stop();
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('fromEndpoints with the Kubernetes source', () => {
  it('a selector that matches no pod yet allows nothing', async () => {
    // The policy is compiled once the pod watch has listed (then 250 ms of coalescing).
    let status = await daemon.status();
    const start = performance.now();
    while (status.firewall.policies.length === 0 && performance.now() - start < 5000)
      status = await daemon.status();
    expect(status.firewall.policies).toEqual(['ssh-from-admin-pods']);
    expect(status.firewall.endpoints).toEqual([
      { selector: 'app=admin,io.kubernetes.pod.namespace=ops', addresses: 0 },
    ]);
    await eventually([
      [admin, '10.81.0.1', false],
      [other, '10.81.1.1', false],
    ]);
  });

  it('a pod labelled app=admin opens the port to its IPv4 and IPv6 addresses only', async () => {
    await createPod('admin-shell', { app: 'admin' }, ['10.81.0.2', 'fd81::2']);
    await createPod('web', { app: 'web' }, ['10.81.1.2']);
    await eventually([
      [admin, '10.81.0.1', true],
      [admin, 'fd81::1', true],
      [other, '10.81.1.1', false],
    ]);
    const status = await daemon.status();
    expect(status.firewall.endpoints).toEqual([
      { selector: 'app=admin,io.kubernetes.pod.namespace=ops', addresses: 2 },
    ]);
    // Only the selected pods are watched: the app=web pod never reaches the daemon.
    expect(status.kubernetes?.podSelectors).toEqual([
      {
        selector: 'app=admin,io.kubernetes.pod.namespace=ops',
        namespace: 'ops',
        synced: true,
        pods: 1,
        addresses: 2,
      },
    ]);
    const trace = JSON.parse(
      (
        await daemon.cli([
          'policy',
          'trace',
          '--from',
          '10.81.0.2',
          '--to',
          '10.81.0.1',
          '--port',
          `${PORT}/tcp`,
          '--output',
          'json',
        ])
      ).stdout,
    );
    expect(trace).toMatchObject({
      verdict: 'allow',
      decidedBy: 'ssh-from-admin-pods ingress[0]',
      endpoints: [
        { selector: 'app=admin,io.kubernetes.pod.namespace=ops', addresses: 2, includesPeer: true },
      ],
    });
    const text = (
      await daemon.cli([
        'policy',
        'trace',
        '--from',
        '10.81.1.2',
        '--to',
        '10.81.1.1',
        '--port',
        `${PORT}/tcp`,
      ])
    ).stdout;
    expect(text).toMatch(/DENY/);
    expect((await daemon.cli(['status'])).stdout).toMatch(
      /pods app=admin,io\.kubernetes\.pod\.namespace=ops: 1 pods, 2 addresses/,
    );
    expect(text).toMatch(
      /endpoints app=admin,io\.kubernetes\.pod\.namespace=ops: 2 address\(es\)\n|endpoints app=admin,io\.kubernetes\.pod\.namespace=ops: 2 address\(es\)$/,
    );
  });

  it('relabelling the pod closes the port; relabelling it back reopens it; deleting it closes it', async () => {
    await relabel('admin-shell', { app: 'web' });
    await eventually([[admin, '10.81.0.1', false]]);
    await relabel('admin-shell', { app: 'admin' });
    await eventually([[admin, '10.81.0.1', true]]);
    expect((await api('DELETE', '/api/v1/namespaces/ops/pods/admin-shell')).code).toBe(200);
    await eventually([
      [admin, '10.81.0.1', false],
      [admin, 'fd81::1', false],
    ]);
    expect((await daemon.status()).firewall.endpoints).toEqual([
      { selector: 'app=admin,io.kubernetes.pod.namespace=ops', addresses: 0 },
    ]);
  });

  it('a new selector in the policy re-plans the pod watches', async () => {
    const current = await api('GET', `${POLICIES}/ssh-from-admin-pods`);
    const updated = await api('PUT', `${POLICIES}/ssh-from-admin-pods`, {
      ...current.body,
      spec: policy('web').spec,
    });
    expect(updated.code).toBe(200);
    await eventually([
      [other, '10.81.1.1', true],
      [admin, '10.81.0.1', false],
    ]);
    expect((await daemon.status()).kubernetes?.podSelectors).toEqual([
      {
        selector: 'app=web,io.kubernetes.pod.namespace=ops',
        namespace: 'ops',
        synced: true,
        pods: 1,
        addresses: 1,
      },
    ]);
  });
});
