import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FixtureApiServer, type KubeObject } from '../k8s-fixture/server.js';
import { openWatch } from '../k8s-fixture/watch-stream.js';

let api: FixtureApiServer;
let base: string;

beforeEach(async () => {
  api = new FixtureApiServer({ bookmarkIntervalMs: 100 });
  base = await api.start();
});
afterEach(async () => {
  await api.stop();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { code: res.status, body: (await res.json()) as KubeObject };
}

const service = (name: string, labels: Record<string, string> = {}, ns = 'default'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { type: 'LoadBalancer', ports: [{ port: 80 }] },
});

describe('fixture API server: objects and lists', () => {
  it('creates objects with server-owned metadata and lists them in the List wire format', async () => {
    const created = await call('POST', '/api/v1/namespaces/default/services', service('web'));
    expect(created.code).toBe(201);
    expect(created.body.metadata).toMatchObject({ name: 'web', namespace: 'default', generation: 1 });
    expect(created.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    const list = await call('GET', '/api/v1/services');
    expect(list.body).toMatchObject({ kind: 'ServiceList', apiVersion: 'v1' });
    expect(list.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion);
    expect(list.body.items.map((s: KubeObject) => s.metadata.name)).toEqual(['web']);
    // Built-in list items carry no kind on the wire.
    expect(list.body.items[0].kind).toBeUndefined();
    const again = await call('POST', '/api/v1/namespaces/default/services', service('web'));
    expect(again.code).toBe(409);
    expect(again.body).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });
  });

  it('serves limit/continue pages from one snapshot, and answers 410 for a continue token older than compaction', async () => {
    for (const n of ['a', 'b', 'c', 'd'])
      await call('POST', '/api/v1/namespaces/default/services', service(n));
    const first = await call('GET', '/api/v1/services?limit=2');
    expect(first.body.items.map((s: KubeObject) => s.metadata.name)).toEqual(['a', 'b']);
    expect(first.body.metadata.remainingItemCount).toBe(2);
    await call('DELETE', '/api/v1/namespaces/default/services/c');
    const second = await call('GET', `/api/v1/services?limit=2&continue=${first.body.metadata.continue}`);
    expect(second.body.items.map((s: KubeObject) => s.metadata.name)).toEqual(['c', 'd']);
    expect(second.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    api.compact();
    const expired = await call('GET', `/api/v1/services?limit=2&continue=${first.body.metadata.continue}`);
    expect(expired.code).toBe(410);
    expect(expired.body).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });

  it('lists an exact older version until it is compacted', async () => {
    const a = await call('POST', '/api/v1/namespaces/default/services', service('a'));
    await call('POST', '/api/v1/namespaces/default/services', service('b'));
    const rv = a.body.metadata.resourceVersion;
    const exact = await call('GET', `/api/v1/services?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    expect(exact.body.items.map((s: KubeObject) => s.metadata.name)).toEqual(['a']);
    api.compact();
    const gone = await call('GET', `/api/v1/services?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    expect(gone.code).toBe(410);
    expect(gone.body.message).toMatch(/too old resource version/);
  });

  it('filters by label and field selectors and rejects unsupported fields', async () => {
    await call('POST', '/api/v1/namespaces/default/services', service('a', { tier: 'web', team: 'x' }));
    await call('POST', '/api/v1/namespaces/default/services', service('b', { tier: 'db' }));
    await call('POST', '/api/v1/namespaces/other/services', service('c', { tier: 'web' }, 'other'));
    const names = async (q: string, path = '/api/v1/services') =>
      (await call('GET', `${path}?${q}`)).body.items.map((s: KubeObject) => s.metadata.name);
    expect(await names('labelSelector=tier%3Dweb')).toEqual(['a', 'c']);
    expect(await names('labelSelector=tier%20in%20(web,db),!team')).toEqual(['b', 'c']);
    expect(await names('labelSelector=tier!%3Dweb')).toEqual(['b']);
    expect(await names('fieldSelector=metadata.name%3Db')).toEqual(['b']);
    expect(await names('fieldSelector=metadata.namespace!%3Ddefault')).toEqual(['c']);
    expect(await names('', '/api/v1/namespaces/other/services')).toEqual(['c']);
    const bad = await call('GET', '/api/v1/services?fieldSelector=spec.type%3DLoadBalancer');
    expect(bad.code).toBe(400);
    expect(bad.body.message).toMatch(/field label not supported: spec.type/);
    await call('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { nodeName: 'n1' },
    });
    expect(await names('fieldSelector=spec.nodeName%3Dn1', '/api/v1/pods')).toEqual(['p']);
    expect(await names('fieldSelector=spec.nodeName%3Dn2', '/api/v1/pods')).toEqual([]);
  });
});

describe('fixture API server: writes', () => {
  const lease = (rv?: string): KubeObject => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'nodewarden', ...(rv ? { resourceVersion: rv } : {}) },
    spec: { holderIdentity: 'n1', leaseDurationSeconds: 3 },
  });
  const leases = '/apis/coordination.k8s.io/v1/namespaces/nodewarden/leases';

  it('answers 409 Conflict for a stale resourceVersion on PUT, PATCH and DELETE', async () => {
    const created = await call('POST', leases, lease());
    const rv = created.body.metadata.resourceVersion;
    const updated = await call('PUT', `${leases}/l`, { ...lease(rv), spec: { holderIdentity: 'n2' } });
    expect(updated.code).toBe(200);
    expect(Number(updated.body.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
    expect(updated.body.metadata.generation).toBe(2);
    const stale = await call('PUT', `${leases}/l`, lease(rv));
    expect(stale.code).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect(stale.body.message).toMatch(/the object has been modified/);
    const stalePatch = await call(
      'PATCH',
      `${leases}/l`,
      { metadata: { resourceVersion: rv }, spec: { holderIdentity: 'n3' } },
      'application/merge-patch+json',
    );
    expect(stalePatch.code).toBe(409);
    const patch = await call(
      'PATCH',
      `${leases}/l`,
      { spec: { holderIdentity: 'n3' } },
      'application/merge-patch+json',
    );
    expect(patch.body.spec).toEqual({ holderIdentity: 'n3' });
    const staleDelete = await call('DELETE', `${leases}/l`, { preconditions: { resourceVersion: rv } });
    expect(staleDelete.code).toBe(409);
    expect((await call('GET', `${leases}/missing`)).code).toBe(404);
  });

  it('keeps status and spec apart with the status subresource; a no-op update keeps the version', async () => {
    const svc = (
      await call('POST', '/api/v1/namespaces/default/services', { ...service('s'), status: { x: 1 } })
    ).body;
    expect(svc.status).toBeUndefined();
    const withStatus = await call('PUT', '/api/v1/namespaces/default/services/s/status', {
      ...svc,
      spec: { type: 'ClusterIP' },
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } },
    });
    expect(withStatus.body.spec.type).toBe('LoadBalancer');
    expect(withStatus.body.status.loadBalancer.ingress[0].ip).toBe('192.0.2.1');
    expect(withStatus.body.metadata.generation).toBe(1);
    const main = await call('PUT', '/api/v1/namespaces/default/services/s', {
      ...withStatus.body,
      spec: { type: 'NodePort' },
      status: {},
    });
    expect(main.body.spec.type).toBe('NodePort');
    expect(main.body.status.loadBalancer.ingress[0].ip).toBe('192.0.2.1');
    expect(main.body.metadata.generation).toBe(2);
    const noop = await call('PUT', '/api/v1/namespaces/default/services/s', main.body);
    expect(noop.body.metadata.resourceVersion).toBe(main.body.metadata.resourceVersion);
  });

  it('requires the bearer token when one is configured', async () => {
    const secured = new FixtureApiServer({ token: 'sekret' });
    const url = await secured.start();
    try {
      expect((await fetch(`${url}/api/v1/nodes`)).status).toBe(401);
      const ok = await fetch(`${url}/api/v1/nodes`, { headers: { authorization: 'Bearer sekret' } });
      expect(ok.status).toBe(200);
    } finally {
      await secured.stop();
    }
  });
});

describe('fixture API server: watches', () => {
  it('sends the current state without a version, then changes, and bookmarks when allowed', async () => {
    await call('POST', '/api/v1/namespaces/default/services', service('a'));
    const w = await openWatch(`${base}/api/v1/services?watch=true&allowWatchBookmarks=true`);
    await call('POST', '/api/v1/namespaces/default/services', service('b'));
    await call('DELETE', '/api/v1/namespaces/default/services/a');
    await w.waitFor(3);
    expect(w.events.slice(0, 3).map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED a',
      'ADDED b',
      'DELETED a',
    ]);
    await w.waitFor(4, 1000);
    expect(w.events[3]).toMatchObject({ type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1' } });
    expect(w.events[3]!.object.metadata.resourceVersion).toBe(api.resourceVersion);
    w.close();
  });

  it('resumes from a resourceVersion and answers ERROR 410 after compaction', async () => {
    const a = await call('POST', '/api/v1/namespaces/default/services', service('a'));
    await call('POST', '/api/v1/namespaces/default/services', service('b'));
    const w = await openWatch(
      `${base}/api/v1/services?watch=true&resourceVersion=${a.body.metadata.resourceVersion}`,
    );
    await w.waitFor(1);
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED b']);
    w.close();
    api.compact();
    const old = await openWatch(
      `${base}/api/v1/services?watch=true&resourceVersion=${a.body.metadata.resourceVersion}`,
    );
    await old.ended;
    expect(old.events).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }),
      },
    ]);
  });

  it('turns selector transitions into ADDED and DELETED', async () => {
    const a = (await call('POST', '/api/v1/namespaces/default/services', service('a', { tier: 'db' }))).body;
    const w = await openWatch(
      `${base}/api/v1/services?watch=true&labelSelector=tier%3Dweb&resourceVersion=${a.metadata.resourceVersion}`,
    );
    const moved = (
      await call('PUT', '/api/v1/namespaces/default/services/a', {
        ...a,
        metadata: { ...a.metadata, labels: { tier: 'web' } },
      })
    ).body;
    const changed = (
      await call('PUT', '/api/v1/namespaces/default/services/a', {
        ...moved,
        spec: { ...moved.spec, type: 'NodePort' },
      })
    ).body;
    await call('PUT', '/api/v1/namespaces/default/services/a', {
      ...changed,
      metadata: { ...changed.metadata, labels: {} },
    });
    await w.waitFor(3);
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    w.close();
  });

  it('drops and stalls watches on request, and counts requests', async () => {
    const dropped = await openWatch(`${base}/api/v1/nodes?watch=true`);
    expect(api.dropWatches()).toBe(1);
    await dropped.ended;
    const stalled = await openWatch(`${base}/api/v1/nodes?watch=true&allowWatchBookmarks=true`);
    expect(api.stallWatches()).toBe(1);
    await call('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(stalled.events).toEqual([]);
    expect(api.openWatches).toBe(1);
    stalled.close();
    expect(api.requestCount('watch', 'nodes')).toBe(2);
    expect(api.requestCount('create', 'nodes')).toBe(1);
    expect(api.writeCount('nodes')).toBe(1);
  });
});
