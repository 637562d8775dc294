/**
 * LoadBalancer IPAM with two allocators on one fixture API server: one leader
 * at a time through the `nodewarden-ipam` Lease, every Service of ours gets an
 * address from the pool, a requested one is honoured, and when the leader dies
 * mid-stream the other takes over without ever giving one address to two
 * Services. No namespaces needed; it runs here for its wall time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../daemon/sources/kubernetes/client.js';
import { IpamController } from '../../daemon/sources/kubernetes/ipam.js';
import { KubernetesWatcher } from '../../daemon/sources/kubernetes/watcher.js';
import { writeFixtureKubeconfig } from '../k8s-fixture/kubeconfig.js';
import { FixtureApiServer, type KubeObject } from '../k8s-fixture/server.js';
import { until } from '../k8s-fixture/until.js';

const TOKEN = 't';
let api: FixtureApiServer;
const nodes: { name: string; watcher: KubernetesWatcher; ipam: IpamController }[] = [];

function startNode(name: string, url: string) {
  const kubeconfig = writeFixtureKubeconfig(url, TOKEN);
  const watcher = new KubernetesWatcher({
    client: new KubeClient({ kubeconfig, qps: 100, burst: 100 }),
    nodeName: name,
    namespace: 'nodewarden',
    idleTimeoutMs: 5000,
    reportInvalid: false,
  });
  const ipam = new IpamController({
    client: new KubeClient({ kubeconfig, qps: 100, burst: 100, userAgent: `nodewarden/${name}` }),
    namespace: 'nodewarden',
    nodeName: name,
    renewIntervalMs: 200,
    expirySeconds: 1,
    className: 'nodewarden.io/lb',
    unclassed: true,
    state: () => watcher.state(),
    synced: () => watcher.status().synced,
  });
  watcher.start();
  ipam.start();
  nodes.push({ name, watcher, ipam });
}

const service = (name: string, extra: KubeObject = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', ...(extra.metadata ?? {}) },
  spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...(extra.spec ?? {}) },
});

/** Every address given to more than one Service, from the API's own state. */
function doubleAssigned(): string[] {
  const holders = new Map<string, string[]>();
  for (const s of api.list('v1', 'Service')) {
    for (const i of s.status?.loadBalancer?.ingress ?? []) {
      holders.set(i.ip, [...(holders.get(i.ip) ?? []), s.metadata.name]);
    }
  }
  return [...holders].filter(([, h]) => h.length > 1).map(([ip, h]) => `${ip}: ${h.join(',')}`);
}

/**
 * Creates 15 Services, 100 ms apart, until `successor` leads and all are assigned;
 * returns every double assignment seen meanwhile (sampled every 20 ms).
 */
async function burstWhileWatching(prefix: string, successor: (typeof nodes)[number]): Promise<string[]> {
  const violations: string[] = [];
  const sampler = setInterval(() => violations.push(...doubleAssigned()), 20);
  try {
    for (let i = 0; i < 15; i++) {
      api.create(service(`${prefix}-${i}`));
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(`${successor.name} to lead`, () => successor.ipam.leader(), 5000);
    await until(
      `every ${prefix} Service assigned`,
      () => [...Array(15).keys()].every((i) => ipsOf(`${prefix}-${i}`).length === 1),
      10_000,
    );
  } finally {
    clearInterval(sampler);
  }
  return violations;
}

const ipsOf = (name: string): string[] =>
  (api.get('v1', 'Service', name, 'default')?.status?.loadBalancer?.ingress ?? []).map(
    (i: KubeObject) => i.ip,
  );

beforeAll(async () => {
  api = new FixtureApiServer({ token: TOKEN, bookmarkIntervalMs: 500 });
  const url = await api.start();
  api.create({
    apiVersion: 'nodewarden.io/v1alpha1',
    kind: 'LoadBalancerPool',
    metadata: { name: 'edge' },
    spec: { blocks: [{ cidr: '192.0.2.0/26' }], avoidBuggyIPs: true },
  });
  for (let i = 0; i < 10; i++) api.create(service(`web-${i}`));
  api.create(service('pinned', { spec: { loadBalancerIP: '192.0.2.42' } }));
  api.create(service('theirs', { spec: { loadBalancerClass: 'other.example/lb' } }));
  startNode('node-a', url);
  startNode('node-b', url);
});

afterAll(async () => {
  for (const n of nodes) {
    n.ipam.stop();
    n.watcher.stop();
  }
  await api.stop();
});

describe('LoadBalancer IPAM', () => {
  it('one allocator assigns every Service of ours an address, honours requests, leaves other classes alone', async () => {
    await until(
      'all ours assigned',
      () => [...Array(10).keys()].every((i) => ipsOf(`web-${i}`).length === 1),
      10_000,
    );
    await until('the pinned service', () => ipsOf('pinned').length === 1, 5000);
    expect(ipsOf('pinned')).toEqual(['192.0.2.42']);
    expect(ipsOf('theirs')).toEqual([]);
    expect(doubleAssigned()).toEqual([]);
    expect(nodes.filter((n) => n.ipam.leader()).length).toBe(1);
    // .0 is skipped (avoidBuggyIPs).
    expect(ipsOf('web-0')).toEqual(['192.0.2.1']);
  });

  it('releases with the Service and reuses the address', async () => {
    const freed = ipsOf('web-3')[0]!;
    api.delete('v1', 'Service', 'web-3', 'default');
    api.create(service('late'));
    await until('late assigned', () => ipsOf('late').length === 1, 5000);
    expect(ipsOf('late')).toEqual([freed]);
  });

  it('fails over to the other allocator without ever assigning one address twice', async () => {
    const leader = nodes.find((n) => n.ipam.leader())!;
    const other = nodes.find((n) => n !== leader)!;
    // The leader dies (no release), while Services keep coming.
    leader.ipam.stop();
    leader.watcher.stop();
    expect(await burstWhileWatching('burst', other)).toEqual([]);
    expect(doubleAssigned()).toEqual([]);
    expect(other.ipam.status().problems).toEqual([]);
  });

  it('fences an allocator cut off from its Lease: it stops writing before the other starts', async () => {
    const cutOff = nodes.find((n) => n.ipam.leader())!;
    // The leader is cut off from its Lease (renewals fail) but still sees and writes Services.
    api.failRequests(
      (_method, path, agent) =>
        agent === `nodewarden/${cutOff.name}` && path.endsWith('/leases/nodewarden-ipam'),
    );
    try {
      startNode('node-c', api.url);
      expect(await burstWhileWatching('cut', nodes.at(-1)!)).toEqual([]);
      expect(cutOff.ipam.leader()).toBe(false);
    } finally {
      api.failRequests(undefined);
    }
  });

  it('flags overlapping pools and unmet requests in status', async () => {
    api.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'overlap', namespace: 'metallb-system' },
      spec: { addresses: ['192.0.2.60-192.0.2.70'] },
    });
    api.create(service('wants-taken', { spec: { loadBalancerIP: '192.0.2.42' } }));
    const leader = nodes.find((n) => n.ipam.leader())!;
    await until('the problems', () => leader.ipam.status().problems.length >= 3, 5000);
    expect(leader.ipam.status().problems).toEqual(
      expect.arrayContaining([
        'IPAddressPool/metallb-system/overlap: overlaps LoadBalancerPool/edge',
        'LoadBalancerPool/edge: overlaps IPAddressPool/metallb-system/overlap',
        'Service/default/wants-taken: requested 192.0.2.42 is already assigned to another Service',
      ]),
    );
    expect(ipsOf('wants-taken')).toEqual([]);
  });
});
