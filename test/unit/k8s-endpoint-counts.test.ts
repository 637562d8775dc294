import { describe, expect, it } from 'vitest';
import { readyEndpointsByService } from '../../daemon/sources/kubernetes/endpoint-counts.js';
import type { EndpointCounts } from '../../model/cluster.js';

const slice = (
  service: string,
  addressType: string | undefined,
  readyByNode: Record<string, number>,
): EndpointCounts => ({
  namespace: 'shop',
  service,
  ...(addressType ? { addressType } : {}),
  readyByNode,
});

/** The counts as plain objects: `namespace/service` → node → ready endpoints. */
const counted = (slices: EndpointCounts[]) =>
  Object.fromEntries(
    [...readyEndpointsByService(slices)].map(([key, byNode]) => [key, Object.fromEntries(byNode)]),
  );

describe('readyEndpointsByService', () => {
  it('adds up the slices of one family', () => {
    expect(counted([slice('web', 'IPv4', { n1: 2, n2: 1 }), slice('web', 'IPv4', { n1: 1 })])).toEqual({
      'shop/web': { n1: 3, n2: 1 },
    });
  });

  it('counts a dual-stack pod once: the IPv4 and IPv6 slices list the same pods', () => {
    const slices = [
      slice('web', 'IPv4', { n1: 1, n2: 2 }),
      slice('web', 'IPv6', { n1: 1, n2: 2 }),
      slice('web', 'IPv6', { n3: 1 }),
    ];
    expect(counted(slices)).toEqual({ 'shop/web': { n1: 1, n2: 2, n3: 1 } });
  });

  it('takes the larger family where they differ (pods on one family only), per node', () => {
    const slices = [slice('web', 'IPv4', { n1: 2, n2: 0 }), slice('web', 'IPv6', { n1: 1, n2: 1 })];
    expect(counted(slices)).toEqual({ 'shop/web': { n1: 2, n2: 1 } });
  });

  it('keeps services apart, and slices without an address type add up among themselves', () => {
    const slices = [
      slice('web', undefined, { n1: 1 }),
      slice('web', undefined, { n1: 1 }),
      slice('db', 'IPv6', { n2: 1 }),
    ];
    expect(counted(slices)).toEqual({ 'shop/web': { n1: 2 }, 'shop/db': { n2: 1 } });
  });
});
