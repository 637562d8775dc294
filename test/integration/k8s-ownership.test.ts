/**
 * Three nodes' heartbeats and ownership views on one fixture API server, with
 * the default timing (renew 1 s, expiry 3 s). Needs no namespaces: it runs
 * here because it takes about 15 s of wall time and must not share the CPUs
 * with the parallel unit tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeAgent, startNodeAgent } from '../k8s-fixture/agents.js';
import { FixtureApiServer } from '../k8s-fixture/server.js';
import { until } from '../k8s-fixture/until.js';

const RENEW_MS = 1000;
const EXPIRY_S = 3;
const NODES = ['node-a', 'node-b', 'node-c'];
const IPS = Array.from({ length: 300 }, (_, i) => ({
  ip: `203.0.113.${i % 250}`.concat(i >= 250 ? `:${i}` : ''),
  eligible: NODES,
}));

let api: FixtureApiServer;
let agents: NodeAgent[] = [];

/** Each IP's claimants, from every agent's own view at one instant. */
function claims(from: readonly NodeAgent[]): Map<string, string[]> {
  const now = performance.now();
  const out = new Map<string, string[]>();
  for (const agent of from) {
    for (const ip of agent.ownership.mine(IPS, now)) out.set(ip, [...(out.get(ip) ?? []), agent.name]);
  }
  return out;
}

function doubleOwned(c: Map<string, string[]>): string[] {
  return [...c].filter(([, owners]) => owners.length > 1).map(([ip, owners]) => `${ip}: ${owners.join(',')}`);
}

beforeAll(async () => {
  api = new FixtureApiServer({ token: 't', bookmarkIntervalMs: 1000 });
  const url = await api.start();
  agents = NODES.map((name) =>
    startNodeAgent(url, 't', name, { renewIntervalMs: RENEW_MS, expirySeconds: EXPIRY_S }),
  );
  await until(
    'every node to see all three live',
    () => agents.every((a) => a.ownership.liveNodes().size === 3),
    5000,
  );
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  await api.stop();
});

describe('three nodes: heartbeats and rendezvous ownership', () => {
  it('spreads the IPs, every IP has exactly one owner in steady state, at about one write per node per renew interval', async () => {
    api.resetCounters();
    const started = performance.now();
    let samples = 0;
    while (performance.now() - started < 4000) {
      const c = claims(agents);
      expect(doubleOwned(c)).toEqual([]);
      expect(c.size).toBe(new Set(IPS.map((i) => i.ip)).size);
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    expect(samples).toBeGreaterThan(40);
    const perNode = new Map<string, number>();
    for (const [, [owner]] of claims(agents)) perNode.set(owner!, (perNode.get(owner!) ?? 0) + 1);
    for (const n of NODES) expect(perNode.get(n)).toBeGreaterThan(60); // 100 expected of 300
    const writes = api.writeCount('leases.coordination.k8s.io');
    const rate = writes / seconds;
    expect(rate).toBeGreaterThan(NODES.length * 0.7);
    expect(rate).toBeLessThan(NODES.length * 1.3);
    expect(api.writeCount()).toBe(writes); // nothing else is written
  });

  it('moves a failed node’s IPs within expiry plus one renew interval, never with two owners', async () => {
    const [a, b, c] = agents as [NodeAgent, NodeAgent, NodeAgent];
    const before = claims(agents);
    const ofC = [...before].filter(([, o]) => o[0] === 'node-c').map(([ip]) => ip);
    expect(ofC.length).toBeGreaterThan(0);
    // node-c can no longer renew (partitioned from the API server), but keeps running its view.
    api.failRequests((method, path) => method === 'PUT' && path.endsWith('/nodewarden-node-node-c'));
    let overlaps: string[] = [];
    const moved = await until(
      'node-c’s IPs to move to node-a and node-b in both their views',
      () => {
        const now = claims(agents);
        overlaps = overlaps.concat(doubleOwned(now));
        return ofC.every((ip) => {
          const owners = now.get(ip) ?? [];
          return owners.length === 1 && owners[0] !== 'node-c';
        });
      },
      (EXPIRY_S + 3) * 1000,
    );
    expect(overlaps).toEqual([]);
    expect(moved).toBeLessThanOrEqual(EXPIRY_S * 1000 + RENEW_MS);
    expect(c.heartbeat.holds()).toBe(false);
    // IPs that node-c did not own stayed where they were.
    const after = claims([a, b]);
    for (const [ip, owners] of before) if (owners[0] !== 'node-c') expect(after.get(ip)).toEqual(owners);
    console.log(
      `node-c's ${ofC.length} IPs moved ${Math.round(moved)} ms after its renewals started failing`,
    );

    api.failRequests(undefined);
    await until('node-c back', () => agents.every((x) => x.ownership.liveNodes().size === 3), 5000);
    await until(
      'the original owners back',
      () => {
        const now = claims(agents);
        return doubleOwned(now).length === 0 && ofC.every((ip) => now.get(ip)?.[0] === 'node-c');
      },
      3000,
    );
  });
});
