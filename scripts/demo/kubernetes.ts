/**
 * The demo's Kubernetes part: three nodes' heartbeats and rendezvous ownership
 * on the fixture API server (a test fixture: no kube-apiserver can be installed
 * here). Shows the spread of 30 LoadBalancer IPs, the API write rate, and a
 * node cut off from the API server losing its IPs to the others within
 * expiry + one renew, never with two owners. Everything is local (127.0.0.1).
 */
import { HEARTBEAT_DEFAULTS } from '../../daemon/config/schema.js';
import { startNodeAgent } from '../../test/k8s-fixture/agents.js';
import { FixtureApiServer } from '../../test/k8s-fixture/server.js';
import { until } from '../../test/k8s-fixture/until.js';

export async function demoKubernetes(out: (line: string) => void): Promise<void> {
  const { renewIntervalMs, expirySeconds } = HEARTBEAT_DEFAULTS;
  const api = new FixtureApiServer({ token: 'demo' });
  const url = await api.start();
  const agents = ['node-a', 'node-b', 'node-c'].map((name) =>
    startNodeAgent(url, 'demo', name, HEARTBEAT_DEFAULTS),
  );
  const ips = Array.from({ length: 30 }, (_, i) => ({
    ip: `192.0.2.${100 + i}`,
    eligible: agents.map((a) => a.name),
  }));
  const owners = (from = agents) => {
    const claims = new Map<string, string[]>();
    for (const a of from)
      for (const ip of a.ownership.mine(ips)) claims.set(ip, [...(claims.get(ip) ?? []), a.name]);
    return claims;
  };
  const perNode = () =>
    agents.map((a) => `${a.name}: ${[...owners()].filter(([, o]) => o.includes(a.name)).length}`).join(', ');
  try {
    await until('three live nodes', () => agents.every((a) => a.ownership.liveNodes().size === 3), 10_000);
    out(`30 IPs over three nodes by rendezvous hashing: ${perNode()}`);
    api.resetCounters();
    await new Promise((r) => setTimeout(r, 3000));
    out(
      `API writes in 3 s: ${api.writeCount()} (one heartbeat per node every ${renewIntervalMs} ms; Cilium: 30 services / 5 s = 6/s)`,
    );
    const ofC = [...owners()].filter(([, o]) => o[0] === 'node-c').map(([ip]) => ip);
    api.failRequests((method, path) => method === 'PUT' && path.endsWith('/nodewarden-node-node-c'));
    out(`node-c can no longer renew its heartbeat; it owned ${ofC.length} IPs`);
    let doubles = 0;
    const took = await until(
      'the failover',
      () => {
        const now = owners();
        doubles += [...now.values()].filter((o) => o.length > 1).length;
        return ofC.every((ip) => (now.get(ip) ?? []).length === 1 && now.get(ip)?.[0] !== 'node-c');
      },
      10_000,
      25,
    );
    out(
      `node-c's IPs moved in ${(took / 1000).toFixed(1)} s (at most expiry ${expirySeconds} s + one renew); IPs with two owners meanwhile: ${doubles}`,
    );
    out(`now: ${perNode()}`);
    if (doubles > 0) throw new Error('demo check failed: an IP had two owners');
  } finally {
    for (const a of agents) await a.stop();
    await api.stop();
  }
}
