/**
 * The real daemon with `source: kubernetes` in a lab namespace, against the
 * fixture API server running in the same namespace: host policies and the
 * remote-node identity come from the API and are enforced by BPF on real
 * traffic; an invalid policy object is reported (status, Event) while the last
 * good one stays in force; the heartbeat Lease is renewed and released.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_DEFAULTS } from '../../daemon/config/schema.js';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { type FixtureApi, startLabFixture, writeKubernetesDaemonConfig } from '../support/k8s-lab.js';

const TOKEN = 'daemon-test-token';
let lab: Lab;
let node: Host;
let peer: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let fixture: LabProcess;
let server: string;
let daemon: DaemonInstance;
let api: FixtureApi;

const ping = async () =>
  (await peer.exec(['ping', '-c', '2', '-i', '0.1', '-W', '1', '10.79.0.1'], { allowFailure: true })).code ===
  0;

const POLICY = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumClusterwideNetworkPolicy',
  metadata: { name: 'from-cluster-nodes' },
  spec: { nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromEntities: ['remote-node'] }] },
};

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  [node, peer] = await lab.pair('node', 'peer', ['10.79.0.1/24'], ['10.79.0.2/24']);
  ({ process: fixture, server, api } = await startLabFixture(node, TOKEN));
  await api('POST', '/fixture/seed', [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'lab-node', labels: { role: 'edge' } },
      status: { addresses: [{ type: 'InternalIP', address: '10.79.0.1' }] },
    },
    POLICY,
  ]);
  files = daemonFiles('');
  writeKubernetesDaemonConfig(files, server, TOKEN, ['eth0']);
  daemon = await startDaemon(node, files, bpffs.dir);
});

afterAll(async () => {
  await daemon?.process.stop();
  await fixture?.stop();
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('daemon with source: kubernetes', () => {
  it('enforces the API’s host policy with the remote-node identity from Node objects', async () => {
    const status = await daemon.status();
    expect(status.kubernetes).toMatchObject({ synced: true, server });
    expect(status.firewall.policies).toEqual(['from-cluster-nodes']);
    // The peer is no cluster node yet: the policy selects this node, so its ingress is denied.
    expect(await ping()).toBe(false);
    const created = await api('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'peer' },
    });
    expect(created.code).toBe(201);
    const withAddress = await api('PUT', '/api/v1/nodes/peer/status', {
      ...created.body,
      status: { addresses: [{ type: 'InternalIP', address: '10.79.0.2' }] },
    });
    expect(withAddress.code).toBe(200);
    const start = performance.now();
    while (!(await ping())) {
      if (performance.now() - start > 5000) throw new Error('the peer never became a remote node');
    }
  });

  it('reports an invalid policy object, keeps the last good one, and posts an Event', async () => {
    const current = await api(
      'GET',
      '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies/from-cluster-nodes',
    );
    const bad = await api('PUT', '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies/from-cluster-nodes', {
      ...current.body,
      spec: { ...POLICY.spec, ingress: [{ fromEntities: ['remote-nodes'] }] },
    });
    expect(bad.code).toBe(200);
    let problems: string[] = [];
    const start = performance.now();
    while (problems.length === 0 && performance.now() - start < 5000) {
      problems = (await daemon.status()).kubernetes?.problems ?? [];
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /CiliumClusterwideNetworkPolicy\/from-cluster-nodes spec\.ingress\[0\]\.fromEntities\[0\]/,
    );
    expect(await ping()).toBe(true);
    const events = await api('GET', '/api/v1/namespaces/default/events');
    expect(events.body.items).toEqual([
      expect.objectContaining({
        reason: 'InvalidSpec',
        type: 'Warning',
        involvedObject: expect.objectContaining({ name: 'from-cluster-nodes' }),
      }),
    ]);
    const text = (await daemon.cli(['status'])).stdout;
    expect(text).toMatch(/kubernetes: .* synced/);
    expect(text).toMatch(
      /invalid \(last good version kept\): kubernetes: CiliumClusterwideNetworkPolicy\/from-cluster-nodes/,
    );
  });

  it('re-plans nothing on heartbeat renewals: every planner skips them', async () => {
    const leaseVersion = async () =>
      (await daemon.status()).kubernetes?.resources.find((r) => r.name === 'heartbeats')?.resourceVersion;
    const before = (await daemon.status()).reconcile ?? [];
    expect(before.map((c) => c.name)).toEqual(['services', 'bgp', 'firewall', 'l2']);
    const firstLease = await leaseVersion();
    const start = performance.now();
    // Three renewals at least (the default renew interval is 750 ms).
    while (performance.now() - start < 3000) await new Promise((r) => setTimeout(r, 250));
    expect(await leaseVersion()).not.toBe(firstLease);
    const after = (await daemon.status()).reconcile ?? [];
    for (const [i, c] of after.entries()) {
      expect(c.replans, c.name).toBe(before[i]!.replans);
      expect(c.skips, c.name).toBeGreaterThanOrEqual(before[i]!.skips + 2);
    }
  });

  it('renews its heartbeat Lease and releases it on shutdown', async () => {
    const lease = await api(
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/nodewarden/leases/nodewarden-node-lab-node',
    );
    // The config sets no heartbeat timing: the Lease carries the default expiry.
    expect(lease.body.spec).toMatchObject({
      holderIdentity: 'lab-node',
      leaseDurationSeconds: HEARTBEAT_DEFAULTS.expirySeconds,
    });
    expect(lease.body.metadata.annotations['nodewarden.io/interfaces-up']).toContain('eth0');
    const status = await daemon.status();
    expect(status.kubernetes?.heartbeat.holding).toBe(true);
    expect(status.kubernetes?.liveNodes).toEqual(['lab-node']);
    await daemon.process.stop(5000);
    const gone = await api(
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/nodewarden/leases/nodewarden-node-lab-node',
    );
    expect(gone.code).toBe(404);
  });
});
