import { describe, expect, it } from 'vitest';
import { selectablePool } from '../../announcers/ipam/pool-selection.js';
import { clusterBgpConfig } from '../../daemon/bgp/from-cluster.js';
import { bgpSchema } from '../../daemon/config/schema.js';
import { projectBgpAdvertisement } from '../../daemon/sources/kubernetes/bgp-projections.js';
import type { KubeObject } from '../../daemon/sources/kubernetes/client.js';
import { projectL2Policy, projectPool } from '../../daemon/sources/kubernetes/projections.js';
import type { Projection } from '../../daemon/sources/kubernetes/reflector.js';
import { sampleService } from '../support/services.js';

const value = <T>(p: Projection<T>): T => {
  if (p.ok !== true) throw new Error(`expected a projection, got ${JSON.stringify(p)}`);
  return p.value;
};
const problems = <T>(p: Projection<T>) => {
  if (p.ok !== false) throw new Error(`expected problems, got ${JSON.stringify(p)}`);
  return p.problems.map((q) => ({ object: q.object, path: q.path.join('.'), message: q.message }));
};

const metallbPool: KubeObject = {
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { namespace: 'metallb-system', name: 'lan', labels: { tier: 'lan', zone: 'a' } },
  spec: { addresses: ['192.0.2.0/25'] },
};
const ciliumPool: KubeObject = {
  apiVersion: 'cilium.io/v2alpha1',
  kind: 'CiliumLoadBalancerIPPool',
  metadata: { name: 'dmz', labels: { tier: 'dmz' } },
  spec: { blocks: [{ cidr: '203.0.113.0/28' }] },
};
const ourPool: KubeObject = {
  apiVersion: 'nodewarden.io/v1alpha1',
  kind: 'LoadBalancerPool',
  metadata: { name: 'ops' },
  spec: { blocks: [{ start: '198.51.100.1', stop: '198.51.100.9' }] },
};

const l2Advertisement = (spec: Record<string, unknown>): KubeObject => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'L2Advertisement',
  metadata: { namespace: 'metallb-system', name: 'l2' },
  spec,
});

const bgpAdvertisement = (spec: Record<string, unknown>) =>
  projectBgpAdvertisement({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'BGPAdvertisement',
    metadata: { namespace: 'metallb-system', name: 'edge' },
    spec,
  });

describe('pool labels', () => {
  it("keeps metadata.labels of MetalLB's, Cilium's and our pools", () => {
    expect(value(projectPool(metallbPool))).toMatchObject({
      id: 'IPAddressPool/metallb-system/lan',
      labels: { tier: 'lan', zone: 'a' },
    });
    expect(value(projectPool(ciliumPool))).toMatchObject({
      id: 'CiliumLoadBalancerIPPool/dmz',
      labels: { tier: 'dmz' },
    });
    expect(value(projectPool(ourPool))).toMatchObject({ id: 'LoadBalancerPool/ops', labels: {} });
  });

  it('BGPAdvertisement ipAddressPoolSelectors choose pools by the projected labels', () => {
    const pools = [metallbPool, ciliumPool, ourPool].map((o) => selectablePool(value(projectPool(o))));
    const ad = value(
      bgpAdvertisement({
        ipAddressPools: ['ops'],
        ipAddressPoolSelectors: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['dmz'] }] }],
      }),
    );
    const services = [
      sampleService({ loadBalancerIPs: ['192.0.2.10'] }),
      sampleService({ name: 'b', loadBalancerIPs: ['203.0.113.5'], externalIPs: ['198.51.100.3'] }),
    ];
    const config = clusterBgpConfig(bgpSchema.parse({ asn: 64512, routerID: '10.0.0.1' }), {
      services,
      pools,
      advertisements: [ad],
      peers: [],
      nodeLabels: {},
    });
    expect(config.advertisements.map((a) => a.prefixes)).toEqual([['198.51.100.3', '203.0.113.5']]);
  });
});

describe('L2 policy projections', () => {
  it('MetalLB L2Advertisement: pool names and pool selectors, ingress IPs only', () => {
    expect(
      value(
        projectL2Policy(
          l2Advertisement({
            ipAddressPools: ['lan'],
            ipAddressPoolSelectors: [{ matchLabels: { zone: 'a' } }],
          }),
        ),
      ),
    ).toMatchObject({
      pools: ['lan'],
      poolSelectors: [{ matchLabels: { zone: 'a' }, matchExpressions: [] }],
      loadBalancerIPs: true,
      externalIPs: false,
    });
  });

  it('CiliumL2AnnouncementPolicy: both flags default to false, as in Cilium', () => {
    const policy = (spec: Record<string, unknown>) =>
      value(
        projectL2Policy({
          apiVersion: 'cilium.io/v2alpha1',
          kind: 'CiliumL2AnnouncementPolicy',
          metadata: { name: 'p' },
          spec,
        }),
      );
    expect(policy({})).toMatchObject({
      loadBalancerIPs: false,
      externalIPs: false,
      pools: [],
      poolSelectors: [],
    });
    expect(policy({ externalIPs: true })).toMatchObject({ loadBalancerIPs: false, externalIPs: true });
  });

  it('our L2Announcement: pools, poolSelectors, loadBalancerIPs on and externalIPs off by default', () => {
    const ours = (spec: Record<string, unknown>) =>
      projectL2Policy({
        apiVersion: 'nodewarden.io/v1alpha1',
        kind: 'L2Announcement',
        metadata: { name: 'a' },
        spec,
      });
    expect(value(ours({ pools: ['ops'], poolSelectors: [{ matchLabels: { tier: 'dmz' } }] }))).toMatchObject({
      id: 'L2Announcement/a',
      pools: ['ops'],
      poolSelectors: [{ matchLabels: { tier: 'dmz' }, matchExpressions: [] }],
      loadBalancerIPs: true,
      externalIPs: false,
    });
    expect(value(ours({ externalIPs: true, loadBalancerIPs: false }))).toMatchObject({
      loadBalancerIPs: false,
      externalIPs: true,
    });
    expect(problems(ours({ externalIPs: 'yes' }))).toEqual([
      expect.objectContaining({ object: 'L2Announcement/a', path: 'spec.externalIPs' }),
    ]);
  });

  it('names the object and the field path of a bad pool selector', () => {
    expect(
      problems(
        projectL2Policy(
          l2Advertisement({
            ipAddressPoolSelectors: [
              { matchLabels: { tier: 'lan' } },
              { matchExpressions: [{ key: 'tier', operator: 'In' }] },
              { matchExpressions: [{ key: 'tier', operator: 'Exists', values: ['x'] }] },
              { matchExpressions: [{ key: 'tier', operator: 'Equals', values: ['x'] }] },
              { matchLabels: { tier: 'not a value' } },
              { matchNames: ['lan'] },
            ],
          }),
        ),
      ),
    ).toEqual([
      {
        object: 'L2Advertisement/metallb-system/l2',
        path: 'spec.ipAddressPoolSelectors.1.matchExpressions.0.values',
        message: 'must list at least one value for operator In',
      },
      {
        object: 'L2Advertisement/metallb-system/l2',
        path: 'spec.ipAddressPoolSelectors.2.matchExpressions.0.values',
        message: 'must be empty for operator Exists',
      },
      expect.objectContaining({ path: 'spec.ipAddressPoolSelectors.3.matchExpressions.0.operator' }),
      expect.objectContaining({ path: 'spec.ipAddressPoolSelectors.4.matchLabels.tier' }),
      expect.objectContaining({
        path: 'spec.ipAddressPoolSelectors.5',
        message: expect.stringMatching(/matchNames/),
      }),
    ]);
    const bgp = problems(
      bgpAdvertisement({
        ipAddressPoolSelectors: [{ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: [] }] }],
      }),
    );
    expect(bgp).toEqual([
      {
        object: 'BGPAdvertisement/metallb-system/edge',
        path: 'spec.ipAddressPoolSelectors.0.matchExpressions.0.values',
        message: 'must list at least one value for operator NotIn',
      },
    ]);
    const ours = problems(
      projectL2Policy({
        apiVersion: 'nodewarden.io/v1alpha1',
        kind: 'L2Announcement',
        metadata: { name: 'a' },
        spec: { poolSelectors: [{ matchExpressions: [{ key: '', operator: 'Exists' }] }] },
      }),
    );
    expect(ours).toEqual([
      expect.objectContaining({
        object: 'L2Announcement/a',
        path: 'spec.poolSelectors.0.matchExpressions.0.key',
      }),
    ]);
  });
});
