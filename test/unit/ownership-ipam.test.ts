import { describe, expect, it } from 'vitest';
import {
  bigIntToIp,
  type IpamPool,
  type IpamService,
  ipToBigInt,
  planIpam,
} from '../../announcers/ipam/plan.js';

const pool = (id: string, ranges: string[], extra: Partial<IpamPool> = {}): IpamPool => ({
  id,
  ranges,
  autoAssign: true,
  avoidBuggyIPs: false,
  disabled: false,
  ...extra,
});
const svc = (key: string, extra: Partial<IpamService> = {}): IpamService => ({
  key,
  labels: {},
  current: [],
  requested: [],
  ...extra,
});
const ips = (plan: ReturnType<typeof planIpam>) => Object.fromEntries(plan.assignments);

describe('IPAM planner', () => {
  it('round-trips IPv4 and IPv6 addresses in canonical form', () => {
    for (const ip of [
      '192.0.2.1',
      '0.0.0.0',
      '2001:db8::1',
      '::',
      '2001:db8:0:1::',
      'fe80::1:2:3:4',
      '::ffff:192.0.2.1',
    ]) {
      const v = ipToBigInt(ip)!;
      expect(ipToBigInt(bigIntToIp(v.value))).toEqual(v);
    }
    expect(bigIntToIp(ipToBigInt('2001:0db8:0000:0000:0000:0000:0000:0001')!.value)).toBe('2001:db8::1');
  });

  it('allocates the first free addresses, skips .0/.255 when asked, and releases with the Service', () => {
    const pools = [pool('IPAddressPool/ns/a', ['192.0.2.255-192.0.3.1'], { avoidBuggyIPs: true })];
    const plan = planIpam(pools, [svc('ns/x'), svc('ns/y')]);
    expect(ips(plan)).toEqual({ 'ns/x': ['192.0.3.1'], 'ns/y': [] });
    expect(plan.problems).toEqual([
      { object: 'Service/ns/y', message: 'no free address in any pool that may serve this Service' },
    ]);
    // x is gone: its address is free for y.
    expect(ips(planIpam(pools, [svc('ns/y')]))).toEqual({ 'ns/y': ['192.0.3.1'] });
  });

  it('keeps existing assignments stable when Services come and go', () => {
    const pools = [pool('LoadBalancerPool/p', ['192.0.2.0/29'])];
    const first = planIpam(pools, [svc('a/1'), svc('a/2'), svc('a/3')]);
    const now = (key: string) => first.assignments.get(key)!;
    const second = planIpam(pools, [
      svc('a/0'),
      svc('a/1', { current: now('a/1') }),
      svc('a/3', { current: now('a/3') }),
    ]);
    expect(second.assignments.get('a/1')).toEqual(now('a/1'));
    expect(second.assignments.get('a/3')).toEqual(now('a/3'));
    expect(second.assignments.get('a/0')).toEqual(now('a/2'));
  });

  it('honours requested addresses and pools, and says why a request cannot be met', () => {
    const pools = [
      pool('IPAddressPool/ns/public', ['198.51.100.0/30'], { autoAssign: false }),
      pool('IPAddressPool/ns/private', ['10.0.0.0/30']),
    ];
    const plan = planIpam(pools, [
      svc('ns/a', { requested: ['198.51.100.2'] }),
      svc('ns/b', { pool: 'public' }),
      svc('ns/c'),
      svc('ns/d', { requested: ['198.51.100.2'] }),
      svc('ns/e', { requested: ['203.0.113.9'] }),
    ]);
    expect(ips(plan)).toEqual({
      'ns/a': ['198.51.100.2'],
      'ns/b': ['198.51.100.0'],
      'ns/c': ['10.0.0.0'],
      'ns/d': [],
      'ns/e': [],
    });
    expect(plan.problems.map((p) => `${p.object}: ${p.message}`)).toEqual([
      'Service/ns/d: requested 198.51.100.2 is already assigned to another Service',
      'Service/ns/e: requested 203.0.113.9 is in no pool that may serve this Service',
    ]);
  });

  it('never gives one address to two Services, except those with one sharing key', () => {
    const pools = [pool('LoadBalancerPool/p', ['192.0.2.10-192.0.2.11'])];
    const plan = planIpam(pools, [
      svc('a/1', { current: ['192.0.2.10'] }),
      svc('a/2', { current: ['192.0.2.10'] }),
      svc('a/3', { sharingKey: 'dns' }),
      svc('a/4', { sharingKey: 'dns' }),
    ]);
    expect(ips(plan)).toEqual({
      'a/1': ['192.0.2.10'],
      'a/2': ['192.0.2.11'],
      'a/3': [],
      'a/4': [],
    });
    expect(plan.problems[0]).toEqual({
      object: 'Service/a/2',
      message: '192.0.2.10 is already assigned to another Service',
    });
    const shared = planIpam(
      [pool('LoadBalancerPool/p', ['192.0.2.10/31'])],
      [svc('a/3', { sharingKey: 'dns' }), svc('a/4', { sharingKey: 'dns' }), svc('a/5')],
    );
    expect(ips(shared)).toEqual({ 'a/3': ['192.0.2.10'], 'a/4': ['192.0.2.10'], 'a/5': ['192.0.2.11'] });
  });

  it('flags overlapping pools, respects service selectors, and releases addresses a pool no longer covers', () => {
    const pools = [
      pool('CiliumLoadBalancerIPPool/blue', ['2001:db8::/126'], {
        serviceSelector: { matchLabels: { color: 'blue' }, matchExpressions: [] },
      }),
      pool('LoadBalancerPool/wide', ['2001:db8::2-2001:db8::9']),
    ];
    const plan = planIpam(pools, [
      svc('ns/blue', { labels: { color: 'blue' } }),
      svc('ns/other', { current: ['2001:db8::ff'] }),
    ]);
    expect(plan.problems.slice(0, 2)).toEqual([
      { object: 'CiliumLoadBalancerIPPool/blue', message: 'overlaps LoadBalancerPool/wide' },
      { object: 'LoadBalancerPool/wide', message: 'overlaps CiliumLoadBalancerIPPool/blue' },
    ]);
    expect(ips(plan)).toEqual({ 'ns/blue': ['2001:db8::'], 'ns/other': ['2001:db8::2'] });
  });
});
