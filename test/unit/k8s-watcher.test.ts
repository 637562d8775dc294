import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient, RateLimiter } from '../../daemon/sources/kubernetes/client.js';
import { KubernetesWatcher } from '../../daemon/sources/kubernetes/watcher.js';
import { writeFixtureKubeconfig } from '../k8s-fixture/kubeconfig.js';
import { FixtureApiServer, type KubeObject } from '../k8s-fixture/server.js';
import { until } from '../k8s-fixture/until.js';

const TOKEN = 'fixture-token';
let api: FixtureApiServer;
let watcher: KubernetesWatcher;
let changes = 0;

/** Synced, and every reflector's watch is open on the server (so that test hooks reach them). */
async function startAndWatch(): Promise<void> {
  watcher.start();
  await watcher.waitForSync();
  await until('all watches open', () => api.openWatches === watcher.status().resources.length);
}

const service = (name: string, extra: KubeObject = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP', nodePort: 30080 }], ...extra },
});

beforeEach(async () => {
  api = new FixtureApiServer({ token: TOKEN, bookmarkIntervalMs: 100 });
  const url = await api.start();
  const client = new KubeClient({ kubeconfig: writeFixtureKubeconfig(url, TOKEN), qps: 100, burst: 100 });
  changes = 0;
  watcher = new KubernetesWatcher({
    client,
    nodeName: 'n1',
    namespace: 'nodewarden',
    idleTimeoutMs: 1000,
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    onChange: () => changes++,
  });
});
afterEach(async () => {
  watcher.stop();
  await api.stop();
});

describe('Kubernetes watcher against the fixture API server', () => {
  it('keeps slim projections, narrowed by selectors', async () => {
    api.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1', labels: { role: 'edge' } },
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.0.0.1' },
          { type: 'Hostname', address: 'n1' },
        ],
      },
    });
    api.create(
      service('web', { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000, loadBalancerClass: 'x' }),
    );
    api.create(service('internal', { type: 'ClusterIP' }));
    api.create({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      endpoints: [
        { addresses: ['10.1.0.1'], nodeName: 'n1', conditions: { ready: true } },
        { addresses: ['10.1.0.2'], nodeName: 'n1', conditions: { ready: false } },
        { addresses: ['10.1.0.3'], nodeName: 'n2' },
      ],
    });
    api.create({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'unrelated', namespace: 'default' },
      endpoints: [{ addresses: ['10.1.0.9'], nodeName: 'n1' }],
    });
    watcher.start();
    await watcher.waitForSync();
    const state = watcher.state();
    expect(state.self).toEqual({
      name: 'n1',
      labels: { role: 'edge' },
      addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    });
    expect(state.services).toEqual([
      expect.objectContaining({
        name: 'web',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 31000,
        loadBalancerClass: 'x',
        ports: [{ protocol: 'TCP', port: 80, nodePort: 30080 }],
      }),
    ]);
    expect(state.readyEndpoints).toEqual(
      new Map([
        [
          'default/web',
          new Map([
            ['n1', 1],
            ['n2', 1],
          ]),
        ],
      ]),
    );
    expect(watcher.status().synced).toBe(true);
    // CRDs the fixture serves but nobody created: synced and empty.
    expect(state.pools).toEqual([]);
    // The slice without a service label was never sent: the watch is narrowed by selector.
    expect(watcher.endpointSlices.status().objects).toBe(1);
  });

  it('moves a slice version only when a projection changed; a lease renewal moves no planner slice', async () => {
    const lease = (renewTime: string, interfaces: string): KubeObject => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 'nodewarden-node-n2',
        namespace: 'nodewarden',
        labels: { 'nodewarden.io/heartbeat': 'true' },
        annotations: { 'nodewarden.io/interfaces-up': interfaces },
      },
      spec: { holderIdentity: 'n2', leaseDurationSeconds: 2, renewTime },
    });
    api.create(service('web'));
    api.create(lease('2026-01-01T00:00:00.000000Z', 'eth0'));
    await startAndWatch();
    const listed = watcher.versions();
    const heartbeatVersion = watcher.heartbeats.version;
    const state = watcher.state();
    expect(watcher.state().services).toBe(state.services);

    // A renewal: the heartbeats move, the slice the planners read does not.
    const renewed = api.get('coordination.k8s.io/v1', 'Lease', 'nodewarden-node-n2', 'nodewarden')!;
    api.replace({ ...renewed, spec: { ...renewed.spec, renewTime: '2026-01-01T00:00:01.000000Z' } });
    await until('renewal seen', () => watcher.heartbeats.version > heartbeatVersion);
    expect(watcher.versions()).toEqual(listed);
    expect(watcher.state().heartbeats[0]?.renewTimeMs).toBe(Date.parse('2026-01-01T00:00:01Z'));

    // An annotation nodewarden does not keep: an event, and no version moves.
    const before = changes;
    const web = api.get('v1', 'Service', 'web', 'default')!;
    api.replace({ ...web, metadata: { ...web.metadata, annotations: { 'example.com/owner': 'team-a' } } });
    await until('event seen', () => changes > before);
    expect(watcher.versions()).toEqual(listed);
    expect(watcher.state().services).toBe(state.services);

    // A projected field: only the services slice moves, and state() rebuilds that part only.
    const web2 = api.get('v1', 'Service', 'web', 'default')!;
    api.replace({ ...web2, metadata: { ...web2.metadata, labels: { tier: 'edge' } } });
    await until('label seen', () => watcher.versions().services > listed.services);
    expect(watcher.versions()).toEqual({ ...listed, services: listed.services + 1 });
    expect(watcher.state().services).not.toBe(state.services);
    expect(watcher.state().nodes).toBe(state.nodes);

    // New interfaces published with a renewal: the heartbeat members move.
    const current = api.get('coordination.k8s.io/v1', 'Lease', 'nodewarden-node-n2', 'nodewarden')!;
    api.replace({
      ...current,
      metadata: { ...current.metadata, annotations: { 'nodewarden.io/interfaces-up': 'eth0,eth1' } },
    });
    await until('members moved', () => watcher.versions().heartbeatMembers > listed.heartbeatMembers);
  });

  it('resumes a dropped watch from its resourceVersion without listing again', async () => {
    await startAndWatch();
    api.create(service('a'));
    await until('service a', () => watcher.services.items.has('default/a'));
    const lists = api.requestCount('list', 'services');
    const watches = api.requestCount('watch', 'services');
    expect(api.dropWatches()).toBeGreaterThan(0);
    api.create(service('b'));
    await until('service b', () => watcher.services.items.has('default/b'));
    expect(api.requestCount('list', 'services')).toBe(lists);
    expect(api.requestCount('watch', 'services')).toBeGreaterThan(watches);
    expect(watcher.services.status().relists).toBe(0);
  });

  it('lists again after 410 Gone', async () => {
    await startAndWatch();
    api.create(service('a'));
    await until('service a', () => watcher.services.items.has('default/a'));
    const lists = api.requestCount('list', 'services');
    // The watch misses the next changes, and the history that would replay them is compacted.
    api.stallWatches();
    api.create(service('b'));
    api.delete('v1', 'Service', 'a', 'default');
    api.compact();
    api.dropWatches();
    await until(
      'the relist',
      () => watcher.services.items.has('default/b') && !watcher.services.items.has('default/a'),
    );
    expect(api.requestCount('list', 'services')).toBe(lists + 1);
    expect(watcher.services.status().relists).toBe(1);
  });

  it('notices a silently stalled watch within the idle timeout and resumes', async () => {
    await startAndWatch();
    const lists = api.requestCount('list', 'services');
    api.stallWatches();
    const stalledAt = performance.now();
    api.create(service('late'));
    await until('service late', () => watcher.services.items.has('default/late'), 3000);
    const took = performance.now() - stalledAt;
    // Idle timeout (1000 ms) plus one reconnect; bookmarks every 100 ms keep healthy watches from timing out.
    expect(took).toBeLessThan(2000);
    expect(watcher.services.status().idleTimeouts).toBeGreaterThanOrEqual(1);
    expect(api.requestCount('list', 'services')).toBe(lists);
  });

  it('reports an invalid policy in an Event naming the field, and keeps the last good version', async () => {
    const policy = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumClusterwideNetworkPolicy',
      metadata: { name: 'ssh' },
      spec: {
        nodeSelector: {},
        ingress: [{ fromCIDR: ['192.0.2.0/24'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
      },
    };
    const created = api.create(policy);
    watcher.start();
    await watcher.waitForSync();
    expect(watcher.state().hostPolicies.map((p) => p.name)).toEqual(['ssh']);
    api.replace({
      ...created,
      spec: {
        ...policy.spec,
        ingress: [{ fromCIDR: ['192.0.2.0/33'], toPorts: policy.spec.ingress[0]!.toPorts }],
      },
    });
    await until('the event', () => api.list('v1', 'Event').length > 0);
    const [event] = api.list('v1', 'Event');
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'InvalidSpec',
      involvedObject: { kind: 'CiliumClusterwideNetworkPolicy', name: 'ssh' },
      metadata: { namespace: 'default' },
    });
    expect(event!.message).toContain('spec.ingress[0].fromCIDR[0]');
    const state = watcher.state();
    expect(state.hostPolicies).toHaveLength(1);
    expect(state.hostPolicies[0]!.ingress[0]!.peers).toEqual([
      { kind: 'cidr', cidr: '192.0.2.0/24', except: [] },
    ]);
    expect(state.problems.map((p) => p.object)).toEqual(['CiliumClusterwideNetworkPolicy/ssh']);
    await until('the event counted', () => watcher.status().eventsPosted === 1);
  });

  it('validates pools and L2 policies from Cilium and MetalLB kinds', async () => {
    api.create({
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumLoadBalancerIPPool',
      metadata: { name: 'blue' },
      spec: { blocks: [{ cidr: '192.0.2.0/28' }, { start: '2001:db8::10', stop: '2001:db8::20' }] },
    });
    api.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'red', namespace: 'metallb-system' },
      spec: { addresses: ['198.51.100.10-198.51.100.20'], avoidBuggyIPs: true, bogus: 1 },
    });
    api.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: { name: 'all', namespace: 'metallb-system' },
      spec: { ipAddressPools: ['red'], interfaces: ['eth0'] },
    });
    watcher.start();
    await watcher.waitForSync();
    const state = watcher.state();
    expect(state.pools.map((p) => [p.id, p.ranges])).toEqual([
      ['CiliumLoadBalancerIPPool/blue', ['192.0.2.0/28', '2001:db8::10-2001:db8::20']],
    ]);
    expect(state.problems).toEqual([
      expect.objectContaining({ object: 'IPAddressPool/metallb-system/red', path: ['spec'] }),
    ]);
    expect(state.problems[0]!.message).toMatch(/bogus/);
    expect(state.l2Policies).toEqual([
      expect.objectContaining({
        id: 'L2Advertisement/metallb-system/all',
        pools: ['red'],
        interfaces: ['eth0'],
      }),
    ]);
    await until('the event', () => api.list('v1', 'Event').length > 0);
    expect(api.list('v1', 'Event')[0]!.metadata.namespace).toBe('metallb-system');
  });

  it('sets a Valid condition on our own kinds, naming the bad field, and one Event per generation', async () => {
    const pool = api.create({
      apiVersion: 'nodewarden.io/v1alpha1',
      kind: 'LoadBalancerPool',
      metadata: { name: 'edge' },
      spec: { blocks: [{ cidr: '192.0.2.0/28' }], avoidBuggyIPs: true },
    });
    await startAndWatch();
    const condition = () =>
      api
        .get('nodewarden.io/v1alpha1', 'LoadBalancerPool', 'edge')
        ?.status?.conditions?.find((c: KubeObject) => c.type === 'Valid');
    await until('the Valid condition', () => condition()?.status === 'True');
    const current = api.get('nodewarden.io/v1alpha1', 'LoadBalancerPool', 'edge')!;
    api.replace({ ...current, spec: { blocks: [{ cidr: '192.0.2.0/28', start: '192.0.2.1' }] } });
    await until('the condition to turn False', () => condition()?.status === 'False');
    expect(condition()).toMatchObject({ reason: 'InvalidSpec', observedGeneration: 2 });
    expect(condition().message).toContain('spec.blocks[0]: give either cidr or start');
    // The last good pool stays in force.
    expect(watcher.state().pools).toEqual([
      expect.objectContaining({ id: 'LoadBalancerPool/edge', ranges: ['192.0.2.0/28'], avoidBuggyIPs: true }),
    ]);
    await until('the event', () => api.list('v1', 'Event').length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(api.list('v1', 'Event')).toHaveLength(1);
    expect(pool.metadata.generation).toBe(1);
  });

  it('sends the bearer token from the kubeconfig', async () => {
    const url = api.url;
    const wrong = new KubeClient({ kubeconfig: writeFixtureKubeconfig(url, 'wrong'), qps: 10, burst: 10 });
    await expect(wrong.request('GET', '/api/v1/nodes')).rejects.toMatchObject({ code: 401 });
  });
});

describe('RateLimiter', () => {
  it('lets a burst through, then paces requests at the QPS', async () => {
    const limiter = new RateLimiter(20, 5);
    const start = performance.now();
    for (let i = 0; i < 5; i++) await limiter.take();
    const burst = performance.now() - start;
    for (let i = 0; i < 10; i++) await limiter.take();
    const paced = performance.now() - start - burst;
    expect(burst).toBeLessThan(100);
    // 10 more at 20/s need about 500 ms.
    expect(paced).toBeGreaterThan(400);
  });
});
