import { describe, expect, it } from 'vitest';
import { type ClusterL2Input, planClusterL2 } from '../../announcers/l2/cluster.js';
import { planL2 } from '../../announcers/l2/plan.js';
import type { L2AnnouncementPolicy, ServiceInfo } from '../../model/cluster.js';

const node = (name: string, labels: Record<string, string> = {}) => ({ name, labels, addresses: [] });
const lease = (name: string, interfacesUp: string[]) => ({
  node: name,
  holder: name,
  renewTimeMs: 0,
  durationSeconds: 3,
  resourceVersion: '1',
  interfacesUp,
});
const service = (name: string, ips: string[], extra: Partial<ServiceInfo> = {}): ServiceInfo => ({
  namespace: 'default',
  name,
  labels: { app: name },
  annotations: {},
  clusterIPs: [],
  ingressIPs: ips,
  ports: [{ protocol: 'TCP', port: 80 }],
  externalTrafficPolicy: 'Cluster',
  ...extra,
});
const cilium = (extra: Partial<L2AnnouncementPolicy> = {}): L2AnnouncementPolicy => ({
  id: 'CiliumL2AnnouncementPolicy/all',
  nodeSelectors: [],
  interfaces: ['eth.*'],
  pools: [],
  poolSelectors: [],
  loadBalancerIPs: true,
  externalIPs: false,
  ...extra,
});

function input(extra: Partial<ClusterL2Input> = {}): ClusterL2Input {
  return {
    nodeName: 'n1',
    nodes: [node('n1', { zone: 'a' }), node('n2', { zone: 'a' }), node('n3', { zone: 'b' })],
    services: [service('web', ['192.0.2.10', '2001:db8::10'])],
    readyEndpoints: new Map(),
    heartbeats: [lease('n1', ['eth0']), lease('n2', ['eth0']), lease('n3', ['eth1'])],
    policies: [cilium()],
    pools: [],
    live: new Set(['n1', 'n2', 'n3']),
    ...extra,
  };
}

const ownerOf = (plan: ReturnType<typeof planClusterL2>, ip: string) =>
  plan.ips.find((i) => i.ip === ip)?.owner;

describe('L2 announcements from cluster policies', () => {
  it('gives every selected ingress IP one owner that all nodes agree on', () => {
    const ips = Array.from({ length: 60 }, (_, i) => `198.51.100.${i + 1}`);
    const plans = ['n1', 'n2', 'n3'].map((n) =>
      planClusterL2(input({ nodeName: n, services: [service('many', ips)] })),
    );
    const owners = new Set<string>();
    for (const ip of ips) {
      const seen = plans.map((p) => ownerOf(p, ip));
      expect(new Set(seen).size).toBe(1);
      owners.add(seen[0]!);
      expect(plans.filter((p) => p.owned.has(ip))).toHaveLength(1);
    }
    expect([...owners].sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('anchors interface patterns and maps onto planL2', () => {
    const plan = planClusterL2(input({ live: new Set(['n1']) }));
    expect(plan.announcements).toEqual([
      { ips: ['192.0.2.10'], interfaces: ['^(?:eth.*)$'] },
      { ips: ['2001:db8::10'], interfaces: ['^(?:eth.*)$'] },
    ]);
    expect([...plan.owned].sort()).toEqual(['192.0.2.10', '2001:db8::10']);
    const facts = (name: string, ifindex: number) => ({
      name,
      ifindex,
      mac: '02:00:00:00:00:01',
      up: true,
      noarp: false,
      bondSlave: false,
      ethernet: true,
    });
    const l2 = planL2(plan.announcements, plan.owned, [facts('eth0', 2), facts('veth-eth0', 3)]);
    expect(l2.entries.map((e) => `${e.ifname}/${e.ip}`)).toEqual(['eth0/192.0.2.10', 'eth0/2001:db8::10']);
  });

  it('only nodes that match the node selector and have a matching interface up are eligible', () => {
    const plan = planClusterL2(
      input({
        policies: [cilium({ nodeSelectors: [{ matchLabels: { zone: 'a' }, matchExpressions: [] }] })],
      }),
    );
    expect(plan.ips.map((i) => i.eligible)).toEqual([
      ['n1', 'n2'],
      ['n1', 'n2'],
    ]);
    // n2's interface went down (its heartbeat says so): n1 owns everything.
    const down = planClusterL2(
      input({ heartbeats: [lease('n1', ['eth0']), lease('n2', []), lease('n3', [])] }),
    );
    expect(down.ips.every((i) => i.owner === 'n1' && i.eligible.join() === 'n1')).toBe(true);
  });

  it('a node that is not live (or fenced itself) owns nothing', () => {
    const plan = planClusterL2(input({ live: new Set(['n2', 'n3']) }));
    expect(plan.owned.size).toBe(0);
    expect(plan.ips.every((i) => i.owner === 'n2' || i.owner === 'n3')).toBe(true);
    // It still knows its announcements: taking an IP over needs only the owned set.
    expect(plan.announcements).toHaveLength(2);
    const none = planClusterL2(input({ live: new Set() }));
    expect(none.ips.every((i) => i.owner === undefined)).toBe(true);
  });

  it('externalTrafficPolicy Local needs a ready local endpoint', () => {
    const plan = planClusterL2(
      input({
        services: [service('local', ['192.0.2.20'], { externalTrafficPolicy: 'Local' })],
        readyEndpoints: new Map([['default/local', new Map([['n3', 1]])]]),
        heartbeats: [lease('n1', ['eth0']), lease('n2', ['eth0']), lease('n3', ['eth0'])],
      }),
    );
    expect(plan.ips).toEqual([
      {
        ip: '192.0.2.20',
        services: ['default/local'],
        policies: ['CiliumL2AnnouncementPolicy/all'],
        eligible: ['n3'],
        owner: 'n3',
      },
    ]);
    expect(plan.announcements).toEqual([]);
  });

  it('applies service selectors, the loadBalancerIPs flag and MetalLB pool names', () => {
    const services = [service('web', ['192.0.2.10']), service('db', ['203.0.113.5'])];
    const bySelector = planClusterL2(
      input({
        services,
        policies: [cilium({ serviceSelector: { matchLabels: { app: 'db' }, matchExpressions: [] } })],
      }),
    );
    expect(bySelector.ips.map((i) => i.ip)).toEqual(['203.0.113.5']);
    const off = planClusterL2(input({ services, policies: [cilium({ loadBalancerIPs: false })] }));
    expect(off.ips).toEqual([]);
    const metallb = planClusterL2(
      input({
        services,
        policies: [cilium({ id: 'L2Advertisement/metallb-system/l2', interfaces: [], pools: ['lan'] })],
        pools: [
          {
            id: 'IPAddressPool/metallb-system/lan',
            ranges: ['192.0.2.0/25'],
            autoAssign: true,
            avoidBuggyIPs: false,
            disabled: false,
          },
          {
            id: 'IPAddressPool/metallb-system/dmz',
            ranges: ['203.0.113.0-203.0.113.9'],
            autoAssign: true,
            avoidBuggyIPs: false,
            disabled: false,
          },
        ],
      }),
    );
    expect(metallb.ips.map((i) => i.ip)).toEqual(['192.0.2.10']);
    // No interfaces in the advertisement: every interface (planL2 still skips unusable ones).
    expect(metallb.announcements).toEqual([{ ips: ['192.0.2.10'], interfaces: ['^.*$'] }]);
  });

  it('unions the interfaces of several policies under which this node is eligible', () => {
    const plan = planClusterL2(
      input({
        services: [service('web', ['192.0.2.10'])],
        heartbeats: [lease('n1', ['eth0', 'bond0']), lease('n2', ['eth0']), lease('n3', ['eth1'])],
        policies: [
          cilium(),
          cilium({ id: 'L2Announcement/bonds', interfaces: ['bond0'] }),
          cilium({
            id: 'L2Announcement/zone-b',
            interfaces: ['eth1'],
            nodeSelectors: [{ matchLabels: { zone: 'b' }, matchExpressions: [] }],
          }),
        ],
      }),
    );
    expect(plan.announcements).toEqual([{ ips: ['192.0.2.10'], interfaces: ['^(?:bond0)$', '^(?:eth.*)$'] }]);
    expect(plan.ips[0]!.eligible).toEqual(['n1', 'n2', 'n3']);
  });
});
