import { afterEach, describe, expect, it } from 'vitest';
import { type NodeAgent, startNodeAgent } from '../k8s-fixture/agents.js';
import { FixtureApiServer } from '../k8s-fixture/server.js';
import { until } from '../k8s-fixture/until.js';

let api: FixtureApiServer;
let agent: NodeAgent | undefined;

afterEach(async () => {
  await agent?.stop();
  await api.stop();
});

describe('node heartbeat', () => {
  it('creates and renews its Lease, handles a 409 by reading it again, and fences itself when renewals fail', async () => {
    api = new FixtureApiServer({ token: 't', bookmarkIntervalMs: 200 });
    const url = await api.start();
    agent = startNodeAgent(url, 't', 'n1', { renewIntervalMs: 200, expirySeconds: 1 });
    await until('the first renewals', () => agent!.heartbeat.status().renewals >= 2);
    const lease = api.get('coordination.k8s.io/v1', 'Lease', 'nodewarden-node-n1', 'nodewarden')!;
    expect(lease.spec).toMatchObject({ holderIdentity: 'n1', leaseDurationSeconds: 1 });
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease.metadata.labels).toEqual({ 'nodewarden.io/heartbeat': 'true' });
    expect(lease.metadata.annotations).toEqual({ 'nodewarden.io/interfaces-up': 'eth0' });

    // Someone else writes the lease: the next renewal carries a stale resourceVersion and gets 409.
    api.replace({ ...lease, metadata: { ...lease.metadata, annotations: { touched: 'yes' } } });
    const renewals = agent.heartbeat.status().renewals;
    await until('a renewal after the conflict', () => agent!.heartbeat.status().renewals >= renewals + 2);
    expect(agent.heartbeat.status()).toMatchObject({ conflicts: 1, failures: 0, holding: true });
    expect(api.requestCount('update', 'leases.coordination.k8s.io')).toBeGreaterThan(0);

    // Renewals fail (a partition): the node stops holding once its lease would have expired.
    api.failRequests((method, path) => method === 'PUT' && path.endsWith('/nodewarden-node-n1'));
    const failedFrom = performance.now();
    await until('self-fencing', () => !agent!.heartbeat.holds(), 3000);
    const fencedAfter = performance.now() - failedFrom;
    expect(fencedAfter).toBeLessThanOrEqual(1000 + 50);
    expect(agent.heartbeat.status().failures).toBeGreaterThan(0);
    api.failRequests(undefined);
    await until('holding again', () => agent!.heartbeat.holds());
  });

  it('keeps its lease through one failed renewal: the retry comes after a quarter of the interval', async () => {
    api = new FixtureApiServer({ token: 't', bookmarkIntervalMs: 200 });
    const url = await api.start();
    // The next renewal after a failure would come 2.4 s after the last success, past the 2 s expiry.
    agent = startNodeAgent(url, 't', 'n1', { renewIntervalMs: 1200, expirySeconds: 2 });
    await until('holding', () => agent!.heartbeat.holds(), 3000);
    let failed = 0;
    api.failRequests((method, path) => {
      if (method !== 'PUT' || !path.endsWith('/nodewarden-node-n1') || failed > 0) return false;
      failed++;
      return true;
    });
    const renewals = agent.heartbeat.status().renewals;
    let lapses = 0;
    await until(
      'two renewals after the failed one',
      () => {
        if (!agent!.heartbeat.holds()) lapses++;
        return agent!.heartbeat.status().renewals >= renewals + 2;
      },
      6000,
      10,
    );
    expect(failed).toBe(1);
    expect(agent.heartbeat.status().failures).toBe(1);
    expect(lapses).toBe(0);
  });
});
