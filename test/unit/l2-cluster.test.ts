import { describe, expect, it } from 'vitest';
import { type ClusterL2Input, planClusterL2 } from '../../announcers/l2/cluster.js';
import { planL2 } from '../../announcers/l2/plan.js';
import type { L2AnnouncementPolicy, LoadBalancerPool, ServiceInfo } from '../../model/cluster.js';

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

const pool = (id: string, ranges: string[], labels: Record<string, string> = {}): LoadBalancerPool => ({
  id,
  labels,
  ranges,
  autoAssign: true,
  avoidBuggyIPs: false,
  disabled: false,
});
const selector = (matchLabels: Record<string, string>) => ({ matchLabels, matchExpressions: [] });

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
          pool('IPAddressPool/metallb-system/lan', ['192.0.2.0/25']),
          pool('IPAddressPool/metallb-system/dmz', ['203.0.113.0-203.0.113.9']),
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

  it('selects by pool name OR pool labels (MetalLB), both empty meaning every address', () => {
    const services = [
      service('web', ['192.0.2.10']),
      service('db', ['203.0.113.5']),
      service('ops', ['198.51.100.7', '2001:db8:7::7']),
      service('stray', ['100.64.0.1']),
    ];
    const pools = [
      pool('IPAddressPool/metallb-system/lan', ['192.0.2.0/25'], { tier: 'lan' }),
      pool('CiliumLoadBalancerIPPool/dmz', ['203.0.113.0-203.0.113.9'], { tier: 'dmz', zone: 'a' }),
      pool('LoadBalancerPool/ops', ['198.51.100.0/24', '2001:db8:7::/64'], { tier: 'ops' }),
    ];
    const l2 = (over: Partial<L2AnnouncementPolicy>) =>
      planClusterL2(
        input({ services, pools, policies: [cilium({ id: 'L2Advertisement/x/l2', ...over })] }),
      ).ips.map((i) => i.ip);
    expect(l2({ poolSelectors: [selector({ zone: 'a' })] })).toEqual(['203.0.113.5']);
    expect(l2({ pools: ['lan'], poolSelectors: [selector({ tier: 'ops' })] })).toEqual([
      '192.0.2.10',
      '198.51.100.7',
      '2001:db8:7::7',
    ]);
    // Several selectors: any one matching chooses the pool; matchExpressions count too.
    const notLan = {
      matchLabels: {},
      matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['lan'] }],
    };
    expect(l2({ poolSelectors: [notLan] })).toEqual(['198.51.100.7', '2001:db8:7::7', '203.0.113.5']);
    // A selector that matches no pool chooses nothing (it does not fall back to every pool).
    expect(l2({ poolSelectors: [selector({ tier: 'none' })] })).toEqual([]);
    // The empty selector matches every pool, but not addresses outside all pools.
    expect(l2({ poolSelectors: [selector({})] })).toEqual([
      '192.0.2.10',
      '198.51.100.7',
      '2001:db8:7::7',
      '203.0.113.5',
    ]);
    // Neither names nor selectors: every address, in a pool or not.
    expect(l2({})).toHaveLength(5);
  });

  it('announces spec.externalIPs under the externalIPs flag, ingress IPs under loadBalancerIPs (Cilium)', () => {
    const services = [
      service('web', ['192.0.2.10'], { externalIPs: ['198.51.100.20', '192.0.2.10'] }),
      service('ext', [], { externalIPs: ['2001:0db8:0:0::20'] }),
    ];
    const ips = (over: Partial<L2AnnouncementPolicy>) =>
      planClusterL2(input({ services, policies: [cilium(over)] })).ips.map((i) => [i.ip, i.services]);
    expect(ips({})).toEqual([['192.0.2.10', ['default/web']]]);
    expect(ips({ loadBalancerIPs: false, externalIPs: true })).toEqual([
      ['192.0.2.10', ['default/web']],
      ['198.51.100.20', ['default/web']],
      ['2001:db8::20', ['default/ext']],
    ]);
    expect(ips({ externalIPs: true })).toEqual([
      ['192.0.2.10', ['default/web']],
      ['198.51.100.20', ['default/web']],
      ['2001:db8::20', ['default/ext']],
    ]);
    expect(ips({ loadBalancerIPs: false, externalIPs: false })).toEqual([]);
    // The service selector applies to external IPs as well.
    expect(
      ips({ externalIPs: true, serviceSelector: { matchLabels: { app: 'ext' }, matchExpressions: [] } }),
    ).toEqual([['2001:db8::20', ['default/ext']]]);
    // Owned and announced like an ingress IP.
    const plan = planClusterL2(
      input({
        services,
        live: new Set(['n1']),
        policies: [cilium({ loadBalancerIPs: false, externalIPs: true })],
      }),
    );
    expect([...plan.owned].sort()).toEqual(['192.0.2.10', '198.51.100.20', '2001:db8::20']);
  });

  it('applies pool choices to external IPs too (our L2Announcement)', () => {
    const services = [service('web', ['192.0.2.10'], { externalIPs: ['198.51.100.20', '203.0.113.1'] })];
    const plan = planClusterL2(
      input({
        services,
        pools: [pool('LoadBalancerPool/ext', ['198.51.100.0/24'], { kind: 'external' })],
        policies: [
          cilium({
            id: 'L2Announcement/ext',
            externalIPs: true,
            poolSelectors: [selector({ kind: 'external' })],
          }),
        ],
      }),
    );
    expect(plan.ips.map((i) => i.ip)).toEqual(['198.51.100.20']);
  });
});
