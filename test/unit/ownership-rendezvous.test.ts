import { describe, expect, it } from 'vitest';
import { HeartbeatLiveness } from '../../announcers/ownership/liveness.js';
import {
  eligibleNodes,
  planOwnership,
  rendezvousOwner,
  rendezvousWeight,
} from '../../announcers/ownership/rendezvous.js';
import type { HeartbeatLease } from '../../model/cluster.js';

const ips = Array.from({ length: 1000 }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
const all = (list: string[]) => ips.map((ip) => ({ ip, eligible: list }));

describe('rendezvous ownership planner', () => {
  it('is deterministic and independent of candidate order', () => {
    for (const ip of ips.slice(0, 50)) {
      expect(rendezvousOwner(ip, nodes)).toBe(rendezvousOwner(ip, [...nodes].reverse()));
    }
    expect(rendezvousWeight('192.0.2.1', 'n1')).toBe(rendezvousWeight('192.0.2.1', 'n1'));
    expect(rendezvousWeight('192.0.2.1', 'n1')).not.toBe(rendezvousWeight('192.0.2.1', 'n2'));
  });

  it('spreads IPs evenly', () => {
    const owners = planOwnership(all(nodes), new Set(nodes));
    const counts = new Map<string, number>();
    for (const o of owners.values()) counts.set(o, (counts.get(o) ?? 0) + 1);
    for (const n of nodes) expect(counts.get(n)).toBeGreaterThan(150); // 200 expected of 1000
  });

  it('moves only the removed node’s IPs when a node leaves, and only IPs to the new node when one joins', () => {
    const before = planOwnership(all(nodes), new Set(nodes));
    const after = planOwnership(all(nodes), new Set(nodes.filter((n) => n !== 'n3')));
    for (const ip of ips) {
      if (before.get(ip) !== 'n3') expect(after.get(ip)).toBe(before.get(ip));
      else expect(after.get(ip)).not.toBe('n3');
    }
    const joined = planOwnership(all([...nodes, 'n6']), new Set([...nodes, 'n6']));
    for (const ip of ips) if (joined.get(ip) !== 'n6') expect(joined.get(ip)).toBe(before.get(ip));
  });

  it('picks only live, eligible nodes, and leaves an IP unowned without one', () => {
    const owners = planOwnership(
      [
        { ip: '192.0.2.1', eligible: ['n1', 'n2'] },
        { ip: '192.0.2.2', eligible: ['n4'] },
      ],
      new Set(['n2', 'n3']),
    );
    expect(owners).toEqual(new Map([['192.0.2.1', 'n2']]));
  });

  it('makes eligible only nodes matching a selector, with a matching interface up, and a local endpoint for Local', () => {
    const facts = [
      { name: 'a', labels: { zone: 'x' }, interfacesUp: ['eth0'] },
      { name: 'b', labels: { zone: 'x' }, interfacesUp: ['lo'] },
      { name: 'c', labels: { zone: 'y' }, interfacesUp: ['eth1'] },
      { name: 'd', labels: { zone: 'x' }, interfacesUp: ['eth1'] },
    ];
    const zoneX = { matchLabels: { zone: 'x' }, matchExpressions: [] };
    expect(
      eligibleNodes(facts, {
        nodeSelectors: [zoneX],
        interfaces: ['eth[0-9]+'],
        externalTrafficPolicy: 'Cluster',
      }),
    ).toEqual(['a', 'd']);
    expect(
      eligibleNodes(facts, {
        nodeSelectors: [],
        interfaces: ['eth1'],
        externalTrafficPolicy: 'Local',
        readyByNode: new Map([
          ['c', 2],
          ['d', 0],
        ]),
      }),
    ).toEqual(['c']);
    expect(
      eligibleNodes(facts, { nodeSelectors: [], interfaces: [], externalTrafficPolicy: 'Cluster' }),
    ).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('heartbeat liveness', () => {
  const lease = (node: string, rv: string, renewTimeMs: number): HeartbeatLease => ({
    node,
    holder: node,
    renewTimeMs,
    durationSeconds: 3,
    resourceVersion: rv,
    interfacesUp: [],
  });

  it('counts expiry from when a renewal was seen, not from the renewing node’s clock', () => {
    const l = new HeartbeatLiveness();
    const wall = 1_700_000_000_000;
    // n2's clock runs 2 s behind: its renewTime looks old, but a change seen now is fresh.
    l.observe([lease('n1', '1', wall), lease('n2', '2', wall - 2000)], 0, wall);
    expect(l.live(0)).toEqual(new Set(['n1', 'n2']));
    expect(l.live(1500)).toEqual(new Set(['n1']));
    l.observe([lease('n1', '1', wall), lease('n2', '3', wall - 1000)], 1500, wall + 1500);
    expect(l.live(4000)).toEqual(new Set(['n2']));
    expect(l.nextExpiry(4000)).toBe(4500);
  });

  it('treats a lease already expired at first sight as dead, and a deleted lease as gone', () => {
    const l = new HeartbeatLiveness();
    const wall = 1_700_000_000_000;
    l.observe([lease('n1', '1', wall - 10_000), lease('n2', '2', wall)], 0, wall);
    expect(l.live(0)).toEqual(new Set(['n2']));
    l.observe([], 10, wall + 10);
    expect(l.live(10)).toEqual(new Set());
  });
});
