import { describe, expect, it } from 'vitest';
import { projectBgpAdvertisement, projectBgpPeer } from '../../daemon/sources/kubernetes/bgp-projections.js';

const peer = (spec: Record<string, unknown>) =>
  projectBgpPeer({
    apiVersion: 'metallb.io/v1beta2',
    kind: 'BGPPeer',
    metadata: { namespace: 'metallb-system', name: 'tor-a' },
    spec,
  });

describe('BGPPeer projection', () => {
  it('takes MetalLB’s fields into the config file’s peer form, named by metadata.name', () => {
    const r = peer({
      myASN: 64512,
      peerASN: 64500,
      peerAddress: '10.0.0.254',
      holdTime: '1m30s',
      ebgpMultiHop: true,
      nodeSelectors: [{ matchLabels: { rack: 'r1' } }],
    });
    expect(r).toMatchObject({
      ok: true,
      value: {
        peer: {
          name: 'tor-a',
          myASN: 64512,
          peerASN: 64500,
          peerAddress: '10.0.0.254',
          holdTime: 90,
          peerPort: 179,
          ebgpMultiHop: true,
        },
        nodeSelectors: [{ matchLabels: { rack: 'r1' }, matchExpressions: [] }],
      },
    });
  });

  it('names the object and field of a bad value and of a field it cannot honour', () => {
    const bad = peer({ peerASN: 64500, peerAddress: 'not-an-ip', bfdProfile: 'fast' });
    expect(bad.ok).toBe(false);
    const paths = bad.ok === false ? bad.problems.map((p) => [p.object, p.path.join('.')]) : [];
    expect(paths).toEqual(
      expect.arrayContaining([
        ['BGPPeer/metallb-system/tor-a', 'spec.peerAddress'],
        ['BGPPeer/metallb-system/tor-a', expect.stringMatching(/^spec/)],
      ]),
    );
    expect(bad.ok === false && bad.problems.some((p) => JSON.stringify(p).includes('bfdProfile'))).toBe(true);
  });
});

describe('BGPAdvertisement projection', () => {
  it('keeps selectors, peers, communities, localPref and aggregation with MetalLB’s defaults', () => {
    const r = projectBgpAdvertisement({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'BGPAdvertisement',
      metadata: { namespace: 'metallb-system', name: 'public' },
      spec: { ipAddressPools: ['public'], peers: ['tor-a'], communities: ['65000:1'], localPref: 100 },
    });
    expect(r).toEqual({
      ok: true,
      value: {
        id: 'BGPAdvertisement/metallb-system/public',
        pools: ['public'],
        poolSelectors: [],
        nodeSelectors: [],
        peers: ['tor-a'],
        communities: ['65000:1'],
        localPref: 100,
        aggregationLength: 32,
        aggregationLengthV6: 128,
      },
    });
  });
});
