import { describe, expect, it } from 'vitest';
import {
  advertisableAddresses,
  type ClusterBgpAdvertisement,
  type ClusterBgpInput,
  clusterBgpConfig,
} from '../../daemon/bgp/from-cluster.js';
import { planBgp } from '../../daemon/bgp/plan.js';
import { bgpPeerSchema, bgpSchema } from '../../daemon/config/schema.js';
import { sampleService } from '../support/services.js';

const base = bgpSchema.parse({ asn: 64512, routerID: '10.0.0.1' });
const torA = bgpPeerSchema.parse({ name: 'tor-a', peerAddress: '10.0.0.254', peerASN: 64500 });
const torB = bgpPeerSchema.parse({ name: 'tor-b', peerAddress: '10.0.1.254', peerASN: 64500 });

const ad = (over: Partial<ClusterBgpAdvertisement> = {}): ClusterBgpAdvertisement => ({
  id: 'BGPAdvertisement/metallb-system/all',
  pools: [],
  poolSelectors: [],
  nodeSelectors: [],
  peers: [],
  communities: [],
  aggregationLength: 32,
  aggregationLengthV6: 128,
  ...over,
});

const web = sampleService({
  loadBalancerIPs: ['192.0.2.10', '2001:db8::10'],
  externalIPs: ['203.0.113.7'],
  externalTrafficPolicy: 'Local',
  localReadyEndpoints: 1,
});

const input = (over: Partial<ClusterBgpInput> = {}): ClusterBgpInput => ({
  services: [web],
  pools: [
    { name: 'public', labels: { tier: 'public' }, ranges: ['192.0.2.0/24', '2001:db8::/64'] },
    { name: 'edge', labels: {}, ranges: ['203.0.113.1-203.0.113.9'] },
  ],
  advertisements: [ad()],
  peers: [torA, torB],
  nodeLabels: { zone: 'a' },
  ...over,
});

const routes = (i: ClusterBgpInput) =>
  planBgp(clusterBgpConfig(base, i), { file: 'config.yaml', hostAddresses: [], readSecret: () => '' }).routes;

describe('clusterBgpConfig', () => {
  it('advertises LoadBalancer IPs and externalIPs as host routes to every BGPPeer', () => {
    expect(routes(input())).toEqual([
      { prefix: '192.0.2.10/32' },
      { prefix: '2001:db8::10/128' },
      { prefix: '203.0.113.7/32' },
    ]);
    expect(clusterBgpConfig(base, input()).peers.map((p) => p.name)).toEqual(['tor-a', 'tor-b']);
  });

  it('withdraws an externalTrafficPolicy Local service without a ready local endpoint, not a Cluster one', () => {
    expect(routes(input({ services: [{ ...web, localReadyEndpoints: 0 }] }))).toEqual([]);
    const cluster = { ...web, externalTrafficPolicy: 'Cluster' as const, localReadyEndpoints: 0 };
    expect(advertisableAddresses([cluster])).toEqual(['192.0.2.10', '2001:db8::10', '203.0.113.7']);
  });

  it('selects addresses by pool name and pool selector, and sets peers, communities, localPref, aggregation', () => {
    const r = routes(
      input({
        advertisements: [
          ad({ id: 'a/by-name', pools: ['edge'], peers: ['tor-b'], communities: ['65000:1'] }),
          ad({
            id: 'a/by-label',
            poolSelectors: [{ matchLabels: { tier: 'public' }, matchExpressions: [] }],
            localPref: 200,
            aggregationLength: 24,
          }),
        ],
      }),
    );
    expect(r).toEqual([
      { prefix: '192.0.2.0/24', localPref: 200 },
      { prefix: '2001:db8::10/128', localPref: 200 },
      { prefix: '203.0.113.7/32', communities: ['65000:1'], peers: ['10.0.1.254'] },
    ]);
  });

  it('applies an advertisement only on nodes its nodeSelectors match, and not to missing peers', () => {
    expect(
      routes(
        input({
          advertisements: [ad({ nodeSelectors: [{ matchLabels: { zone: 'b' }, matchExpressions: [] }] })],
        }),
      ),
    ).toEqual([]);
    expect(
      routes(
        input({
          advertisements: [ad({ nodeSelectors: [{ matchLabels: { zone: 'a' }, matchExpressions: [] }] })],
        }),
      ),
    ).toHaveLength(3);
    expect(routes(input({ advertisements: [ad({ peers: ['tor-gone'] })] }))).toEqual([]);
  });

  it('keeps the config file’s peers and static prefixes, and its peer wins over a BGPPeer with the same address', () => {
    const withStatic = bgpSchema.parse({
      asn: 64512,
      routerID: '10.0.0.1',
      peers: [{ name: 'from-file', peerAddress: '10.0.0.254', peerASN: 64999 }],
      advertisements: [{ prefixes: ['198.51.100.0/24'] }],
    });
    const config = clusterBgpConfig(withStatic, input());
    expect(config.peers.map((p) => [p.name, p.peerASN])).toEqual([
      ['from-file', 64999],
      ['tor-b', 64500],
    ]);
    expect(config.advertisements.map((a) => a.prefixes)).toEqual([
      ['198.51.100.0/24'],
      ['192.0.2.10', '2001:db8::10', '203.0.113.7'],
    ]);
  });
});
